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

from imagescan.loader.ldcache_lookup import (
    cache_libcmp,
    entries_for,
    expected_cache_flags,
    lookup,
)
from imagescan.loader.ldcache_model import (
    DL_CACHE_HWCAP_EXTENSION,
    TLS_HWCAP,
    X86_64_HWCAP_IMPORTANT,
    CacheEntry,
    CacheFlags,
    CacheFormat,
    CacheProblem,
    LdCache,
    LegacyHwcap,
    legacy_hwcap_x86_64,
)
from imagescan.loader.ldcache_parse import parse_ld_so_cache

# The cache's one front door: the model, the parser and the lookup were split (issue 8).
__all__ = [
    "DL_CACHE_HWCAP_EXTENSION",
    "TLS_HWCAP",
    "X86_64_HWCAP_IMPORTANT",
    "CacheEntry",
    "CacheFlags",
    "CacheFormat",
    "CacheProblem",
    "LdCache",
    "LegacyHwcap",
    "cache_libcmp",
    "entries_for",
    "expected_cache_flags",
    "legacy_hwcap_x86_64",
    "lookup",
    "parse_ld_so_cache",
]
