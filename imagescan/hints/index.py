"""A distribution's file index, cut to shared libraries: which package ships a file name.

Parsed from the distribution's own indexes: Debian/Ubuntu `Contents-<arch>` ("PATH
  SECTION/PACKAGE[,SECTION/PACKAGE...]" lines), Alpine `APKINDEX` (`so:` provides of each
block), and rpm repodata `primary.xml` (`NAME()(64bit)` provides). Only names that look
like libraries or loaders are kept, so that the index stays small (Debian 12's Contents
has 1.6 million lines, about 60 000 of them libraries).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_LIBRARY = re.compile(r"(^|/)(lib[^/]*\.so[^/]*|ld-[^/]*\.so[^/]*)$")
MAX_ENTRIES = 500_000  # a bound on one index, far above any distribution's libraries
_RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
_COMMON_NS = "{http://linux.duke.edu/metadata/common}"


@dataclass(frozen=True)
class PackageIndex:
    """`providers[name]`: (path or provide, package) pairs that ship a library `name`.

    `distro` is the release the index is of ("debian-12"), `origin` where it came from."""

    distro: str
    origin: str
    providers: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def provides(self, name: str) -> tuple[tuple[str, str], ...]:
        """Who ships `name` (a SONAME or file name)."""
        return self.providers.get(name, ())


def is_library_name(path: str) -> bool:
    """A path whose file name looks like a shared library or a loader."""
    return bool(_LIBRARY.search(path))


def contents_lines(lines: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """Library name -> [(path, package)] from the lines of a Debian Contents index."""
    found: dict[str, list[tuple[str, str]]] = {}
    count = 0
    for line in lines:
        path, _, locations = line.rstrip("\n").rpartition(" ")
        path = path.strip()
        if not path or not is_library_name(path):
            continue
        for location in locations.split(","):
            package = location.rpartition("/")[2]
            found.setdefault(path.rpartition("/")[2], []).append(("/" + path, package))
            count += 1
        if count > MAX_ENTRIES:
            break
    return found


def apkindex_text(text: str) -> dict[str, list[tuple[str, str]]]:
    """SONAME -> [("so:NAME", package)] from an APKINDEX (its `p:` provides)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for block in text.split("\n\n"):
        name, provides = "", []
        for line in block.splitlines():
            if line.startswith("P:"):
                name = line[2:]
            elif line.startswith("p:"):
                provides += [p.partition("=")[0] for p in line[2:].split()]
        for provide in provides:
            if provide.startswith("so:") and name:
                found.setdefault(provide[3:], []).append((provide, name))
    return found


def primary_xml(data: bytes) -> dict[str, list[tuple[str, str]]]:
    """SONAME -> [("NAME()(64bit)", package)] from rpm repodata primary.xml."""
    found: dict[str, list[tuple[str, str]]] = {}
    root = ElementTree.fromstring(data)
    for package in root.iter(f"{_COMMON_NS}package"):
        name = package.findtext(f"{_COMMON_NS}name") or ""
        for entry in package.iter(f"{_RPM_NS}entry"):
            provide = entry.get("name", "")
            parent, _, rest = provide.partition("(")
            # NAME()(64bit) is the library itself; NAME(OPENSSL_3.0.0)(64bit) a version of it
            if rest in (")", ")(64bit)") and is_library_name(parent) and name:
                found.setdefault(parent, []).append((provide, name))
    return found


def make_index(
    distro: str, origin: str, found: Mapping[str, list[tuple[str, str]]]
) -> PackageIndex:
    """The immutable index of what a parser found."""
    return PackageIndex(distro, origin, {k: tuple(v) for k, v in found.items()})
