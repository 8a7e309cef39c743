"""PT_DYNAMIC read from bytes: its tags, its string table, and the symbol-version tables.

Part of the fast reader (`imagescan.elf.reader`); everything is reached through PT_DYNAMIC, as
ld.so does, so section-stripped files work.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from imagescan.elf.headers import Layout, ProgramHeader, Segments, check_range, cstring
from imagescan.elf.model import VersionDef, VersionNeed
from imagescan.errors import MalformedElf

DT_NULL, DT_NEEDED, DT_PLTRELSZ, DT_HASH, DT_STRTAB, DT_SYMTAB = 0, 1, 2, 4, 5, 6
DT_RELA, DT_RELASZ, DT_RELAENT, DT_STRSZ, DT_SYMENT = 7, 8, 9, 10, 11
DT_SONAME, DT_RPATH, DT_REL, DT_RELSZ, DT_RELENT = 14, 15, 17, 18, 19
DT_PLTREL, DT_TEXTREL, DT_JMPREL = 20, 22, 23
DT_RUNPATH, DT_FLAGS, DT_RELRSZ, DT_RELR = 29, 30, 35, 36
DT_AUXILIARY, DT_FILTER = 0x7FFFFFFD, 0x7FFFFFFF
DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY, DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ = (
    12,
    13,
    25,
    26,
    27,
    28,
)
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM, DT_RELACOUNT, DT_RELCOUNT, DT_FLAGS_1 = 0x6FFFFFF0, 0x6FFFFFF9, 0x6FFFFFFA, 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
DF_TEXTREL, DF_1_PIE = 0x4, 0x08000000
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2


# --------------------------------------------------------------------------- dynamic section
def _dynamic_entries(
    data: bytes, ph: ProgramHeader, lay: Layout, segs: Segments
) -> dict[int, list[int]]:
    """DT tag -> values in order, up to DT_NULL (or the end of the segment's file image).

    ld.so reads the dynamic array where PT_DYNAMIC's p_vaddr maps it (l_ld), up to DT_NULL:
    p_offset and p_filesz (beyond being non-zero) are never used (dl-load.c)."""
    start = segs.offset(ph.p_vaddr, 0, "PT_DYNAMIC") if segs.extent(ph.p_vaddr) else 0
    size = segs.extent(ph.p_vaddr)
    fmt = lay.endian + ("qQ" if lay.is64 else "iI")
    ent = struct.calcsize(fmt)
    end = start + size - size % ent
    tags: dict[int, list[int]] = {}
    for tag, val in struct.iter_unpack(fmt, memoryview(data)[start:end]):
        if tag == DT_NULL:
            break
        tags.setdefault(tag, []).append(val)
    return tags


def _last(tags: dict[int, list[int]], tag: int) -> int | None:
    """A single-valued tag's value: the last one wins, as in glibc's elf_get_dynamic_info
    (and musl's decode_dyn), which overwrite earlier entries."""
    vals = tags.get(tag)
    return vals[-1] if vals else None


@dataclass(frozen=True, slots=True)
class Dynamic:
    """The dynamic section with its string table located."""

    tags: dict[int, list[int]]
    strtab: bytes
    strtab_offset: int
    # Each string offset decoded once: many DT_NEEDED or Verneed entries may name one long
    # string, and decoding it per entry is quadratic (issue 15). Lives as long as the parse.
    seen: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, tag: int) -> int | None:
        return _last(self.tags, tag)

    def text(self, offset: int, what: str) -> str:
        """The string at `offset` in the string table (`cstring`), decoded once."""
        found = self.seen.get(offset)
        if found is None:
            found = self.seen[offset] = cstring(self.strtab, offset, what)
        return found

    def string(self, tag: int) -> str | None:
        val = self.get(tag)
        return None if val is None else self.text(val, f"DT tag {tag:#x}")

    def strings(self, tag: int) -> tuple[str, ...]:
        return tuple(self.text(v, f"DT tag {tag:#x}") for v in self.tags.get(tag, ()))


def read_dynamic(data: bytes, ph: ProgramHeader, lay: Layout, segs: Segments) -> Dynamic:
    tags = _dynamic_entries(data, ph, lay, segs)
    strtab_addr, strsz = _last(tags, DT_STRTAB), _last(tags, DT_STRSZ)
    if strtab_addr is None:
        if any(t in tags for t in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_SYMTAB)):
            raise MalformedElf("dynamic section without DT_STRTAB")
        return Dynamic(tags, b"", 0)
    if strsz is None:  # ld.so never reads DT_STRSZ: bound the table by its segment instead
        strsz = segs.extent(strtab_addr)
    off = segs.offset(strtab_addr, strsz, "DT_STRTAB")
    return Dynamic(tags, data[off : off + strsz], off)


