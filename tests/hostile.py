"""Hostile inputs built from scratch, for the regression tests, the hostile-image suite and
the fuzzers' seed corpora (issue 15). Each builder takes the size that matters, so a test can
build two sizes and compare the cost.

The ELF builder writes the smallest file the reader accepts: one PT_LOAD that maps the whole
file at address 0 (so every address is its own file offset), PT_DYNAMIC, and the tables the
caller asks for. No C compiler is involved: the hostile shapes cannot come out of one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.imagebuilder import MT_OCI_INDEX as MT_INDEX
from tests.imagebuilder import MT_OCI_MANIFEST as MT_MANIFEST
from tests.imagebuilder import File, ImageSpec, write_docker_archive, write_oci_dir

EHDR, PHDR = 64, 56
ET_DYN, EM_X86_64 = 3, 62
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 1, 4, 5, 6, 10, 11
DT_SONAME, DT_VERNEED, DT_VERNEEDNUM = 14, 0x6FFFFFFE, 0x6FFFFFFF
STB_GLOBAL, STT_FUNC = 1, 2


@dataclass
class Symbol:
    """One dynsym row: `name` is an offset into the string table."""

    name: int
    defined: bool = True
    info: int = STB_GLOBAL << 4 | STT_FUNC


@dataclass
class Need:
    """One Verneed: the file and the Vernaux names, all offsets into the string table."""

    file: int
    names: Sequence[int] = ()


@dataclass
class SyntheticElf:
    """What the file holds; offsets are into `strtab`."""

    strtab: bytes = b"\0"
    needed: Sequence[int] = ()
    soname: int | None = None
    symbols: Sequence[Symbol] = ()
    verneed: Sequence[Need] = ()
    interp: bytes | None = None
    extra: bytes = b""  # bytes appended to the file image (a fake ld.so's rodata)
    tags: list[tuple[int, int]] = field(default_factory=list)


def elf_bytes(spec: SyntheticElf) -> bytes:
    """A 64-bit little-endian x86-64 ET_DYN holding `spec`."""
    nphdr = 3 if spec.interp is not None else 2
    body = bytearray()
    start = EHDR + PHDR * nphdr

    def place(data: bytes) -> int:
        pad = -(start + len(body)) % 8
        body.extend(bytes(pad))
        offset = start + len(body)
        body.extend(data)
        return offset

    interp = place(spec.interp + b"\0") if spec.interp is not None else 0
    strtab = place(spec.strtab)
    tags = [(DT_STRTAB, strtab), (DT_STRSZ, len(spec.strtab))]
    tags += [(DT_NEEDED, n) for n in spec.needed]
    if spec.soname is not None:
        tags.append((DT_SONAME, spec.soname))
    if spec.symbols:
        rows = [bytes(24)] + [_sym(s) for s in spec.symbols]
        tags.append((DT_SYMTAB, place(b"".join(rows))))
        tags.append((DT_SYMENT, 24))
        tags.append((DT_HASH, place(struct.pack("<II", 0, len(rows)))))
    if spec.verneed:
        tags += [(DT_VERNEED, place(_verneed(spec.verneed))), (DT_VERNEEDNUM, len(spec.verneed))]
    place(spec.extra)
    tags += spec.tags
    dynamic = place(b"".join(struct.pack("<qQ", t, v) for t, v in [*tags, (0, 0)]))
    size = start + len(body)
    phdrs = [struct.pack("<IIQQQQQQ", PT_LOAD, 5, 0, 0, 0, size, size, 0x1000)]
    dyn_size = 16 * (len(tags) + 1)
    phdrs.append(struct.pack("<IIQQQQQQ", PT_DYNAMIC, 6, dynamic, dynamic, 0, dyn_size, 0, 8))
    if spec.interp is not None:
        n = len(spec.interp) + 1
        phdrs.append(struct.pack("<IIQQQQQQ", PT_INTERP, 4, interp, interp, 0, n, n, 1))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH", ET_DYN, EM_X86_64, 1, 0, EHDR, 0, 0, EHDR, PHDR, nphdr, 64, 0, 0
    )
    return ehdr + b"".join(phdrs) + bytes(body)


def _sym(symbol: Symbol) -> bytes:
    shndx, value = (1, 0x1000) if symbol.defined else (0, 0)
    return struct.pack("<IBBHQQ", symbol.name, symbol.info, 0, shndx, value, 0)


def _verneed(needs: Sequence[Need]) -> bytes:
    out = bytearray()
    for i, need in enumerate(needs):
        size = 16 + 16 * len(need.names)
        nxt = size if i + 1 < len(needs) else 0
        out += struct.pack("<HHIII", 1, len(need.names), need.file, 16, nxt)
        for j, name in enumerate(need.names):
            last = j + 1 == len(need.names)
            out += struct.pack("<IHHII", 0, 0, 2 + j, name, 0 if last else 16)
    return bytes(out)


# ---------------------------------------------------------------- hostile ELF shapes


def same_name_symbols(n: int) -> bytes:
    """`n` defined symbols that all share one name (once quadratic in the reader)."""
    return elf_bytes(SyntheticElf(b"\0foo\0", symbols=[Symbol(1)] * n))


def needed_one_long_string(n: int, length: int = 1 << 20) -> bytes:
    """`n` DT_NEEDED and `n` Verneed entries all naming one `length`-byte string."""
    strtab = b"\0lib" + b"x" * (length - 6) + b".so\0" + b"V1\0"
    version = 4 + length - 6 + 3 + 1
    needs = [Need(1, [version])] * n
    return elf_bytes(SyntheticElf(strtab, needed=[1] * n, verneed=needs))


def fake_ldso(size: int) -> bytes:
    """A file named like glibc's ld.so holding one `size`-byte run "/lib/lib/lib/..." after a
    NUL and none after it: the system-dirs regex once backtracked over every "lib" and "/"
    pair in it (25 s for 300 KB)."""
    return elf_bytes(SyntheticElf(extra=b"\0/" + b"lib/" * (size // 4) + b"x"))


def dependency_chain(n: int, libdir: str = "/usr/lib") -> list[tuple[str, bytes]]:
    """(path, bytes) of a program needing lib0, each libI needing libI+1, up to lib<n-1>,
    the libraries in `libdir`."""
    files = []
    for i in range(n):
        name = f"libchain{i}.so"
        nxt = f"libchain{i + 1}.so"
        strtab = b"\0" + name.encode() + b"\0" + nxt.encode() + b"\0"
        needed = [len(name) + 2] if i + 1 < n else []
        spec = SyntheticElf(strtab, needed=needed, soname=1)
        files.append((f"{libdir}/{name}", elf_bytes(spec)))
    interp = b"/lib64/ld-linux-x86-64.so.2"
    program = SyntheticElf(b"\0libchain0.so\0", needed=[1], interp=interp)
    files.append(("/usr/bin/chain", elf_bytes(program)))
    return files


def ld_so_conf_doubling(depth: int) -> dict[str, bytes]:
    """/etc/ld.so.conf and `depth` files, each including the next one twice (2^depth
    parses when every include is read again) and naming one directory."""
    files = {"/etc/ld.so.conf": b"include /etc/ld.so.conf.d/c0.conf\n"}
    for i in range(depth):
        nxt = f"/etc/ld.so.conf.d/c{i + 1}.conf"
        text = f"/opt/d{i}\ninclude {nxt}\ninclude {nxt}\n" if i + 1 < depth else f"/opt/d{i}\n"
        files[f"/etc/ld.so.conf.d/c{i}.conf"] = text.encode()
    return files


# ---------------------------------------------------------------- hostile images


def bytes_read(work: Callable[[], object]) -> int:
    """rchar of this process (/proc/self/io) while `work()` runs: what read(2) returned, a
    measure of repeated work that does not depend on the machine's speed."""

    def rchar() -> int:
        text = Path("/proc/self/io").read_text()
        return int(next(line for line in text.splitlines() if line.startswith("rchar:"))[7:])

    before = rchar()
    work()
    return rchar() - before


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def index_dag(dest: Path, levels: int, width: int) -> str:
    """An OCI layout whose index.json leads through `levels` image indexes of `width`
    entries that all name the next level; the reference asks for a digest that is not there
    (every path searched). Returns the reference."""
    write_oci_dir(dest, ImageSpec(layers=[[File("/etc/os-release", b"ID=x\n")]]))
    below: dict[str, object] | None = None
    for _ in range(levels):
        entries = [below] * width if below is not None else []
        doc = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries})
        data = doc.encode()
        (dest / "blobs/sha256" / _sha256(data)[7:]).write_bytes(data)
        below = {"mediaType": MT_INDEX, "digest": _sha256(data), "size": len(data)}
    top = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [below] * width}
    (dest / "index.json").write_text(json.dumps(top))
    return f"oci-dir:{dest}@sha256:{'0' * 64}"


