"""ELF headers read from bytes: the identification, Ehdr, Phdrs, Shdrs, and address mapping.

Part of the fast reader (`imagescan.elf.reader`). Every offset and count read from the file is
checked before use; trouble raises `MalformedElf(reason)`.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

from imagescan.elf.model import ET_DYN, ET_EXEC
from imagescan.errors import MalformedElf

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
class Layout:
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
    p_memsz: int = 0
    p_align: int = 0


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
def check_range(data: bytes, offset: int, size: int, what: str) -> None:
    if offset < 0 or size < 0 or offset + size > len(data):
        raise MalformedElf(f"{what} out of range")


def cstring(table: bytes, offset: int, what: str) -> str:
    """The NUL-terminated string at `offset` in a string table, interned."""
    end = table.find(b"\0", offset) if 0 <= offset < len(table) else -1
    if end < 0:
        raise MalformedElf(f"{what}: bad string offset {offset}")
    return sys.intern(table[offset:end].decode("utf-8", "surrogateescape"))


# --------------------------------------------------------------------------- headers
def read_layout(data: bytes) -> Layout:
    if len(data) < 52 or not is_elf(data):
        raise MalformedElf("file too short" if len(data) < 52 else "invalid ELF header")
    if data[4] not in (ELFCLASS32, ELFCLASS64):
        raise MalformedElf(f"invalid ELF class {data[4]}")
    if data[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise MalformedElf(f"invalid ELF data encoding {data[5]}")
    return Layout("<" if data[5] == ELFDATA2LSB else ">", data[4] == ELFCLASS64)


def read_header(data: bytes, lay: Layout) -> ElfHeader:
    fmt = lay.endian + ("HHIQQQIHHHHHH" if lay.is64 else "HHIIIIIHHHHHH")
    check_range(data, EI_NIDENT, struct.calcsize(fmt), "ELF header")
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


def type_problem(hdr: ElfHeader, lay: Layout) -> str | None:
    """open_verify's checks made after e_machine matched: e_type, then e_phentsize."""
    if hdr.e_type not in (ET_DYN, ET_EXEC):
        return "only ET_DYN and ET_EXEC can be loaded"
    if hdr.e_phentsize != (56 if lay.is64 else 32):
        return "ELF file's phentsize not the expected size"
    return None


def program_headers(data: bytes, hdr: ElfHeader, lay: Layout) -> tuple[ProgramHeader, ...]:
    fmt = lay.endian + ("IIQQQQQQ" if lay.is64 else "IIIIIIII")
    size = struct.calcsize(fmt)
    if hdr.e_phnum == 0 or hdr.e_phentsize < size:
        return ()  # the loader refuses a wrong e_phentsize (type_problem); nothing to read
    check_range(data, hdr.e_phoff, hdr.e_phnum * hdr.e_phentsize, "program headers")
    out = []
    for i in range(hdr.e_phnum):
        f = struct.unpack_from(fmt, data, hdr.e_phoff + i * hdr.e_phentsize)
        if lay.is64:  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, ...
            out.append(ProgramHeader(f[0], f[1], f[2], f[3], f[5], f[6], f[7]))
        else:  # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
            out.append(ProgramHeader(f[0], f[6], f[1], f[2], f[4], f[5], f[7]))
    return tuple(out)


def section_headers(data: bytes, hdr: ElfHeader, lay: Layout) -> tuple[SectionHeader, ...]:
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


def section_named(
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
class Segments:
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
