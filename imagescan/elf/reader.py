"""The fast ELF reader: `ElfFacts` from the bytes of one file, via program headers.

Everything the loader needs is reached through PT_DYNAMIC (as ld.so does), so section-stripped
files work; section headers are only a fast path (dynsym count) and the source of `.symtab` /
`.go.buildinfo`. Symbol, version and relocation tables are decoded with `struct.iter_unpack`
over memoryviews: pyelftools' per-symbol objects are ten times too slow for whole images.
Every offset and count read from the file is checked before use; trouble raises
`MalformedElf(reason)`, which callers turn into a `Skipped` entry.
"""

from __future__ import annotations

import posixpath
import re
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import cast

from imagescan.elf.gobuild import parse_go_buildinfo
from imagescan.elf.ldso import is_ldso_name, ldso_defaults
from imagescan.elf.model import (
    ET_CORE,
    ET_DYN,
    ET_EXEC,
    ET_REL,
    ElfFacts,
    FileKind,
    GoBuildInfo,
    UndefinedSymbol,
    VersionDef,
    VersionNeed,
)
from imagescan.errors import MalformedElf
from imagescan.machines import relocation_types

ELF_MAGIC = b"\x7fELF"
EI_NIDENT = 16
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
EV_CURRENT = 1
ELFOSABI_SYSV, ELFOSABI_GNU = 0, 3
# glibc's LIBC_ABI_MAX (generated libc-abis.h: DEFAULT, UNIQUE, IFUNC, ABSOLUTE): an
# ELFOSABI_GNU file may carry EI_ABIVERSION below it (sysdeps/gnu/ldsodefs.h).
LIBC_ABI_MAX = 4

EM_S390, EM_ALPHA = 22, 0x9026
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PF_X, PF_W = 0x1, 0x2
SHT_SYMTAB, SHT_DYNSYM = 2, 11
SHN_UNDEF, SHN_ABS = 0, 0xFFF1

DT_NULL, DT_NEEDED, DT_PLTRELSZ, DT_HASH, DT_STRTAB, DT_SYMTAB = 0, 1, 2, 4, 5, 6
DT_RELA, DT_RELASZ, DT_RELAENT, DT_STRSZ, DT_SYMENT = 7, 8, 9, 10, 11
DT_SONAME, DT_RPATH, DT_REL, DT_RELSZ, DT_RELENT = 14, 15, 17, 18, 19
DT_PLTREL, DT_TEXTREL, DT_JMPREL = 20, 22, 23
DT_RUNPATH, DT_FLAGS, DT_RELRSZ, DT_RELR = 29, 30, 35, 36
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM, DT_RELACOUNT, DT_RELCOUNT, DT_FLAGS_1 = 0x6FFFFFF0, 0x6FFFFFF9, 0x6FFFFFFA, 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
DF_TEXTREL, DF_1_PIE = 0x4, 0x08000000
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2

STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC = 0, 1, 2, 5, 6, 10
# dl-lookup.c do_lookup_x: ALLOWED_STT and the bindings it accepts.
_LOOKUP_TYPES = frozenset((STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC))
_LOOKUP_BINDS = frozenset((STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE))
NO_VERSYM = 0xFFFF

# R_<arch>_JUMP_SLOT per e_machine: PLT slots the loader may bind lazily (elf_machine_lazy_rel).
JUMP_SLOT = relocation_types("jump_slot")
# R_<arch>_COPY: an executable's copy of a library's data object. The symbol is defined in the
# executable, yet the loader looks it up in the other objects at start (ELF_RTYPE_CLASS_COPY).
COPY = relocation_types("copy")

_DEBUG_PREFIX = "usr/lib/debug/"
_SO_STRING = re.compile(rb"(?:^|(?<=/))lib[A-Za-z0-9_.+-]*?\.so(?:\.[A-Za-z0-9_.+-]*)?$")


def is_elf(head: bytes) -> bool:
    """The ELF magic, \\x7fELF, starts `head`."""
    return head[:4] == ELF_MAGIC


def header_problem(head: bytes, size: int, elf_class: int = 64) -> str | None:
    """What glibc's open_verify says of a file it cannot parse at all, else None.

    open_verify (elf/dl-load.c) first reads sizeof(ElfW(Ehdr)) bytes -- 64 for a 64-bit
    loader, 52 for a 32-bit one -- then compares the magic word.
    """
    if size < (64 if elf_class == 64 else 52):
        return "file too short"
    if not is_elf(head):
        return "invalid ELF header"
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    """Byte order and class: the struct formats of this file's records."""

    endian: str  # "<" or ">"
    is64: bool

    @property
    def word(self) -> str:
        return "Q" if self.is64 else "I"

    @property
    def ptr_size(self) -> int:
        return 8 if self.is64 else 4