def pax_loop_layer() -> bytes:
    """A gzip layer whose PAX header holds the 11 bytes "10 path=a\\nx" (a hang once)."""
    payload = b"10 path=a\nx"
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(payload)
    block = header.tobuf(tarfile.USTAR_FORMAT)
    member = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT)
    data = block + payload + bytes(-len(payload) % 512) + member + bytes(1024)
    return gzip.compress(data)


def declared_huge_elf_layer(declared: int = 1 << 30) -> bytes:
    """A gzip layer whose one member declares `declared` bytes of ELF and holds 64 KiB."""
    info = tarfile.TarInfo("usr/lib/libhuge.so")
    info.size = declared
    body = same_name_symbols(10)[:64] + bytes(64 << 10)
    return gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + body)


def write_layers_dir(dest: Path, blobs: Sequence[bytes], spec: ImageSpec | None = None) -> str:
    """An OCI layout over raw layer blobs (diff_ids not checked: absent from the config)."""
    base = dest.parent / (dest.name + "-blobs")
    base.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, blob in enumerate(blobs):
        path = base / f"layer{i}.tar.gz"
        path.write_bytes(blob)
        paths.append(path)
    image = spec or ImageSpec(layers=[])
    image.base = paths
    write_oci_dir(dest, image)
    return f"oci-dir:{dest}"


