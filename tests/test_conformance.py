"""Loader conformance: every case of tests/conformance_cases.py, judged by imagescan and by the
real loader (shared/corpus/oracle.py runs the image's own ld.so in a chroot).

All cases are compiled once per session and written as one OCI layout, one tag per case.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import posixpath
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import conformance_cases as cc
from tests.conftest import CORPUS
from tests.imagebuilder import (
    Dir,
    File,
    ImageSpec,
    Member,
    Symlink,
    Whiteout,
    glibc_base,
    ld_so_cache,
    write_oci_dir,
)
from tests.imagebuilder import Opaque as OpaqueDir

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conformance"
ORACLE = CORPUS / "oracle.py"
HOST_LDSO = "/lib64/ld-linux-x86-64.so.2"

# ---------------------------------------------------------------- ELF patches (test-only edits)


def _section_headers(data: bytes) -> list[tuple[int, ...]]:
    """(sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, ...) of an ELF64 LE."""
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    return [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]


def _cstr(data: bytes, offset: int) -> bytes:
    return data[offset : data.index(b"\0", offset)]


def _elf_hash(name: bytes) -> int:
    """The SysV ELF hash that Vernaux.vna_hash holds."""
    h = 0
    for byte in name:
        h = ((h << 4) + byte) & 0xFFFFFFFF
        g = h & 0xF0000000
        h = (h ^ (g >> 24)) & ~g & 0xFFFFFFFF
    return h


def _vernaux(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(offset of the Vernaux, its name, dynstr offset) for every Vernaux of .gnu.version_r."""
    shdrs = _section_headers(data)
    for sh in shdrs:
        if sh[1] != 0x6FFFFFFE:  # SHT_GNU_verneed
            continue
        strtab = shdrs[sh[6]][4]
        need = sh[4]
        while True:
            _ver, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", data, need)
            at = need + aux
            for _ in range(cnt):
                name_off, aux_next = struct.unpack_from("<II", data, at + 8)
                yield at, _cstr(data, strtab + name_off), strtab
                at += aux_next
            if not nxt:
                break
            need += nxt


def _weak_vernaux(data: bytearray, name: str) -> None:
    """Sets VER_FLG_WEAK (2) on the Vernaux `name`: GNU ld 2.40 writes it for no input."""
    for at, vname, _ in _vernaux(bytes(data)):
        if vname == name.encode():
            (flags,) = struct.unpack_from("<H", data, at + 4)
            struct.pack_into("<H", data, at + 4, flags | 2)
            return
    raise ValueError(f"no Vernaux {name}")


def _rename_vernaux(data: bytearray, spec: str) -> None:
    """Points Vernaux OLD at the dynstr string NEW (which must exist), with NEW's hash."""
    old, new = spec.split(":")
    raw = bytes(data)
    entries = list(_vernaux(raw))
    new_off = next(
        struct.unpack_from("<I", raw, at + 8)[0] for at, n, _ in entries if n == new.encode()
    )
    for at, vname, _ in entries:
        if vname == old.encode():
            struct.pack_into("<I", data, at, _elf_hash(new.encode()))
            struct.pack_into("<I", data, at + 8, new_off)
            return
    raise ValueError(f"no Vernaux {old}")


def _runpath_from_rpath_suffix(data: bytearray, suffix: str) -> None:
    """Turns DT_DEBUG (only a debugger reads it) into a DT_RUNPATH naming the tail `suffix` of
    the DT_RPATH string: an object with both tags, which GNU ld never writes."""
    dynamic = next(sh for sh in _section_headers(bytes(data)) if sh[1] == 6)  # SHT_DYNAMIC
    entries = [
        (dynamic[4] + i, *struct.unpack_from("<qQ", data, dynamic[4] + i))
        for i in range(0, dynamic[5], 16)
    ]
    strtab = next(v for _, tag, v in entries if tag == 5)  # DT_STRTAB (vaddr == offset here)
    rpath = next(v for _, tag, v in entries if tag == 15)  # DT_RPATH
    text = _cstr(bytes(data), _vaddr_to_offset(bytes(data), strtab) + rpath).decode()
    if not text.endswith(suffix):
        raise ValueError(f"RPATH {text!r} does not end with {suffix!r}")
    at = next(off for off, tag, _ in entries if tag == 21)  # DT_DEBUG
    struct.pack_into("<qQ", data, at, 29, rpath + len(text) - len(suffix))  # DT_RUNPATH


