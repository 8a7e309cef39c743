"""open_verify (glibc elf/dl-load.c): may the loader use this candidate file?"""

from __future__ import annotations

from imagescan.elf.mapping import NO_LOADS, NOT_PAGE_ALIGNED, READ_FAILED
from imagescan.elf.model import DF_1_PIE, ET_EXEC, ElfFacts
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
    target = target or ctx.target  # the process's (an i386 program in an amd64 image)
    if facts is None:
        return _unparsed(entry.verify or "invalid ELF header", target.little_endian)
    if facts.elf_class != target.elf_class:
        return Outcome.SKIPPED, f"wrong ELF class: {_CLASS_NAME.get(facts.elf_class, '?')}"
    if facts.little_endian != target.little_endian:
        return Outcome.FATAL, f"ELF file data encoding not {_order(target.little_endian)}-endian"
    if facts.ident_problem:
        return Outcome.FATAL, facts.ident_problem
    if facts.machine != target.machine:
        return Outcome.SKIPPED, f"wrong ELF machine: {facts.machine}"
    problem = facts.type_problem or library_problem(facts)
    if problem:
        return Outcome.FATAL, problem
    return Outcome.FOUND, None


def _unparsed(reason: str, little_endian: bool) -> tuple[Outcome, str]:
    """A file the reader could not parse: open_verify skips a foreign EI_CLASS byte (any value
    but the loader's own) and refuses an unknown EI_DATA as the wrong byte order."""
    if reason.startswith("invalid ELF class"):
        return Outcome.SKIPPED, f"wrong ELF class: {reason.rsplit(' ', 1)[-1]}"
    if reason.startswith("invalid ELF data encoding"):
        return Outcome.FATAL, f"ELF file data encoding not {_order(little_endian)}-endian"
    return Outcome.FATAL, reason


def _order(little_endian: bool) -> str:
    return "little" if little_endian else "big"


def library_problem(facts: ElfFacts) -> str | None:
    """What `_dl_map_object_from_fd` refuses in a library it maps (not the main program):
    the mapping problems, an ET_EXEC (after the PT_LOAD scan) or a PIE (after mapping)."""
    if facts.e_type == ET_EXEC:
        if facts.map_problem in (READ_FAILED, NOT_PAGE_ALIGNED, NO_LOADS):
            return facts.map_problem
        return "cannot dynamically load executable"
    if facts.map_problem:
        return facts.map_problem
    if facts.flags_1 & DF_1_PIE:
        return "cannot dynamically load position-independent executable"
    return None


def own_problem(facts: ElfFacts) -> str | None:
    """What ld.so says when it loads this file as its main object (`ld.so FILE`,
    __RTLD_OPENEXEC: executables and PIEs are fine), after the class and machine matched."""
    return facts.ident_problem or facts.type_problem or facts.map_problem
