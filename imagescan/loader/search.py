"""glibc's library search for one NEEDED name (elf/dl-load.c `_dl_map_object`).

Order: RPATH of the requester and up its loader chain (only when the requester has no
RUNPATH), then LD_LIBRARY_PATH, the requester's own RUNPATH, ld.so.cache, the compiled-in
system directories. Each directory is tried with its glibc-hwcaps subdirectories first.
The first FOUND or FATAL candidate ends the search (LOADER.md 3.2, 3.3).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from imagescan.elf.model import LdsoDefaults
from imagescan.loader import dst
from imagescan.loader.context import LoaderContext
from imagescan.loader.ldcache import LegacyHwcap, expected_cache_flags, lookup
from imagescan.loader.model import LoadedObject, Outcome, Rule, SearchStep
from imagescan.loader.verify import open_verify


@dataclass(frozen=True)
class ProcessParams:
    """Per-process inputs: the ld.so's compiled-in defaults and secure mode (AT_SECURE)."""

    ldso: LdsoDefaults
    secure: bool = False
    musl: bool = False
    interpreter: str | None = None
    # glibc <= 2.36 only: the tls/, x86_64/, haswell/ ... subdirectories and which legacy
    # hwcap cache entries it accepts (2.37 removed both).
    legacy_subdirs: tuple[str, ...] = ()
    legacy_hwcap: LegacyHwcap | None = None


@dataclass(frozen=True)
class SearchResult:
    """The candidates tried; `path` is the realname of the file found, `fatal` the error."""

    steps: tuple[SearchStep, ...]
    path: str | None = None
    fatal: str | None = None


