"""Root causes and their fallout: each undefined symbol a missing version or library explains
names that cause (issue 10 item 7)."""

from __future__ import annotations

from imagescan.checks.causes import cause_key, link_causes, roots
from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity


def missing_lib(name: str, requester: str) -> Finding:
    return Finding(
        FindingKind.MISSING_LIBRARY,
        Severity.ERROR,
        name,
        f"{name}: cannot open shared object file",
        FatalAt.STARTUP,
        required_by=requester,
    )


def missing_version(version: str, requester: str) -> Finding:
    return Finding(
        FindingKind.MISSING_SYMBOL_VERSION,
        Severity.ERROR,
        version,
        f"version `{version}' not found",
        FatalAt.STARTUP,
        required_by=requester,
        version=version,
    )


def undefined(name: str, requester: str, version: str | None = None) -> Finding:
    return Finding(
        FindingKind.UNDEFINED_SYMBOL,
        Severity.WARNING,
        name,
        f"undefined symbol: {name}",
        FatalAt.CALL,
        required_by=requester,
        version=version,
    )


def test_symbols_of_a_missing_version_name_the_version_before_the_library() -> None:
    findings = [
        missing_lib("libb.so", "/a"),
        missing_version("V_2", "/a"),
        undefined("f", "/a", "V_2"),
        undefined("g", "/a"),
        undefined("h", "/other"),
    ]
    linked = link_causes(findings)
    assert [f.caused_by for f in linked] == [
        None,
        None,
        "missing-symbol-version:V_2",
        "missing-library:libb.so",
        None,  # nothing /other needs is missing: its own root cause
    ]
    grouped = roots(linked)
    assert [(cause.subject, [f.subject for f in fallout]) for cause, fallout in grouped] == [
        ("libb.so", ["g"]),
        ("V_2", ["f"]),
        ("h", []),
    ]


def test_linking_keeps_every_finding_and_is_idempotent() -> None:
    findings = [missing_lib("libb.so", "/a"), undefined("g", "/a")]
    once = link_causes(findings)
    assert len(once) == 2 and link_causes(once) == once
    assert cause_key(findings[0]) == "missing-library:libb.so"
