"""stale-ld-cache: /etc/ld.so.cache disagrees with what ldconfig would build from ld.so.conf.

The loader never reads ld.so.conf (LOADER.md 3.4, edge case 1): a directory added to it
without re-running ldconfig is not searched, and a cache entry whose file a later layer
deleted falls through to the default directories.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.loader.context import LoaderContext
from imagescan.loader.ldcache import entries_for, expected_cache_flags
from imagescan.loader.ldconf import parse_ld_so_conf
from imagescan.rootfs.model import EntryType
from imagescan.rootfs.paths import listdir

CACHE = "/etc/ld.so.cache"


def stale_cache_findings(ctx: LoaderContext, system_dirs: tuple[str, ...]) -> list[Finding]:
    """Cache entries pointing at missing files, and libraries only ld.so.conf knows of."""
    conf = parse_ld_so_conf(ctx.rootfs.kept.get, lambda d: listdir(ctx.rootfs, d))
    if ctx.cache is None and not conf.dirs:
        return []
    flags = expected_cache_flags(ctx.target.machine, ctx.target.elf_class)
    cached: Mapping[str, list[str]] = {}
    if ctx.cache is not None:
        cached = entries_for(ctx.cache, machine_flags=flags)
    findings = list(_dangling(ctx, cached))
    system = {d.rstrip("/") for d in system_dirs}
    for directory in conf.dirs:
        if directory.rstrip("/") not in system:
            findings.extend(_unlisted(ctx, directory, cached))
    return findings


def _dangling(ctx: LoaderContext, cached: Mapping[str, list[str]]) -> Iterator[Finding]:
    for soname, paths in sorted(cached.items()):
        for path in paths:
            if ctx.regular_file(path) is None:
                yield Finding(
                    FindingKind.STALE_LD_CACHE,
                    Severity.WARNING,
                    soname,
                    f"{CACHE} lists {soname} at {path}, which the image does not have "
                    "(the loader falls through to the default directories)",
                    provider=path,
                )


def _unlisted(
    ctx: LoaderContext, directory: str, cached: Mapping[str, list[str]]
) -> Iterator[Finding]:
    for name in listdir(ctx.rootfs, directory):
        path = f"{directory.rstrip('/')}/{name}"
        entry = ctx.regular_file(path)
        facts = entry.elf if entry is not None and entry.type == EntryType.FILE else None
        if facts is None or facts.kind != "shared" or not name.startswith("lib"):
            continue
        soname = facts.soname or name
        if name != soname or soname in cached:
            continue
        yield Finding(
            FindingKind.STALE_LD_CACHE,
            Severity.WARNING,
            soname,
            f"{path} is in a directory that ld.so.conf lists, but {CACHE} does not know "
            f"{soname}: ldconfig was not run after it was added, so the loader will not "
            "find it there",
            provider=path,
        )
