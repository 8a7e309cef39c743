"""/etc/ld.so.cache as glibc's ld.so reads it: parser and lookup.

Follows glibc elf/dl-cache.c (`_dl_load_cache_lookup`, `search_cache`, `_dl_cache_libcmp`)
and sysdeps/generic/dl-cache.h (file layout). Three layouts exist: the new format
("glibc-ld.so.cache1.1", glibc >= 2.2), the old libc5 format ("ld.so-1.7.0") and the old
format with the new one hidden in its string table ("compat"); ld.so prefers the new part.
A cache ld.so would ignore (wrong byte order, corrupt) is a `CacheProblem`, never an exception.
One deliberate difference: a bad string offset in any entry makes the whole file a
`CacheProblem`, where ld.so would only miss the lookups whose binary search touches it.

`lookup` is glibc >= 2.37's search_cache; pass a `LegacyHwcap` for the <= 2.36 treatment of
legacy hwcap entries (`LdCache.has_legacy_hwcap_entries` tells when it matters).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

CacheFormat = Literal["new", "old", "old+new"]

MAGIC_OLD = b"ld.so-1.7.0"
MAGIC_NEW = b"glibc-ld.so.cache1.1"
OLD_HEADER_SIZE = 16  # struct cache_file: magic[11] + pad + nlibs
OLD_ENTRY_SIZE = 12  # struct file_entry: flags, key, value
NEW_HEADER_SIZE = 48  # struct cache_file_new (static-asserted in dl-cache.h)
NEW_ENTRY_SIZE = 24  # struct file_entry_new: flags, key, value, osversion, hwcap
NEW_ALIGN = 8  # __alignof__ (struct cache_file_new) on 64-bit targets (ALIGN_CACHE)

# ldconfig.h FLAG_* values: low byte = library type, high byte = ABI.
FLAG_ELF = 0x0001
FLAG_ELF_LIBC6 = 0x0003
FLAG_SPARC_LIB64 = 0x0100
FLAG_X8664_LIB64 = 0x0300
FLAG_S390_LIB64 = 0x0400
FLAG_POWERPC_LIB64 = 0x0500
FLAG_MIPS64_LIBN32 = 0x0600
FLAG_MIPS64_LIBN64 = 0x0700
FLAG_X8664_LIBX32 = 0x0800
FLAG_ARM_LIBHF = 0x0900
FLAG_AARCH64_LIB64 = 0x0A00
FLAG_ARM_LIBSF = 0x0B00
FLAG_MIPS_LIB32_NAN2008 = 0x0C00
FLAG_MIPS64_LIBN32_NAN2008 = 0x0D00
FLAG_MIPS64_LIBN64_NAN2008 = 0x0E00
FLAG_RISCV_FLOAT_ABI_SOFT = 0x0F00
FLAG_RISCV_FLOAT_ABI_DOUBLE = 0x1000
FLAG_LARCH_FLOAT_ABI_SOFT = 0x1100
FLAG_LARCH_FLOAT_ABI_DOUBLE = 0x1200

# hwcap field of file_entry_new (dl-cache.h): bit 62 marks a glibc-hwcaps entry whose low 32
# bits index the glibc-hwcaps extension section; bits 32..41 hold the x86 ISA level.
DL_CACHE_HWCAP_EXTENSION = 1 << 62
DL_CACHE_HWCAP_ISA_LEVEL_MASK = (1 << 10) - 1
CACHE_EXTENSION_MAGIC = 0xEAA42174  # (uint32_t) -358342284
EXT_TAG_GENERATOR, EXT_TAG_GLIBC_HWCAPS = 0, 1
ENDIAN_LITTLE, ENDIAN_BIG = 2, 3  # cache_file_new_flags_endian_*

# e_machine values used by expected_cache_flags.
EM_SPARC, EM_386, EM_MIPS, EM_SPARC32PLUS, EM_PPC, EM_PPC64, EM_S390 = 2, 3, 8, 18, 20, 21, 22
EM_ARM, EM_SPARCV9, EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 40, 43, 62, 183, 243, 258


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cache record: `key` is the SONAME, `value` the path ldconfig found it under.

    `hwcaps_name` is the glibc-hwcaps subdirectory name of an extension entry when the
    cache's extension section names it (None for plain entries and unresolvable indices).
    """

    key: str
    value: str
    flags: int
    hwcap: int = 0
    hwcaps_name: str | None = None

    @property
    def is_hwcaps(self) -> bool:
        """dl_cache_hwcap_extension: only bit 62 set above the low word and ISA bits."""
        high = (self.hwcap >> 32) & ~DL_CACHE_HWCAP_ISA_LEVEL_MASK
        return high == DL_CACHE_HWCAP_EXTENSION >> 32

    @property
    def isa_level(self) -> int:
        """The x86 ISA level ldconfig recorded (0 baseline, 1 v2, 2 v3, 3 v4)."""
        return (self.hwcap >> 32) & DL_CACHE_HWCAP_ISA_LEVEL_MASK

    def describe(self) -> str:
        """What `ldconfig -p` prints in parentheses (cache.c print_entry, glibc 2.36)."""
        kind = _TYPE_TEXT.get(self.flags & 0xFF, "unknown or unsupported flag")
        abi = self.flags & 0xFF00
        text = kind + (_ABI_TEXT.get(abi, f",{abi}") if abi else "")
        if self.is_hwcaps:
            return f'{text}, hwcap: "{self.hwcaps_name or ""}"'
        return f"{text}, hwcap: {self.hwcap:#018x}" if self.hwcap else text


