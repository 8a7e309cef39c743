"""Search defaults compiled into a glibc ld.so: the system dirs and the `$LIB` expansion.

glibc builds them into rtld's read-only data: elf/dl-load.c `system_dirs` is one
NUL-separated run of absolute directories ending in '/' (SYSTEM_DIRS from gen-trusted-dirs,
e.g. "/lib/x86_64-linux-gnu/\\0/usr/lib/x86_64-linux-gnu/\\0/lib/\\0/usr/lib/\\0" on Debian,
"/lib64/\\0/usr/lib64/\\0" on Fedora), and `$LIB` is the DL_DST_LIB string, which the
compiler places right after the "LIB" token name of _dl_dst_substitute / is_dst.
"""

from __future__ import annotations

import re
from typing import Literal

from imagescan.elf.model import LdsoDefaults
from imagescan.machines import by_elf

_LDSO_NAME = re.compile(
    r"^(ld-linux[^/]*\.so[^/]*|ld64\.so\.[0-9]+|ld\.so\.[0-9]+|ld-[0-9.]+\.so)$"
)
# Runs of absolute dirs ending in '/', NUL-separated; `_system_dirs` takes the first two or
# more in a row that name a lib dir. One `*` per item, so a long run of printable bytes is
# scanned once: "[...]*lib[...]*/" backtracked over every "lib" and "/" pair (issue 15).
_DIR_RUNS = re.compile(rb"(?<=\x00)(?:/[\x21-\x7e]*/\x00)+")
_DST_LIB = re.compile(rb"\x00LIB\x00(lib[\x21-\x7e]*)\x00")
_ELF_MACHINE, _ELF_CLASS = 18, 4


def is_ldso_name(basename: str) -> bool:
    """A glibc dynamic loader's file name (ld-linux*.so*, ld64.so.N, ld.so.N, ld-2.31.so)."""
    return bool(_LDSO_NAME.match(basename))


def ldso_defaults(data: bytes) -> LdsoDefaults | None:
    """The system dirs and $LIB compiled into a glibc ld.so.

    When the strings are not found, upstream glibc's defaults for the ELF class are used
    (lib64 on 64-bit targets, lib on 32-bit ones); None for a file that is not ELF.
    """
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    machine = int.from_bytes(data[_ELF_MACHINE : _ELF_MACHINE + 2], _byte_order(data))
    elf_class = 64 if data[_ELF_CLASS] == 2 else 32
    row = by_elf(machine, elf_class, data[5] != 2)
    platform = row.platform if row is not None else None
    dirs = _system_dirs(data)
    version = _glibc_version(data)
    if not dirs:
        lib = "lib64" if data[_ELF_CLASS] == 2 else "lib"
        return LdsoDefaults((f"/{lib}/", f"/usr/{lib}/"), lib, platform, version)
    return LdsoDefaults(dirs, _dst_lib(data) or dirs[0].strip("/"), platform, version)


_RELEASE = re.compile(rb"release version (\d+)\.(\d+)")


def _glibc_version(data: bytes) -> tuple[int, int] | None:
    """ld.so's banner (`ld.so --version`): "... stable release version 2.36."."""
    found = _RELEASE.search(data)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _byte_order(data: bytes) -> Literal["big", "little"]:
    return "big" if data[5] == 2 else "little"


def _system_dirs(data: bytes) -> tuple[str, ...]:
    """The first two or more NUL-separated absolute dirs in a row that each contain "lib"."""
    for run in _DIR_RUNS.finditer(data):
        dirs: list[bytes] = []
        for item in run.group().split(b"\x00")[:-1]:
            if b"lib" in item[1:-1]:
                dirs.append(item)
            elif len(dirs) >= 2:
                break
            else:
                dirs = []
        if len(dirs) >= 2:
            return tuple(d.decode("ascii") for d in dirs)
    return ()


def _dst_lib(data: bytes) -> str | None:
    found = _DST_LIB.search(data)
    return found.group(1).decode("ascii") if found else None
