"""/etc/ld.so.cache bytes to an `LdCache`, validated as glibc's `_dl_load_cache_lookup` does.

Three layouts exist: the new format ("glibc-ld.so.cache1.1", glibc >= 2.2), the old libc5
format ("ld.so-1.7.0") and the old format with the new one hidden in its string table
("compat"); ld.so prefers the new part. A cache ld.so would ignore is a `CacheProblem`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from imagescan.loader.ldcache_model import (
    CACHE_EXTENSION_MAGIC,
    ENDIAN_BIG,
    ENDIAN_LITTLE,
    EXT_TAG_GENERATOR,
    EXT_TAG_GLIBC_HWCAPS,
    MAGIC_NEW,
    MAGIC_OLD,
    NEW_ALIGN,
    NEW_ENTRY_SIZE,
    NEW_HEADER_SIZE,
    OLD_ENTRY_SIZE,
    OLD_HEADER_SIZE,
    CacheEntry,
    CacheFormat,
    CacheProblem,
    LdCache,
)


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
    text = _Strings(data, strings)
    entries = []
    for i in range(nlibs):
        flags, key, value = struct.unpack_from(fmt, data, OLD_HEADER_SIZE + i * OLD_ENTRY_SIZE)
        entries.append(CacheEntry(text.at(key, i), text.at(value, i), flags))
    return LdCache(tuple(entries), "old")


# PATH_MAX: ldconfig writes paths and SONAMEs that open() accepts; a longer string is not
# one ld.so could use, and bounding it bounds what one entry can cost (issue 15).
MAX_STRING = 4096


class _Strings:
    """The cache's strings, each offset decoded once: entries that share one long string
    (a hostile cache) must not each decode a copy of it."""

    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.base = base
        self.seen: dict[int, str] = {}
        # ldconfig's string table merges tails (a key is the end of its value), so real
        # caches decode well under twice their size; overlapping offsets could cost
        # entries x MAX_STRING. Past this budget the cache is hostile.
        self.budget = 4 * len(data) + (1 << 16)

    def at(self, index: int, entry: int) -> str:
        """NUL-terminated string `index` bytes after `base` (_dl_cache_verify_ptr + strlen)."""
        found = self.seen.get(index)
        if found is None:
            found = self.seen[index] = self._decode(self.base + index, entry)
        return found

    def _decode(self, start: int, entry: int) -> str:
        data = self.data
        end = data.find(b"\0", start, start + MAX_STRING + 1) if 0 <= start < len(data) else -1
        if end < 0 and 0 <= start < len(data) and data.find(b"\0", start) >= 0:
            raise _Malformed(f"entry {entry} has a string longer than {MAX_STRING} bytes")
        if end < 0:
            raise _Malformed(f"entry {entry} has a string offset outside the file")
        self.budget -= end - start
        if self.budget < 0:
            raise _Malformed(f"entry {entry}: the strings overlap far more than ldconfig's do")
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
    text = _Strings(data, base)
    entries = []
    for i in range(nlibs):
        offset = base + NEW_HEADER_SIZE + i * NEW_ENTRY_SIZE
        flags, key, value, _os, hwcap = struct.unpack_from(layout, data, offset)
        # New-format string indices are relative to the new header (cache.c str_offset).
        entry = CacheEntry(text.at(key, i), text.at(value, i), flags, hwcap)
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
    seen: dict[int, str | None] = {}  # each name offset decoded once, as for the entries
    names = []
    for k in range(0, size, 4):
        index = _u32(data, start + k, little)
        if index not in seen:
            seen[index] = _hwcaps_name(data, index)
        names.append(seen[index])
    return tuple(names)


def _hwcaps_name(data: bytes, index: int) -> str | None:
    # glibc_hwcaps_compare reads the name at `cache + index`: relative to the FILE start,
    # even in the old+new layout, where ldconfig wrote it relative to the new header. We do
    # the same, so such names come out unmatched (priority 0) just as in ld.so. A name
    # longer than any subdirectory name can be (MAX_STRING) matches nothing either.
    end = data.find(b"\0", index, index + MAX_STRING + 1) if index < len(data) else -1
    return data[index:end].decode("utf-8", "surrogateescape") if end >= 0 else None


def _generator(data: bytes, section: tuple[int, int] | None) -> str | None:
    if section is None:
        return None
    start, size = section
    return data[start : start + size].decode("utf-8", "replace")
