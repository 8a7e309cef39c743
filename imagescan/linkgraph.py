"""The link graph of an image: which object each process loads, and from whom (issue 13).

What SBOMs and attestations say about files, taken from the processes the analysis built:
for every process (each program's, and each shared object's as `ldd` would load it) an
edge from the object whose DT_NEEDED (or whose preload) was resolved to the object the
loader chose, the program's PT_INTERP, and each plugin to the host it was judged inside.
The graph is the union over the processes; an object is never linked to itself. Paths are
the rootfs paths of regular files (symlinks resolved), as `LoadedObject.file` names them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagescan.checks.reuse import ByIdentity
from imagescan.loader.model import Process
from imagescan.packages.model import Package

if TYPE_CHECKING:
    from imagescan.analyze import Analysis
    from imagescan.rootfs.model import RootFS


class LinkKind(enum.StrEnum):
    """Why the loader puts the target in the source's process."""

    NEEDED = "needed"  # a DT_NEEDED name of the source, resolved to the target
    PRELOAD = "preload"  # LD_PRELOAD or /etc/ld.so.preload, loaded for the main object
    INTERPRETER = "interpreter"  # the program's PT_INTERP: the dynamic loader itself
    PLUGIN_HOST = "plugin-host"  # a plugin judged inside the program that loads it


@dataclass(frozen=True, slots=True, order=True)
class Link:
    """One edge: `source` loads (or, for a plugin, is loaded by) `target`."""

    source: str
    target: str
    kind: LinkKind


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Hex digests of a file's whole content."""

    sha256: str
    sha1: str


@dataclass(frozen=True)
class LinkGraph:
    """The edges between judged files, their digests, when the scan was made, and the
    image's packages with the owner of each judged file.

    `created` is RFC 3339 UTC; documents made from one report say the same time.
    `packages` are all the package database lists (none without a database);
    `package_problems` what of it could not be read.
    """

    links: tuple[Link, ...] = ()
    digests: Mapping[str, FileDigest] = field(default_factory=dict)
    created: str = "1970-01-01T00:00:00Z"
    packages: tuple[Package, ...] = ()
    owners: Mapping[str, Package] = field(default_factory=dict)
    package_problems: tuple[str, ...] = ()

    def among(self, paths: set[str]) -> tuple[Link, ...]:
        """The links whose both ends are in `paths` (the files a policy kept)."""
        return tuple(link for link in self.links if link.source in paths and link.target in paths)


def process_links(process: Process) -> Iterator[Link]:
    """The edges of one process: each resolved name, and the main object's PT_INTERP."""
    objects = process.objects
    for res in process.resolutions:
        if res.found is not None:
            kind = LinkKind.PRELOAD if res.preload else LinkKind.NEEDED
            yield Link(objects[res.requester].file, objects[res.found].file, kind)
    interpreter = process.main.facts.interpreter
    # the loader's own object is spelled as PT_INTERP names it (analyze._rtld)
    rtld = next((o for o in objects[1:] if o.path == interpreter), None)
    if interpreter is not None and rtld is not None:
        yield Link(process.main.file, rtld.file, LinkKind.INTERPRETER)


# A process's edges by the process (checks.reuse: an audit's images share carried ones).
LinksMemo = ByIdentity[Process, tuple[Link, ...]]


def link_graph(
    rootfs: RootFS, analysis: Analysis, created: str, memo: LinksMemo | None = None
) -> LinkGraph:
    """The union of every process's edges, plugin-host edges, and each judged file's digests.
    `memo` holds the edges of the previous image's processes, and takes this image's."""
    links: set[Link] = set()
    for path, process in analysis.processes.items():
        if memo is None:
            links.update(process_links(process))
        else:
            links.update(memo.get(path, process, _edges))
    for path, verdict in analysis.verdicts.items():
        host = analysis.ctx.resolve(verdict.host) if verdict.host else None
        if host is not None:
            links.add(Link(path, host, LinkKind.PLUGIN_HOST))
    # by the fields in order, as Link's own order (without its __lt__ per comparison)
    kept = tuple(sorted((k for k in links if k.source != k.target), key=_order))
    db = analysis.package_db()
    owners = {path: owner for path in analysis.verdicts if (owner := db.owner(path)) is not None}
    digests = file_digests(rootfs, analysis.verdicts)
    return LinkGraph(kept, digests, created, db.packages, owners, db.problems)


def _order(link: Link) -> tuple[str, str, str]:
    return link.source, link.target, link.kind


def _edges(process: Process) -> tuple[Link, ...]:
    return tuple(process_links(process))


def file_digests(rootfs: RootFS, paths: Mapping[str, object]) -> dict[str, FileDigest]:
    """The digests the reader computed for each of `paths` (ELF files read from bytes)."""
    digests: dict[str, FileDigest] = {}
    for path in paths:
        entry = rootfs.entries.get(path)
        facts = entry.elf if entry is not None else None
        if facts is not None and facts.sha256 is not None and facts.sha1 is not None:
            digests[path] = FileDigest(facts.sha256, facts.sha1)
    return digests
