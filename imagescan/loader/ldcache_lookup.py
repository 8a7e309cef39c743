"""The path glibc's ld.so takes from /etc/ld.so.cache for a name (elf/dl-cache.c
`search_cache`, `_dl_cache_libcmp`), and the entry flags each target accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from imagescan.loader.ldcache_model import (
    EM_AARCH64,
    EM_ARM,
    EM_LOONGARCH,
    EM_MIPS,
    EM_PPC,
    EM_PPC64,
    EM_RISCV,
    EM_S390,
    EM_SPARCV9,
    EM_X86_64,
    FLAG_AARCH64_LIB64,
    FLAG_ARM_LIBHF,
    FLAG_ARM_LIBSF,
    FLAG_ELF,
    FLAG_ELF_LIBC6,
    FLAG_LARCH_FLOAT_ABI_DOUBLE,
    FLAG_LARCH_FLOAT_ABI_SOFT,
    FLAG_MIPS64_LIBN64,
    FLAG_MIPS64_LIBN64_NAN2008,
    FLAG_MIPS_LIB32_NAN2008,
    FLAG_POWERPC_LIB64,
    FLAG_RISCV_FLOAT_ABI_DOUBLE,
    FLAG_RISCV_FLOAT_ABI_SOFT,
    FLAG_S390_LIB64,
    FLAG_SPARC_LIB64,
    FLAG_X8664_LIB64,
    FLAG_X8664_LIBX32,
    CacheEntry,
    CacheFlags,
    LdCache,
    LegacyHwcap,
)


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
