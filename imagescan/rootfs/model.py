"""Values of the virtual root filesystem: entries (path + layer), kept files, skipped files."""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagescan.elf.model import ElfFacts


class EntryType(enum.StrEnum):
    """Tar member types, as the squashed image has them."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"  # only inside a LayerIndex; squashing turns it into FILE
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the scan could not use, with where it is and why (never an exception)."""

    path: str
    reason: str
    layer: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in a layer or in the squashed image.

    `path` is absolute and normalised ("/usr/lib/x"). `layer` is the index (bottom = 0) of
    the layer the entry comes from. `link_target` is the symlink text (as stored) or, for a
    HARDLINK inside a layer, the absolute path it links to. `file_id` is shared by hard links
    of one file (the loader's st_dev/st_ino identity, dl-load.c _dl_file_id_match_p).
    `verify` is what glibc's open_verify would say of this file as a library candidate:
    None = a loadable ELF header, else the loader's error text ("file too short",
    "invalid ELF header", ...). `elf` holds the parsed facts of an ELF regular file.
    """

    path: str
    type: EntryType
    layer: int
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    link_target: str | None = None
    file_id: int = 0
    has_caps: bool = False
    verify: str | None = None
    elf: ElfFacts | None = None

    @property
    def setid(self) -> bool:
        """setuid or setgid bit set."""
        return bool(self.mode & 0o6000)


@dataclass(frozen=True)
class LayerIndex:
    """What one layer contributes, independent of other layers (cacheable by diff_id).

    `whiteouts` are absolute paths deleted by `.wh.NAME`; `opaque_dirs` are directories
    whose lower contents are hidden (`.wh..wh..opq`). `kept` holds the few small files kept
    verbatim (ld.so.cache, ld.so.conf*, musl path files, ld.so.preload, os-release, ...).
    """

    index: int
    diff_id: str | None
    entries: tuple[Entry, ...]
    whiteouts: tuple[str, ...] = ()
    opaque_dirs: tuple[str, ...] = ()
    kept: Mapping[str, bytes] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class RootFS:
    """The squashed image: every visible path, the kept files, and what was skipped.

    Paths in `entries` are literal (symlinks not followed); use `rootfs.paths` to resolve.
    """

    entries: Mapping[str, Entry]
    kept: Mapping[str, bytes]
    skipped: tuple[Skipped, ...] = ()
    layer_ids: tuple[str | None, ...] = ()

    @functools.cached_property
    def children(self) -> Mapping[str, tuple[str, ...]]:
        """Parent directory -> sorted names of its entries, built on first use and kept
        with this RootFS (not in a module-level table: issue 8)."""
        return children_index(self.entries)


def children_index(entries: Mapping[str, Entry]) -> dict[str, tuple[str, ...]]:
    """Parent directory -> sorted names of its entries."""
    grouped: dict[str, list[str]] = {}
    for path in entries:
        parent, _, name = path.rpartition("/")
        grouped.setdefault(parent or "/", []).append(name)
    return {parent: tuple(sorted(names)) for parent, names in grouped.items()}
