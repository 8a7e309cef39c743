"""Trying a search plan's candidate files in order, as both loaders do (glibc `open_path`,
musl `path_open`), with one memo per image keyed by the plan itself."""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imagescan.loader.access import ENOENT, ENOTDIR, GO_ON, Creds, stat_is_dir
from imagescan.loader.context import LoaderContext, creds_of, creds_of_image, target_of
from imagescan.loader.model import (
    Outcome,
    ProcessParams,
    Rule,
    SearchPlan,
    SearchResult,
    SearchStep,
    Target,
)
from imagescan.loader.verify import open_verify


@dataclass(frozen=True, slots=True)
class Candidate:
    """One file to try: why (`rule`, `owner`: whose RPATH/RUNPATH), in which path list
    (`segment`: one glibc open_path call) and whether it is the directory's own
    dir/name, tried after its glibc-hwcaps subdirectories (`last_in_dir`)."""

    path: str
    rule: Rule
    owner: str | None = None
    segment: int = -1
    last_in_dir: bool = False


class OpenFailure(enum.Enum):
    """What an open() error other than ENOENT/ENOTDIR/EACCES ends (ELOOP, say)."""

    PATH_LIST = "path list"  # glibc open_path returns -1: that list only, if the dir exists
    SEARCH = "search"  # musl path_open returns -2: "inhibit further path search"


# The files one directory contributes for a name (glibc: its hwcaps subdirectories first).
InDir = Callable[[str, str], Iterator[str]]
# The ld.so.cache's answer for a name, when the plan consults the cache.
CacheLookup = Callable[[str], Iterator[str]]


def run_plan(
    ctx: LoaderContext,
    params: ProcessParams,
    plan: SearchPlan,
    in_dir: InDir,
    cache: CacheLookup,
    *,
    skipped_is_fatal: bool = False,
    open_failure: OpenFailure = OpenFailure.PATH_LIST,
) -> SearchResult:
    """The result of `plan`, computed once per (process parameters, plan) for the image."""
    key = (params, plan)
    found = ctx.searches.get(key)
    if found is None:
        candidates = plan_candidates(plan, in_dir, cache)
        tries = Tries(
            target_of(ctx, params), creds_of(ctx, params), skipped_is_fatal, open_failure,
            params.setuid_only,
        )  # fmt: skip
        found = try_candidates(ctx, candidates, tries)
        ctx.searches[key] = found
        return found
    return replayed(ctx, found)


def replayed(ctx: LoaderContext, found: SearchResult) -> SearchResult:
    """A memoised search's result, the entries it rests on recorded again when the
    context records them (`ctx.consulted`: checks.reuse)."""
    if ctx.consulted is not None:
        for step in found.steps:
            ctx.resolve(absolute(ctx, step.path))
    return found


def plan_candidates(plan: SearchPlan, in_dir: InDir, cache: CacheLookup) -> Iterator[Candidate]:
    """Every candidate path of the plan, in the order the loader tries them."""
    for index, segment in enumerate(plan.segments):
        if segment.rule == Rule.CACHE:
            yield from (Candidate(path, Rule.CACHE) for path in cache(plan.name))
        elif segment.rule == Rule.SLASH:
            yield from (Candidate(path, Rule.SLASH) for path in segment.dirs)
        else:
            for directory in segment.dirs:
                paths = list(in_dir(directory, plan.name))
                for n, path in enumerate(paths, start=1):
                    yield Candidate(path, segment.rule, segment.owner, index, n == len(paths))


@dataclass(frozen=True, slots=True)
class Tries:
    """How one loader tries candidates: as whom, and what an open() error ends."""

    target: Target | None = None
    creds: Creds | None = None
    skipped_is_fatal: bool = False  # musl: a file that opens but cannot be mapped
    open_failure: OpenFailure = OpenFailure.PATH_LIST
    setuid_only: bool = False  # glibc open_path under __RTLD_SECURE in secure mode


def try_candidates(
    ctx: LoaderContext, candidates: Iterator[Candidate], tries: Tries = Tries()
) -> SearchResult:
    """Open candidates in order until one is FOUND or FATAL (glibc open_path; musl's
    path_open, where a file that opens but cannot be mapped ends the search too)."""
    steps: list[SearchStep] = []
    ended = -2  # the path list an open() error ended (glibc)
    for candidate in candidates:
        if candidate.segment == ended and candidate.segment >= 0:
            continue
        outcome, detail = _try(ctx, candidate, tries)
        steps.append(SearchStep(candidate.path, candidate.rule, outcome, candidate.owner, detail))
        if outcome == Outcome.FOUND:
            return SearchResult(tuple(steps), path=candidate.path)
        if outcome == Outcome.FATAL:
            return SearchResult(tuple(steps), fatal=detail)
        if outcome == Outcome.DENIED and detail not in GO_ON:
            if tries.open_failure == OpenFailure.SEARCH:
                break  # musl load_library: fd -2 skips every later path
            if _ends_list(ctx, candidate, tries):
                ended = candidate.segment
    return SearchResult(tuple(steps))


def _try(ctx: LoaderContext, candidate: Candidate, tries: Tries) -> tuple[Outcome, str | None]:
    """What opening one candidate gives: an errno (DENIED), else open_verify's answer."""
    path = absolute(ctx, candidate.path)
    error = ctx.open_errno(path, tries.creds or creds_of_image(ctx))
    if error is not None and error not in (ENOENT, ENOTDIR):
        return Outcome.DENIED, error
    outcome, detail = open_verify(ctx, path, tries.target)
    if outcome == Outcome.SKIPPED and tries.skipped_is_fatal:
        outcome = Outcome.FATAL
    if outcome == Outcome.FOUND and tries.setuid_only and candidate.segment >= 0:
        entry = ctx.regular_file(path)
        if entry is None or not entry.mode & 0o4000:
            return Outcome.ABSENT, "refusing to load: the set-user-ID bit is not set"
    return outcome, detail


def _ends_list(ctx: LoaderContext, candidate: Candidate, tries: Tries) -> bool:
    """glibc open_path: after the directory's own dir/name (the last errno of the
    directory) failed with an errno it does not pass over, and the directory exists
    (stat, here_any), that open_path call returns -1: its later directories are not tried."""
    if not candidate.last_in_dir or candidate.segment < 0:
        return False
    directory = posixpath.dirname(absolute(ctx, candidate.path))
    return stat_is_dir(ctx.rootfs.entries, directory, tries.creds or creds_of_image(ctx))


def absolute(ctx: LoaderContext, path: str) -> str:
    """Relative search paths are relative to the process's working directory (LOADER.md 12)."""
    if path.startswith("/"):
        return path
    return posixpath.join(ctx.working_dir or "/", path)