def _vaddr_to_offset(data: bytes, vaddr: int) -> int:
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _f, off, va, _pa, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1 and va <= vaddr < va + filesz:  # PT_LOAD
            return int(vaddr - va + off)
    raise ValueError(f"no PT_LOAD maps {vaddr:#x}")


def _e_machine(data: bytearray, value: str) -> None:
    struct.pack_into("<H", data, 18, int(value))


def _truncate(data: bytearray, size: str) -> None:
    del data[int(size) :]


def _e_ident(data: bytearray, spec: str) -> None:
    """`INDEX:VALUE`: one e_ident byte (EI_DATA=5, EI_OSABI=7)."""
    index, value = spec.split(":")
    data[int(index)] = int(value)


def _only_keep_debug(data: bytearray, _arg: str) -> None:
    """What `objcopy --only-keep-debug` makes of the file: a separate debug file."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in"), Path(tmp, "out")
        src.write_bytes(bytes(data))
        subprocess.run(["objcopy", "--only-keep-debug", src, out], check=True)
        data[:] = out.read_bytes()


PATCHES: dict[str, Callable[[bytearray, str], None]] = {
    "only-keep-debug": _only_keep_debug,
    "e_machine": _e_machine,
    "e_ident": _e_ident,
    "truncate": _truncate,
    "weak-vernaux": _weak_vernaux,
    "rename-vernaux": _rename_vernaux,
    "runpath-from-rpath-suffix": _runpath_from_rpath_suffix,
}

# ---------------------------------------------------------------- building


def _scratch(root: Path, image_path: str) -> Path:
    return root / image_path.lstrip("/")


def _compile(step: cc.Cc, root: Path) -> None:
    out = _scratch(root, step.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = [f.replace("{B}", str(root)).replace("{S}", str(FIXTURES)) for f in step.flags]
    sources = [str(FIXTURES / s) for s in step.sources]
    # ld would look for the libraries' own dependencies at their image paths: the loader's
    # search is what the tests are about, so the link does not check it.
    cmd = [step.cc, *sources, *flags, "-Wl,--allow-shlib-undefined", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{done.stderr}")


def _patch(step: cc.Patch, root: Path) -> None:
    data = bytearray(_scratch(root, step.src).read_bytes())
    name, _, arg = step.op.partition("=")
    PATCHES[name](data, arg)
    out = _scratch(root, step.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(data))


def _build(case: cc.Case, root: Path) -> None:
    for step in case.build:
        if isinstance(step, cc.Cc):
            _compile(step, root)
        else:
            _patch(step, root)


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _member(put: cc.Put, root: Path) -> Member:
    if isinstance(put, cc.Install):
        data = _installed_bytes(put, root)
        return File(put.path, data, put.mode, put.uid, put.gid)
    if isinstance(put, cc.Text):
        return File(put.path, put.data, put.mode)
    if isinstance(put, cc.Link):
        return Symlink(put.path, put.target)
    if isinstance(put, cc.Gone):
        return Whiteout(put.path)
    if isinstance(put, cc.Folder):
        return Dir(put.path)
    if isinstance(put, cc.Opaque):
        return OpaqueDir(put.path)
    return File(put.path, Path(os.path.realpath(put.host_path)).read_bytes(), 0o755)


def _installed_bytes(put: cc.Install, root: Path) -> bytes:
    src = put.src or put.path
    if src.startswith("fixture:"):
        return (FIXTURES / src.removeprefix("fixture:")).read_bytes()
    return _scratch(root, src).read_bytes()


def _layer(puts: Iterable[cc.Put], root: Path, skip_dirs: set[str]) -> list[Member]:
    members: list[Member] = []
    seen = set(skip_dirs)
    for put in puts:
        for parent in _parents(put.path):
            if parent not in seen:
                seen.add(parent)
                members.append(Dir(parent))
        members.append(_member(put, root))
    return members


def _base(case: cc.Case) -> list[Member]:
    return glibc_base() if case.base == "glibc" else []


def image_spec(case: cc.Case, root: Path) -> ImageSpec:
    """Compiles `case` under `root` and returns its image."""
    _build(case, root)
    base = _base(case)
    skip = {m.path for m in base if isinstance(m, Dir | Symlink)}
    layers = [_layer(puts, root, skip) for puts in case.layers]
    if case.ldconfig:
        layers[0].append(ld_so_cache(base + layers[0]))
    env = list(case.env) if case.env else [cc.PATH]
    return ImageSpec(layers=[base, *layers] if base else layers, env=env, user=case.user)


@functools.cache
def _probe(requirement: str, tmp: Path) -> bool:
    """Whether the host can build what a case requires ("gcc -m32", "musl-gcc")."""
    tmp = tmp / ("probe-" + re.sub(r"\W", "_", requirement))
    tmp.mkdir(exist_ok=True)
    src = tmp / "probe.c"
    src.write_text("int f(void) { return 0; }\n")
    cmd = [*requirement.split(), "-shared", "-fPIC", str(src), "-o", str(tmp / "probe.so")]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _build_one(case: cc.Case, work: Path) -> ImageSpec | str:
    """The case's image, or why it is not built ("skip: ..." when the host lacks a tool)."""
    lacking = [r for r in case.requires if not _probe(r, work)]
    if lacking:
        return f"skip: this host cannot run {lacking}"
    try:
        return image_spec(case, work / case.name)
    except (RuntimeError, OSError, ValueError) as err:
        return f"build failed: {err}"