def gzipped_docker_save(dest: Path, layers: int, shape: str = "legacy") -> Path:
    """`docker save | gzip` of an image of `layers` small layers, each with 64 KiB of noise
    (so the archive does not compress to nothing)."""
    members = [
        [File(f"/data/layer{i}", hashlib.sha256(str(i).encode()).digest() * 2048)]
        for i in range(layers)
    ]
    archive = write_docker_archive(
        dest.with_suffix(".plain"), ImageSpec(layers=members), shape=shape
    )
    dest.write_bytes(gzip.compress(archive.read_bytes(), 1))
    archive.unlink()
    return dest


# ---------------------------------------------------------------- big layers, streamed


class _Digesting:
    """A write-only file that hashes what goes through (the uncompressed tar: diff_id)."""

    def __init__(self, out: gzip.GzipFile) -> None:
        self.out, self.sha256 = out, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.out.write(data)


def streamed_layer(path: Path, files: Iterable[tuple[str, int | bytes]]) -> str:
    """A gzip layer of (name, size) files of zeros, or (name, content), written without
    holding it in memory; returns its diff_id."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        sink = _Digesting(out)  # type: ignore[arg-type]
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
            for name, content in files:
                info = tarfile.TarInfo(name.lstrip("/"))
                if isinstance(content, bytes):
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
                else:
                    info.size = content
                    tar.addfile(info, _Zeros(content))
    return "sha256:" + sink.sha256.hexdigest()


class _Zeros:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def layout_of_blobs(dest: Path, layers: Sequence[tuple[Path, str]], **config: Any) -> str:
    """An OCI layout over gzip layer files (path, diff_id) already written; its reference."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    descriptors = []
    for path, _ in layers:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
        path.rename(blobs / digest.hexdigest())
        size = (blobs / digest.hexdigest()).stat().st_size
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
        descriptors.append(
            {"mediaType": media, "digest": f"sha256:{digest.hexdigest()}", "size": size}
        )
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], **config},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
    }
    config_desc = _blob(blobs, json.dumps(doc).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config_desc,
        "layers": descriptors,
    }
    manifest_desc = _blob(blobs, json.dumps(manifest).encode(), MT_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [manifest_desc]}
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return f"oci-dir:{dest}"


