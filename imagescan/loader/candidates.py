"""Trying a search plan's candidate files in order, as both loaders do (glibc `open_path`,
musl `path_open`), with one memo per image keyed by the plan itself."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator

from imagescan.loader.context import LoaderContext, target_of
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

Candidate = tuple[str, Rule, str | None]  # path, why it is tried, whose RPATH/RUNPATH
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
) -> SearchResult:
    """The result of `plan`, computed once per (process parameters, plan) for the image."""
    key = (params, plan)
    found = ctx.searches.get(key)
    if found is None:
        candidates = plan_candidates(plan, in_dir, cache)
        target = target_of(ctx, params)
        found = try_candidates(ctx, candidates, skipped_is_fatal=skipped_is_fatal, target=target)
        ctx.searches[key] = found
    elif ctx.consulted is not None:  # the memo's answer rests on the entries it looked at
        for step in found.steps:
            ctx.resolve(absolute(ctx, step.path))
    return found


def plan_candidates(plan: SearchPlan, in_dir: InDir, cache: CacheLookup) -> Iterator[Candidate]:
    """Every candidate path of the plan, in the order the loader tries them."""
    for segment in plan.segments:
        if segment.rule == Rule.CACHE:
            yield from ((path, Rule.CACHE, None) for path in cache(plan.name))
        elif segment.rule == Rule.SLASH:
            yield from ((path, Rule.SLASH, None) for path in segment.dirs)
        else:
            for directory in segment.dirs:
                for path in in_dir(directory, plan.name):
                    yield path, segment.rule, segment.owner


def try_candidates(
    ctx: LoaderContext,
    candidates: Iterator[Candidate],
    *,
    skipped_is_fatal: bool = False,
    target: Target | None = None,
) -> SearchResult:
    """Open candidates in order until one is FOUND or FATAL (glibc open_path; musl's
    path_open, where a file that opens but cannot be mapped ends the search too)."""
    steps: list[SearchStep] = []
    for candidate, rule, owner in candidates:
        outcome, detail = open_verify(ctx, absolute(ctx, candidate), target)
        if outcome == Outcome.SKIPPED and skipped_is_fatal:
            outcome = Outcome.FATAL
        steps.append(SearchStep(candidate, rule, outcome, owner, detail))
        if outcome == Outcome.FOUND:
            return SearchResult(tuple(steps), path=candidate)
        if outcome == Outcome.FATAL:
            return SearchResult(tuple(steps), fatal=detail)
    return SearchResult(tuple(steps))


def absolute(ctx: LoaderContext, path: str) -> str:
    """Relative search paths are relative to the process's working directory (LOADER.md 12)."""
    if path.startswith("/"):
        return path
    return posixpath.join(ctx.working_dir or "/", path)