_TYPE_TEXT = {0: "libc4", 1: "ELF", 2: "libc5", 3: "libc6"}
_ABI_TEXT = {
    FLAG_SPARC_LIB64: ",64bit",
    FLAG_X8664_LIB64: ",x86-64",
    FLAG_S390_LIB64: ",64bit",
    FLAG_POWERPC_LIB64: ",64bit",
    FLAG_MIPS64_LIBN32: ",N32",
    FLAG_MIPS64_LIBN64: ",64bit",
    FLAG_X8664_LIBX32: ",x32",
    FLAG_ARM_LIBHF: ",hard-float",
    FLAG_AARCH64_LIB64: ",AArch64",
    FLAG_ARM_LIBSF: ",soft-float",
    FLAG_MIPS_LIB32_NAN2008: ",nan2008",
    FLAG_MIPS64_LIBN32_NAN2008: ",N32,nan2008",
    FLAG_MIPS64_LIBN64_NAN2008: ",64bit,nan2008",
    FLAG_RISCV_FLOAT_ABI_SOFT: ",soft-float",
    FLAG_RISCV_FLOAT_ABI_DOUBLE: ",double-float",
    FLAG_LARCH_FLOAT_ABI_SOFT: ",soft-float",
    FLAG_LARCH_FLOAT_ABI_DOUBLE: ",double-float",
}


@dataclass(frozen=True, slots=True)
class LdCache:
    """A cache ld.so would use. `entries` are in file order (ldconfig sorted them).

    `format` says which layout the file has; for "old+new" the entries are the new part's,
    as ld.so reads them. `generator` is the ldconfig version string from the extension.
    `hwcaps_section` is the glibc-hwcaps section, which extension entries index.
    """

    entries: tuple[CacheEntry, ...]
    format: CacheFormat
    generator: str | None = None
    # The glibc-hwcaps extension section: names in section order (None = unreadable).
    hwcaps_section: tuple[str | None, ...] = ()
    # The keys as bytes, for _dl_cache_libcmp (computed once: lookups are frequent).
    raw_keys: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = tuple(e.key.encode("utf-8", "surrogateescape") for e in self.entries)
        object.__setattr__(self, "raw_keys", keys)

    @property
    def has_hwcap_field(self) -> bool:
        """Entries are struct file_entry_new (search_cache's entry_size test)."""
        return self.format != "old"

    @property
    def has_legacy_hwcap_entries(self) -> bool:
        """Entries from tls/, x86_64/, haswell/... subdirectories: only ldconfig <= 2.36
        writes them, so the image's ld.so is one that uses them (see LegacyHwcap)."""
        return self.has_hwcap_field and any(e.hwcap and not e.is_hwcaps for e in self.entries)

    @property
    def generator_version(self) -> tuple[int, int] | None:
        """The glibc release of the ldconfig that wrote the cache (extension, glibc >= 2.33)."""
        match = re.search(r"release version (\d+)\.(\d+)", self.generator or "")
        return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True, slots=True)
