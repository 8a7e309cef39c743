"""Libraries the loader cannot find, fatal candidates, missing preloads, fragile finds."""

from __future__ import annotations

from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity
from imagescan.elf.model import FileKind
from imagescan.loader.model import Outcome, Process, Resolution
from imagescan.loader.verify import own_problem


def library_findings(process: Process) -> list[Finding]:
    """One finding per NEEDED or preload name that did not resolve."""
    findings: list[Finding] = []
    for res in process.resolutions:
        if res.found is not None or res.auxiliary:
            continue  # dl-deps.c: an absent DT_AUXILIARY filtee is ignored
        requester = process.objects[res.requester].path
        findings.append(_unresolved(res, requester))
    return findings


def own_header_findings(process: Process) -> list[Finding]:
    """A shared object that ld.so itself refuses to load (open_verify's header checks, the
    segment mapping): the file's own verdict carries the loader's message."""
    main = process.main
    if main.facts.kind != FileKind.SHARED:
        return []  # executables are the kernel's
    problem = own_problem(main.facts)
    if problem is None:
        return []
    return [
        Finding(
            FindingKind.INCOMPATIBLE_LIBRARY,
            Severity.ERROR,
            main.path,
            f"error while loading shared libraries: {main.path}: {problem}",
            fatal_at=FatalAt.STARTUP,
            required_by=main.path,
            provider=main.path,
        )
    ]


def _unresolved(res: Resolution, requester: str) -> Finding:
    tried = tuple((s.path, str(s.rule)) for s in res.steps)
    if res.preload:
        return Finding(
            FindingKind.PRELOAD_MISSING,
            Severity.WARNING,
            res.name,
            f"object '{res.name}' cannot be preloaded (cannot open shared object file): ignored.",
            required_by=requester,
            tried=tried,
        )
    if res.fatal is not None:
        where = next((s.path for s in res.steps if s.outcome == Outcome.FATAL), res.name)
        return Finding(
            FindingKind.INCOMPATIBLE_LIBRARY,
            Severity.ERROR,
            res.name,
            f"error while loading shared libraries: {where}: {res.fatal} (needed by {requester})",
            fatal_at=FatalAt.STARTUP,
            required_by=requester,
            provider=where,
            tried=tried,
        )
    return Finding(
        FindingKind.MISSING_LIBRARY,
        Severity.ERROR,
        res.name,
        f"error while loading shared libraries: {res.name}: cannot open shared object file: "
        f"No such file or directory (needed by {requester})",
        fatal_at=FatalAt.STARTUP,
        required_by=requester,
        tried=tried,
    )


def fragile_findings(process: Process) -> list[Finding]:
    """Names resolved only because an earlier object in BFS order had loaded them."""
    findings: list[Finding] = []
    for res in process.resolutions:
        if not res.fragile or res.found is None:
            continue
        requester = process.objects[res.requester].path
        provider = process.objects[res.found]
        findings.append(
            Finding(
                FindingKind.FRAGILE_DEPENDENCY,
                Severity.WARNING,
                res.name,
                f"{res.name} is found for {requester} only because "
                f"{process.objects[provider.loader or 0].path} loaded it first "
                f"({provider.path}); {requester}'s own search path does not reach it",
                required_by=requester,
                provider=provider.path,
            )
        )
    return findings
