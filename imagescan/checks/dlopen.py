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
    """A warning for each `lib*.so*` literal of each program that its loader cannot find."""
    findings: list[Finding] = []
    for program, process in programs:
        for name in process.main.facts.strings_so:
            if _loaded(process, name):
                continue
            result = find(program, process, 0, name)
            if result is not None and result.path is None:
                findings.append(_finding(program, name, result))
    return findings


def _loaded(process: Process, name: str) -> bool:
    """_dl_map_object reuses an object loaded under that name or SONAME."""
    return any(name in obj.names or obj.facts.soname == name for obj in process.objects)


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
