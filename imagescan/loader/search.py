"""glibc's library search for one NEEDED name (elf/dl-load.c `_dl_map_object`).

Order: RPATH of the requester and up its loader chain (only when the requester has no
RUNPATH), then LD_LIBRARY_PATH, the requester's own RUNPATH, ld.so.cache, the compiled-in
system directories. Each directory is tried with its glibc-hwcaps subdirectories first.
The first FOUND or FATAL candidate ends the search (LOADER.md 3.2, 3.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from imagescan.loader import dst
from imagescan.loader.candidates import (
    Candidate,
    absolute,
    replayed,
    run_plan,
    try_candidates,
)
from imagescan.loader.context import LoaderContext, SearchKey, target_of
from imagescan.loader.ldcache import expected_cache_flags, lookup
from imagescan.loader.model import (
    LoadedObject,
    ProcessParams,
    Rule,
    SearchPlan,
    SearchResult,
    SearchSegment,
)

__all__ = ["Candidate", "ProcessParams", "SearchResult", "search", "try_candidates"]


def search(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchResult:
    """Where glibc's loader finds `name` when object `requester` needs it."""
    key = search_key(ctx, params, objects, requester) if "/" not in name else None
    plain = (key, name) if key is not None else None
    known = ctx.plain_searches.get(plain) if plain is not None else None
    if known is not None and known[0] is params:
        return replayed(ctx, known[1])
    plan = glibc_plan(ctx, params, objects, requester, name)

    def in_dir(directory: str, wanted: str) -> Iterator[str]:
        return _in_dir(ctx, params, directory, wanted)

    def cache(wanted: str) -> Iterator[str]:
        return _from_cache(ctx, params, plan.nodeflib, wanted)

    found = run_plan(ctx, params, plan, in_dir, cache)
    if plain is not None:
        ctx.plain_searches[plain] = (params, found)
    return found


def search_key(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
) -> SearchKey | None:
    """The memo key of the requester's searches of names without '/' when their plan
    (glibc_plan) does not depend on the process: no LD_LIBRARY_PATH, and either no DT_RPATH
    up the requester's chain and no DT_RUNPATH (so no $ORIGIN either; the requester then
    counts only by DF_1_NODEFLIB), or the requester's own DT_RUNPATH, which ends the chain.
    Most searches are such, and the plan they would build, hash and compare is the same
    each time. The parameters are keyed by identity (the session makes one of each: its
    memo holds them, and so does this one's entry)."""
    loader = objects[requester]
    if not params.secure and ctx.env.get("LD_LIBRARY_PATH"):
        return None
    if loader.facts.runpath is not None:
        # Its DT_RUNPATH's directories rest on its $ORIGIN (_origin: the main program's
        # file, a library's path as found) and on whether it is the main program (secure
        # mode's limits, _secure); a third of the XL image's searches (issue 14).
        return id(params), loader.facts.nodeflib, loader.path, loader.file, requester == 0
    index: int | None = requester
    while index is not None:  # _rpath_chain's walk, to its first DT_RPATH
        obj = objects[index]
        if obj.facts.rpath is not None and obj.facts.runpath is None:
            return None
        index = obj.loader
    return id(params), loader.facts.nodeflib


