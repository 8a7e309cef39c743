"""The dynamic symbol table read from bytes: its size, the relocations naming its entries,
defined symbols and undefined references.

Part of the fast reader (`imagescan.elf.reader`). Tables are decoded with `struct.iter_unpack`
over memoryviews: pyelftools' per-symbol objects are ten times too slow for whole images.
"""

from __future__ import annotations

import itertools
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from imagescan.elf.dynamic import (
    DT_GNU_HASH,
    DT_HASH,
    DT_JMPREL,
    DT_PLTREL,
    DT_PLTRELSZ,
    DT_REL,
    DT_RELA,
    DT_RELACOUNT,
    DT_RELASZ,
    DT_RELCOUNT,
    DT_RELSZ,
    DT_SYMTAB,
    Dynamic,
    read_versyms,
)
from imagescan.elf.headers import (
    EM_ALPHA,
    EM_S390,
    SHN_ABS,
    SHN_UNDEF,
    SHT_DYNSYM,
    Layout,
    SectionHeader,
    Segments,
    check_range,
)
from imagescan.elf.model import UndefinedSymbol, VersionNeed
from imagescan.errors import MalformedElf
from imagescan.machines import relocation_types

STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC = 0, 1, 2, 5, 6, 10
STV_PROTECTED = 3
# dl-lookup.c do_lookup_x: ALLOWED_STT and the bindings it accepts.
_LOOKUP_TYPES = frozenset((STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC))
_LOOKUP_BINDS = frozenset((STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE))
NO_VERSYM = 0xFFFF

# R_<arch>_JUMP_SLOT per e_machine: PLT slots the loader may bind lazily (elf_machine_lazy_rel).
JUMP_SLOT = relocation_types("jump_slot")
# R_<arch>_COPY: an executable's copy of a library's data object. The symbol is defined in the
# executable, yet the loader looks it up in the other objects at start (ELF_RTYPE_CLASS_COPY).
COPY = relocation_types("copy")


