"""Readelf-like facts of one file for `imagescan inspect`: exports and imports in full.

The scan path uses the fast reader (`reader.parse_elf`); this one is for a single file a user
asks about, so pyelftools' convenience wins over speed. pyelftools types stay in this module.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.sections import Section, Symbol, SymbolTableSection
from elftools.elf.segments import NoteSegment

from imagescan.elf.model import VERSYM_HIDDEN, ElfFacts
from imagescan.elf.reader import parse_elf
from imagescan.errors import MalformedElf

_PREFIXES = ("STB_", "STT_", "STV_")
# pyelftools names the OS-specific values generically; readelf's names are clearer.
_RENAMED = {"LOOS": "GNU_IFUNC"}


@dataclass(frozen=True, slots=True)
class DynamicSymbol:
    """One dynamic symbol as readelf --dyn-syms shows it, with its version resolved.

    `hidden` marks a non-default version (`foo@V1` beside `foo@@V2`). `version_file` is the
    NEEDED entry an import's version comes from (Vernaux), None for exports.
    """

    name: str
    binding: str  # GLOBAL, WEAK, GNU_UNIQUE
    type: str  # FUNC, OBJECT, TLS, GNU_IFUNC, NOTYPE, COMMON
    visibility: str  # DEFAULT, PROTECTED, ...
    size: int
    version: str | None = None
    hidden: bool = False
    version_file: str | None = None


@dataclass(frozen=True, slots=True)
class ElfInspection:
    """The fast reader's facts plus the full symbol lists and identification notes."""

    facts: ElfFacts
    exports: tuple[DynamicSymbol, ...]
    imports: tuple[DynamicSymbol, ...]
    build_id: str | None
    sections: tuple[str, ...]


def inspect_elf(data: bytes, path: str) -> ElfInspection:
    """Full facts of one ELF file; MalformedElf when the fast reader or pyelftools rejects it."""
    facts = parse_elf(data, path)
    try:
        elf = ELFFile(io.BytesIO(data))
        symbols = list(_dynamic_symbols(elf))
        versyms = _versyms(elf, len(symbols))
        needs = _vernaux_by_index(elf)
        exports, imports = _split(facts, symbols, versyms, needs)
        return ElfInspection(
            facts, exports, imports, _build_id(elf), tuple(s.name for s in elf.iter_sections())
        )
    except (ELFError, struct.error, ValueError, KeyError, AssertionError) as exc:
        raise MalformedElf(f"pyelftools cannot read this file: {exc}") from exc


def _dynamic_symbols(elf: ELFFile) -> Iterator[Symbol]:
    """The .dynsym section, or (section-stripped) the PT_DYNAMIC segment's symbol table."""
    section = elf.get_section_by_name(".dynsym")
    if isinstance(section, SymbolTableSection):
        yield from section.iter_symbols()
        return
    for segment in elf.iter_segments():
        if isinstance(segment, DynamicSegment):
            yield from segment.iter_symbols()
            return


def _versyms(elf: ELFFile, count: int) -> tuple[int, ...]:
    """Raw versym values (hidden bit kept), () when the file has no .gnu.version."""
    section = elf.get_section_by_name(".gnu.version")
    if not isinstance(section, Section) or section.data_size < 2 * count:
        return ()
    order = "<" if elf.little_endian else ">"
    return struct.unpack_from(f"{order}{count}H", section.data())


def _vernaux_by_index(elf: ELFFile) -> dict[int, tuple[str, str]]:
    """vna_other -> (version name, file) from .gnu.version_r."""
    section = elf.get_section_by_name(".gnu.version_r")
    out: dict[int, tuple[str, str]] = {}
    if isinstance(section, GNUVerNeedSection):
        for need, auxes in section.iter_versions():
            for aux in auxes:
                out[aux.entry["vna_other"] & ~VERSYM_HIDDEN] = (aux.name, str(need.name))
    return out


def _split(
    facts: ElfFacts,
    symbols: list[Symbol],
    versyms: tuple[int, ...],
    needs: dict[int, tuple[str, str]],
) -> tuple[tuple[DynamicSymbol, ...], tuple[DynamicSymbol, ...]]:
    exports: list[DynamicSymbol] = []
    imports: list[DynamicSymbol] = []
    for index, sym in enumerate(symbols):
        if index == 0 or sym["st_info"]["bind"] == "STB_LOCAL":
            continue
        raw = versyms[index] if versyms else 0
        base = _describe(sym)
        if sym["st_shndx"] == "SHN_UNDEF":
            need = needs.get(raw & ~VERSYM_HIDDEN)
            imports.append(_with_version(base, *(need or (None, None)), hidden=False))
        else:
            version = facts.version_name(raw) if raw & ~VERSYM_HIDDEN > 1 else None
            exports.append(_with_version(base, version, None, hidden=bool(raw & VERSYM_HIDDEN)))
    return tuple(exports), tuple(imports)


def _name(value: str) -> str:
    for prefix in _PREFIXES:
        value = value.removeprefix(prefix)
    return _RENAMED.get(value, value)


def _describe(sym: Symbol) -> DynamicSymbol:
    return DynamicSymbol(
        name=sym.name,
        binding="GNU_UNIQUE"
        if sym["st_info"]["bind"] == "STB_LOOS"
        else _name(sym["st_info"]["bind"]),
        type=_name(sym["st_info"]["type"]),
        visibility=_name(sym["st_other"]["visibility"]),
        size=int(sym["st_size"]),
    )


def _with_version(
    sym: DynamicSymbol, version: str | None, file: str | None, *, hidden: bool
) -> DynamicSymbol:
    return DynamicSymbol(
        sym.name, sym.binding, sym.type, sym.visibility, sym.size, version, hidden, file
    )


def _build_id(elf: ELFFile) -> str | None:
    """NT_GNU_BUILD_ID from the PT_NOTE segments (present in section-stripped files too)."""
    for segment in elf.iter_segments():
        if not isinstance(segment, NoteSegment):
            continue
        for note in segment.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID":
                return str(note["n_desc"])
    return None