def _blob(blobs: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


# ---------------------------------------------------------------- the hostile-image catalogue


@dataclass(frozen=True)
class Case:
    """One hostile image: `build(dest, full)` writes it under `dest` and returns the
    imagescan arguments; `full` is the size the issue measured, else a smaller one that
    still shows the fault. `expect` must appear in stdout or stderr; `exits` are the
    acceptable exit codes."""

    name: str
    build: Callable[[Path, bool], list[str]]
    expect: str
    exits: tuple[int, ...] = (0, 1)


def synthetic_loader() -> File:
    """The /lib64/ld-linux-x86-64.so.2 the synthetic programs name (no compiled-in dirs)."""
    name = b"\0ld-linux-x86-64.so.2\0"
    return File("/lib64/ld-linux-x86-64.so.2", elf_bytes(SyntheticElf(name, soname=1)), 0o755)


def elf_image(dest: Path, files: Sequence[tuple[str, bytes]], **kwargs: Any) -> str:
    members = [synthetic_loader(), *(File(path, data, 0o755) for path, data in files)]
    write_oci_dir(dest, ImageSpec(layers=[members], **kwargs))
    return f"oci-dir:{dest}"


def _program(needed: str = "") -> bytes:
    strtab = b"\0" + needed.encode() + b"\0"
    interp = b"/lib64/ld-linux-x86-64.so.2"
    return elf_bytes(SyntheticElf(strtab, needed=[1] if needed else [], interp=interp))


def _pax(dest: Path, full: bool) -> list[str]:
    return ["scan", write_layers_dir(dest, [pax_loop_layer()])]


def _unicode_user(dest: Path, full: bool) -> list[str]:
    # User "app:²": passwd gives app the uid "¹", the group is "²" (both once int()-ed).
    passwd = ("/etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:¹:²::/:/bin/sh\n".encode())
    return ["scan", elf_image(dest, [passwd, ("/usr/bin/app", _program())], user="app:²")]


def _ldcache_shared(dest: Path, full: bool) -> list[str]:
    n = 40_000 if full else 10_000
    long = b"lib" + b"x" * 4000 + b".so\0"
    base = 48 + 24 * n
    entries = b"".join(struct.pack("<iIIIQ", 0x303, base, base, 0, 0) for _ in range(n))
    header = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3sI12x", n, len(long), 2, b"", 0)
    cache = ("/etc/ld.so.cache", header + entries + long)
    return ["scan", "-q", elf_image(dest, [("/usr/bin/app", _program("libc.so.6")), cache])]


def _same_name(dest: Path, full: bool) -> list[str]:
    lib = ("/usr/lib/libsame.so", same_name_symbols(40_000 if full else 20_000))
    return ["scan", "-q", elf_image(dest, [lib])]


def _long_needed(dest: Path, full: bool) -> list[str]:
    lib = ("/usr/lib/liblong.so", needed_one_long_string(200 if full else 50))
    return ["ls", "--elf", elf_image(dest, [lib])]


def _fake_ldso(dest: Path, full: bool) -> list[str]:
    fake = ("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", fake_ldso(300_000 if full else 100_000))
    return ["scan", "-q", elf_image(dest, [fake, ("/usr/bin/app", _program())])]


def _chain(dest: Path, full: bool) -> list[str]:
    # /usr/lib64: the synthetic ld.so has no compiled-in dirs, so upstream's defaults apply.
    files = dependency_chain(2000 if full else 300, "/usr/lib64")
    return ["scan", "-q", elf_image(dest, files)]


def _chain_bound(dest: Path, full: bool) -> list[str]:
    # Deep enough that judging every library as a main object passes checks.budget's bound.
    files = dependency_chain(2000 if full else 600, "/usr/lib64")
    return ["scan", elf_image(dest, files)]


def _ldconf(dest: Path, full: bool) -> list[str]:
    files = [*ld_so_conf_doubling(22).items(), ("/usr/bin/app", _program())]
    return ["scan", elf_image(dest, files)]


def _dag(dest: Path, full: bool) -> list[str]:
    return ["scan", index_dag(dest, 8, 10)]


def _gzipped_save(dest: Path, full: bool) -> list[str]:
    dest.mkdir(parents=True)
    archive = gzipped_docker_save(dest / "save.tar.gz", 100 if full else 40)
    return ["ls", f"docker-archive:{archive}"]


INCLUDE_CONF_D = b"include /etc/ld.so.conf.d/*.conf\n"


def _kept_conf_d(dest: Path, full: bool) -> list[str]:
    dest.mkdir(parents=True)
    count = 150 if full else 40
    files: list[tuple[str, int | bytes]] = [("/etc/ld.so.conf", INCLUDE_CONF_D)]
    files.append(("/usr/bin/app", _program()))
    files += [(f"/etc/ld.so.conf.d/{i:03}.conf", 8 << 20) for i in range(count)]
    layer = dest / "layer.gz"
    diff_id = streamed_layer(layer, files)
    # JSON: the text view does not show image findings yet (render/text.py, issue 10).
    return ["scan", "-o", "json", layout_of_blobs(dest / "layout", [(layer, diff_id)])]


def _kept_small_conf(dest: Path, full: bool) -> list[str]:
    dest.mkdir(parents=True)
    count = 20_000 if full else 5_000
    files = [(f"/usr/share/c{i // 1000}/f{i}.conf", 64 << 10) for i in range(count)]
    layer = dest / "layer.gz"
    diff_id = streamed_layer(layer, files)
    return ["ls", layout_of_blobs(dest / "layout", [(layer, diff_id)])]


def _huge_elf(dest: Path, full: bool) -> list[str]:
    return ["ls", write_layers_dir(dest, [declared_huge_elf_layer(1 << 30)])]


CASES = (
    Case("pax-loop", _pax, "corrupt PAX extended header", (2,)),
    Case("unicode-user", _unicode_user, "ELF files"),
    Case("ldcache-shared-string", _ldcache_shared, "ELF files"),
    Case("symbols-one-name", _same_name, "ELF files"),
    Case("needed-one-long-string", _long_needed, "/usr/lib/liblong.so", (0,)),
    Case("fake-ldso", _fake_ldso, "ELF files"),
    Case("needed-chain", _chain, "ELF files"),
    Case("needed-chain-past-the-bound", _chain_bound, "ELF files were not judged", (1,)),
    Case("ldconf-doubling", _ldconf, "ELF files"),
    Case("index-dag", _dag, "has no manifest", (2,)),
    Case("gzipped-docker-save", _gzipped_save, "/data/layer0", (0,)),
    Case("kept-ld.so.conf.d", _kept_conf_d, "config-not-read", (1, 2)),
    Case("kept-small-conf", _kept_small_conf, "/usr/share/c0/f0.conf", (0,)),
    Case("declared-huge-elf", _huge_elf, "unexpected end of data", (2,)),
)


@dataclass(frozen=True)
class Measured:
    """One imagescan run: exit code, wall seconds, the child's peak RSS, its output."""

    exit: int
    seconds: float
    peak_mb: float
    output: str


_OTHER_CHECKOUT = (
    "import runpy, sys; sys.path.insert(0, {src!r}); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "sys.argv[0] = 'imagescan'; runpy.run_module('imagescan', run_name='__main__')"
)


# The child's peak is read by a small wrapper that starts it: a process forked from a big
# one (a pytest worker) keeps that one's peak RSS across exec in its own ru_maxrss.
_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def run_imagescan(args: Sequence[str], *, timeout: float, src: Path | None = None) -> Measured:
    """`python -m imagescan ARGS` in a child, its peak memory from wait4's rusage; `src`
    runs another checkout's code (PYTHONPATH), for a before/after comparison. Killed after
    `timeout` seconds (exit -9)."""
    env = {**os.environ, "IMAGESCAN_DEBUG": ""}
    command = [sys.executable, "-m", "imagescan", *args]
    if src is not None:
        # The editable install's import hook would still find this checkout: drop it.
        command[1:3] = ["-c", _OTHER_CHECKOUT.format(src=str(src))]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        wrapped = [sys.executable, "-c", _WRAPPER, str(peak_file), *command]
        start = time.monotonic()
        child = subprocess.Popen(wrapped, stdout=out, stderr=out, env=env, start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(child.pid, signal.SIGKILL))
        timer.start()
        _, status, _usage = os.wait4(child.pid, 0)
        timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        out.seek(0)
        text = out.read(1 << 20).decode("utf-8", "replace")
        peak_kb = int(peak_file.read_text() or 0) if peak_file.exists() else 0
    return Measured(child.returncode, seconds, peak_kb / 1024, text)