# --------------------------------------------------------------------------- symbol count
def _gnu_hash_count(data: bytes, dyn: Dynamic, lay: Layout, segs: Segments) -> int:
    """Number of dynsym entries from DT_GNU_HASH: past the last chain of the last bucket."""
    addr = dyn.get(DT_GNU_HASH)
    assert addr is not None
    off = segs.offset(addr, 16, "DT_GNU_HASH")
    nbuckets, symoffset, bloom_size, _shift = struct.unpack_from(lay.endian + "4I", data, off)
    buckets_off = off + 16 + bloom_size * lay.ptr_size
    check_range(data, buckets_off, nbuckets * 4, "DT_GNU_HASH buckets")
    buckets = struct.unpack_from(f"{lay.endian}{nbuckets}I", data, buckets_off)
    last = max(buckets, default=0)
    if last < symoffset:
        return int(symoffset)
    chain_off = buckets_off + nbuckets * 4
    for index in range(last, last + len(data) // 4 + 1):
        pos = chain_off + (index - symoffset) * 4
        check_range(data, pos, 4, "DT_GNU_HASH chain")
        if struct.unpack_from(lay.endian + "I", data, pos)[0] & 1:
            return index + 1
    raise MalformedElf("DT_GNU_HASH chain does not end")


def _dynsym_count(
    data: bytes,
    dyn: Dynamic,
    lay: Layout,
    segs: Segments,
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


# --------------------------------------------------------------------------- relocations
@dataclass(frozen=True, slots=True)
class _RelocUse:
    """Which dynsym indices relocations name: bound at start, via lazy PLT slots, via COPY."""

    bound: frozenset[int]
    lazy: frozenset[int]
    copy: frozenset[int]


def _reloc_infos(
    data: bytes, segs: Segments, lay: Layout, table: tuple[int, int, bool], relative: int = 0
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


def _data_tables(dyn: Dynamic) -> Iterator[tuple[tuple[int, int, bool], int]]:
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


def _reloc_use(data: bytes, dyn: Dynamic, lay: Layout, segs: Segments, machine: int) -> _RelocUse:
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
class Symbols:
    defined: dict[str, tuple[int, ...]]
    undefined: tuple[UndefinedSymbol, ...]
    protected: frozenset[str] = frozenset()  # defined with STV_PROTECTED


def read_symbols(
    data: bytes,
    dyn: Dynamic,
    lay: Layout,
    segs: Segments,
    sections: tuple[SectionHeader, ...],
    machine: int,
    by_index: dict[int, VersionNeed],
) -> tuple[Symbols, int]:
    """Defined symbols a lookup can return, undefined references; and the dynsym count."""
    if dyn.get(DT_SYMTAB) is None:
        return Symbols({}, ()), 0
    count = _dynsym_count(data, dyn, lay, segs, sections, machine)
    entsize = 24 if lay.is64 else 16
    off = segs.offset(dyn.get(DT_SYMTAB) or 0, count * entsize, "dynamic symbol table")
    versyms = read_versyms(data, dyn, lay, segs, count)
    use = _reloc_use(data, dyn, lay, segs, machine)
    rows = struct.iter_unpack(
        lay.endian + ("IBBHQQ" if lay.is64 else "IIIBBH"),
        memoryview(data)[off : off + count * entsize],
    )
    return _sort_symbols(rows, lay.is64, dyn.strtab, versyms, by_index, use), count


GO_PKGHASHBYTES = b"go.link.pkghashbytes."


def go_pkghashes(
    data: bytes, dyn: Dynamic, lay: Layout, segs: Segments, count: int
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
        if not dyn.strtab.startswith(GO_PKGHASHBYTES, st_name):
            continue  # checked first: a find per symbol over one long name is quadratic
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
) -> Symbols:
    defined: dict[str, tuple[int, ...]] = {}
    # Versyms of names defined more than once, joined at the end: growing a tuple per
    # duplicate was quadratic in the symbols sharing one name (issue 15).
    more: dict[str, list[int]] = {}
    undefined: list[UndefinedSymbol] = []
    names = _Names(strtab)
    starts = names.seen
    protected: list[str] = []
    for index, row in enumerate(rows):
        if is64:
            st_name, st_info, other, shndx, value, _size = row
        else:
            st_name, value, _size, st_info, other, shndx = row
        bind, stype = st_info >> 4, st_info & 0xF
        if index == 0 or bind == STB_LOCAL:
            continue
        name = starts.get(st_name) or names.at(st_name, index)
        vs = versyms[index] if versyms else NO_VERSYM
        if shndx != SHN_UNDEF:
            # dl-lookup.c do_lookup_x skips zero-valued non-TLS symbols and other types.
            if (
                bind in _LOOKUP_BINDS
                and stype in _LOOKUP_TYPES
                and (value != 0 or shndx == SHN_ABS or stype == STT_TLS)
            ):
                # Interned here, not in the string table: the names other files define or
                # reference too share one object, and a table's other strings (undefined
                # names found shared below, locals) cost no lookup (issue 14).
                name = sys.intern(name)
                prev = defined.get(name)
                if prev is None:
                    defined[name] = _one_versym(vs)
                else:
                    more.setdefault(name, list(prev)).append(vs)
                if other & 3 == STV_PROTECTED:
                    protected.append(name)
            if index not in use.copy:
                continue
        canonical = shndx == SHN_UNDEF and value != 0  # a canonical PLT entry
        versym = vs if versyms else 0
        undefined.append(_reference(name, index, bind, stype, versym, by_index, use, canonical))
    for name, repeated in more.items():
        defined[name] = tuple(repeated)
    return Symbols(defined, tuple(undefined), frozenset(protected))


class _Names:
    """Symbol names by string-table offset, each decoded once: symbols that share one long
    name must not each search and decode it again (issue 15). An ASCII table's strings are
    all decoded up front, in one split (a find and a decode per symbol were a fifth of a
    scan's reading, issue 14); a name that starts inside another (a shared suffix) is found
    on demand."""

    def __init__(self, strtab: bytes) -> None:
        self.strtab = strtab
        self.seen: dict[int, str] = _string_starts(strtab)

    def at(self, st_name: int, index: int) -> str:
        found = self.seen.get(st_name)
        if found is not None:
            return found
        end = self.strtab.find(b"\0", st_name) if st_name < len(self.strtab) else -1
        if end < 0:
            raise MalformedElf(f"symbol {index}: bad name offset {st_name}")
        decoded = self.strtab[st_name:end].decode("utf-8", "surrogateescape")
        found = self.seen[st_name] = decoded
        return found


def _string_starts(strtab: bytes) -> dict[int, str]:
    """Every NUL-terminated string of an ASCII string table by its offset; {} for other
    tables. What follows the last NUL is no string (unterminated). Not interned: the
    names kept are, where they are kept (_sort_symbols, _reference)."""
    if not strtab.isascii():
        return {}
    parts = strtab.decode("ascii").split("\0")[:-1]
    offsets = itertools.accumulate(map((1).__add__, map(len, parts)), initial=0)
    return dict(zip(offsets, parts, strict=False))


def _reference(
    name: str,
    index: int,
    bind: int,
    stype: int,
    versym: int,
    by_index: dict[int, VersionNeed],
    use: _RelocUse,
    canonical: bool = False,
) -> UndefinedSymbol:
    """An undefined symbol (or a COPY-relocated one) with its Vernaux version and relocations."""
    need = by_index.get(versym & 0x7FFF)
    version, file = (need.name, need.file) if need else (None, None)
    bound, lazy, copy = index in use.bound, index in use.lazy, index in use.copy
    return reference(name, version, file, bind == STB_WEAK, bound, lazy, stype, copy, canonical)


def reference(  # UndefinedSymbol's fields, in its order: the store's decoder maps it
    name: str,
    version: str | None,
    version_file: str | None,
    weak: bool,
    bound_at_start: bool,
    lazy: bool,
    stype: int,
    copy: bool,
    canonical: bool,
) -> UndefinedSymbol:
    """The one object of the reference with these fields: one seen before, else a new one,
    its texts interned, kept for the next (the ELF reader's and the store's decoder's)."""
    for ref in _named(name):
        # Fields compared before any object is made: most references repeat one already
        # seen, and building one to look it up cost a quarter of reading a table (issue 14).
        if (
            ref.version == version
            and ref.bound_at_start == bound_at_start
            and ref.lazy == lazy
            and ref.weak == weak
            and ref.type == stype
            and ref.version_file == version_file
            and ref.copy == copy
            and ref.canonical == canonical
        ):
            return ref
    version, version_file = _interned(version), _interned(version_file)
    return _remember(
        UndefinedSymbol(
            sys.intern(name),
            version,
            version_file,
            weak,
            bound_at_start,
            lazy,
            stype,
            copy,
            canonical,
        )
    )


def _interned(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


# Memory: an image holds ~600,000 defined and ~250,000 undefined dynamic symbols but few
# distinct versym values and ~50,000 distinct references; equal values share one object.
# They are kept by name: one object for most names, a tuple of the variants for the others.
_ONE_VERSYM: dict[int, tuple[int]] = {}
_BY_NAME: dict[str, UndefinedSymbol | tuple[UndefinedSymbol, ...]] = {}
_MAX_SHARED = 500_000  # a bound for long-lived processes; past it the table starts again
# A name's variants are searched one by one: a hostile table of one name in thousands of
# versions must not make that quadratic (issue 15); past this many, no more are shared.
_MAX_VARIANTS = 8
_shared = 0


def _one_versym(versym: int) -> tuple[int]:
    found = _ONE_VERSYM.get(versym)
    if found is None:
        found = _ONE_VERSYM[versym] = (versym,)
    return found


def _named(name: str) -> tuple[UndefinedSymbol, ...]:
    """The shared references of one name."""
    found = _BY_NAME.get(name)
    if found is None:
        return ()
    return (found,) if type(found) is UndefinedSymbol else found  # type: ignore[return-value]


def _remember(ref: UndefinedSymbol) -> UndefinedSymbol:
    """`ref`, kept as the shared object of its value (the caller found no equal one)."""
    global _shared
    if _shared >= _MAX_SHARED:
        _BY_NAME.clear()
        _shared = 0
    known = _named(ref.name)
    if len(known) < _MAX_VARIANTS:
        _BY_NAME[ref.name] = (*known, ref) if known else ref
        _shared += 1
    return ref