@dataclass(frozen=True, slots=True)
class ElfHeader:
    """The Ehdr fields the reader uses (after e_ident)."""

    e_type: int
    e_machine: int
    e_version: int
    e_phoff: int
    e_shoff: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


@dataclass(frozen=True, slots=True)
class ProgramHeader:
    """One Phdr, reduced to what is read here."""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_filesz: int


@dataclass(frozen=True, slots=True)
class SectionHeader:
    """One Shdr, reduced to what is read here."""

    sh_name: int
    sh_type: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_entsize: int


# --------------------------------------------------------------------------- checked access
def _check_range(data: bytes, offset: int, size: int, what: str) -> None:
    if offset < 0 or size < 0 or offset + size > len(data):
        raise MalformedElf(f"{what} out of range")


def _cstring(table: bytes, offset: int, what: str) -> str:
    """The NUL-terminated string at `offset` in a string table, interned."""
    end = table.find(b"\0", offset) if 0 <= offset < len(table) else -1
    if end < 0:
        raise MalformedElf(f"{what}: bad string offset {offset}")
    return sys.intern(table[offset:end].decode("utf-8", "surrogateescape"))


# --------------------------------------------------------------------------- headers
def _layout(data: bytes) -> _Layout:
    if len(data) < 52 or not is_elf(data):
        raise MalformedElf("file too short" if len(data) < 52 else "invalid ELF header")
    if data[4] not in (ELFCLASS32, ELFCLASS64):
        raise MalformedElf(f"invalid ELF class {data[4]}")
    if data[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise MalformedElf(f"invalid ELF data encoding {data[5]}")
    return _Layout("<" if data[5] == ELFDATA2LSB else ">", data[4] == ELFCLASS64)


def _header(data: bytes, lay: _Layout) -> ElfHeader:
    fmt = lay.endian + ("HHIQQQIHHHHHH" if lay.is64 else "HHIIIIIHHHHHH")
    _check_range(data, EI_NIDENT, struct.calcsize(fmt), "ELF header")
    f = struct.unpack_from(fmt, data, EI_NIDENT)
    return ElfHeader(f[0], f[1], f[2], f[4], f[5], f[8], f[9], f[10], f[11], f[12])


def ident_problem(ident: bytes, e_version: int) -> str | None:
    """open_verify's checks made before e_machine, in its order and with its messages.

    sysdeps/gnu/ldsodefs.h: OSABI SYSV or GNU; ABIVERSION 0, or below LIBC_ABI_MAX for GNU.
    """
    osabi, abiversion = ident[7], ident[8]
    if ident[6] != EV_CURRENT:
        return "ELF file version ident does not match current one"
    if osabi not in (ELFOSABI_SYSV, ELFOSABI_GNU):
        return "ELF file OS ABI invalid"
    if abiversion != 0 and not (osabi == ELFOSABI_GNU and abiversion < LIBC_ABI_MAX):
        return "ELF file ABI version invalid"
    if any(ident[9:EI_NIDENT]):
        return "nonzero padding in e_ident"
    if e_version != EV_CURRENT:
        return "ELF file version does not match current one"
    return None


def type_problem(hdr: ElfHeader, lay: _Layout) -> str | None:
    """open_verify's checks made after e_machine matched: e_type, then e_phentsize."""
    if hdr.e_type not in (ET_DYN, ET_EXEC):
        return "only ET_DYN and ET_EXEC can be loaded"
    if hdr.e_phentsize != (56 if lay.is64 else 32):
        return "ELF file's phentsize not the expected size"
    return None


def _program_headers(data: bytes, hdr: ElfHeader, lay: _Layout) -> tuple[ProgramHeader, ...]:
    fmt = lay.endian + ("IIQQQQQQ" if lay.is64 else "IIIIIIII")
    size = struct.calcsize(fmt)
    if hdr.e_phnum == 0 or hdr.e_phentsize < size:
        return ()  # the loader refuses a wrong e_phentsize (type_problem); nothing to read
    _check_range(data, hdr.e_phoff, hdr.e_phnum * hdr.e_phentsize, "program headers")
    out = []
    for i in range(hdr.e_phnum):
        f = struct.unpack_from(fmt, data, hdr.e_phoff + i * hdr.e_phentsize)
        if lay.is64:  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, ...
            out.append(ProgramHeader(f[0], f[1], f[2], f[3], f[5]))
        else:  # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, ...
            out.append(ProgramHeader(f[0], f[6], f[1], f[2], f[4]))
    return tuple(out)


def _section_headers(data: bytes, hdr: ElfHeader, lay: _Layout) -> tuple[SectionHeader, ...]:
    """Section headers, or () when absent or unusable: the loader never reads them."""
    fmt = lay.endian + ("IIQQQQIIQQ" if lay.is64 else "IIIIIIIIII")
    size = struct.calcsize(fmt)
    total = hdr.e_shnum * hdr.e_shentsize
    if hdr.e_shoff == 0 or hdr.e_shnum == 0 or hdr.e_shentsize < size:
        return ()
    if hdr.e_shoff + total > len(data):
        return ()
    out = []
    for i in range(hdr.e_shnum):
        f = struct.unpack_from(fmt, data, hdr.e_shoff + i * hdr.e_shentsize)
        out.append(SectionHeader(f[0], f[1], f[4], f[5], f[6], f[9]))
    return tuple(out)


def _section_named(
    data: bytes, sections: tuple[SectionHeader, ...], shstrndx: int, name: bytes
) -> SectionHeader | None:
    if not sections or shstrndx >= len(sections):
        return None
    names = sections[shstrndx]
    if names.sh_offset + names.sh_size > len(data):
        return None
    table = data[names.sh_offset : names.sh_offset + names.sh_size]
    for sh in sections:
        if table[sh.sh_name : sh.sh_name + len(name) + 1] == name + b"\0":
            return sh
    return None


# --------------------------------------------------------------------------- address mapping
@dataclass(frozen=True, slots=True)
class _Segments:
    """PT_LOAD file images, to turn link-time addresses (DT_* pointers) into file offsets."""

    loads: tuple[ProgramHeader, ...]
    size: int

    def offset(self, vaddr: int, length: int, what: str) -> int:
        """File offset of [vaddr, vaddr+length), which must lie in one PT_LOAD's file image."""
        for ph in self.loads:
            if ph.p_vaddr <= vaddr and vaddr + length <= ph.p_vaddr + ph.p_filesz:
                off = vaddr - ph.p_vaddr + ph.p_offset
                if off + length > self.size:
                    break
                return off
        raise MalformedElf(f"{what} at {vaddr:#x} (+{length}) is outside the file image")

    def extent(self, vaddr: int) -> int:
        """Bytes from `vaddr` to the end of the file image of the PT_LOAD holding it."""
        for ph in self.loads:
            if ph.p_vaddr <= vaddr < ph.p_vaddr + ph.p_filesz:
                off = vaddr - ph.p_vaddr + ph.p_offset
                return max(0, min(ph.p_offset + ph.p_filesz, self.size) - off)
        return 0


# --------------------------------------------------------------------------- dynamic section
def _dynamic_entries(data: bytes, ph: ProgramHeader, lay: _Layout) -> dict[int, list[int]]:
    """DT tag -> values in order, up to DT_NULL (or the end of PT_DYNAMIC)."""
    _check_range(data, ph.p_offset, ph.p_filesz, "PT_DYNAMIC")
    fmt = lay.endian + ("qQ" if lay.is64 else "iI")
    ent = struct.calcsize(fmt)
    end = ph.p_offset + ph.p_filesz - ph.p_filesz % ent
    tags: dict[int, list[int]] = {}
    for tag, val in struct.iter_unpack(fmt, memoryview(data)[ph.p_offset : end]):
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
class _Dynamic:
    """The dynamic section with its string table located."""

    tags: dict[int, list[int]]
    strtab: bytes
    strtab_offset: int

    def get(self, tag: int) -> int | None:
        return _last(self.tags, tag)

    def string(self, tag: int) -> str | None:
        val = self.get(tag)
        return None if val is None else _cstring(self.strtab, val, f"DT tag {tag:#x}")

    def strings(self, tag: int) -> tuple[str, ...]:
        return tuple(_cstring(self.strtab, v, f"DT tag {tag:#x}") for v in self.tags.get(tag, ()))


def _read_dynamic(data: bytes, ph: ProgramHeader, lay: _Layout, segs: _Segments) -> _Dynamic:
    tags = _dynamic_entries(data, ph, lay)
    strtab_addr, strsz = _last(tags, DT_STRTAB), _last(tags, DT_STRSZ)
    if strtab_addr is None:
        if any(t in tags for t in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_SYMTAB)):
            raise MalformedElf("dynamic section without DT_STRTAB")
        return _Dynamic(tags, b"", 0)
    if strsz is None:  # ld.so never reads DT_STRSZ: bound the table by its segment instead
        strsz = segs.extent(strtab_addr)
    off = segs.offset(strtab_addr, strsz, "DT_STRTAB")
    return _Dynamic(tags, data[off : off + strsz], off)