def glibc_plan(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchPlan:
    """_dl_map_object's order for one name, DSTs expanded: the plan is also the memo key,
    so objects without RPATH or RUNPATH share one search of the image."""
    loader = objects[requester]
    nodeflib = loader.facts.nodeflib
    if "/" in name:
        values = _dst_values(ctx, params, objects, loader)
        expanded = dst.expand(name, values, _secure(params, loader is objects[0]))
        slash = SearchSegment(Rule.SLASH, None, (expanded,) if expanded is not None else ())
        return SearchPlan(name, (slash,), nodeflib)
    segments: list[SearchSegment] = []
    if loader.facts.runpath is None:
        segments += _rpath_chain(ctx, params, objects, requester)
    llp = None if params.secure else ctx.env.get("LD_LIBRARY_PATH")
    if llp:
        values = _dst_values(ctx, params, objects, objects[0])
        dirs = dst.search_dirs(llp, values, separators=":;")
        segments.append(SearchSegment(Rule.LD_LIBRARY_PATH, None, tuple(dirs)))
    if loader.facts.runpath is not None:
        dirs = _dirs(ctx, params, objects, loader, loader.facts.runpath)
        segments.append(SearchSegment(Rule.RUNPATH, loader.path, tuple(dirs)))
    if not params.setuid_only:  # _dl_map_object: no cache for a __RTLD_SECURE preload
        segments.append(SearchSegment(Rule.CACHE, None, ()))
    if not nodeflib:
        segments.append(SearchSegment(Rule.DEFAULT, None, params.ldso.system_dirs))
    return SearchPlan(name, tuple(s for s in segments if s.dirs or s.rule == Rule.CACHE), nodeflib)


def _rpath_chain(
    ctx: LoaderContext, params: ProcessParams, objects: Sequence[LoadedObject], requester: int
) -> Iterator[SearchSegment]:
    """DT_RPATH of the requester, of whoever loaded it, and so on up to the main program.

    An object that has DT_RUNPATH has its DT_RPATH ignored (get-dynamic-info.h)."""
    index: int | None = requester
    while index is not None:
        obj = objects[index]
        if obj.facts.rpath is not None and obj.facts.runpath is None:
            dirs = _dirs(ctx, params, objects, obj, obj.facts.rpath)
            yield SearchSegment(Rule.RPATH, obj.path, tuple(dirs))
        index = obj.loader


def _origin(ctx: LoaderContext, obj: LoadedObject, is_main: bool) -> str:
    """$ORIGIN: the main program's is its real path (/proc/self/exe); a library's is the
    directory it was found in, symlinks NOT resolved (_dl_new_object, LOADER.md case E),
    a relative realname (found through an empty element) made absolute with getcwd()."""
    if is_main:
        return dst.dirname(ctx.resolve(obj.file) or obj.file)
    return dst.dirname(absolute(ctx, obj.path))


def _from_cache(
    ctx: LoaderContext, params: ProcessParams, nodeflib: bool, name: str
) -> Iterator[str]:
    if ctx.cache is None:
        return
    target = target_of(ctx, params)
    key = (name, params.legacy_hwcap, target.machine, target.elf_class)
    if key not in ctx.cache_hits:
        flags = expected_cache_flags(target.machine, target.elf_class)
        ctx.cache_hits[key] = lookup(
            ctx.cache,
            name,
            machine_flags=flags,
            hwcaps_priority=target.hwcaps,
            legacy_hwcap=params.legacy_hwcap,
        )
    cached = ctx.cache_hits[key]
    if cached is None:
        return
    # DF_1_NODEFLIB forbids cache entries in the system directories (_dl_map_object).
    if nodeflib and any(cached.startswith(d.rstrip("/") + "/") for d in params.ldso.system_dirs):
        return
    yield cached


def _dirs(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    obj: LoadedObject,
    text: str,
) -> list[str]:
    values = _dst_values(ctx, params, objects, obj)
    return dst.rpath_dirs(text, values, _secure(params, obj is objects[0]))


def _secure(params: ProcessParams, executable: bool) -> dst.Secure | None:
    """AT_SECURE's $ORIGIN limits; the trusted directories are ld.so's system dirs."""
    return dst.Secure(executable, params.ldso.system_dirs) if params.secure else None


def _dst_values(
    ctx: LoaderContext, params: ProcessParams, objects: Sequence[LoadedObject], obj: LoadedObject
) -> dst.DstValues:
    origin = _origin(ctx, obj, obj is objects[0])
    platform = target_of(ctx, params).platform
    return dst.DstValues(origin=origin, lib=params.ldso.lib, platform=platform)


def _in_dir(ctx: LoaderContext, params: ProcessParams, directory: str, name: str) -> Iterator[str]:
    """open_path's order in one directory: glibc-hwcaps levels, then (glibc <= 2.36) the
    legacy hwcaps subdirectories, then the directory itself (LOADER.md 3.3)."""
    prefix = directory.rstrip("/") + "/" if directory else ""
    for level in target_of(ctx, params).hwcaps:
        yield f"{prefix}glibc-hwcaps/{level}/{name}"
    for subdir in params.legacy_subdirs:
        yield f"{prefix}{subdir}/{name}"
    yield f"{prefix}{name}"