@dataclass(frozen=True)
class Built:
    """The session's OCI layout: one tag per case; `problems` says why a case is not in it."""

    layout: Path
    problems: Mapping[str, str]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("conformance")
    glibc_base()  # computed once (ldconfig) before the threads share it
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda c: _build_one(c, work), cc.CASES))
    named = [(case.name, result) for case, result in zip(cc.CASES, results, strict=True)]
    specs = {name: r for name, r in named if isinstance(r, ImageSpec)}
    problems = {name: r for name, r in named if isinstance(r, str)}
    return Built(write_oci_dir(work / "oci", specs), problems)


def _case_layout(built: Built, case: cc.Case) -> Path:
    problem = built.problems.get(case.name)
    if problem and problem.startswith("skip:"):
        pytest.skip(problem)
    assert problem is None, problem
    return built.layout


# ---------------------------------------------------------------- observations


@dataclass(frozen=True)
class Observed:
    """A verdict in the table's terms, from imagescan's JSON or from the oracle's."""

    status: str
    fatal: frozenset[cc.Finding]
    warnings: frozenset[tuple[str, str]]
    resolved: Mapping[str, str | None]
    messages: tuple[str, ...] = ()


ORACLE_STATUS = {"broken_lazy": "broken-lazy", "interp_missing": "interpreter-missing"}
ORACLE_STATUS |= {"foreign_arch": "foreign-arch"}


def from_oracle(entry: Mapping[str, Any]) -> Observed:
    """The oracle's entry for one ELF in the table's terms."""
    lib = "missing-library"
    fatal = {cc.Finding(lib, name) for name in entry.get("missing_deps", [])}
    for problem in entry.get("problems", []):
        kind, _, subject = problem.partition(":")
        if kind == "secure_exec_missing_dep":
            fatal.add(cc.Finding(lib, subject))
        elif kind == "interp_missing":
            fatal.add(cc.Finding("missing-interpreter", subject))
    for need in entry.get("missing_versions", []):
        fatal.add(cc.Finding("missing-symbol-version", need["version"]))
    for sym in entry.get("undefined_symbols", []):
        fatal.add(cc.Finding("undefined-symbol", sym["symbol"], sym["when"]))
    warnings = {("preload-missing", w) for w in entry.get("warnings", [])}
    messages = tuple(entry.get("messages", [])) + tuple(entry.get("problems", []))
    status = ORACLE_STATUS.get(entry["status"], entry["status"])
    return Observed(status, frozenset(fatal), frozenset(warnings), entry.get("deps", {}), messages)