class CacheProblem:
    """A cache file ld.so ignores entirely, and why (one line, for the `why` output)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CacheFlags:
    """_dl_cache_check_flags for one target: which entry flags it accepts, which one ends
    the search (_DL_CACHE_DEFAULT_ID), and whether `char` is signed in its C ABI (the sort
    order of _dl_cache_libcmp on bytes >= 0x80 depends on it)."""

    accepted: frozenset[int]
    default: int
    char_signed: bool = True


TLS_HWCAP = 1 << 63  # _DL_HWCAP_TLS_MASK: ldconfig's bit for a tls/ subdirectory
# sysdeps/x86/dl-hwcap.h and dl-procinfo (glibc <= 2.36): hwcap bit order, platforms from
# bit 48 (_DL_FIRST_PLATFORM); an x86_64 ld.so only knows haswell and xeon_phi.
X86_HWCAP_NAMES = ("sse2", "x86_64", "avx512_1")
X86_PLATFORMS = ("i586", "i686", "haswell", "xeon_phi")
X86_64_HWCAP_IMPORTANT = 0b110  # HWCAP_X86_64 | HWCAP_X86_AVX512_1


@dataclass(frozen=True, slots=True)
class LegacyHwcap:
    """Which legacy hwcap cache entries a glibc <= 2.36 ld.so accepts (2.37 drops them all).

    `hwcap` is GLRO(dl_hwcap) & hwcap_mask, `platform_mask` is _DL_HWCAP_PLATFORM, and
    `platform` the CPU's platform bit (0 when AT_PLATFORM is none of them).
    """

    hwcap: int = 0
    platform_mask: int = 0
    platform: int = 0

    def accepts(self, hwcap: int) -> bool:
        """search_cache (2.36): the hwcap_exclude test, then the platform test."""
        if hwcap & ~(self.hwcap | self.platform_mask | TLS_HWCAP):
            return False
        platform = hwcap & self.platform_mask
        return not platform or platform == self.platform


def legacy_hwcap_x86_64(
    hwcap_names: Sequence[str] = ("x86_64",),
    platform: str | None = None,
    hwcap_mask: int = X86_64_HWCAP_IMPORTANT,
) -> LegacyHwcap:
    """LegacyHwcap of an x86_64 glibc 2.26-2.36 ld.so (cpu-features.c): hwcap "x86_64",
    plus "avx512_1" and platform "haswell"/"xeon_phi" on some Intel CPUs only.
    `hwcap_mask` is LD_HWCAP_MASK (glibc.cpu.hwcap_mask)."""
    bits = sum(1 << X86_HWCAP_NAMES.index(n) for n in set(hwcap_names) if n in X86_HWCAP_NAMES)
    known = X86_PLATFORMS[2:]  # HWCAP_PLATFORMS_START = 2 on x86_64
    bit = 1 << (48 + X86_PLATFORMS.index(platform)) if platform in known else 0
    return LegacyHwcap(bits & hwcap_mask, 0xF << 48, bit)


# ---------------------------------------------------------------------------------------
# Parsing


class _Malformed(Exception):
    """Internal: the cache is corrupt; turned into a CacheProblem at the edge."""


def parse_ld_so_cache(data: bytes, *, little_endian: bool = True) -> LdCache | CacheProblem:
    """Parse ld.so.cache bytes the way `_dl_load_cache_lookup` validates them.

    `little_endian` is the target's byte order (the loader reads the file natively).
    """
    try:
        if _is_new_cache(data, 0, little_endian):
            return _parse_new(data, 0, little_endian, "new")
        if _is_old_cache(data, little_endian):
            return _parse_old_or_compat(data, little_endian)
    except _Malformed as exc:
        return CacheProblem(f"ld.so.cache is corrupt: {exc}")
    return _why_not_a_cache(data, little_endian)


def _why_not_a_cache(data: bytes, little: bool) -> CacheProblem:
    # ld.so reads the count natively first, so a foreign-endian file usually fails the size
    # check before its endianness flag is looked at; the reason should still say so.
    foreign = len(data) > NEW_HEADER_SIZE and not _endian_matches(data, 0, little)
    if data.startswith(MAGIC_NEW) and foreign:
        return _wrong_endian()
    if data.startswith(MAGIC_NEW) or data.startswith(MAGIC_OLD):
        return CacheProblem("ld.so.cache is truncated: its entry count runs past the end")
    return CacheProblem("ld.so.cache has no known magic (not a cache file)")


def _u32(data: bytes, offset: int, little: bool) -> int:
    if offset < 0 or offset + 4 > len(data):
        raise _Malformed(f"read past the end at offset {offset}")
    return int.from_bytes(data[offset : offset + 4], "little" if little else "big")


def _is_new_cache(data: bytes, base: int, little: bool) -> bool:
    # Same checks as dl-cache.c: size > header, magic, and nlibs entries fit in the file.
    size = len(data) - base
    if size <= NEW_HEADER_SIZE or data[base : base + len(MAGIC_NEW)] != MAGIC_NEW:
        return False
    return (size - NEW_HEADER_SIZE) // NEW_ENTRY_SIZE >= _u32(data, base + 20, little)


def _is_old_cache(data: bytes, little: bool) -> bool:
    if len(data) <= OLD_HEADER_SIZE or not data.startswith(MAGIC_OLD):
        return False
    return (len(data) - OLD_HEADER_SIZE) // OLD_ENTRY_SIZE >= _u32(data, 12, little)


def _endian_matches(data: bytes, base: int, little: bool) -> bool:
    # cache_file_new_matches_endian: 0 = unknown (accepted), else the low two bits decide.
    flags = data[base + 28]
    return flags == 0 or (flags & ENDIAN_BIG) == (ENDIAN_LITTLE if little else ENDIAN_BIG)


def _wrong_endian() -> CacheProblem:
    return CacheProblem("ld.so.cache was written for the other byte order; ld.so ignores it")


def _parse_old_or_compat(data: bytes, little: bool) -> LdCache | CacheProblem:
    nlibs = _u32(data, 12, little)
    offset = _align(OLD_HEADER_SIZE + nlibs * OLD_ENTRY_SIZE, NEW_ALIGN)
    if len(data) >= offset + NEW_HEADER_SIZE and data[offset:].startswith(MAGIC_NEW):
        # The old part is bogus too when the new header's byte order is wrong (dl-cache.c).
        if not _endian_matches(data, offset, little):
            return _wrong_endian()
        return _parse_new(data, offset, little, "old+new")
    return _parse_old(data, nlibs, little)


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)


def _parse_old(data: bytes, nlibs: int, little: bool) -> LdCache:
    # Old format: string indices are relative to the end of the entry table.
    strings = OLD_HEADER_SIZE + nlibs * OLD_ENTRY_SIZE
    fmt = "<iII" if little else ">iII"
    entries = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from(fmt, data, OLD_HEADER_SIZE + i * OLD_ENTRY_SIZE)
        entries.append(
            CacheEntry(_string(data, strings, key, i), _string(data, strings, value, i), flags)
        )
    return LdCache(tuple(entries), "old")


def _string(data: bytes, base: int, index: int, entry: int) -> str:
    """NUL-terminated string `index` bytes after `base` (_dl_cache_verify_ptr + strlen)."""
    start = base + index
    end = data.find(b"\0", start) if start < len(data) else -1
    if end < 0:
        raise _Malformed(f"entry {entry} has a string offset outside the file")
    return data[start:end].decode("utf-8", "surrogateescape")


def _parse_new(data: bytes, base: int, little: bool, fmt: CacheFormat) -> LdCache | CacheProblem:
    if not _endian_matches(data, base, little):
        return _wrong_endian()
    nlibs = _u32(data, base + 20, little)
    if base + NEW_HEADER_SIZE + nlibs * NEW_ENTRY_SIZE > len(data):
        # Only reachable for the new part of a compat file: dl-cache.c checks that its
        # header fits, not its entries (it would read past the mapping).
        raise _Malformed("the new part's entry table runs past the end")
    sections = _extension_sections(data, _u32(data, base + 32, little), little)
    hwcaps = _hwcaps_names(data, sections.get(EXT_TAG_GLIBC_HWCAPS), little)
    layout = "<iIIIQ" if little else ">iIIIQ"
    entries = []
    for i in range(nlibs):
        offset = base + NEW_HEADER_SIZE + i * NEW_ENTRY_SIZE
        flags, key, value, _os, hwcap = struct.unpack_from(layout, data, offset)
        # New-format string indices are relative to the new header (cache.c str_offset).
        entry = CacheEntry(_string(data, base, key, i), _string(data, base, value, i), flags, hwcap)
        if entry.is_hwcaps:
            entry = _with_hwcaps_name(entry, hwcaps)
        entries.append(entry)
    generator = _generator(data, sections.get(EXT_TAG_GENERATOR))
    return LdCache(tuple(entries), fmt, generator, tuple(hwcaps))


def _with_hwcaps_name(entry: CacheEntry, names: Sequence[str | None]) -> CacheEntry:
    index = entry.hwcap & 0xFFFFFFFF
    name = names[index] if index < len(names) else None
    return CacheEntry(entry.key, entry.value, entry.flags, entry.hwcap, name)


def _extension_sections(data: bytes, offset: int, little: bool) -> dict[int, tuple[int, int]]:
    """tag -> (file offset, size), as cache_extension_load; {} when absent or invalid.

    An invalid extension directory disables glibc-hwcaps entries but not the cache.
    """
    if offset == 0 or offset % 4 or offset + 8 > len(data):
        return {}
    if _u32(data, offset, little) != CACHE_EXTENSION_MAGIC:
        return {}
    count = _u32(data, offset + 4, little)
    if offset + 8 + count * 16 > len(data):
        return {}
    sections: dict[int, tuple[int, int]] = {}
    for i in range(count):
        tag, _flags, start, size = (
            _u32(data, offset + 8 + i * 16 + k, little) for k in (0, 4, 8, 12)
        )
        if start + size > len(data):
            return {}
        if tag in (EXT_TAG_GENERATOR, EXT_TAG_GLIBC_HWCAPS):
            sections[tag] = (start, size)
    return sections


def _hwcaps_names(
    data: bytes, section: tuple[int, int] | None, little: bool
) -> tuple[str | None, ...]:
    # cache_extension_verify: the section must be non-empty, 4-aligned, a multiple of 4.
    if section is None or section[1] == 0 or section[0] % 4 or section[1] % 4:
        return ()
    start, size = section
    return tuple(_hwcaps_name(data, _u32(data, start + k, little)) for k in range(0, size, 4))


def _hwcaps_name(data: bytes, index: int) -> str | None:
    # glibc_hwcaps_compare reads the name at `cache + index`: relative to the FILE start,
    # even in the old+new layout, where ldconfig wrote it relative to the new header. We do
    # the same, so such names come out unmatched (priority 0) just as in ld.so.
    end = data.find(b"\0", index) if index < len(data) else -1
    return data[index:end].decode("utf-8", "surrogateescape") if end >= 0 else None


def _generator(data: bytes, section: tuple[int, int] | None) -> str | None:
    if section is None:
        return None
    start, size = section
    return data[start : start + size].decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------
# Lookup


def expected_cache_flags(
    machine: int, elf_class: int, *, float_abi: str = "hard", nan2008: bool = False
) -> CacheFlags:
    """_dl_cache_check_flags and _DL_CACHE_DEFAULT_ID of the target's ld.so.

    Per sysdeps/**/dl-cache.h. `float_abi` ("hard"/"soft") matters for ARM, RISC-V and
    LoongArch; `nan2008` for MIPS. MIPS n32 is not told apart from o32 (needs e_flags).
    """
    libc6 = FLAG_ELF_LIBC6
    if machine == EM_X86_64:
        abi = FLAG_X8664_LIB64 if elf_class == 64 else FLAG_X8664_LIBX32
        return _only(abi | libc6)
    if machine == EM_AARCH64:
        return _only(FLAG_AARCH64_LIB64 | libc6, char_signed=False)
    if machine == EM_ARM:
        # arm/dl-cache.h: unmarked (plain libc6) objects are accepted too; the default ID
        # stays the generic 3, so only those end the search early.
        abi = FLAG_ARM_LIBHF if float_abi == "hard" else FLAG_ARM_LIBSF
        return CacheFlags(frozenset({abi | libc6, libc6}), libc6, char_signed=False)
    if machine == EM_RISCV:
        abi = FLAG_RISCV_FLOAT_ABI_DOUBLE if float_abi == "hard" else FLAG_RISCV_FLOAT_ABI_SOFT
        return _only(abi | libc6, char_signed=False)
    if machine == EM_LOONGARCH:
        abi = FLAG_LARCH_FLOAT_ABI_DOUBLE if float_abi == "hard" else FLAG_LARCH_FLOAT_ABI_SOFT
        return _only(abi | libc6)
    return _sixty_four_or_generic(machine, elf_class, nan2008)


def _sixty_four_or_generic(machine: int, elf_class: int, nan2008: bool) -> CacheFlags:
    unsigned_char = machine in (EM_PPC, EM_PPC64, EM_S390)
    if elf_class == 64:
        abi = {
            EM_PPC64: FLAG_POWERPC_LIB64,
            EM_S390: FLAG_S390_LIB64,
            EM_SPARCV9: FLAG_SPARC_LIB64,
            EM_MIPS: FLAG_MIPS64_LIBN64_NAN2008 if nan2008 else FLAG_MIPS64_LIBN64,
        }.get(machine)
        if abi is not None:
            return _only(abi | FLAG_ELF_LIBC6, char_signed=not unsigned_char)
    if machine == EM_MIPS and nan2008:
        return _only(FLAG_MIPS_LIB32_NAN2008 | FLAG_ELF_LIBC6)
    # sysdeps/generic/dl-cache.h: i386, 32-bit ppc/s390/sparc, MIPS o32.
    return CacheFlags(frozenset({FLAG_ELF, FLAG_ELF_LIBC6}), FLAG_ELF_LIBC6, not unsigned_char)


def _only(flags: int, *, char_signed: bool = True) -> CacheFlags:
    return CacheFlags(frozenset({flags}), flags, char_signed)


def cache_libcmp(left: bytes, right: bytes, *, char_signed: bool = True) -> int:
    """_dl_cache_libcmp: strcmp, except that digit runs compare as numbers and a digit sorts
    after any non-digit. The sign of the result is what matters."""
    i = j = 0
    while i < len(left):
        a, b = left[i], right[j] if j < len(right) else 0
        if _isdigit(a):
            if not _isdigit(b):
                return 1
            va, i = _number(left, i)
            vb, j = _number(right, j)
            if va != vb:
                return va - vb
        elif _isdigit(b):
            return -1
        elif a != b:
            return _char(a, char_signed) - _char(b, char_signed)
        else:
            i, j = i + 1, j + 1
    return -_char(right[j], char_signed) if j < len(right) else 0


def _isdigit(c: int) -> bool:
    return 0x30 <= c <= 0x39


def _number(s: bytes, i: int) -> tuple[int, int]:
    value = 0
    while i < len(s) and _isdigit(s[i]):
        value = value * 10 + s[i] - 0x30
        i += 1
    return value, i


def _char(c: int, signed: bool) -> int:
    return c - 256 if signed and c >= 0x80 else c


def lookup(
    cache: LdCache,
    name: str,
    *,
    machine_flags: CacheFlags | int,
    hwcaps_priority: Sequence[str] = (),
    isa_level: int | None = None,
    legacy_hwcap: LegacyHwcap | None = None,
) -> str | None:
    """The path ld.so takes from the cache for `name`, or None (`search_cache`).

    `machine_flags` is `expected_cache_flags(...)` (a bare int means "exactly this flag").
    `hwcaps_priority` lists the glibc-hwcaps names the CPU supports, best first; empty means
    baseline, where glibc-hwcaps entries are unusable. `isa_level` is the CPU's x86 ISA
    level (0 baseline .. 3 v4); by default the one its x86-64-vN names imply. (They differ
    only when GLIBC_TUNABLES hides CPU features: glibc computes the ISA level first.)
    `legacy_hwcap` gives glibc <= 2.36 behaviour for legacy hwcap entries (tls/, x86_64/,
    haswell/ subdirectories); None = glibc >= 2.37, which skips them.
    """
    flags = _as_flags(machine_flags)
    key = name.encode("utf-8", "surrogateescape")
    keys = cache.raw_keys
    found = _bisect(keys, key, flags.char_signed)
    if found is None:
        return None
    first, right, hit = found
    isa_1 = _isa_1(hwcaps_priority) if isa_level is None else (2 << isa_level) - 1
    walk = _Walk(flags, _priority_function(cache, hwcaps_priority), isa_1, legacy_hwcap)
    for index in range(first, right + 1):
        if index > hit and cache_libcmp(key, keys[index], char_signed=flags.char_signed):
            break
        if walk.step(cache.entries[index], cache.has_hwcap_field):
            break
    return walk.best


def _as_flags(machine_flags: CacheFlags | int) -> CacheFlags:
    return machine_flags if isinstance(machine_flags, CacheFlags) else _only(machine_flags)


def _bisect(keys: Sequence[bytes], key: bytes, char_signed: bool) -> tuple[int, int, int] | None:
    """search_cache's binary search: (first equal index, right bound, the hit), or None."""
    left, right = 0, len(keys) - 1
    while left <= right:
        middle = (left + right) // 2
        cmp = cache_libcmp(key, keys[middle], char_signed=char_signed)
        if cmp == 0:
            hit = middle
            while middle > 0 and cache_libcmp(key, keys[middle - 1], char_signed=char_signed) == 0:
                middle -= 1
            return middle, right, hit
        # ldconfig sorts keys in DESCENDING _dl_cache_libcmp order (cache.c compare swaps).
        if cmp < 0:
            left = middle + 1
        else:
            right = middle - 1
    return None


