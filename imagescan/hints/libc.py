"""Which C library an image has, and its version (for the fix hints of version needs)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from imagescan.elf.model import ElfFacts
from imagescan.hints.model import CLibrary
from imagescan.packages.model import PackageDb

_GLIBC_NODE = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")
_UPSTREAM = re.compile(r"^(?:\d+:)?(\d+\.\d+(?:\.\d+)?)")  # "2.36-9+deb12u3" -> "2.36"


def glibc_nodes(facts: ElfFacts) -> list[tuple[int, ...]]:
    """The GLIBC_x.y version nodes a file defines, as number tuples."""
    found = []
    for definition in facts.version_defs:
        match = _GLIBC_NODE.match(definition.name)
        if match:
            found.append(tuple(int(part) for part in match.groups() if part is not None))
    return found


def find_libc(elves: Iterable[tuple[str, ElfFacts]], packages: PackageDb) -> CLibrary | None:
    """glibc (libc.so.6 with GLIBC_ version nodes) first, else musl (ld-musl-*.so.1).

    The version is the owning package's upstream version when a package owns the file
    (libc6 2.36-9 -> 2.36); else for glibc the newest GLIBC_ node libc.so.6 defines
    (a lower bound: releases without new symbols add no node), for musl unknown."""
    musl: CLibrary | None = None
    for path, facts in elves:
        if facts.soname == "libc.so.6" and glibc_nodes(facts):
            return _glibc(path, facts, packages)
        if musl is None and path.rpartition("/")[2].startswith("ld-musl-"):
            musl = _musl(path, packages)
    return musl


def _glibc(path: str, facts: ElfFacts, packages: PackageDb) -> CLibrary:
    package = packages.owner(path)
    version = _upstream(package.version) if package is not None else None
    if package is not None and version is not None:
        return CLibrary("glibc", version, path, f"package {package.name} {package.version}")
    newest = max(glibc_nodes(facts))
    text = ".".join(str(part) for part in newest)
    return CLibrary("glibc", text, path, f"newest version node of {path}: GLIBC_{text}")


def _musl(path: str, packages: PackageDb) -> CLibrary:
    package = packages.owner(path)
    version = _upstream(package.version) if package is not None else None
    if package is not None and version is not None:
        return CLibrary("musl", version, path, f"package {package.name} {package.version}")
    return CLibrary("musl", None, path, f"musl's loader {path}, from no package")


def _upstream(version: str) -> str | None:
    match = _UPSTREAM.match(version)
    return match.group(1) if match else None
