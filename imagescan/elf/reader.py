"""The fast ELF reader: `ElfFacts` from the bytes of one file, via program headers.

Everything the loader needs is reached through PT_DYNAMIC (as ld.so does), so section-stripped
files work; section headers are only a fast path (dynsym count) and the source of `.symtab` /
`.go.buildinfo`. Symbol, version and relocation tables are decoded with `struct.iter_unpack`
over memoryviews: pyelftools' per-symbol objects are ten times too slow for whole images.
Every offset and count read from the file is checked before use; trouble raises
`MalformedElf(reason)`, which callers turn into a `Skipped` entry.
"""

from __future__ import annotations

import mmap
import posixpath
import re
import struct
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import cast

from imagescan.elf.dynamic import (
    DF_1_PIE,
    DF_TEXTREL,
    DT_AUXILIARY,
    DT_FILTER,
    DT_FINI,
    DT_FINI_ARRAY,
    DT_FINI_ARRAYSZ,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_INIT,
    DT_INIT_ARRAY,
    DT_INIT_ARRAYSZ,
    DT_NEEDED,
    DT_RELR,
    DT_RELRSZ,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_TEXTREL,
    DT_VERSYM,
    Dynamic,
    read_dynamic,
    version_defs,
    version_needs,
)
from imagescan.elf.gobuild import parse_go_buildinfo
from imagescan.elf.headers import (
    EI_NIDENT,
    PF_W,
    PF_X,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    SHT_SYMTAB,
    ElfHeader,
    Layout,
    ProgramHeader,
    SectionHeader,
    Segments,
    check_range,
    header_problem,
    ident_problem,
    is_elf,
    program_headers,
    read_header,
    read_layout,
    section_headers,
    section_named,
    type_problem,
)
from imagescan.elf.ldso import is_ldso_name, ldso_defaults
from imagescan.elf.mapping import init_problem, map_problem, phdr_table_problem
from imagescan.elf.model import ET_CORE, ET_DYN, ET_EXEC, ET_REL, ElfFacts, FileKind, GoBuildInfo
from imagescan.elf.notes import indirect_extern_access
from imagescan.elf.symtab import go_pkghashes, read_symbols
from imagescan.errors import MalformedElf

# What other modules import from here (the reader was split into headers, dynamic, symtab).
__all__ = ["header_problem", "is_elf", "parse_elf"]

_DEBUG_PREFIX = "usr/lib/debug/"
_SO_STRING = re.compile(rb"(?:^|(?<=/))lib[A-Za-z0-9_.+-]*?\.so(?:\.[A-Za-z0-9_.+-]*)?$")


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
    dyn: Dynamic | None,
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
            check_range(data, ph.p_offset, ph.p_filesz, "PT_INTERP")
            raw = data[ph.p_offset : ph.p_offset + ph.p_filesz].split(b"\0", 1)[0]
            return raw.decode("utf-8", "surrogateescape")
    return None


def _strings_so(data: bytes, loads: tuple[ProgramHeader, ...], dyn: Dynamic) -> tuple[str, ...]:
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
        segment = range(ph.p_offset, end)
        for start in range(ph.p_offset, end, _SCAN_WINDOW):
            stop = min(end, start + _SCAN_WINDOW)
            # A ".so" that starts before `stop` is this window's (it cannot overlap itself).
            for literal in _so_literals(data, start, min(end, stop + 2), segment, dynstr):
                found.setdefault(literal, None)
            _release(data, start, stop)
    return tuple(found)


# A large library without -z separate-code (libLLVM: one 97 MiB R+X segment) is scanned
# whole; through a mapping (rootfs.layer spools files that large) each window's pages are
# let go once scanned, so the scan does not make the whole file resident (issue 14).
_SCAN_WINDOW = 8 << 20


def _so_literals(
    data: bytes, start: int, stop: int, segment: range, dynstr: range
) -> Iterator[str]:
    """The `lib*.so*` literals around each ".so" found in data[start:stop]."""
    pos = data.find(b".so", start, stop)
    while pos >= 0:
        if pos not in dynstr:
            first = data.rfind(b"\0", max(segment.start, pos - 256), pos) + 1
            last = data.find(b"\0", pos, min(segment.stop, pos + 256))
            literal = data[first:last] if first > 0 and last > 0 else b""
            match = _SO_STRING.search(literal)
            if match:
                yield match.group().decode("ascii")
        pos = data.find(b".so", pos + 3, stop)


def _release(data: bytes, start: int, stop: int) -> None:
    """Drop the mapped pages of data[start:stop] from this process (a mapping's only; the
    page cache keeps them, a later read maps them again)."""
    madvise = getattr(data, "madvise", None)
    if madvise is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    first = start - start % mmap.PAGESIZE
    with suppress(OSError, ValueError):
        madvise(mmap.MADV_DONTNEED, first, stop - first)


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
    lay = read_layout(data)
    hdr = read_header(data, lay)
    unreadable = phdr_table_problem(hdr, 56 if lay.is64 else 32, len(data))
    phdrs = () if unreadable or type_problem(hdr, lay) else program_headers(data, hdr, lay)
    facts = ElfFacts(
        elf_class=64 if lay.is64 else 32,
        little_endian=lay.endian == "<",
        machine=hdr.e_machine,
        osabi=data[7],
        abiversion=data[8],
        e_type=hdr.e_type,
        kind=FileKind.OTHER,
        ident_problem=ident_problem(data[:EI_NIDENT], hdr.e_version),
        type_problem=type_problem(hdr, lay),
        map_problem=unreadable or map_problem(hdr, phdrs, len(data), lay.is64),
    )
    if unreadable or (facts.type_problem and hdr.e_type in (ET_DYN, ET_EXEC)):
        return facts  # a bad e_phentsize: no program header is read, by ld.so or here
    try:
        return _with_headers(facts, data, path, (hdr, lay, phdrs), symbols)
    except MalformedElf:
        # open_verify or the mapping refuses this file before it reads anything else: that
        # refusal, not a table the loader never gets to, is what the loader says of it.
        if facts.ident_problem or facts.type_problem or facts.map_problem:
            loads = tuple(ph for ph in phdrs if ph.p_type == PT_LOAD)
            return replace(facts, kind=_kind(path, hdr.e_type, loads, None, _UNREAD))
        raise


