"""ld.so.cache parsing and lookup, checked against the host's ldconfig and ld.so.

Caches are written by the host's real `ldconfig -r ROOT` (all three formats) over roots
holding libraries built here with gcc; the expected lookups come from the host's own
ld.so run in `chroot ROOT` with `--list` (never an image's loader). Malformed and
foreign-arch caches come from a small writer following sysdeps/generic/dl-cache.h.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from imagescan.loader.hwcaps import hwcaps_subdirs
from imagescan.loader.ldcache import (
    DL_CACHE_HWCAP_EXTENSION,
    TLS_HWCAP,
    X86_64_HWCAP_IMPORTANT,
    CacheEntry,
    CacheFlags,
    CacheProblem,
    LdCache,
    LegacyHwcap,
    cache_libcmp,
    entries_for,
    expected_cache_flags,
    legacy_hwcap_x86_64,
    lookup,
    parse_ld_so_cache,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ldcache"
HOST_LDSO = Path("/lib64/ld-linux-x86-64.so.2")
HOST_LIBDIR = Path("/lib/x86_64-linux-gnu")
X86_64 = expected_cache_flags(62, 64)
LIBS = {  # path in the root -> (SONAME, gcc extra args)
    "opt/a/libdup.so.1": ("libdup.so.1", ()),
    "opt/b/libdup.so.1": ("libdup.so.1", ()),
    "opt/a/libhw.so.1": ("libhw.so.1", ()),
    "opt/a/glibc-hwcaps/x86-64-v2/libhw.so.1": ("libhw.so.1", ()),
    "opt/a/glibc-hwcaps/x86-64-v3/libhw.so.1": ("libhw.so.1", ()),
    "opt/a/glibc-hwcaps/x86-64-v3/libv3only.so.1": ("libv3only.so.1", ()),
    "opt/a/libisa.so.1": ("libisa.so.1", ()),
    # In the v2 directory but marked as needing x86-64-v3 (GNU_PROPERTY_X86_ISA_1_NEEDED).
    "opt/a/glibc-hwcaps/x86-64-v2/libisa.so.1": ("libisa.so.1", ("-Wl,-z,x86-64-v3",)),
    "opt/b/libnum.so.9": ("libnum.so.9", ()),
    "opt/b/libnum.so.10": ("libnum.so.10", ()),
}
MAIN_NEEDS = ("libdup.so.1", "libhw.so.1", "libisa.so.1", "libnum.so.9", "libnum.so.10")

needs_host = pytest.mark.skipif(
    not (shutil.which("gcc") and shutil.which("ldconfig") and HOST_LDSO.exists()),
    reason="needs gcc, ldconfig and an x86_64 glibc host",
)
needs_chroot = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("chroot"), reason="needs root for chroot"
)


# ---------------------------------------------------------------------------------------
# Roots built with gcc + the host's ldconfig


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True)
    return done.stdout


def _build_root(root: Path) -> None:
    for rel, (soname, extra) in LIBS.items():
        out = root / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        variant = f'-DVARIANT="{rel}"'
        _run("gcc", "-shared", "-fPIC", "-o", out, f"-Wl,-soname,{soname}", variant, *extra,
             FIXTURES / "lib.c")  # fmt: skip
    libdir = root / "lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    for name in ("libc.so.6", "ld-linux-x86-64.so.2"):
        shutil.copy(HOST_LIBDIR / name, libdir / name)  # follows the host's symlinks
    (root / "lib64").mkdir()
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    links = [f"-l:{name}" for name in MAIN_NEEDS]
    _run("gcc", "-o", root / "main", FIXTURES / "main.c", "-Wl,--no-as-needed",
         f"-L{root}/opt/a", f"-L{root}/opt/b", *links)  # fmt: skip
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text("/opt/a\n/opt/b\n")


@pytest.fixture(scope="module")
def libroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (shutil.which("gcc") and shutil.which("ldconfig") and HOST_LDSO.exists()):
        pytest.skip("needs gcc, ldconfig and an x86_64 glibc host")
    root = tmp_path_factory.mktemp("ldcache") / "root"
    _build_root(root)
    return root


def _cached_root(libroot: Path, dest: Path, fmt: str, conf: str | None = None) -> Path:
    root = dest / f"root-{fmt}"
    shutil.copytree(libroot, root, symlinks=True)
    if conf is not None:
        (root / "etc/ld.so.conf").write_text(conf)
    _run("ldconfig", "-r", root, "-c", fmt)
    return root


@pytest.fixture(scope="module", params=["new", "old", "compat"])
def cache_root(
    libroot: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return _cached_root(libroot, tmp_path_factory.mktemp("cache"), request.param)


def _parse_file(path: Path) -> LdCache:
    cache = parse_ld_so_cache(path.read_bytes())
    assert isinstance(cache, LdCache), cache
    return cache


# ---------------------------------------------------------------------------------------
# Parser against `ldconfig -p`

_PRINT_LINE = re.compile(r"^\t(\S+) \(([^)]*)\) => (.*)$")


def _ldconfig_print(root: Path) -> list[tuple[str, str, str]]:
    """(key, text in parentheses, value) for each entry `ldconfig -p` prints."""
    lines = _run("ldconfig", "-r", root, "-p").splitlines()
    return [m.groups() for m in map(_PRINT_LINE.match, lines) if m]  # type: ignore[misc]


def _ours(cache: LdCache) -> list[tuple[str, str, str]]:
    return [(e.key, e.describe(), e.value) for e in cache.entries]


@needs_host
def test_parse_agrees_with_ldconfig_print(cache_root: Path) -> None:
    cache = _parse_file(cache_root / "etc/ld.so.cache")
    printed = _ldconfig_print(cache_root)
    assert len(printed) == len(LIBS) + 2  # our libraries plus libc and ld.so
    assert _ours(cache) == printed
    assert all(e.flags == 0x0303 for e in cache.entries)
    hwcaps = {e.describe() for e in cache.entries if e.is_hwcaps}
    if cache_root.name == "root-new":  # the test is not vacuous: names are compared
        assert hwcaps == {'libc6,x86-64, hwcap: "x86-64-v2"', 'libc6,x86-64, hwcap: "x86-64-v3"'}


@needs_host
def test_format_names_the_layout(cache_root: Path) -> None:
    cache = _parse_file(cache_root / "etc/ld.so.cache")
    expected = {"root-new": "new", "root-old": "old", "root-compat": "old+new"}
    assert cache.format == expected[cache_root.name]
    # The extension section (with the generator string) exists only with a new part.
    assert (cache.generator is not None) == (cache.format != "old")
    if cache.generator is not None:
        assert cache.generator.startswith("ldconfig")
        release = re.search(r"(\d+)\.(\d+)", _run("ldd", "--version").splitlines()[0])
        assert release is not None
        assert cache.generator_version == (int(release[1]), int(release[2]))
    assert not cache.has_legacy_hwcap_entries


@needs_host
def test_compat_hwcaps_names_read_from_file_start_like_ld_so(libroot: Path, tmp_path: Path) -> None:
    # ldconfig writes the hwcaps name offsets relative to the new header, ld.so reads them
    # relative to the file start: in compat files the names are garbage ("" here).
    cache = _parse_file(_cached_root(libroot, tmp_path, "compat") / "etc/ld.so.cache")
    names = {e.hwcaps_name for e in cache.entries if e.is_hwcaps}
    assert names == {""}
    assert _lookup(cache, "libhw.so.1", hwcaps_subdirs("x86-64-v4")) == "/opt/a/libhw.so.1"


def test_isa_level_recorded_for_hwcaps_entries(libroot: Path, tmp_path: Path) -> None:
    cache = _parse_file(_cached_root(libroot, tmp_path, "new") / "etc/ld.so.cache")
    levels = {e.value: e.isa_level for e in cache.entries if e.is_hwcaps}
    assert levels["/opt/a/glibc-hwcaps/x86-64-v2/libisa.so.1"] == 2  # needs v3
    assert levels["/opt/a/glibc-hwcaps/x86-64-v2/libhw.so.1"] == 0


# ---------------------------------------------------------------------------------------
# Lookup against the host's ld.so


def _lookup(
    cache: LdCache, name: str, priority: Sequence[str], legacy: LegacyHwcap | None = None
) -> str | None:
    return lookup(cache, name, machine_flags=X86_64, hwcaps_priority=priority, legacy_hwcap=legacy)


def _host_hwcaps(tunables: str | None = None) -> list[str]:
    """glibc-hwcaps names the host CPU supports, best first (ld.so --help)."""
    env = {"GLIBC_TUNABLES": tunables} if tunables else {}
    text = subprocess.run([HOST_LDSO, "--help"], env=env, capture_output=True, text=True).stdout
    return re.findall(r"^\s+(x86-64-v\d) \(supported, searched\)$", text, re.MULTILINE)


def _ld_so_list(root: Path, mask: str | None, tunables: str | None = None) -> dict[str, str]:
    args = [str(shutil.which("chroot")), str(root), "/lib64/ld-linux-x86-64.so.2"]
    args += ["--glibc-hwcaps-mask", mask] if mask is not None else []
    env = {"GLIBC_TUNABLES": tunables} if tunables else {}
    done = subprocess.run([*args, "--list", "/main"], env=env, capture_output=True, text=True)
    return dict(re.findall(r"^\t(\S+) => (\S+) \(", done.stdout, re.MULTILINE))


@needs_host
@needs_chroot
@pytest.mark.parametrize(
    ("mask", "tunables"),
    [
        (None, None),
        ("x86-64-v2", None),
        ("x86-64-v3", None),
        ("x86-64-v4", None),
        ("none", None),
        # Hiding CPU features lowers the supported names but not glibc's ISA level, which
        # it computed before reading the tunable (cpu-features.c): pass it explicitly.
        (None, "glibc.cpu.hwcaps=-AVX512F"),
        (None, "glibc.cpu.hwcaps=-AVX2"),
        (None, "glibc.cpu.hwcaps=-SSE4_2"),
    ],
)
def test_lookup_agrees_with_host_ld_so(
    cache_root: Path, mask: str | None, tunables: str | None
) -> None:
    cache = _parse_file(cache_root / "etc/ld.so.cache")
    host = _host_hwcaps()
    isa_level = int(host[0][-1]) - 1 if host else 0
    priority = [n for n in _host_hwcaps(tunables) if mask is None or n in mask.split(":")]
    found = _ld_so_list(cache_root, mask, tunables)
    assert set(found) == {*MAIN_NEEDS, "libc.so.6"}
    for name, path in found.items():
        got = lookup(
            cache, name, machine_flags=X86_64, hwcaps_priority=priority, isa_level=isa_level
        )
        assert got == path, name


@needs_host
@needs_chroot
def test_first_configured_directory_wins(libroot: Path, tmp_path: Path) -> None:
    root = _cached_root(libroot, tmp_path, "new", conf="/opt/b\n/opt/a\n")
    cache = _parse_file(root / "etc/ld.so.cache")
    assert _lookup(cache, "libdup.so.1", ()) == "/opt/b/libdup.so.1"
    assert _ld_so_list(root, None)["libdup.so.1"] == "/opt/b/libdup.so.1"
    assert entries_for(cache)["libdup.so.1"] == ["/opt/b/libdup.so.1", "/opt/a/libdup.so.1"]


@needs_host
def test_hwcaps_entries_follow_the_target_level(libroot: Path, tmp_path: Path) -> None:
    cache = _parse_file(_cached_root(libroot, tmp_path, "new") / "etc/ld.so.cache")
    v2, v3 = "/opt/a/glibc-hwcaps/x86-64-v2/", "/opt/a/glibc-hwcaps/x86-64-v3/"
    assert _lookup(cache, "libhw.so.1", ()) == "/opt/a/libhw.so.1"
    assert _lookup(cache, "libhw.so.1", hwcaps_subdirs("x86-64-v2")) == v2 + "libhw.so.1"
    assert _lookup(cache, "libhw.so.1", hwcaps_subdirs("x86-64-v4")) == v3 + "libhw.so.1"
    assert _lookup(cache, "libv3only.so.1", hwcaps_subdirs("x86-64-v2")) is None
    assert _lookup(cache, "libv3only.so.1", hwcaps_subdirs("x86-64-v3")) == v3 + "libv3only.so.1"
    # dl-isa-level.h: a v2-directory entry that needs v3 is unusable on a v2 CPU.
    assert _lookup(cache, "libisa.so.1", hwcaps_subdirs("x86-64-v2")) == "/opt/a/libisa.so.1"
    assert _lookup(cache, "libisa.so.1", hwcaps_subdirs("x86-64-v3")) == v2 + "libisa.so.1"
    assert _lookup(cache, "libnum.so.9", ()) == "/opt/b/libnum.so.9"
    assert _lookup(cache, "libnum.so.1", ()) is None


# ---------------------------------------------------------------------------------------
# Legacy hwcap subdirectories (glibc <= 2.36 ldconfig records them, 2.36 ld.so uses them)

LEGACY_LIBS = {  # SONAME -> subdirectories of /opt/l holding a copy ("" = the dir itself)
    "libt1.so.1": ("tls/x86_64", "tls", "haswell", "x86_64", ""),
    "libt2.so.1": ("haswell", "x86_64", ""),
    "libt3.so.1": ("xeon_phi", "sse2", "i686", ""),
    "libt4.so.1": ("avx512_1", ""),
    "libt5.so.1": ("tls/haswell", ""),
}


@pytest.fixture(scope="module")
def legacy_root(libroot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("legacy") / "root"
    shutil.copytree(libroot, root, symlinks=True)
    for soname, subdirs in LEGACY_LIBS.items():
        for sub in subdirs:
            out = root / "opt/l" / sub / soname
            out.parent.mkdir(parents=True, exist_ok=True)
            _run("gcc", "-shared", "-fPIC", "-o", out, f"-Wl,-soname,{soname}", FIXTURES / "lib.c")
    links = [f"-l:{name}" for name in LEGACY_LIBS]
    _run("gcc", "-o", root / "main", FIXTURES / "main.c", "-Wl,--no-as-needed",
         f"-L{root}/opt/l", *links)  # fmt: skip
    (root / "etc/ld.so.conf").write_text("/opt/l\n")
    _run("ldconfig", "-r", root)
    return root


def _host_legacy(hwcap_mask: int) -> LegacyHwcap:
    text = _run(HOST_LDSO, "--help")
    if "Legacy HWCAP subdirectories" not in text:
        pytest.skip("the host's glibc has no legacy hwcaps (>= 2.37)")
    legacy = text.split("Legacy HWCAP subdirectories", 1)[1]
    platform = re.findall(r"^\s+(\S+) \(AT_PLATFORM; supported", legacy, re.MULTILINE)
    names = re.findall(r"^\s+(\S+) \(supported, searched\)$", legacy, re.MULTILINE)
    return legacy_hwcap_x86_64(names, platform[0] if platform else None, hwcap_mask)


@needs_host
@needs_chroot
@pytest.mark.parametrize("hwcap_mask", [None, 0, 2])
def test_legacy_hwcap_entries_agree_with_host_ld_so(
    legacy_root: Path, hwcap_mask: int | None
) -> None:
    model = _host_legacy(X86_64_HWCAP_IMPORTANT if hwcap_mask is None else hwcap_mask)
    env = {} if hwcap_mask is None else {"LD_HWCAP_MASK": str(hwcap_mask)}
    args = [str(shutil.which("chroot")), str(legacy_root), "/lib64/ld-linux-x86-64.so.2"]
    done = subprocess.run([*args, "--list", "/main"], env=env, capture_output=True, text=True)
    found = dict(re.findall(r"^\t(\S+) => (\S+) \(", done.stdout, re.MULTILINE))
    cache = _parse_file(legacy_root / "etc/ld.so.cache")
    assert set(LEGACY_LIBS) <= set(found)
    for name in LEGACY_LIBS:
        assert _lookup(cache, name, (), legacy=model) == found[name], name
        # glibc >= 2.37 skips every legacy entry.
        assert _lookup(cache, name, ()) == f"/opt/l/{name}"
    assert found["libt1.so.1"] != "/opt/l/libt1.so.1"  # the legacy rule mattered
    assert cache.has_legacy_hwcap_entries


def test_legacy_hwcap_model() -> None:
    plain = legacy_hwcap_x86_64()
    assert plain.accepts(TLS_HWCAP) and plain.accepts(1 << 1) and plain.accepts(TLS_HWCAP | 2)
    assert not plain.accepts(1 << 0)  # sse2 is not important on x86_64
    assert not plain.accepts(1 << 50)  # haswell needs an Intel CPU that glibc calls so
    haswell = legacy_hwcap_x86_64(("x86_64", "avx512_1"), "haswell")
    assert haswell.accepts(1 << 50) and haswell.accepts(1 << 2)
    assert not haswell.accepts(1 << 51) and not haswell.accepts(1 << 49)
    assert not legacy_hwcap_x86_64(hwcap_mask=0).accepts(1 << 1)


# ---------------------------------------------------------------------------------------
# Synthetic caches (layout of sysdeps/generic/dl-cache.h)

Row = tuple[str, str, int, int]  # key, value, flags, hwcap


def _strings(rows: Sequence[Row], extra: Sequence[str]) -> tuple[bytes, dict[str, int]]:
    table, offsets = bytearray(), {}
    for text in [s for row in rows for s in row[:2]] + list(extra):
        if text not in offsets:
            offsets[text] = len(table)
            table += text.encode() + b"\0"
    return bytes(table), offsets


def write_new(
    rows: Sequence[Row], hwcaps: Sequence[str] = (), *, endian: str = "<", flags: int = 2
) -> bytes:
    """A new-format cache as ldconfig writes it (entries must already be sorted)."""
    table, offsets = _strings(rows, hwcaps)
    base = 48 + 24 * len(rows)
    body = b"".join(
        struct.pack(endian + "iIIIQ", f, base + offsets[k], base + offsets[v], 0, h)
        for k, v, f, h in rows
    )
    ext_offset = (base + len(table) + 3) & ~3
    header = b"glibc-ld.so.cache1.1" + struct.pack(
        endian + "IIB3sI12x", len(rows), len(table), flags, b"", ext_offset if hwcaps else 0
    )
    data = header + body + table
    if hwcaps:
        data += b"\0" * (ext_offset - len(data))
        count_offset = ext_offset + 8 + 16
        names = b"".join(struct.pack(endian + "I", base + offsets[n]) for n in hwcaps)
        data += struct.pack(endian + "II", 0xEAA42174, 1)
        data += struct.pack(endian + "IIII", 1, 0, count_offset, len(names)) + names
    return data


def write_old(rows: Sequence[Row], *, endian: str = "<") -> bytes:
    """An old-format ("ld.so-1.7.0") cache: strings follow the entry table."""
    table, offsets = _strings(rows, ())
    body = b"".join(struct.pack(endian + "iII", f, offsets[k], offsets[v]) for k, v, f, _ in rows)
    return b"ld.so-1.7.0\0" + struct.pack(endian + "I", len(rows)) + body + table


def write_compat(rows: Sequence[Row]) -> bytes:
    """Old entries followed by the new format, which hides in the old string table."""
    if len(rows) % 2:
        rows = [*rows, rows[-1]]  # cache.c duplicates the last old entry to align the new part
    new = write_new(rows)
    old_size = 16 + 12 * len(rows)
    new_table = 48 + 24 * len(rows)
    _, offsets = _strings(rows, ())
    body = b"".join(
        struct.pack("<iII", f, new_table + offsets[k], new_table + offsets[v])
        for k, v, f, _ in rows
    )
    assert old_size % 8 == 0
    return b"ld.so-1.7.0\0" + struct.pack("<I", len(rows)) + body + new


ROWS: list[Row] = [  # descending _dl_cache_libcmp order, as ldconfig sorts
    ("libz.so.1", "/lib/libz.so.1", 0x0303, 0),
    ("libm.so.6", "/lib/libm.so.6", 0x0303, 0),
    ("libc.so.6", "/lib32/libc.so.6", 0x0003, 0),
    ("libc.so.6", "/lib/libc.so.6", 0x0303, 0),
    ("libb.so.10", "/lib/libb.so.10", 0x0303, 0),
    ("libb.so.9", "/lib/libb.so.9", 0x0303, 0),
]


def _entries(rows: Sequence[Row]) -> list[tuple[str, str, int]]:
    return [(k, v, f) for k, v, f, _ in rows]


def _plain(cache: LdCache | CacheProblem) -> list[tuple[str, str, int]]:
    assert isinstance(cache, LdCache), cache
    return [(e.key, e.value, e.flags) for e in cache.entries]


@pytest.mark.parametrize(
    ("writer", "fmt"), [(write_new, "new"), (write_old, "old"), (write_compat, "old+new")]
)
def test_written_layouts_parse(writer: object, fmt: str) -> None:
    cache = parse_ld_so_cache(writer(ROWS))  # type: ignore[operator]
    assert isinstance(cache, LdCache)
    assert cache.format == fmt
    assert _plain(cache) == _entries(ROWS)
    assert _lookup(cache, "libc.so.6", ()) == "/lib/libc.so.6"
    assert (
        lookup(cache, "libc.so.6", machine_flags=expected_cache_flags(3, 32)) == "/lib32/libc.so.6"
    )
    assert _lookup(cache, "libb.so.9", ()) == "/lib/libb.so.9"
    assert _lookup(cache, "libb.so.1", ()) is None


def test_every_key_is_found_by_binary_search() -> None:
    rows = sorted(
        ((f"lib{n}.so.{v}", f"/l/{n}{v}", 0x0303, 0) for n in "abcxyz" for v in range(12)),
        key=lambda r: _LibKey(r[0].encode()),
        reverse=True,
    )
    cache = parse_ld_so_cache(write_new(rows))
    assert isinstance(cache, LdCache)
    for key, value, _, _ in rows:
        assert _lookup(cache, key, ()) == value


class _LibKey:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __lt__(self, other: _LibKey) -> bool:
        return cache_libcmp(self.raw, other.raw) < 0


def test_big_endian_cache_needs_a_big_endian_target() -> None:
    data = write_new(ROWS, endian=">", flags=3)
    problem = parse_ld_so_cache(data)
    assert isinstance(problem, CacheProblem)
    assert "byte order" in problem.reason
    assert _plain(parse_ld_so_cache(data, little_endian=False)) == _entries(ROWS)


def test_unknown_endianness_flag_is_accepted_and_invalid_rejected() -> None:
    assert _plain(parse_ld_so_cache(write_new(ROWS, flags=0))) == _entries(ROWS)
    assert isinstance(parse_ld_so_cache(write_new(ROWS, flags=1)), CacheProblem)


def test_hwcaps_extension_names_and_priorities() -> None:
    ext = DL_CACHE_HWCAP_EXTENSION
    rows: list[Row] = [
        ("libq.so.1", "/l/v2/libq.so.1", 0x0303, ext | 0),
        ("libq.so.1", "/l/v3/libq.so.1", 0x0303, ext | 1),
        ("libq.so.1", "/l/v9/libq.so.1", 0x0303, ext | 7),  # index past the section
        ("libq.so.1", "/l/libq.so.1", 0x0303, 0),
    ]
    cache = parse_ld_so_cache(write_new(rows, ["x86-64-v2", "x86-64-v3"]))
    assert isinstance(cache, LdCache)
    assert [e.hwcaps_name for e in cache.entries] == ["x86-64-v2", "x86-64-v3", None, None]
    assert _lookup(cache, "libq.so.1", ["x86-64-v3", "x86-64-v2"]) == "/l/v3/libq.so.1"
    assert _lookup(cache, "libq.so.1", ["x86-64-v2"]) == "/l/v2/libq.so.1"
    assert _lookup(cache, "libq.so.1", []) == "/l/libq.so.1"


def test_unsorted_hwcaps_section_loses_matches_like_the_merge_in_ld_so() -> None:
    # glibc_hwcaps_priorities_init merge-joins the section with the names sorted by name;
    # ldconfig sorts the section, a hand-made unsorted one loses "x86-64-v2".
    ext = DL_CACHE_HWCAP_EXTENSION
    rows: list[Row] = [
        ("libq.so.1", "/l/v3/libq.so.1", 0x0303, ext | 0),
        ("libq.so.1", "/l/v2/libq.so.1", 0x0303, ext | 1),
        ("libq.so.1", "/l/libq.so.1", 0x0303, 0),
    ]
    unsorted = parse_ld_so_cache(write_new(rows, ["x86-64-v3", "x86-64-v2"]))
    assert isinstance(unsorted, LdCache)
    assert unsorted.hwcaps_section == ("x86-64-v3", "x86-64-v2")
    assert [e.hwcaps_name for e in unsorted.entries] == ["x86-64-v3", "x86-64-v2", None]
    assert _lookup(unsorted, "libq.so.1", ["x86-64-v2"]) == "/l/libq.so.1"
    assert _lookup(unsorted, "libq.so.1", ["x86-64-v3", "x86-64-v2"]) == "/l/v3/libq.so.1"
    # The same entries without a section are ranked by their names.
    by_name = LdCache(unsorted.entries, "new")
    assert _lookup(by_name, "libq.so.1", ["x86-64-v2"]) == "/l/v2/libq.so.1"


def test_broken_extension_disables_hwcaps_entries_only() -> None:
    rows: list[Row] = [
        ("libq.so.1", "/l/v2/libq.so.1", 0x0303, DL_CACHE_HWCAP_EXTENSION),
        ("libq.so.1", "/l/libq.so.1", 0x0303, 0),
    ]
    data = bytearray(write_new(rows, ["x86-64-v2"]))
    ext_offset = struct.unpack_from("<I", data, 32)[0]
    data[ext_offset] ^= 0xFF  # bad cache_extension_magic
    cache = parse_ld_so_cache(bytes(data))
    assert isinstance(cache, LdCache)
    assert cache.entries[0].hwcaps_name is None
    assert _lookup(cache, "libq.so.1", ["x86-64-v2"]) == "/l/libq.so.1"


def test_legacy_hwcap_entries_are_skipped() -> None:
    rows: list[Row] = [
        ("libq.so.1", "/l/tls/libq.so.1", 0x0303, 1 << 48),  # pre-2.37 platform/hwcap bits
        ("libq.so.1", "/l/libq.so.1", 0x0303, 0),
    ]
    assert _lookup(parse_ld_so_cache(write_new(rows)), "libq.so.1", ()) == "/l/libq.so.1"  # type: ignore[arg-type]


def test_arm_accepts_hard_float_and_unmarked_entries() -> None:
    # arm/dl-cache.h accepts hard-float and unmarked libc6 entries, but its default ID stays
    # the generic 3. In the new format the first accepted plain entry wins (search_cache
    # stops at a plain entry once `best` is set); in the old format there is no hwcap field,
    # so the walk keeps overwriting `best` until an entry with the default ID.
    rows: list[Row] = [
        ("libq.so.1", "/hf/libq.so.1", 0x0903, 0),
        ("libq.so.1", "/plain/libq.so.1", 0x0003, 0),
    ]
    hard = expected_cache_flags(40, 32)
    soft = expected_cache_flags(40, 32, float_abi="soft")
    new, old = parse_ld_so_cache(write_new(rows)), parse_ld_so_cache(write_old(rows))
    assert isinstance(new, LdCache) and isinstance(old, LdCache)
    assert lookup(new, "libq.so.1", machine_flags=hard) == "/hf/libq.so.1"
    assert lookup(old, "libq.so.1", machine_flags=hard) == "/plain/libq.so.1"
    assert lookup(new, "libq.so.1", machine_flags=soft) == "/plain/libq.so.1"
    assert lookup(new, "libq.so.1", machine_flags=X86_64) is None


@pytest.mark.parametrize(
    ("machine", "elf_class", "accepted", "default"),
    [
        (62, 64, {0x0303}, 0x0303),  # x86_64
        (62, 32, {0x0803}, 0x0803),  # x32
        (3, 32, {0x0001, 0x0003}, 0x0003),  # i386: generic
        (183, 64, {0x0A03}, 0x0A03),  # aarch64
        (40, 32, {0x0903, 0x0003}, 0x0003),  # armhf
        (21, 64, {0x0503}, 0x0503),  # ppc64(le)
        (22, 64, {0x0403}, 0x0403),  # s390x
        (43, 64, {0x0103}, 0x0103),  # sparc64
        (243, 64, {0x1003}, 0x1003),  # riscv64 lp64d
        (258, 64, {0x1203}, 0x1203),  # loongarch64 double-float
        (8, 64, {0x0703}, 0x0703),  # mips64 n64
    ],
)
def test_expected_cache_flags_table(
    machine: int, elf_class: int, accepted: set[int], default: int
) -> None:
    flags = expected_cache_flags(machine, elf_class)
    assert (set(flags.accepted), flags.default) == (accepted, default)


def test_libcmp_orders_digit_runs_numerically() -> None:
    assert cache_libcmp(b"libnum.so.10", b"libnum.so.9") > 0
    assert cache_libcmp(b"libnum.so.9", b"libnum.so.09") == 0
    assert cache_libcmp(b"libx2.so", b"libxa.so") > 0  # a digit sorts after a non-digit
    assert cache_libcmp(b"libxa.so", b"libx2.so") < 0
    assert cache_libcmp(b"liba.so", b"liba.so.1") < 0
    assert cache_libcmp(b"liba.so.1", b"liba.so") > 0


def test_libcmp_char_signedness() -> None:
    assert cache_libcmp(b"lib\xc3", b"liba", char_signed=True) < 0
    assert cache_libcmp(b"lib\xc3", b"liba", char_signed=False) > 0


def test_entries_for_filters_by_target() -> None:
    cache = parse_ld_so_cache(write_new(ROWS))
    assert isinstance(cache, LdCache)
    assert entries_for(cache)["libc.so.6"] == ["/lib32/libc.so.6", "/lib/libc.so.6"]
    assert entries_for(cache, machine_flags=X86_64)["libc.so.6"] == ["/lib/libc.so.6"]
    assert "libz.so.1" not in entries_for(cache, machine_flags=expected_cache_flags(3, 32))


def test_describe_like_ldconfig_print() -> None:
    assert CacheEntry("a", "/a", 0x0A03).describe() == "libc6,AArch64"
    assert CacheEntry("a", "/a", 0x0003).describe() == "libc6"
    assert CacheEntry("a", "/a", 0x2003).describe() == "libc6,8192"
    assert (
        CacheEntry("a", "/a", 0x0303, 1 << 48).describe()
        == "libc6,x86-64, hwcap: 0x0001000000000000"
    )


def test_bare_int_machine_flags() -> None:
    assert CacheFlags(frozenset({0x303}), 0x303) == expected_cache_flags(62, 64)
    cache = parse_ld_so_cache(write_new(ROWS))
    assert isinstance(cache, LdCache)
    assert lookup(cache, "libc.so.6", machine_flags=0x0303) == "/lib/libc.so.6"


# ---------------------------------------------------------------------------------------
# Malformed caches never raise


def _truncations(data: bytes) -> Iterator[bytes]:
    yield from (data[:n] for n in range(len(data)))


@pytest.mark.parametrize("writer", [write_new, write_old, write_compat])
def test_every_truncation_is_a_value(writer: object) -> None:
    data = writer(ROWS)  # type: ignore[operator]
    for cut in _truncations(data):
        result = parse_ld_so_cache(cut)
        assert isinstance(result, LdCache | CacheProblem)
        if isinstance(result, LdCache):
            assert all(isinstance(e, CacheEntry) for e in result.entries)


def test_count_past_the_end_is_a_problem() -> None:
    data = bytearray(write_new(ROWS))
    struct.pack_into("<I", data, 20, 10_000)
    problem = parse_ld_so_cache(bytes(data))
    assert isinstance(problem, CacheProblem)
    assert "truncated" in problem.reason


def test_bad_string_offset_is_a_problem() -> None:
    data = bytearray(write_new(ROWS))
    struct.pack_into("<I", data, 48 + 24 * 2 + 8, 1 << 30)  # third entry's value
    problem = parse_ld_so_cache(bytes(data))
    assert isinstance(problem, CacheProblem)
    assert "entry 2" in problem.reason


@pytest.mark.parametrize("data", [b"", b"\0" * 100, b"glibc-ld.so.cache1.1", b"hello world" * 9])
def test_garbage_is_a_problem(data: bytes) -> None:
    assert isinstance(parse_ld_so_cache(data), CacheProblem)


def test_unsorted_cache_behaves_like_glibc_binary_search() -> None:
    # Sorted the wrong way round, the search walks off: ld.so finds nothing either.
    rows = list(reversed(ROWS))
    cache = parse_ld_so_cache(write_new(rows))
    assert isinstance(cache, LdCache)
    assert _lookup(cache, "libz.so.1", ()) is None


# ---------------------------------------------------------------------------------------
# The corpus images' own caches


def _corpus_cache(corpus: Path, image: str) -> bytes:
    """The image's /etc/ld.so.cache from the highest layer holding one (these images
    have no whiteouts over it)."""
    index = json.loads((corpus / "oci/index.json").read_text())
    ref = "org.opencontainers.image.ref.name"
    digest = next(m["digest"] for m in index["manifests"] if m["annotations"][ref] == image)
    manifest = json.loads((corpus / "oci/blobs/sha256" / digest.split(":")[1]).read_bytes())
    for layer in reversed(manifest["layers"]):
        blob = corpus / "oci/blobs/sha256" / layer["digest"].split(":")[1]
        with tarfile.open(blob, "r|gz") as tf:
            for member in tf:
                if member.name.lstrip("./") == "etc/ld.so.cache" and member.isfile():
                    extracted = tf.extractfile(member)
                    assert extracted is not None
                    return extracted.read()
    raise AssertionError(f"{image} has no /etc/ld.so.cache")


@pytest.mark.parametrize(("image", "fmt"), [("deb12-base", "new"), ("deb11", "new")])
def test_corpus_cache_lookups_match_the_oracle(corpus_dir: Path, image: str, fmt: str) -> None:
    cache = parse_ld_so_cache(_corpus_cache(corpus_dir, image))
    assert isinstance(cache, LdCache), cache
    assert cache.format == fmt
    assert _lookup(cache, "libc.so.6", ()) == "/lib/x86_64-linux-gnu/libc.so.6"
    verdicts = json.loads((corpus_dir / "verdicts" / f"{image}.json").read_text())
    checked = 0
    for elf in verdicts["elves"].values():
        if elf.get("rpath") or elf.get("runpath"):
            continue
        for name, path in (elf.get("deps") or {}).items():
            found = _lookup(cache, name, ["x86-64-v4", "x86-64-v3", "x86-64-v2"])
            if found is not None and "/" not in name:
                assert found == path, (name, found, path)
                checked += 1
    assert checked > 100


# ---------------------------------------------------------------------------------------
# Hostile caches (issue 15)


def _peak_bytes(data: bytes) -> tuple[int, LdCache | CacheProblem]:
    tracemalloc.start()
    try:
        parsed = parse_ld_so_cache(data)
        return tracemalloc.get_traced_memory()[1], parsed
    finally:
        tracemalloc.stop()


def test_entries_sharing_one_long_string_decode_it_once() -> None:
    """Once each entry decoded its own copy: a 196 KB cache cost 1.1 GB."""
    long = "lib" + "x" * 4000 + ".so"
    peaks = []
    for n in (2000, 8000):
        peak, parsed = _peak_bytes(write_new([(long, "/lib/" + long, 0x303, 0)] * n))
        assert isinstance(parsed, LdCache) and len(parsed.entries) == n
        peaks.append(peak)
    # Four times the entries: about four times the (small) entry objects, not 4 KB each.
    assert peaks[1] < 5 * peaks[0]
    assert peaks[1] < 8000 * 1000


def test_overlapping_string_offsets_are_refused_within_a_budget() -> None:
    long = b"lib" + b"y" * 4000 + b"\0"
    n = 6000
    base = 48 + 24 * n
    body = b"".join(
        struct.pack("<iIIIQ", 0x303, base + i % 3000, base + i % 3000, 0, 0) for i in range(n)
    )
    header = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3sI12x", n, len(long), 2, b"", 0)
    peak, parsed = _peak_bytes(header + body + long)
    assert isinstance(parsed, CacheProblem) and "overlap" in parsed.reason
    assert peak < 16 << 20


def test_a_string_longer_than_path_max_is_refused() -> None:
    parsed = parse_ld_so_cache(write_new([("lib" + "z" * 5000, "/lib/libz.so", 0x303, 0)]))
    assert isinstance(parsed, CacheProblem) and "longer than 4096" in parsed.reason
