"""`imagescan ls`: the files of the squashed image, with the layer each came from."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Sequence
from typing import Any

from imagescan.elf.model import ElfFacts
from imagescan.machines import machine_name
from imagescan.render.escape import display
from imagescan.render.json import image_dict
from imagescan.report import ImageInfo
from imagescan.rootfs.model import Entry, EntryType, RootFS

SCHEMA_VERSION = 1
_TYPE_CHAR = {
    EntryType.FILE: "-",
    EntryType.DIR: "d",
    EntryType.SYMLINK: "l",
    EntryType.CHAR: "c",
    EntryType.BLOCK: "b",
    EntryType.FIFO: "p",
}


def selected(rootfs: RootFS, paths: Sequence[str], elf_only: bool) -> Iterable[Entry]:
    """Entries in path order, under any of `paths` (all when empty), ELF files only if asked."""
    prefixes = [p.rstrip("/") or "/" for p in paths]
    for path in sorted(rootfs.entries):
        entry = rootfs.entries[path]
        if elf_only and (entry.type != EntryType.FILE or entry.elf is None):
            continue
        if prefixes and not any(_under(path, p) for p in prefixes):
            continue
        yield entry


def _under(path: str, prefix: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def elf_dict(facts: ElfFacts | None) -> dict[str, Any] | None:
    if facts is None:
        return None
    return {
        "class": facts.elf_class,
        "machine": machine_name(facts.machine, facts.elf_class, facts.little_endian),
        "type": str(facts.kind),
    }


def entry_dict(entry: Entry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "type": str(entry.type),
        "size": entry.size,
        "mode": f"{stat.S_IMODE(entry.mode):04o}",
        "layer": entry.layer,
        "link_target": entry.link_target,
        "elf": elf_dict(entry.elf),
    }


def listing_dict(image: ImageInfo, entries: Iterable[Entry]) -> dict[str, Any]:
    """`ls -o json`: the image and its files (strings exact)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "image": image_dict(image),
        "files": [entry_dict(e) for e in entries],
    }


def listing_json(image: ImageInfo, entries: Iterable[Entry]) -> str:
    return json.dumps(listing_dict(image, entries), indent=2) + "\n"


def listing_lines(entries: Iterable[Entry]) -> Iterable[str]:
    """`ls -l`-like lines: type+mode, size, layer (from 0 at the base), path (-> target),
    ELF facts; names from the image escaped for the terminal."""
    for entry in entries:
        mode = _TYPE_CHAR.get(entry.type, "?") + stat.filemode(entry.mode)[1:]
        line = f"{mode} {entry.size:>10} L{entry.layer:<2} {display(entry.path)}"
        if entry.link_target:
            line += f" -> {display(entry.link_target)}"
        facts = elf_dict(entry.elf)
        if facts:
            line += f"  [ELF{facts['class']} {facts['machine']} {facts['type']}]"
        yield line
