"""Root causes and their fallout (issue 10 item 7): one root cause, one entry.

A library that cannot be found makes every symbol its requester expected from it undefined;
a version that a library lacks makes every symbol of that version undefined. Those undefined
symbols are real (the loader would report them after the first failure) but they are not a
second problem: each is linked to its cause by `caused_by`, the cause's `cause_key`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from imagescan.checks.model import Finding, FindingKind

# Causes whose fallout is undefined symbols of the same requester.
LIBRARY_CAUSES = (FindingKind.MISSING_LIBRARY, FindingKind.INCOMPATIBLE_LIBRARY)


def cause_key(finding: Finding) -> str:
    """How a consequence names its cause: `kind:subject` (one library, one version)."""
    return f"{finding.kind}:{finding.subject}"


def link_causes(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """The same findings, each undefined symbol that a missing version or a missing library
    explains carrying `caused_by`; a version cause wins over a library cause."""
    versions = {
        (f.required_by, f.subject): f
        for f in findings
        if f.kind == FindingKind.MISSING_SYMBOL_VERSION and f.caused_by is None
    }
    libraries: dict[str | None, Finding] = {}
    for f in findings:
        if f.kind in LIBRARY_CAUSES:
            libraries.setdefault(f.required_by, f)
    return tuple(_linked(f, versions, libraries) for f in findings)


def _linked(
    finding: Finding,
    versions: dict[tuple[str | None, str], Finding],
    libraries: dict[str | None, Finding],
) -> Finding:
    if finding.kind != FindingKind.UNDEFINED_SYMBOL or finding.caused_by is not None:
        return finding
    cause = versions.get((finding.required_by, finding.version or "")) or libraries.get(
        finding.required_by
    )
    if cause is None:
        return finding
    return dataclasses.replace(finding, caused_by=cause_key(cause))


def consequences(findings: Sequence[Finding], cause: Finding) -> list[Finding]:
    """The findings that name `cause` as their cause (same cause, same requester)."""
    key = cause_key(cause)
    return [f for f in findings if f.caused_by == key and f.required_by == cause.required_by]


def roots(findings: Sequence[Finding]) -> list[tuple[Finding, list[Finding]]]:
    """Each finding that is not a consequence, with the consequences it explains."""
    return [(f, consequences(findings, f)) for f in findings if f.caused_by is None]
