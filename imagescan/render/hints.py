"""Provenance and fix hints in every output: JSON objects, text lines, Markdown, SARIF.

The renderers call these additive helpers; a report without hints renders as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity
from imagescan.hints.model import Fix, Hints, ImageProvenance, Provenance
from imagescan.report import Report

CONSEQUENCE = "follows-from"  # a finding that another finding of the same file explains
MAX_STEPS_SHOWN = 3


def provenance_dict(provenance: Provenance) -> dict[str, Any]:
    """The `provenance` object of a file."""
    package = provenance.package
    return {
        "layer": provenance.layer,
        "diff_id": provenance.diff_id,
        "created_by": provenance.created_by,
        "package": None
        if package is None
        else {
            "name": package.name,
            "version": package.version,
            "manager": str(package.manager),
            "purl": package.purl,
        },
        "summary": provenance.summary,
    }


def fix_dict(fix: Fix) -> dict[str, Any]:
    """The `fix` object of a finding."""
    return {
        "cause": fix.cause,
        "why": fix.why,
        "steps": list(fix.steps),
        "facts": [{"name": name, "value": value} for name, value in fix.facts],
    }


def image_provenance_dict(image: ImageProvenance) -> dict[str, Any]:
    """The image-wide `provenance` object: C library, distribution, package database."""
    libc = image.libc
    return {
        "libc": None
        if libc is None
        else {"name": libc.name, "version": libc.version, "path": libc.path, "source": libc.source},
        "distribution": {
            "id": image.distro_id,
            "version_id": image.distro_version,
            "name": image.distro_name,
        },
        "packages": {
            "managers": list(image.package_managers),
            "count": image.packages,
            "problems": list(image.package_problems),
        },
    }


def add_to_report_dict(doc: dict[str, Any], report: Report) -> None:
    """Add `provenance` (image and files) and `fix` (findings) to a report's JSON dict."""
    hints = report.hints
    if hints is None:
        return
    doc["provenance"] = image_provenance_dict(hints.image)
    for verdict, out in zip(report.files, doc["files"], strict=True):
        known = hints.files.get(verdict.path)
        if known is not None:
            out["provenance"] = provenance_dict(known)
        _add_fixes(hints, verdict.path, verdict.findings, out["findings"])
    _add_fixes(hints, "", report.image_findings, doc["image_findings"])


def _add_fixes(
    hints: Hints, path: str, findings: tuple[Finding, ...], outs: list[dict[str, Any]]
) -> None:
    for finding, out in zip(findings, outs, strict=True):
        fix = hints.fix_for(path, finding)
        if fix is not None:
            out["fix"] = fix_dict(fix)


def causes(report: Report, verdict: FileVerdict) -> Iterator[tuple[Finding, Fix]]:
    """The root causes of a file's errors and warnings, each with its fix, once each
    (a consequence of another finding, or the same diagnosis twice, is left out)."""
    if report.hints is None:
        return
    seen: set[tuple[str, str]] = set()
    for finding in verdict.findings:
        fix = report.hints.fix_for(verdict.path, finding)
        if fix is None or fix.cause == CONSEQUENCE or finding.severity == Severity.NOTE:
            continue
        if (fix.cause, fix.why) not in seen:
            seen.add((fix.cause, fix.why))
            yield finding, fix


def text_lines(report: Report, verdict: FileVerdict) -> list[tuple[int, str]]:
    """(indent, line) printed under a file in the text report: where it came from, then
    each root cause with its fixes."""
    if report.hints is None:
        return []
    lines: list[tuple[int, str]] = []
    known = report.hints.files.get(verdict.path)
    if known is not None:
        lines.append((2, f"from: {known.summary}"))
    for _, fix in causes(report, verdict):
        lines.append((2, f"why: {fix.why}"))
        for number, step in enumerate(fix.steps[:MAX_STEPS_SHOWN]):
            lines.append((4, f"fix: {step}" if number == 0 else step))
    return lines


def image_text_lines(report: Report) -> list[str]:  # printed once, after the files
    """The image's C library and distribution, and package database problems."""
    hints = report.hints
    if hints is None or not report.broken():
        return []
    image = hints.image
    libc = image.libc
    has = f"{libc.name} {libc.version or '(version unknown)'}" if libc else "no C library found"
    distro = image.distro_name or image.distro_id or "unknown distribution"
    lines = [f"image: {distro}, {has}"]
    lines += [f"image: package database: {problem}" for problem in image.package_problems]
    return lines


def sarif_fix(result: dict[str, Any], report: Report, path: str, finding: Finding) -> None:
    """Add the fix to a SARIF result's message and properties, and the file's provenance."""
    hints = report.hints
    if hints is None:
        return
    known = hints.files.get(path) if path else None
    if known is not None:
        result["properties"]["provenance"] = provenance_dict(known)
    fix = hints.fix_for(path, finding)
    if fix is None:
        return
    result["properties"]["fix"] = fix_dict(fix)
    if fix.cause != CONSEQUENCE:
        steps = "; ".join(fix.steps[:MAX_STEPS_SHOWN])
        origin = f" From: {known.summary}." if known is not None else ""
        result["message"]["text"] += f"\nWhy: {fix.why}.{origin}" + (
            f"\nFix: {steps}" if steps else ""
        )


RULE_HELP = {
    FindingKind.MISSING_SYMBOL_VERSION: "The result's fix names the image's library version, "
    "the oldest common bases that ship the needed one, and where the file came from.",
    FindingKind.MISSING_LIBRARY: "The result's fix says whether the library is elsewhere in "
    "the image and why the search missed it (with the exact patchelf, ldconfig or "
    "LD_LIBRARY_PATH fix), or which package of the image's distribution ships it.",
}


def add_rule_help(run: dict[str, Any], report: Report) -> None:
    """Each rule's help says what the fix hints of its results hold (with hints only)."""
    if report.hints is None:
        return
    for rule in run["tool"]["driver"]["rules"]:
        rule["help"]["text"] += rule_help(FindingKind(rule["id"]))


def rule_help(kind: FindingKind) -> str:
    """What a rule's help adds about the fix hints its results carry."""
    extra = RULE_HELP.get(kind, "The result's fix says why and what to change.")
    return (
        f" {extra} Each result's properties carry `fix` (cause, why, steps, facts) and the"
        " file's `provenance` (layer, build step, package)."
    )