def _priority_function(cache: LdCache, names: Sequence[str]) -> Callable[[CacheEntry], int]:
    """An extension entry's priority (0 = unusable, 1 = best), as glibc_hwcaps_priority."""
    ranks = _priorities(names)
    if not cache.hwcaps_section:  # a cache built by hand: go by the entries' names
        return lambda entry: ranks.get(entry.hwcaps_name, 0) if entry.hwcaps_name else 0
    merged = _merge_priorities(cache.hwcaps_section, ranks)
    return lambda entry: _at(merged, entry.hwcap & 0xFFFFFFFF)


def _merge_priorities(section: Sequence[str | None], ranks: Mapping[str, int]) -> list[int]:
    """glibc_hwcaps_priorities_init: a merge join of the section (sorted by ldconfig) with
    the supported names sorted by name, so an unsorted section loses matches as in ld.so."""
    wanted = sorted(ranks.items())
    result, j = [], 0
    for name in section:
        while name is not None and j < len(wanted) and wanted[j][0] < name:
            j += 1
        if name is not None and j < len(wanted) and wanted[j][0] == name:
            result.append(wanted[j][1])
            j += 1
        else:
            result.append(0)
    return result


def _at(values: Sequence[int], index: int) -> int:
    return values[index] if index < len(values) else 0