# --------------------------------------------------------------------------- symbol count
def _gnu_hash_count(data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments) -> int:
    """Number of dynsym entries from DT_GNU_HASH: past the last chain of the last bucket."""
    addr = dyn.get(DT_GNU_HASH)
    assert addr is not None
    off = segs.offset(addr, 16, "DT_GNU_HASH")
    nbuckets, symoffset, bloom_size, _shift = struct.unpack_from(lay.endian + "4I", data, off)
    buckets_off = off + 16 + bloom_size * lay.ptr_size
    _check_range(data, buckets_off, nbuckets * 4, "DT_GNU_HASH buckets")
    buckets = struct.unpack_from(f"{lay.endian}{nbuckets}I", data, buckets_off)
    last = max(buckets, default=0)
    if last < symoffset:
        return int(symoffset)
    chain_off = buckets_off + nbuckets * 4
    for index in range(last, last + len(data) // 4 + 1):
        pos = chain_off + (index - symoffset) * 4
        _check_range(data, pos, 4, "DT_GNU_HASH chain")
        if struct.unpack_from(lay.endian + "I", data, pos)[0] & 1:
            return index + 1
    raise MalformedElf("DT_GNU_HASH chain does not end")


def _dynsym_count(
    data: bytes,
    dyn: _Dynamic,
    lay: _Layout,
    segs: _Segments,
    sections: tuple[SectionHeader, ...],
    machine: int,
) -> int:
    symtab = dyn.get(DT_SYMTAB)
    assert symtab is not None
    entsize = 24 if lay.is64 else 16
    sym_off = segs.offset(symtab, 0, "DT_SYMTAB")
    for sh in sections:  # fast path, trusted only if it describes the same, whole table
        if (
            sh.sh_type == SHT_DYNSYM
            and (sh.sh_offset, sh.sh_entsize) == (sym_off, entsize)
            and sym_off + sh.sh_size <= len(data)
        ):
            return sh.sh_size // entsize
    hash_addr = dyn.get(DT_HASH)
    if hash_addr is not None:
        # 64-bit s390 and Alpha use 8-byte hash words (binutils elf64-s390.c, elf64-alpha.c).
        word = "Q" if lay.is64 and machine in (EM_S390, EM_ALPHA) else "I"
        off = segs.offset(hash_addr, 2 * struct.calcsize(word), "DT_HASH")
        return int(struct.unpack_from(lay.endian + 2 * word, data, off)[1])  # nchain
    if dyn.get(DT_GNU_HASH) is not None:
        return _gnu_hash_count(data, dyn, lay, segs)
    raise MalformedElf("DT_SYMTAB without DT_HASH, DT_GNU_HASH or section headers")


# --------------------------------------------------------------------------- versions
def _version_needs(
    data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments
) -> tuple[tuple[VersionNeed, ...], dict[int, VersionNeed]]:
    """Verneed/Vernaux entries, and vna_other (the versym index) -> entry."""
    addr, count = dyn.get(DT_VERNEED), dyn.get(DT_VERNEEDNUM) or 0
    if addr is None:
        return (), {}
    off = segs.offset(addr, 16, "DT_VERNEED")
    pairs: list[tuple[int, VersionNeed]] = []
    for _ in range(min(count, len(data) // 16)):
        _check_range(data, off, 16, "Verneed")
        _ver, cnt, file_o, aux, nxt = struct.unpack_from(lay.endian + "HHIII", data, off)
        file = _cstring(dyn.strtab, file_o, "vn_file")
        pairs.extend(_vernaux(data, dyn, lay, off + aux, cnt, file))
        # Real tables hold at most one entry per 16 bytes: more means overlapping chains.
        if len(pairs) > len(data) // 16:
            raise MalformedElf("Verneed chains overlap")
        if nxt == 0:
            break
        off += nxt
    return tuple(need for _other, need in pairs), dict(pairs)


def _vernaux(
    data: bytes, dyn: _Dynamic, lay: _Layout, off: int, cnt: int, file: str
) -> list[tuple[int, VersionNeed]]:
    """The Vernaux chain of one Verneed: (vna_other, entry) pairs."""
    out: list[tuple[int, VersionNeed]] = []
    for _ in range(cnt):
        _check_range(data, off, 16, "Vernaux")
        vhash, flags, other, name_o, nxt = struct.unpack_from(lay.endian + "IHHII", data, off)
        name = _cstring(dyn.strtab, name_o, "vna_name")
        out.append((other & 0x7FFF, VersionNeed(file, name, vhash, bool(flags & VER_FLG_WEAK))))
        if nxt == 0:
            break
        off += nxt
    return out


def _version_defs(
    data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments
) -> tuple[VersionDef, ...]:
    addr, count = dyn.get(DT_VERDEF), dyn.get(DT_VERDEFNUM) or 0
    if addr is None:
        return ()
    off = segs.offset(addr, 20, "DT_VERDEF")
    defs: list[VersionDef] = []
    for _ in range(min(count, len(data) // 20)):
        _check_range(data, off, 20, "Verdef")
        _v, flags, ndx, cnt, vhash, aux, nxt = struct.unpack_from(lay.endian + "HHHHIII", data, off)
        if cnt:  # the first Verdaux names the version; later ones are its parents
            _check_range(data, off + aux, 8, "Verdaux")
            name_o = struct.unpack_from(lay.endian + "I", data, off + aux)[0]
            name = _cstring(dyn.strtab, name_o, "vda_name")
            base, weak = bool(flags & VER_FLG_BASE), bool(flags & VER_FLG_WEAK)
            defs.append(VersionDef(ndx & 0x7FFF, name, vhash, base, weak))
        if nxt == 0:
            break
        off += nxt
    return tuple(defs)


def _versyms(data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments, n: int) -> tuple[int, ...]:
    addr = dyn.get(DT_VERSYM)
    if addr is None or n == 0:
        return ()
    off = segs.offset(addr, 2 * n, "DT_VERSYM")
    return struct.unpack_from(f"{lay.endian}{n}H", data, off)


# --------------------------------------------------------------------------- relocations
@dataclass(frozen=True, slots=True)
class _RelocUse:
    """Which dynsym indices relocations name: bound at start, via lazy PLT slots, via COPY."""

    bound: frozenset[int]
    lazy: frozenset[int]
    copy: frozenset[int]


def _reloc_infos(
    data: bytes, segs: _Segments, lay: _Layout, table: tuple[int, int, bool], relative: int = 0
) -> list[int]:
    """r_info of the entries of a REL/RELA table (address, size, is RELA) that name a symbol.

    The first `relative` entries (DT_RELACOUNT / DT_RELCOUNT) are RELATIVE relocations,
    which name none; glibc's elf_dynamic_do_Rel trusts the count the same way.
    """
    addr, size, rela = table
    word = lay.ptr_size
    ent = word * (3 if rela else 2)
    size -= size % ent
    off = segs.offset(addr, size, "relocation table")
    start = off + min(relative, size // ent) * ent
    fmt = f"{lay.endian}{word}x{lay.word}{word if rela else 0}x"  # r_info only
    shift = 32 if lay.is64 else 8
    view = memoryview(data)[start : off + size]
    return [info for (info,) in struct.iter_unpack(fmt, view) if info >> shift]


def _data_tables(dyn: _Dynamic) -> Iterator[tuple[tuple[int, int, bool], int]]:
    """DT_RELA and DT_REL tables with their RELATIVE counts, without the JMPREL part."""
    jmprel, pltsz = dyn.get(DT_JMPREL), dyn.get(DT_PLTRELSZ) or 0
    plt_rela = dyn.get(DT_PLTREL) == DT_RELA
    for tag, size_tag, count_tag, rela in (
        (DT_RELA, DT_RELASZ, DT_RELACOUNT, True),
        (DT_REL, DT_RELSZ, DT_RELCOUNT, False),
    ):
        addr, size = dyn.get(tag), dyn.get(size_tag) or 0
        if addr is None:
            continue
        # dynamic-link.h _ELF_DYNAMIC_RELOCATE: a table ending where JMPREL ends contains it.
        if jmprel is not None and rela == plt_rela and addr + size == jmprel + pltsz:
            size = max(0, size - pltsz)
        yield (addr, size, rela), dyn.get(count_tag) or 0


def _reloc_use(
    data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments, machine: int
) -> _RelocUse:
    shift, mask = (32, 0xFFFFFFFF) if lay.is64 else (8, 0xFF)
    bound: set[int] = set()
    lazy: set[int] = set()
    copy: set[int] = set()
    copy_type = COPY.get(machine)
    for table, relative in _data_tables(dyn):
        for info in _reloc_infos(data, segs, lay, table, relative):
            bound.add(info >> shift)
            if (info & mask) == copy_type:
                copy.add(info >> shift)
    jmprel = dyn.get(DT_JMPREL)
    if jmprel is not None:
        slot = JUMP_SLOT.get(machine)
        plt = (jmprel, dyn.get(DT_PLTRELSZ) or 0, dyn.get(DT_PLTREL) == DT_RELA)
        for info in _reloc_infos(data, segs, lay, plt):
            (lazy if (info & mask) == slot else bound).add(info >> shift)
    return _RelocUse(frozenset(bound), frozenset(lazy), frozenset(copy))


# --------------------------------------------------------------------------- symbols
@dataclass(frozen=True, slots=True)
class _Symbols:
    defined: dict[str, tuple[int, ...]]
    undefined: tuple[UndefinedSymbol, ...]


def _symbols(
    data: bytes,
    dyn: _Dynamic,
    lay: _Layout,
    segs: _Segments,
    sections: tuple[SectionHeader, ...],
    machine: int,
    by_index: dict[int, VersionNeed],
) -> tuple[_Symbols, int]:
    """Defined symbols a lookup can return, undefined references; and the dynsym count."""
    if dyn.get(DT_SYMTAB) is None:
        return _Symbols({}, ()), 0
    count = _dynsym_count(data, dyn, lay, segs, sections, machine)
    entsize = 24 if lay.is64 else 16
    off = segs.offset(dyn.get(DT_SYMTAB) or 0, count * entsize, "dynamic symbol table")
    versyms = _versyms(data, dyn, lay, segs, count)
    use = _reloc_use(data, dyn, lay, segs, machine)
    rows = struct.iter_unpack(
        lay.endian + ("IBBHQQ" if lay.is64 else "IIIBBH"),
        memoryview(data)[off : off + count * entsize],
    )
    return _sort_symbols(rows, lay.is64, dyn.strtab, versyms, by_index, use), count


GO_PKGHASHBYTES = b"go.link.pkghashbytes."


def _go_pkghashes(
    data: bytes, dyn: _Dynamic, lay: _Layout, segs: _Segments, count: int
) -> tuple[tuple[str, str], ...]:
    """(package, hex) of each `go.link.pkghashbytes.<package>` a Go plugin or a Go program
    that opens plugins exports: the fingerprints plugin.Open compares (runtime/plugin.go).
    Only files whose string table names one pay for the second pass over the symbols."""
    if count == 0 or GO_PKGHASHBYTES not in dyn.strtab:
        return ()
    entsize = 24 if lay.is64 else 16
    off = segs.offset(dyn.get(DT_SYMTAB) or 0, count * entsize, "dynamic symbol table")
    rows = struct.iter_unpack(
        lay.endian + ("IBBHQQ" if lay.is64 else "IIIBBH"),
        memoryview(data)[off : off + count * entsize],
    )
    found: list[tuple[str, str]] = []
    for row in rows:
        st_name, value, size = (row[0], row[4], row[5]) if lay.is64 else row[:3]
        end = dyn.strtab.find(b"\0", st_name)
        name = dyn.strtab[st_name:end]
        if not name.startswith(GO_PKGHASHBYTES) or not value or not 0 < size <= 64:
            continue
        start = segs.offset(value, size, "Go package hash")
        package = name[len(GO_PKGHASHBYTES) :].decode("utf-8", "surrogateescape")
        found.append((package, bytes(data[start : start + size]).hex()))
    return tuple(sorted(found))


def _sort_symbols(
    rows: Iterator[tuple[int, ...]],
    is64: bool,
    strtab: bytes,
    versyms: tuple[int, ...],
    by_index: dict[int, VersionNeed],
    use: _RelocUse,
) -> _Symbols:
    defined: dict[str, tuple[int, ...]] = {}
    undefined: list[UndefinedSymbol] = []
    strsz, find, intern = len(strtab), strtab.find, sys.intern
    for index, row in enumerate(rows):
        if is64:
            st_name, st_info, _other, shndx, value, _size = row
        else:
            st_name, value, _size, st_info, _other, shndx = row
        bind, stype = st_info >> 4, st_info & 0xF
        if index == 0 or bind == STB_LOCAL:
            continue
        end = find(b"\0", st_name) if st_name < strsz else -1
        if end < 0:
            raise MalformedElf(f"symbol {index}: bad name offset {st_name}")
        name = intern(strtab[st_name:end].decode("utf-8", "surrogateescape"))
        vs = versyms[index] if versyms else NO_VERSYM
        if shndx != SHN_UNDEF:
            # dl-lookup.c do_lookup_x skips zero-valued non-TLS symbols and other types.
            if (
                bind in _LOOKUP_BINDS
                and stype in _LOOKUP_TYPES
                and (value != 0 or shndx == SHN_ABS or stype == STT_TLS)
            ):
                prev = defined.get(name)
                defined[name] = _one_versym(vs) if prev is None else (*prev, vs)
            if index not in use.copy:
                continue
        undefined.append(_reference(name, index, bind, stype, vs if versyms else 0, by_index, use))
    return _Symbols(defined, tuple(undefined))


def _reference(
    name: str,
    index: int,
    bind: int,
    stype: int,
    versym: int,
    by_index: dict[int, VersionNeed],
    use: _RelocUse,
) -> UndefinedSymbol:
    """An undefined symbol (or a COPY-relocated one) with its Vernaux version and relocations."""
    need = by_index.get(versym & 0x7FFF)
    return _shared(
        UndefinedSymbol(
            name,
            need.name if need else None,
            need.file if need else None,
            bind == STB_WEAK,
            index in use.bound,
            index in use.lazy,
            stype,
            index in use.copy,
        )
    )


# Memory: an image holds ~600,000 defined and ~250,000 undefined dynamic symbols but few
# distinct versym values and ~50,000 distinct references; equal values share one object.
_ONE_VERSYM: dict[int, tuple[int]] = {}
_REFERENCES: dict[UndefinedSymbol, UndefinedSymbol] = {}
_MAX_SHARED = 500_000  # a bound for long-lived processes; past it the table starts again


def _one_versym(versym: int) -> tuple[int]:
    found = _ONE_VERSYM.get(versym)
    if found is None:
        found = _ONE_VERSYM[versym] = (versym,)
    return found


def _shared(ref: UndefinedSymbol) -> UndefinedSymbol:
    if len(_REFERENCES) > _MAX_SHARED:
        _REFERENCES.clear()
    return _REFERENCES.setdefault(ref, ref)


# --------------------------------------------------------------------------- classification
def _no_file_image(loads: tuple[ProgramHeader, ...]) -> bool:
    """PT_LOADs that carry no file bytes at all: a debug file (objcopy --only-keep-debug)."""
    return bool(loads) and sum(ph.p_filesz for ph in loads) == 0


def _rel_path(path: str) -> str:
    return posixpath.normpath("/" + path).lstrip("/")


def _kind(
    path: str,
    e_type: int,
    loads: tuple[ProgramHeader, ...],
    interp: str | None,
    dyn: _Dynamic | None,
) -> FileKind:
    """The corpus oracle's classify(): what the verdict files call this file."""
    if _rel_path(path).startswith(_DEBUG_PREFIX) or _no_file_image(loads):
        return FileKind.DEBUGINFO
    simple = {ET_REL: FileKind.RELOCATABLE, ET_CORE: FileKind.CORE}
    if e_type in simple:
        return simple[e_type]
    if e_type == ET_EXEC:
        return FileKind.EXEC if interp else FileKind.STATIC_EXEC
    if e_type != ET_DYN:
        return FileKind.OTHER
    if interp:
        return FileKind.SHARED if dyn and dyn.get(DT_SONAME) is not None else FileKind.PIE_EXEC
    if dyn is None:
        return FileKind.STATIC_PIE
    pie = (dyn.get(DT_FLAGS_1) or 0) & DF_1_PIE
    return FileKind.STATIC_PIE if pie and DT_NEEDED not in dyn.tags else FileKind.SHARED


def _interpreter(data: bytes, phdrs: tuple[ProgramHeader, ...]) -> str | None:
    for ph in phdrs:
        if ph.p_type == PT_INTERP:
            _check_range(data, ph.p_offset, ph.p_filesz, "PT_INTERP")
            raw = data[ph.p_offset : ph.p_offset + ph.p_filesz].split(b"\0", 1)[0]
            return raw.decode("utf-8", "surrogateescape")
    return None


def _strings_so(data: bytes, loads: tuple[ProgramHeader, ...], dyn: _Dynamic) -> tuple[str, ...]:
    """`lib*.so*` literals in read-only PT_LOADs, outside .dynstr: dlopen() candidates.

    Found by ".so" (bytes.find is fast over megabytes), then the NUL-delimited string around
    it; a path literal ("/usr/lib/libfoo.so.1") gives its basename.
    """
    found: dict[str, None] = {}
    dynstr = range(dyn.strtab_offset, dyn.strtab_offset + len(dyn.strtab))
    read_only = [ph for ph in loads if not ph.p_flags & PF_W]
    # With -z separate-code, .rodata is never in the executable segment: skip the code.
    data_only = [ph for ph in read_only if not ph.p_flags & PF_X]
    for ph in data_only or read_only:
        end = min(ph.p_offset + ph.p_filesz, len(data))
        pos = data.find(b".so", ph.p_offset, end)
        while pos >= 0:
            if pos not in dynstr:
                start = data.rfind(b"\0", max(ph.p_offset, pos - 256), pos) + 1
                stop = data.find(b"\0", pos, min(end, pos + 256))
                literal = data[start:stop] if start > 0 and stop > 0 else b""
                match = _SO_STRING.search(literal)
                if match:
                    found.setdefault(match.group().decode("ascii"), None)
            pos = data.find(b".so", pos + 3, end)
    return tuple(found)


# --------------------------------------------------------------------------- entry point
def parse_elf(data: bytes | bytearray, path: str, *, symbols: bool = True) -> ElfFacts:
    """Facts of one ELF file; raises MalformedElf(reason) when any table is out of range.

    Without `symbols` the symbol tables and dlopen strings are not read (what `ls` needs
    is the header and the dynamic section; the symbols are most of the parsing cost)."""
    try:
        # A bytearray (the layer reader fills one in place) reads like bytes throughout:
        # every slice taken from it is decoded or unpacked, none is kept or hashed.
        return _parse(cast(bytes, data), path, symbols)
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        # A check above was missed; still, bad input must never become a traceback.
        raise MalformedElf(f"malformed ELF ({type(exc).__name__}: {exc})") from exc


def _parse(data: bytes, path: str, symbols: bool = True) -> ElfFacts:
    lay = _layout(data)
    hdr = _header(data, lay)
    phdrs = _program_headers(data, hdr, lay)
    loads = tuple(ph for ph in phdrs if ph.p_type == PT_LOAD)
    segs = _Segments(loads, len(data))
    sections = _section_headers(data, hdr, lay)
    interp = _interpreter(data, phdrs)
    dyn_ph = next((ph for ph in phdrs if ph.p_type == PT_DYNAMIC), None)
    if _no_file_image(loads):
        dyn_ph = None  # a separate debug file: its tables point at bytes that are not there
    dyn = _read_dynamic(data, dyn_ph, lay, segs) if dyn_ph else None
    facts = ElfFacts(
        elf_class=64 if lay.is64 else 32,
        little_endian=lay.endian == "<",
        machine=hdr.e_machine,
        osabi=data[7],
        abiversion=data[8],
        e_type=hdr.e_type,
        kind=_kind(path, hdr.e_type, loads, interp, dyn),
        ident_problem=ident_problem(data[:EI_NIDENT], hdr.e_version),
        type_problem=type_problem(hdr, lay),
        interpreter=interp,
        go=_go(data, hdr, sections, loads),
        ldso=ldso_defaults(data) if is_ldso_name(posixpath.basename(path)) else None,
    )
    if dyn is None:
        return facts
    return _with_dynamic(facts, data, _Tables(lay, segs, sections, loads), dyn, symbols)


@dataclass(frozen=True, slots=True)
class _Tables:
    """What reading the dynamic tables needs besides the bytes."""

    lay: _Layout
    segs: _Segments
    sections: tuple[SectionHeader, ...]
    loads: tuple[ProgramHeader, ...]


def _with_dynamic(
    facts: ElfFacts, data: bytes, t: _Tables, dyn: _Dynamic, symbols: bool = True
) -> ElfFacts:
    """`facts` completed from PT_DYNAMIC: names, flags, versions, symbols, dlopen strings."""
    needs, by_index = _version_needs(data, dyn, t.lay, t.segs)
    flags = dyn.get(DT_FLAGS) or 0
    facts = replace(
        facts,
        dynamic=True,
        needed=dyn.strings(DT_NEEDED),
        soname=dyn.string(DT_SONAME),
        rpath=dyn.string(DT_RPATH),
        runpath=dyn.string(DT_RUNPATH),
        flags=flags,
        flags_1=dyn.get(DT_FLAGS_1) or 0,
        has_relr=DT_RELR in dyn.tags or DT_RELRSZ in dyn.tags,
        has_textrel=DT_TEXTREL in dyn.tags or bool(flags & DF_TEXTREL),
        version_needs=needs,
        version_defs=_version_defs(data, dyn, t.lay, t.segs),
        has_versym=DT_VERSYM in dyn.tags,
        symbols_read=symbols,
    )
    if not symbols:
        return facts
    syms, count = _symbols(data, dyn, t.lay, t.segs, t.sections, facts.machine, by_index)
    imports_dlopen = any(u.name == "dlopen" for u in syms.undefined)
    return replace(
        facts,
        defined=syms.defined,
        undefined=syms.undefined,
        strings_so=_strings_so(data, t.loads, dyn) if imports_dlopen else (),
        go_pkghashes=_go_pkghashes(data, dyn, t.lay, t.segs, count),
    )


def _go(
    data: bytes,
    hdr: ElfHeader,
    sections: tuple[SectionHeader, ...],
    loads: tuple[ProgramHeader, ...],
) -> GoBuildInfo | None:
    section = _section_named(data, sections, hdr.e_shstrndx, b".go.buildinfo")
    return parse_go_buildinfo(
        data,
        section=(section.sh_offset, section.sh_size) if section else None,
        segments=tuple(
            (ph.p_vaddr, ph.p_offset, ph.p_filesz, bool(ph.p_flags & PF_W)) for ph in loads
        ),
        stripped=not any(sh.sh_type == SHT_SYMTAB for sh in sections),
    )
