"""open_verify (glibc elf/dl-load.c): may the loader use this candidate file?"""

from __future__ import annotations

from imagescan.loader.context import LoaderContext
from imagescan.loader.model import Outcome, Target
from imagescan.rootfs.model import EntryType

_CLASS_NAME = {32: "ELFCLASS32", 64: "ELFCLASS64"}


def open_verify(
    ctx: LoaderContext, path: str, target: Target | None = None
) -> tuple[Outcome, str | None]:
    """ABSENT, SKIPPED (wrong class/machine: the search goes on), FATAL (the loader stops
    with this message) or FOUND. Only class and machine mismatches are skipped (edge case 5)."""
    entry = ctx.entry(path)
    if entry is None or entry.type in (EntryType.SYMLINK, EntryType.FIFO):
        return Outcome.ABSENT, None
    if entry.type == EntryType.DIR:
        return Outcome.FATAL, "cannot read file data: Is a directory"
    facts = entry.elf
    if facts is None:
        return Outcome.FATAL, entry.verify or "invalid ELF header"
    target = target or ctx.target  # the process's (an i386 program in an amd64 image)
    if facts.elf_class != target.elf_class:
        return Outcome.SKIPPED, f"wrong ELF class: {_CLASS_NAME.get(facts.elf_class, '?')}"
    if facts.little_endian != target.little_endian:
        order = "little" if target.little_endian else "big"
        return Outcome.FATAL, f"ELF file data encoding not {order}-endian"
    if facts.ident_problem:
        return Outcome.FATAL, facts.ident_problem
    if facts.machine != target.machine:
        return Outcome.SKIPPED, f"wrong ELF machine: {facts.machine}"
    if facts.type_problem:
        return Outcome.FATAL, facts.type_problem
    return Outcome.FOUND, None
