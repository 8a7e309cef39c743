"""Text, Markdown and JUnit show one entry per root cause with its fallout as a count; JSON
and SARIF keep every finding, each consequence naming its cause (issue 10 item 7)."""

from __future__ import annotations

import json

import pytest

from imagescan.checks.causes import link_causes
from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.render.registry import Format, render
from imagescan.report import ImageInfo, Report

SYMBOLS = [f"fn_{i}" for i in range(31)]


def man_db_like() -> Report:
    """A program whose one missing library leaves 31 symbols undefined."""
    missing = Finding(
        FindingKind.MISSING_LIBRARY,
        Severity.ERROR,
        "libmandb.so",
        "error while loading shared libraries: libmandb.so: cannot open shared object file",
        FatalAt.STARTUP,
        required_by="/usr/bin/man",
    )
    fallout = [
        Finding(
            FindingKind.UNDEFINED_SYMBOL,
            Severity.ERROR,
            name,
            f"undefined symbol: {name} (/usr/bin/man)",
            FatalAt.STARTUP,
            required_by="/usr/bin/man",
        )
        for name in SYMBOLS
    ]
    verdict = FileVerdict(
        "/usr/bin/man", "pie-exec", Status.BROKEN, 0, findings=link_causes([missing, *fallout])
    )
    return Report(ImageInfo("dir:/r", "dir", None, "amd64", "linux"), (verdict,))


@pytest.mark.parametrize("fmt", [Format.TEXT, Format.MARKDOWN, Format.JUNIT])
def test_human_formats_fold_the_fallout_under_its_cause(fmt: Format) -> None:
    text = render(man_db_like(), fmt)
    assert "and the 31 symbols it would have provided, left undefined: fn\\_0" in text or (
        "and the 31 symbols it would have provided, left undefined: fn_0" in text
    )
    assert "and 23 more" in text
    assert "undefined symbol: fn_30" not in text


def test_json_and_sarif_keep_every_finding_linked_to_its_cause() -> None:
    report = man_db_like()
    findings = json.loads(render(report, Format.JSON))["files"][0]["findings"]
    assert len(findings) == 32
    assert all(f["caused_by"] == "missing-library:libmandb.so" for f in findings[1:])
    results = json.loads(render(report, Format.SARIF))["runs"][0]["results"]
    assert len(results) == 32
    assert results[5]["properties"]["causedBy"] == "missing-library:libmandb.so"
