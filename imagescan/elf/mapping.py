"""What glibc says when it maps an object's segments (elf/dl-load.c `_dl_map_object_from_fd`,
elf/dl-map-segments.h `_dl_map_segments`), read from the program headers alone.

These refusals come after open_verify's header checks and before anything of the dynamic
section is read, so they hold for a library candidate and for a library traced on its own.
The checks an executable escapes (ET_EXEC, DF_1_PIE) are the caller's: they need the role.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from imagescan.elf.headers import PT_DYNAMIC, PT_LOAD, ElfHeader, ProgramHeader
from imagescan.elf.model import ET_DYN

# GLRO(dl_pagesize) is the running kernel's page size; 4 KiB on x86-64, i386 and s390x (and
# the usual arm64 kernels). A loader on a 64 KiB-page kernel accepts more alignments.
PAGE_SIZE = 4096
# An x86-64 process has 47 bits of user address space: a larger reservation cannot be mapped.
MAX_MAPPING = 1 << 47

READ_FAILED = "cannot read file data"
NOT_PAGE_ALIGNED = "ELF load command address/offset not page-aligned"
NO_LOADS = "object file has no loadable segments"
NO_DYNAMIC = "object file has no dynamic section"
MAP_FAILED = "failed to map segment from shared object"


@dataclass(frozen=True, slots=True)
class _LoadCmd:
    """One `struct loadcmd`: a PT_LOAD rounded to pages."""

    mapstart: int
    mapend: int
    allocend: int


def _align_down(value: int) -> int:
    return value & ~(PAGE_SIZE - 1)


def _align_up(value: int) -> int:
    return _align_down(value + PAGE_SIZE - 1)


def phdr_table_problem(hdr: ElfHeader, entsize: int, size: int) -> str | None:
    """open_verify's read of the program header table: a table past the end of the file is a
    short pread, "cannot read file data" (fatal)."""
    if hdr.e_phoff + hdr.e_phnum * entsize > size:
        return READ_FAILED
    return None


def map_problem(hdr: ElfHeader, phdrs: Sequence[ProgramHeader]) -> str | None:
    """The first refusal of `_dl_map_object_from_fd` / `_dl_map_segments`, in their order."""
    loads: list[_LoadCmd] = []
    dynamic = empty_dynamic = False
    for ph in phdrs:
        if ph.p_type == PT_DYNAMIC:
            # objcopy --only-keep-debug leaves a PT_DYNAMIC with p_filesz 0
            empty_dynamic |= ph.p_filesz == 0
            dynamic |= ph.p_filesz != 0
        elif ph.p_type == PT_LOAD:
            if (ph.p_vaddr - ph.p_offset) & (PAGE_SIZE - 1):
                return NOT_PAGE_ALIGNED
            end = ph.p_vaddr + ph.p_filesz
            loads.append(_LoadCmd(_align_down(ph.p_vaddr), _align_up(end), ph.p_vaddr + ph.p_memsz))
    if not loads:
        return NO_LOADS
    if (not dynamic and hdr.e_type == ET_DYN) or empty_dynamic:
        return NO_DYNAMIC
    return _segments_problem(hdr, loads)


def _segments_problem(hdr: ElfHeader, loads: Sequence[_LoadCmd]) -> str | None:
    """`_dl_map_segments` for a position-independent object: one reservation from the first
    segment's start to the last one's end, which must come after the first (ordering)."""
    if hdr.e_type != ET_DYN:
        return None  # fixed addresses: mapped where they say
    first, last = loads[0], loads[-1]
    length = last.allocend - first.mapstart
    if not 0 < length < MAX_MAPPING:
        return MAP_FAILED
    holes = any(a.mapend != b.mapstart for a, b in itertools.pairwise(loads))
    if holes and last.mapstart < first.mapend:
        return NOT_PAGE_ALIGNED
    return None