# --------------------------------------------------------------------------- versions
def version_needs(
    data: bytes, dyn: Dynamic, lay: Layout, segs: Segments
) -> tuple[tuple[VersionNeed, ...], dict[int, VersionNeed]]:
    """Verneed/Vernaux entries, and vna_other (the versym index) -> entry."""
    addr, count = dyn.get(DT_VERNEED), dyn.get(DT_VERNEEDNUM) or 0
    if addr is None:
        return (), {}
    off = segs.offset(addr, 16, "DT_VERNEED")
    pairs: list[tuple[int, VersionNeed]] = []
    for _ in range(min(count, len(data) // 16)):
        check_range(data, off, 16, "Verneed")
        _ver, cnt, file_o, aux, nxt = struct.unpack_from(lay.endian + "HHIII", data, off)
        file = dyn.text(file_o, "vn_file")
        pairs.extend(_vernaux(data, dyn, lay, off + aux, cnt, file))
        # Real tables hold at most one entry per 16 bytes: more means overlapping chains.
        if len(pairs) > len(data) // 16:
            raise MalformedElf("Verneed chains overlap")
        if nxt == 0:
            break
        off += nxt
    return tuple(need for _other, need in pairs), dict(pairs)


def _vernaux(
    data: bytes, dyn: Dynamic, lay: Layout, off: int, cnt: int, file: str
) -> list[tuple[int, VersionNeed]]:
    """The Vernaux chain of one Verneed: (vna_other, entry) pairs."""
    out: list[tuple[int, VersionNeed]] = []
    for _ in range(cnt):
        check_range(data, off, 16, "Vernaux")
        vhash, flags, other, name_o, nxt = struct.unpack_from(lay.endian + "IHHII", data, off)
        name = dyn.text(name_o, "vna_name")
        out.append((other & 0x7FFF, VersionNeed(file, name, vhash, bool(flags & VER_FLG_WEAK))))
        if nxt == 0:
            break
        off += nxt
    return out


def version_defs(data: bytes, dyn: Dynamic, lay: Layout, segs: Segments) -> tuple[VersionDef, ...]:
    addr, count = dyn.get(DT_VERDEF), dyn.get(DT_VERDEFNUM) or 0
    if addr is None:
        return ()
    off = segs.offset(addr, 20, "DT_VERDEF")
    defs: list[VersionDef] = []
    for _ in range(min(count, len(data) // 20)):
        check_range(data, off, 20, "Verdef")
        _v, flags, ndx, cnt, vhash, aux, nxt = struct.unpack_from(lay.endian + "HHHHIII", data, off)
        if cnt:  # the first Verdaux names the version; later ones are its parents
            check_range(data, off + aux, 8, "Verdaux")
            name_o = struct.unpack_from(lay.endian + "I", data, off + aux)[0]
            name = dyn.text(name_o, "vda_name")
            base, weak = bool(flags & VER_FLG_BASE), bool(flags & VER_FLG_WEAK)
            defs.append(VersionDef(ndx & 0x7FFF, name, vhash, base, weak))
        if nxt == 0:
            break
        off += nxt
    return tuple(defs)


def read_versyms(data: bytes, dyn: Dynamic, lay: Layout, segs: Segments, n: int) -> tuple[int, ...]:
    addr = dyn.get(DT_VERSYM)
    if addr is None or n == 0:
        return ()
    off = segs.offset(addr, 2 * n, "DT_VERSYM")
    return struct.unpack_from(f"{lay.endian}{n}H", data, off)
