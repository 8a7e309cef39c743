"""GitLab Code Quality (a subset of Code Climate's issue format), for the merge-request widget.

GitLab documents six fields and reads no others: `description`, `check_name`,
`fingerprint`, `severity` (info, minor, major, critical, blocker), `location.path` and
`location.lines.begin`. Paths are inside the image (no leading slash), so the widget shows
them as they are; each description ends with the image's reference (fingerprints do not: a
finding keeps its identity when the tag moves); ELF files have no lines, so `begin` is 1.
Severity: a finding fatal at start is `blocker`, another error `critical`, a warning
`major`, a note `info`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from imagescan.checks.model import FatalAt, Finding, Severity
from imagescan.render.sarif import fingerprint, image_location
from imagescan.render.sbom import display
from imagescan.report import Report

_SEVERITY = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.NOTE: "info"}


def severity(finding: Finding) -> str:
    if finding.severity == Severity.ERROR and finding.fatal_at == FatalAt.STARTUP:
        return "blocker"
    return _SEVERITY[finding.severity]


def issue(report: Report, finding: Finding, path: str, identity: str) -> dict[str, Any]:
    return {
        "description": display(f"{finding.message} (image {report.image.reference})"),
        "check_name": str(finding.kind),
        "fingerprint": identity,
        "severity": severity(finding),
        "location": {"path": display(path.lstrip("/")) or ".", "lines": {"begin": 1}},
    }


def codequality_list(report: Report) -> list[dict[str, Any]]:
    """One issue per finding; fingerprints as SARIF's, made unique (GitLab keeps only the
    first issue of a fingerprint)."""
    found = [(f, v.path, fingerprint(f, v.path)) for v in report.files for f in v.findings]
    for f in report.image_findings:
        where = image_location(f)
        found.append((f, where, fingerprint(f, f"{where}\0{f.provider or ''}")))
    issues: list[dict[str, Any]] = []
    seen: set[str] = set()
    for finding, path, identity in found:
        unique = identity
        while unique in seen:
            unique = hashlib.sha256((unique + "\0" + display(finding.message)).encode()).hexdigest()
        seen.add(unique)
        issues.append(issue(report, finding, path, unique))
    return issues


def render_codequality(report: Report) -> str:
    """The report's findings as a GitLab Code Quality JSON array."""
    return json.dumps(codequality_list(report), indent=2) + "\n"
