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

from imagescan.elf.headers import PF_W, PF_X, PT_DYNAMIC, PT_LOAD, ElfHeader, ProgramHeader
from imagescan.elf.model import ET_DYN

PT_GNU_RELRO = 0x6474E552

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
ZERO_FILL_FAILED = "cannot map zero-fill pages"
# Not the loader's words (it dies of a signal and says nothing): what imagescan says instead.
PAST_EOF = "a PT_LOAD segment extends past the end of the file (the loader dies of SIGBUS)"
DYNAMIC_UNMAPPED = (
    "PT_DYNAMIC lies outside the file image of every PT_LOAD (the loader dies of SIGSEGV)"
)
CODE_ZEROED = "an executable PT_LOAD has p_memsz above p_filesz: its code is zero-filled"
INIT_UNMAPPED = (
    "a constructor or destructor (DT_INIT, DT_FINI, their arrays) lies outside the mapped"
    " file image or its code is not executable (a real start dies of SIGSEGV)"
)
DYNAMIC_MISALIGNED = "PT_DYNAMIC is not word-aligned (the loader dies of SIGSEGV)"
OUTSIDE_RESERVATION = (
    "a PT_LOAD segment reaches past the object's own mapping and overwrites other mappings "
    "(the loader dies of SIGSEGV)"
)
RELRO_FAILED = "cannot apply additional memory protection after relocation: Cannot allocate memory"
# ld.so maps libraries just below the top of the 47-bit address space (mmap_base, within
# 2**40 of it): a segment that far from its object's base cannot be mapped there.
MAX_REACH = 1 << 40


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


def map_problem(
    hdr: ElfHeader, phdrs: Sequence[ProgramHeader], size: int, is64: bool = True
) -> str | None:
    """The first refusal of `_dl_map_object_from_fd` / `_dl_map_segments`, in their order,
    then what makes the loader crash once the segments are mapped."""
    return _refusal(hdr, phdrs) or _crash(hdr, phdrs, size, 8 if is64 else 4)


def _crash(hdr: ElfHeader, phdrs: Sequence[ProgramHeader], size: int, dyn_align: int) -> str | None:
    """Segments the loader maps without complaint and then dies on (SIGBUS, SIGSEGV): no
    message, but no start either."""
    loads = [ph for ph in phdrs if ph.p_type == PT_LOAD]
    # Code past the end: the first instruction run there is a SIGBUS (a data table past the
    # end is already an error of the table that lies there, see Segments.offset).
    if any(ph.p_flags & (PF_X | PF_W) and ph.p_offset + ph.p_filesz > size for ph in loads):
        return PAST_EOF
    if any(ph.p_flags & (PF_X | PF_W) == PF_X and ph.p_memsz > ph.p_filesz for ph in loads):
        return CODE_ZEROED
    dyn = next((ph for ph in phdrs if ph.p_type == PT_DYNAMIC), None)
    if dyn is not None and dyn.p_vaddr % dyn_align:
        return DYNAMIC_MISALIGNED
    if dyn is not None and not any(_holds(ph, dyn) for ph in loads):
        return DYNAMIC_UNMAPPED
    if hdr.e_type == ET_DYN and loads:
        base = _align_down(loads[0].p_vaddr)
        top = _align_up(loads[-1].p_vaddr + loads[-1].p_memsz)
        for ph in loads:
            if _align_up(ph.p_vaddr + max(ph.p_filesz, ph.p_memsz)) > top or ph.p_vaddr < base:
                return OUTSIDE_RESERVATION
    return None


def _holds(load: ProgramHeader, dyn: ProgramHeader) -> bool:
    """The dynamic array comes from the segment's file bytes, not its zero-fill pages (ld.so
    reads it up to DT_NULL; min of its sizes, since either may be the wrong one)."""
    end = dyn.p_vaddr + min(dyn.p_filesz, dyn.p_memsz)
    return load.p_vaddr <= dyn.p_vaddr and end <= load.p_vaddr + load.p_filesz


def init_problem(
    phdrs: Sequence[ProgramHeader], functions: Sequence[int], arrays: Sequence[int]
) -> str | None:
    """DT_INIT / DT_FINI outside every executable PT_LOAD, DT_INIT_ARRAY / DT_FINI_ARRAY
    outside every PT_LOAD's file image: a real start runs them (a trace never does) and
    dies of SIGSEGV."""
    loads = [ph for ph in phdrs if ph.p_type == PT_LOAD]
    for addr, code in [(a, True) for a in functions] + [(a, False) for a in arrays]:
        held = [ph for ph in loads if ph.p_vaddr <= addr < ph.p_vaddr + ph.p_filesz]
        if not any(ph.p_flags & PF_X or not code for ph in held):
            return INIT_UNMAPPED
    return None


def _refusal(hdr: ElfHeader, phdrs: Sequence[ProgramHeader]) -> str | None:
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
    return _segments_problem(hdr, loads) or relro_problem(hdr, phdrs)


def _segments_problem(hdr: ElfHeader, loads: Sequence[_LoadCmd]) -> str | None:
    """`_dl_map_segments` for a position-independent object: one reservation from the first
    segment's start to the last one's end, then each segment mapped (MAP_FIXED) at its
    place relative to the first, then its zero-fill pages."""
    if hdr.e_type != ET_DYN:
        return None  # fixed addresses: mapped where they say
    first, last = loads[0], loads[-1]
    length = last.allocend - first.mapstart
    if not 0 < length < MAX_MAPPING:
        return MAP_FAILED
    holes = any(a.mapend != b.mapstart for a, b in itertools.pairwise(loads))
    if holes and last.mapstart < first.mapend:
        return NOT_PAGE_ALIGNED
    for before, load in itertools.pairwise(loads):
        # The ELF spec wants PT_LOADs sorted by p_vaddr; glibc maps a later, lower one over
        # whatever lies there: broken or not by the address-space layout, never reliable.
        if load.mapstart < before.mapstart:
            return MAP_FAILED
    return _reach_problem(first, loads)


def _reach_problem(first: _LoadCmd, loads: Sequence[_LoadCmd]) -> str | None:
    """A segment reaching MAX_REACH past the base: the mapping (or its zero-fill pages) runs
    off the top of the address space, where ld.so places libraries."""
    for load in loads:
        if load.mapend - first.mapstart >= MAX_REACH:
            return MAP_FAILED
        if load.allocend - first.mapstart >= MAX_REACH:
            return ZERO_FILL_FAILED
    return None


def relro_problem(hdr: ElfHeader, phdrs: Sequence[ProgramHeader]) -> str | None:
    """`_dl_protect_relro` after relocation: mprotect of PT_GNU_RELRO's whole pages must hit
    the object's own mapping (ENOMEM outside it, or someone else's pages)."""
    loads = [ph for ph in phdrs if ph.p_type == PT_LOAD]
    relro = next((ph for ph in phdrs if ph.p_type == PT_GNU_RELRO), None)
    if relro is None or not loads or hdr.e_type != ET_DYN:
        return None
    start = _align_down(relro.p_vaddr)
    end = _align_down(relro.p_vaddr + relro.p_memsz)
    low = _align_down(loads[0].p_vaddr)
    high = _align_up(max(ph.p_vaddr + ph.p_memsz for ph in loads))
    if start != end and not low <= start < end <= high:
        return RELRO_FAILED
    return None
