"""The GNU property note the loader acts on: GNU_PROPERTY_1_NEEDED (elf/dl-load.c
`_dl_process_pt_gnu_property`, sysdeps/generic/dl-prop.h)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from imagescan.elf.headers import Layout, ProgramHeader

PT_NOTE, PT_GNU_PROPERTY = 4, 0x6474E553
NT_GNU_PROPERTY_TYPE_0 = 5
GNU_PROPERTY_1_NEEDED = 0xB0008000
GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS = 1
_MAX_PROPERTIES = 64  # a real note holds a handful; a bound against crafted ones


def indirect_extern_access(data: bytes, phdrs: Sequence[ProgramHeader], lay: Layout) -> bool:
    """GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS, from PT_GNU_PROPERTY (the loader reads
    PT_NOTE only when there is none)."""
    segments = [ph for ph in phdrs if ph.p_type == PT_GNU_PROPERTY]
    segments = segments or [ph for ph in phdrs if ph.p_type == PT_NOTE]
    for ph in segments:
        needed = _property_1_needed(data, ph, lay)
        if needed is not None:
            return bool(needed & GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS)
    return False


def _property_1_needed(data: bytes, ph: ProgramHeader, lay: Layout) -> int | None:
    """GNU_PROPERTY_1_NEEDED of the first NT_GNU_PROPERTY_TYPE_0 note of one segment."""
    align = lay.ptr_size
    if ph.p_align != align or ph.p_offset + ph.p_filesz > len(data):
        return None  # the loader skips notes without the native alignment
    pos, end = ph.p_offset, ph.p_offset + ph.p_filesz
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from(lay.endian + "III", data, pos)
        desc = pos + _round(12 + namesz, align)  # ELF_NOTE_DESC_OFFSET
        gnu = data[pos + 12 : pos + 16] == b"GNU\0"
        if namesz == 4 and ntype == NT_GNU_PROPERTY_TYPE_0 and gnu:
            return _find_1_needed(data, desc, min(desc + descsz, end), lay)
        pos += _round(desc - pos + descsz, align)  # ELF_NOTE_NEXT_OFFSET
    return None


def _find_1_needed(data: bytes, pos: int, end: int, lay: Layout) -> int | None:
    for _ in range(_MAX_PROPERTIES):
        if pos + 8 > end:
            return None
        ptype, datasz = struct.unpack_from(lay.endian + "II", data, pos)
        if ptype == GNU_PROPERTY_1_NEEDED and datasz == 4 and pos + 12 <= end:
            return int(struct.unpack_from(lay.endian + "I", data, pos + 8)[0])
        pos += 8 + _round(datasz, lay.ptr_size)
    return None


def _round(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1)