def search(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchResult:
    """Where glibc's loader finds `name` when object `requester` needs it."""
    key = (params, _context_key(ctx, objects, requester, name), name)
    memo = ctx.searches.get(key)
    if isinstance(memo, SearchResult):
        return memo
    result = _search(ctx, params, objects, requester, name)
    ctx.searches[key] = result
    return result


def _context_key(
    ctx: LoaderContext, objects: Sequence[LoadedObject], requester: int, name: str
) -> tuple[object, ...]:
    """Everything a search depends on besides the name and the process parameters: the
    RPATHs up the loader chain (unless the requester has RUNPATH), the requester's RUNPATH
    and DF_1_NODEFLIB, each path with the $ORIGIN it expands against, and the main
    program's origin when LD_LIBRARY_PATH uses a token. Objects with neither RPATH nor
    RUNPATH add nothing, so most searches of an image share one key."""
    loader = objects[requester].facts
    key: list[object] = [loader.nodeflib]
    # Each RPATH/RUNPATH with its owner: the steps name the owner (issue 14: without it the
    # memo handed one library's search, owner and all, to another with the same RUNPATH).
    if loader.runpath is not None:
        origin = _origin(ctx, objects[requester], requester == 0)
        key.append(("RUNPATH", loader.runpath, origin, objects[requester].path))
    else:
        index: int | None = requester
        while index is not None:
            facts = objects[index].facts
            if facts.rpath is not None and facts.runpath is None:
                origin = _origin(ctx, objects[index], index == 0)
                key.append(("RPATH", facts.rpath, origin, objects[index].path))
            index = objects[index].loader
    if "$" in ctx.env.get("LD_LIBRARY_PATH", ""):
        key.append(("main", _origin(ctx, objects[0], True)))
    if "/" in name and "$" in name:  # a NEEDED path with $ORIGIN: the requester's origin
        key.append(("self", _origin(ctx, objects[requester], requester == 0)))
    return tuple(key)


def _origin(ctx: LoaderContext, obj: LoadedObject, is_main: bool) -> str:
    """$ORIGIN: the main program's is its real path (/proc/self/exe); a library's is the
    directory it was found in, symlinks NOT resolved (_dl_new_object, LOADER.md case E)."""
    return dst.dirname(ctx.resolve(obj.file) or obj.file) if is_main else dst.dirname(obj.path)


def _search(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchResult:
    return try_candidates(ctx, _candidates(ctx, params, objects, requester, name))


Candidate = tuple[str, Rule, str | None]  # path, why it is tried, whose RPATH/RUNPATH


def try_candidates(
    ctx: LoaderContext, candidates: Iterator[Candidate], *, skipped_is_fatal: bool = False
) -> SearchResult:
    """Open candidates in order until one is FOUND or FATAL (glibc open_path; musl's
    path_open, where a file that opens but cannot be mapped ends the search too)."""
    steps: list[SearchStep] = []
    for candidate, rule, owner in candidates:
        outcome, detail = open_verify(ctx, _absolute(ctx, candidate))
        if outcome == Outcome.SKIPPED and skipped_is_fatal:
            outcome = Outcome.FATAL
        steps.append(SearchStep(candidate, rule, outcome, owner, detail))
        if outcome == Outcome.FOUND:
            return SearchResult(tuple(steps), path=candidate)
        if outcome == Outcome.FATAL:
            return SearchResult(tuple(steps), fatal=detail)
    return SearchResult(tuple(steps))


def _candidates(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> Iterator[tuple[str, Rule, str | None]]:
    loader = objects[requester]
    if "/" in name:
        expanded = dst.expand(name, _dst_values(ctx, params, objects, loader))
        if expanded is not None:
            yield expanded, Rule.SLASH, None
        return
    if loader.facts.runpath is None:
        yield from _rpath_chain(ctx, params, objects, requester, name)
    llp = None if params.secure else ctx.env.get("LD_LIBRARY_PATH")
    if llp:
        values = _dst_values(ctx, params, objects, objects[0])
        for directory in dst.search_dirs(llp, values, separators=":;"):
            yield from _in_dir(ctx, params, directory, name, Rule.LD_LIBRARY_PATH, None)
    if loader.facts.runpath is not None:
        for directory in _dirs(ctx, params, objects, loader, loader.facts.runpath):
            yield from _in_dir(ctx, params, directory, name, Rule.RUNPATH, loader.path)
    yield from _from_cache(ctx, params, loader, name)
    if not loader.facts.nodeflib:
        for directory in params.ldso.system_dirs:
            yield from _in_dir(ctx, params, directory, name, Rule.DEFAULT, None)


def _rpath_chain(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> Iterator[tuple[str, Rule, str | None]]:
    """DT_RPATH of the requester, of whoever loaded it, and so on up to the main program.

    An object that has DT_RUNPATH has its DT_RPATH ignored (get-dynamic-info.h)."""
    index: int | None = requester
    while index is not None:
        obj = objects[index]
        if obj.facts.rpath is not None and obj.facts.runpath is None:
            for directory in _dirs(ctx, params, objects, obj, obj.facts.rpath):
                yield from _in_dir(ctx, params, directory, name, Rule.RPATH, obj.path)
        index = obj.loader


def _from_cache(
    ctx: LoaderContext, params: ProcessParams, loader: LoadedObject, name: str
) -> Iterator[tuple[str, Rule, str | None]]:
    if ctx.cache is None:
        return
    key = (name, params.legacy_hwcap)
    if key not in ctx.cache_hits:
        flags = expected_cache_flags(ctx.target.machine, ctx.target.elf_class)
        ctx.cache_hits[key] = lookup(
            ctx.cache,
            name,
            machine_flags=flags,
            hwcaps_priority=ctx.target.hwcaps,
            legacy_hwcap=params.legacy_hwcap,
        )
    cached = ctx.cache_hits[key]
    if cached is None:
        return
    # DF_1_NODEFLIB forbids cache entries in the system directories (_dl_map_object).
    if loader.facts.nodeflib and any(
        cached.startswith(d.rstrip("/") + "/") for d in params.ldso.system_dirs
    ):
        return
    yield cached, Rule.CACHE, None


def _dirs(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    obj: LoadedObject,
    text: str,
) -> list[str]:
    values = _dst_values(ctx, params, objects, obj)
    trusted = None
    if params.secure:
        trusted = frozenset(d.rstrip("/") or "/" for d in params.ldso.system_dirs)
    return dst.search_dirs(text, values, trusted=trusted)


def _dst_values(
    ctx: LoaderContext, params: ProcessParams, objects: Sequence[LoadedObject], obj: LoadedObject
) -> dst.DstValues:
    origin = _origin(ctx, obj, obj is objects[0])
    return dst.DstValues(origin=origin, lib=params.ldso.lib, platform=ctx.target.platform)


def _in_dir(
    ctx: LoaderContext,
    params: ProcessParams,
    directory: str,
    name: str,
    rule: Rule,
    owner: str | None,
) -> Iterator[tuple[str, Rule, str | None]]:
    """open_path's order in one directory: glibc-hwcaps levels, then (glibc <= 2.36) the
    legacy hwcaps subdirectories, then the directory itself (LOADER.md 3.3)."""
    prefix = directory.rstrip("/") + "/" if directory else ""
    for level in ctx.target.hwcaps:
        yield f"{prefix}glibc-hwcaps/{level}/{name}", rule, owner
    for subdir in params.legacy_subdirs:
        yield f"{prefix}{subdir}/{name}", rule, owner
    yield f"{prefix}{name}", rule, owner


def _absolute(ctx: LoaderContext, path: str) -> str:
    """Relative search paths are relative to the process's working directory (LOADER.md 12)."""
    if path.startswith("/"):
        return path
    return posixpath.join(ctx.working_dir or "/", path)
