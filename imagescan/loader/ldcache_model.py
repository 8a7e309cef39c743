"""/etc/ld.so.cache's records and flags as glibc's ld.so knows them (sysdeps/generic/dl-cache.h).

The parser is `ldcache_parse`, the lookup `ldcache_lookup`; `ldcache` gathers all three.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
        # Each distinct key encoded once: entries sharing one key share its bytes.
        encoded: dict[str, bytes] = {}
        for e in self.entries:
            if e.key not in encoded:
                encoded[e.key] = e.key.encode("utf-8", "surrogateescape")
        object.__setattr__(self, "raw_keys", tuple(encoded[e.key] for e in self.entries))

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