def from_imagescan(entry: Mapping[str, Any], image_findings: Iterable[Any] = ()) -> Observed:
    """imagescan's JSON entry for one file in the table's terms; image-wide findings (a stale
    cache) count as the file's warnings."""
    fatal, warnings = set(), set()
    warnings |= {(f["kind"], f["subject"]) for f in image_findings if not f.get("fatal_at")}
    for finding in entry.get("findings", []):
        if finding.get("fatal_at"):
            fatal.add(cc.Finding(finding["kind"], finding["subject"], finding["fatal_at"]))
        else:
            warnings.add((finding["kind"], finding["subject"]))
    resolved = {k: v for k, v in (entry.get("resolved") or {}).items()}
    return Observed(entry["status"], frozenset(fatal), frozenset(warnings), resolved)


def _comparable(findings: frozenset[cc.Finding], expected: cc.Verdict) -> set[cc.Finding]:
    """Undefined symbols are consequences when a library or version is missing: not compared."""
    causes = {"missing-library", "missing-symbol-version", "incompatible-library"}
    if any(f.kind in causes for f in expected.fatal):
        return {f for f in findings if f.kind != "undefined-symbol"}
    return set(findings)


def mismatches(
    expected: cc.Verdict, seen: Observed, *, oracle: bool, same_path: Callable[[str, str], bool]
) -> list[str]:
    """What differs between the table and one observation (empty: they agree)."""
    out = []
    if seen.status != expected.status:
        out.append(f"status {seen.status!r}, expected {expected.status!r}")
    if oracle and expected.loader_says:
        if not any(expected.loader_says in m for m in seen.messages):
            out.append(f"the loader did not say {expected.loader_says!r}: {seen.messages}")
    else:
        want, got = _comparable(expected.fatal, expected), _comparable(seen.fatal, expected)
        if want != got:
            out.append(f"fatal findings {sorted(map(str, got))}, expected {sorted(map(str, want))}")
    out += _warning_mismatches(expected, seen, oracle=oracle)
    for name, path in expected.resolved:
        got_path = seen.resolved.get(name)
        if not same_path(str(got_path), str(path)):
            out.append(f"{name} resolved to {got_path!r}, expected {path!r}")
    return out


# Warning kinds whose absence the table asserts too (a false alarm is a defect).
EXACT_WARNINGS = {"stale-ld-cache", "fragile-dependency", "preload-missing"}


def _warning_mismatches(expected: cc.Verdict, seen: Observed, *, oracle: bool) -> list[str]:
    # The oracle sees only "cannot be preloaded ... ignored" warnings (in its own words).
    out = []
    for warning in expected.warnings:
        if oracle:
            if warning.kind != "preload-missing":
                continue
            hit = any(warning.subject in text for _, text in seen.warnings)
        else:
            hit = (warning.kind, warning.subject) in seen.warnings
        if not hit:
            out.append(f"no warning {warning.kind} {warning.subject}; got {sorted(seen.warnings)}")
    if not oracle:
        wanted = {(w.kind, w.subject) for w in expected.warnings}
        extra = {w for w in seen.warnings if w[0] in EXACT_WARNINGS} - wanted
        out += [f"unexpected warning {kind} {subject}" for kind, subject in sorted(extra)]
    return out


# ---------------------------------------------------------------- the CPU's hwcaps level


@functools.cache
def host_hwcaps_levels() -> tuple[str, ...]:
    """glibc-hwcaps subdirs the host's ld.so marks "supported" (`ld.so --help`)."""
    done = subprocess.run([HOST_LDSO, "--help"], capture_output=True, text=True, check=False)
    return tuple(re.findall(r"^\s+(\S+) \(supported, searched\)$", done.stdout, re.M))


def expected_programs(case: cc.Case, levels: Iterable[str]) -> dict[str, cc.Verdict]:
    """The case's program verdicts on a CPU supporting these glibc-hwcaps levels."""
    verdicts = dict(case.programs)
    for level, overrides in case.by_level.items():
        if level in set(levels):
            verdicts |= overrides
    return verdicts


# ---------------------------------------------------------------- the oracle


def _oracle_usable() -> str | None:
    if os.geteuid() != 0:
        return "the oracle needs root"
    if shutil.which("chroot") is None:
        return "no chroot"
    if not ORACLE.exists():
        return f"no oracle at {ORACLE}"
    return None