def _priorities(names: Sequence[str]) -> dict[str, int]:
    # _dl_hwcaps_priorities: 1 = most preferred; names absent from the list get 0 (unusable).
    result: dict[str, int] = {}
    for position, hw_name in enumerate(names, start=1):
        result.setdefault(hw_name, position)
    return result


def _isa_1(names: Sequence[str]) -> int:
    """The CPU's GNU_PROPERTY_X86_ISA_1 bits implied by its supported x86-64-vN names.

    On x86 a level N subdirectory is supported exactly when ISA level N is (x86_64
    dl-hwcaps-subdirs.c); other targets record ISA level 0, which baseline always allows.
    """
    isa = 1  # GNU_PROPERTY_X86_ISA_1_BASELINE
    for hw_name in names:
        if hw_name.startswith("x86-64-v") and hw_name[8:].isdigit():
            isa |= (1 << int(hw_name[8:])) - 1
    return isa


class _Walk:
    """The state of search_cache's loop over entries with the wanted key."""

    def __init__(
        self,
        flags: CacheFlags,
        priority: Callable[[CacheEntry], int],
        isa_1: int,
        legacy: LegacyHwcap | None,
    ) -> None:
        self.flags = flags
        self.priority = priority
        self.isa_1 = isa_1
        self.legacy = legacy
        self.best: str | None = None
        self.best_priority = 0

    def step(self, entry: CacheEntry, has_hwcap: bool) -> bool:
        """Consider one entry; True when the search stops here."""
        if entry.flags not in self.flags.accepted:
            return False
        named = has_hwcap and entry.is_hwcaps
        if has_hwcap:
            if named and not self._isa_compatible(entry):
                return False
            # Extension entries sort before plain ones: the first plain entry after a
            # usable hwcaps entry ends the search with that hwcaps entry.
            if not named and self.best is not None:
                return True
            # Legacy hwcap/platform entries: skipped since glibc 2.37, filtered before.
            if not named and entry.hwcap != 0 and not self._legacy_ok(entry):
                return False
            if named and not self._better(entry):
                return False
        self.best = entry.value
        return not named and entry.flags == self.flags.default

    def _legacy_ok(self, entry: CacheEntry) -> bool:
        return self.legacy is not None and self.legacy.accepts(entry.hwcap)

    def _isa_compatible(self, entry: CacheEntry) -> bool:
        # sysdeps/x86/dl-isa-level.h dl_cache_hwcap_isa_level_compatible.
        bit = 1 << entry.isa_level
        return self.isa_1 & bit == bit

    def _better(self, entry: CacheEntry) -> bool:
        priority = self.priority(entry)
        if priority == 0 or (self.best is not None and priority >= self.best_priority):
            return False
        self.best_priority = priority
        return True


def entries_for(
    cache: LdCache, *, machine_flags: CacheFlags | int | None = None
) -> Mapping[str, list[str]]:
    """SONAME -> the paths the cache lists for it, in file order (for stale-cache checks).

    With `machine_flags`, only entries that target's ld.so would accept are listed.
    """
    accepted = None if machine_flags is None else _as_flags(machine_flags).accepted
    result: dict[str, list[str]] = {}
    for entry in cache.entries:
        if accepted is not None and entry.flags not in accepted:
            continue
        paths = result.setdefault(entry.key, [])
        if entry.value not in paths:
            paths.append(entry.value)
    return result