def _with_headers(
    facts: ElfFacts,
    data: bytes,
    path: str,
    headers: tuple[ElfHeader, Layout, tuple[ProgramHeader, ...]],
    symbols: bool,
) -> ElfFacts:
    """`facts` completed from the program and section headers, then PT_DYNAMIC."""
    hdr, lay, phdrs = headers
    loads = tuple(ph for ph in phdrs if ph.p_type == PT_LOAD)
    segs = Segments(loads, len(data))
    sections = section_headers(data, hdr, lay)
    interp = _interpreter(data, phdrs)
    dyn_ph = next((ph for ph in phdrs if ph.p_type == PT_DYNAMIC), None)
    if _no_file_image(loads):
        dyn_ph = None  # a separate debug file: its tables point at bytes that are not there
    dyn = read_dynamic(data, dyn_ph, lay, segs) if dyn_ph else None
    facts = replace(
        facts,
        kind=_kind(path, hdr.e_type, loads, interp, dyn),
        interpreter=interp,
        go=_go(data, hdr, sections, loads),
        ldso=ldso_defaults(data) if is_ldso_name(posixpath.basename(path)) else None,
        indirect_extern_access=indirect_extern_access(data, phdrs, lay),
    )
    if dyn is None:
        return facts
    return _with_dynamic(facts, data, _Tables(lay, segs, sections, loads), dyn, symbols)


# A dynamic section the loader never gets to read: it still makes an ET_DYN file a library.
_UNREAD = Dynamic({}, b"", 0)


@dataclass(frozen=True, slots=True)
class _Tables:
    """What reading the dynamic tables needs besides the bytes."""

    lay: Layout
    segs: Segments
    sections: tuple[SectionHeader, ...]
    loads: tuple[ProgramHeader, ...]


def _with_dynamic(
    facts: ElfFacts, data: bytes, t: _Tables, dyn: Dynamic, symbols: bool = True
) -> ElfFacts:
    """`facts` completed from PT_DYNAMIC: names, flags, versions, symbols, dlopen strings."""
    needs, by_index = version_needs(data, dyn, t.lay, t.segs)
    flags = dyn.get(DT_FLAGS) or 0
    facts = replace(
        facts,
        dynamic=True,
        needed=dyn.strings(DT_NEEDED),
        filters=dyn.strings(DT_FILTER),
        auxiliary=dyn.strings(DT_AUXILIARY),
        soname=dyn.string(DT_SONAME),
        rpath=dyn.string(DT_RPATH),
        runpath=dyn.string(DT_RUNPATH),
        flags=flags,
        flags_1=dyn.get(DT_FLAGS_1) or 0,
        has_relr=DT_RELR in dyn.tags or DT_RELRSZ in dyn.tags,
        has_textrel=DT_TEXTREL in dyn.tags or bool(flags & DF_TEXTREL),
        version_needs=needs,
        version_defs=version_defs(data, dyn, t.lay, t.segs),
        has_versym=DT_VERSYM in dyn.tags,
        symbols_read=symbols,
        map_problem=facts.map_problem or _init_problem(t.loads, dyn),
    )
    if not symbols:
        return facts
    syms, count = read_symbols(data, dyn, t.lay, t.segs, t.sections, facts.machine, by_index)
    imports_dlopen = any(u.name == "dlopen" for u in syms.undefined)
    return replace(
        facts,
        defined=syms.defined,
        protected=syms.protected,
        undefined=syms.undefined,
        strings_so=_strings_so(data, t.loads, dyn) if imports_dlopen else (),
        go_pkghashes=go_pkghashes(data, dyn, t.lay, t.segs, count),
    )


def _init_problem(loads: tuple[ProgramHeader, ...], dyn: Dynamic) -> str | None:
    """Where the constructors and destructors the loader runs are (for the arrays their
    starts: an empty array has nothing to run)."""
    functions = [a for a in (dyn.get(DT_INIT), dyn.get(DT_FINI)) if a]
    arrays = [
        dyn.get(array) or 0
        for array, size in ((DT_INIT_ARRAY, DT_INIT_ARRAYSZ), (DT_FINI_ARRAY, DT_FINI_ARRAYSZ))
        if dyn.get(size)
    ]
    return init_problem(loads, functions, arrays)


def _go(
    data: bytes,
    hdr: ElfHeader,
    sections: tuple[SectionHeader, ...],
    loads: tuple[ProgramHeader, ...],
) -> GoBuildInfo | None:
    section = section_named(data, sections, hdr.e_shstrndx, b".go.buildinfo")
    return parse_go_buildinfo(
        data,
        section=(section.sh_offset, section.sh_size) if section else None,
        segments=tuple(
            (ph.p_vaddr, ph.p_offset, ph.p_filesz, bool(ph.p_flags & PF_W)) for ph in loads
        ),
        stripped=not any(sh.sh_type == SHT_SYMTAB for sh in sections),
    )