@functools.cache
def run_oracle(layout: Path, tag: str, out_dir: Path) -> dict[str, Any]:
    """The oracle's verdicts for image `tag`; its unpacked root stays in out_dir/rootfs-TAG."""
    out = out_dir / f"oracle-{tag}.json"
    cmd = [sys.executable, str(ORACLE), str(layout), "--ref", tag, "-o", str(out)]
    cmd += ["--jobs", "2", "--no-python-dlopen", "--keep", str(out_dir / f"rootfs-{tag}")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _exact(a: str, b: str) -> bool:
    return a == b


def _oracle_expectations(case: cc.Case) -> dict[str, cc.Verdict]:
    levels = host_hwcaps_levels()
    return expected_programs(case, levels) | dict(case.libraries) | dict(case.oracle_differs)


@pytest.mark.oracle
@pytest.mark.parametrize("case", cc.CASES, ids=lambda c: c.name)
def test_oracle_agrees_with_expectation(built: Built, case: cc.Case) -> None:
    reason = _oracle_usable()
    if reason:
        pytest.skip(reason)
    layout = _case_layout(built, case)
    elves = run_oracle(layout, case.name, layout.parent)["elves"]
    expected = _oracle_expectations(case)
    problems = [f"{p}: not judged by the loader" for p in expected if p not in elves]
    for path, entry in elves.items():
        verdict = expected.get(path, case.others)
        for text in mismatches(verdict, from_oracle(entry), oracle=True, same_path=_exact):
            problems.append(f"{path}: {text}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- a real start


def _image_ids(user: str | None) -> tuple[int, int]:
    """The numeric `User` of the image config (the cases use only numbers)."""
    uid, _, gid = (user or "0").partition(":")
    return int(uid), int(gid or 0)


_LIBC = ctypes.CDLL(None, use_errno=True)
_unshare: Callable[[int], int] = _LIBC.unshare
_mount: Callable[[bytes, bytes, bytes | None, int, None], int] = _LIBC.mount
CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x20000, 0x4000, 0x40000


def _mount_proc(root: Path) -> None:
    """/proc inside the root, in a private mount namespace that dies with the child: ld.so
    reads /proc/self/exe for the main program's $ORIGIN (_dl_get_origin)."""
    (root / "proc").mkdir(exist_ok=True)
    proc = str(root / "proc").encode()
    if (
        _unshare(CLONE_NEWNS) != 0
        or _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0
        or _mount(b"proc", proc, b"proc", 0, None) != 0
    ):
        raise OSError(ctypes.get_errno(), "cannot mount /proc for the chroot")


def _enter(root: Path, uid: int, gid: int) -> Callable[[], None]:
    def enter() -> None:
        _mount_proc(root)
        os.chroot(root)
        os.chdir("/")
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return enter


def start(
    root: Path, program: str, env: Iterable[str], user: str | None, *args: str
) -> tuple[int, str]:
    """Runs one of the cases' own programs (built from tests/fixtures) as the image would:
    chroot, the config's User and Env, cwd /. Returns (exit status, stderr)."""
    uid, gid = _image_ids(user)
    environ = dict(item.split("=", 1) for item in env)
    try:
        done = subprocess.run(
            [program, *args],
            env=environ,
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
            preexec_fn=_enter(root, uid, gid),
        )
    except subprocess.SubprocessError as err:  # preexec_fn failed: no mount namespace here
        pytest.skip(f"cannot enter the image root: {err}")
    except OSError as err:  # execve failed: e.g. the PT_INTERP file is missing (ENOENT)
        return 127, str(err)
    return done.returncode, done.stderr


# What ld.so (rtld.c, dl-version.c: exit 1 or 127) and musl (ldso_fail: 127) print when they
# refuse to start a program.
LOADER_ERRORS = re.compile(
    r"error while loading shared libraries|version `[^']*' not found|symbol lookup error"
    r"|DT_RELR without|Error loading shared library|Error relocating|No such file or directory"
    r"|error due to GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS"
)


def start_mismatch(verdict: cc.Verdict, status: int, stderr: str) -> str | None:
    """ok, static, broken-lazy: main runs and exits 0 (the programs call a missing function
    only when given an argument); broken, interpreter-missing: the loader refuses."""
    if verdict.status in ("ok", "static", "broken-lazy"):
        return None if status == 0 else f"exit {status}, expected a start: {stderr}"
    if status != 0 and LOADER_ERRORS.search(stderr):
        return None
    return f"exit {status}, expected the loader to refuse: {stderr!r}"


@pytest.mark.oracle
@pytest.mark.parametrize("case", cc.CASES, ids=lambda c: c.name)
def test_programs_start_as_expected(built: Built, case: cc.Case) -> None:
    """The programs really start (exit 0: main ran) or die in the loader (127), as the
    table says. This is the only judge for AT_SECURE, which trace mode cannot show."""
    reason = _oracle_usable()
    if reason:
        pytest.skip(reason)
    layout = _case_layout(built, case)
    run_oracle(layout, case.name, layout.parent)
    root = layout.parent / f"rootfs-{case.name}"
    env = case.env or (cc.PATH,)
    problems = []
    starts = expected_programs(case, host_hwcaps_levels()) | dict(case.starts)
    for path, verdict in starts.items():
        problem = start_mismatch(verdict, *start(root, path, env, case.user))
        if problem:
            problems.append(f"{path}: {problem}")
        if verdict.status == "broken-lazy":
            # with an argument the program calls the missing function: death at the call
            status, stderr = start(root, path, env, case.user, "call")
            if status == 0 or "symbol lookup error" not in stderr:
                problems.append(f"{path} call: exit {status}, expected a lookup error: {stderr}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- imagescan


def run_imagescan(layout: Path, tag: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "imagescan", "scan", f"oci-dir:{layout}:{tag}", "-o", "json"]
    cmd += args
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode in (0, 1), f"exit {done.returncode}: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _same_file(got: str, want: str) -> bool:
    # ld.so prints the path as searched ("./libW.so.1" for the CWD, "/"); compare normalised.
    return posixpath.normpath(posixpath.join("/", got)) == posixpath.normpath(
        posixpath.join("/", want)
    )


def _imagescan_mismatches(
    report: Mapping[str, Any], expected: Mapping[str, cc.Verdict]
) -> list[str]:
    files = {f["path"]: f for f in report["files"]}
    problems = []
    for path, verdict in expected.items():
        if path not in files:
            problems.append(f"{path}: not in the report")
            continue
        seen = from_imagescan(files[path], report.get("image_findings", []))
        for text in mismatches(verdict, seen, oracle=False, same_path=_same_file):
            problems.append(f"{path}: {text}")
    return problems


@pytest.mark.parametrize("case", cc.CASES, ids=lambda c: c.name)
def test_imagescan_verdict(built: Built, case: cc.Case) -> None:
    layout = _case_layout(built, case)
    report = run_imagescan(layout, case.name)
    # imagescan's default target is the baseline x86-64 level (no glibc-hwcaps subdir).
    problems = _imagescan_mismatches(report, expected_programs(case, ()))
    assert not problems, "\n".join(problems)


LIBRARY_CASES = [case for case in cc.CASES if case.library_checks]


@pytest.mark.parametrize("case", LIBRARY_CASES, ids=lambda c: c.name)
def test_imagescan_library_verdict(built: Built, case: cc.Case) -> None:
    """The libraries a case names are judged as the real loader traced them on their own."""
    layout = _case_layout(built, case)
    report = run_imagescan(layout, case.name)
    expected = {path: case.libraries[path] for path in case.library_checks}
    problems = _imagescan_mismatches(report, expected)
    assert not problems, "\n".join(problems)


X86_LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
LEVEL_CASES = [
    pytest.param(case, level, id=f"{case.name}-{level}")
    for case in cc.CASES
    if case.by_level
    for level in X86_LEVELS
]


@pytest.mark.parametrize(("case", "level"), LEVEL_CASES)
def test_imagescan_verdict_at_cpu_level(built: Built, case: cc.Case, level: str) -> None:
    """With --cpu-level, the glibc-hwcaps subdirs of that level and below are searched."""
    layout = _case_layout(built, case)
    report = run_imagescan(layout, case.name, "--cpu-level", level)
    supported = X86_LEVELS[: X86_LEVELS.index(level) + 1]
    problems = _imagescan_mismatches(report, expected_programs(case, supported))
    assert not problems, "\n".join(problems)
