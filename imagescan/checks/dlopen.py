"""Library names a program may `dlopen` that its loader would not find (issue 5).

A program that imports `dlopen` and carries `lib*.so*` string literals (ElfFacts.strings_so)
probably loads those names at run time. dlopen searches a bare name as a DT_NEEDED of the
calling object (elf/dl-open.c dl_open_worker -> _dl_map_object): an object already loaded
under that name is reused, else the caller's RPATH/RUNPATH, LD_LIBRARY_PATH, the cache and
the default directories are tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.loader.model import Process
from imagescan.loader.search import SearchResult

# (program, its process, requester index, name) -> where its loader finds the name
Finder = Callable[[str, Process, int, str], SearchResult | None]


def dlopen_findings(programs: Iterable[tuple[str, Process]], find: Finder) -> list[Finding]:
    """A warning for each `lib*.so*` literal of each program that its loader cannot find.

    Names are taken by library (`libfoo` of libfoo.so, libfoo.so.2, ...): programs try
    several names of one library in turn (a versioned soname, then the bare .so), and
    linkers carry `libc.so` as a file name; a library loaded already, or found under one
    of its names, is not reported under the others."""
    findings: list[Finding] = []
    for program, process in programs:
        for names in _by_library(process.main.facts.strings_so).values():
            findings += _library_findings(program, process, names, find)
    return findings


def _library(name: str) -> str:
    """libfoo for libfoo.so, libfoo.so.2 and /usr/lib/libfoo.so.2.1."""
    return name.rsplit("/", 1)[-1].split(".so", 1)[0]


def _by_library(names: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(_library(name), []).append(name)
    return grouped


def _library_findings(
    program: str, process: Process, names: list[str], find: Finder
) -> list[Finding]:
    if any(_loaded(process, name) for name in names):
        return []
    results = [(name, find(program, process, 0, name)) for name in names]
    if any(result is None or result.path is not None for _, result in results):
        return []
    return [_finding(program, name, result) for name, result in results if result is not None]


def _loaded(process: Process, name: str) -> bool:
    """_dl_map_object reuses an object loaded under that name or SONAME; a library loaded
    under another version of its name (libc.so.6 for "libc.so.1") is not dlopened again."""
    library = _library(name)
    return any(
        name in obj.names
        or obj.facts.soname == name
        or any(_library(n) == library for n in (*obj.names, obj.facts.soname or ""))
        for obj in process.objects
    )


def _finding(program: str, name: str, result: SearchResult) -> Finding:
    why = f": {result.fatal}" if result.fatal else ""
    return Finding(
        FindingKind.DLOPEN_CANDIDATE_MISSING,
        Severity.WARNING,
        name,
        f'{program} imports dlopen and names "{name}", which its loader would not '
        f'find{why}: dlopen("{name}") fails at run time',
        required_by=program,
        tried=tuple((s.path, str(s.rule)) for s in result.steps),
    )
