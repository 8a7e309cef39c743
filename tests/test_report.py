"""What one file may contribute to a report is bounded (issue 15: one 1.1 MB file made
4.19 GB of text output), in every format; JSON and SARIF count what was cut."""

from __future__ import annotations

import json

from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.render.registry import Format, render
from imagescan.report import (
    MAX_FINDINGS_PER_FILE,
    MAX_STRING,
    MAX_SYMBOLS_PER_FINDING,
    ImageInfo,
    Report,
    bounded_verdict,
    cut_string,
)

HUGE = "x" * (1 << 20)  # one 1 MiB string, shared by every entry as a hostile ELF can


def hostile_verdict(count: int = 5000) -> FileVerdict:
    findings = tuple(
        Finding(
            FindingKind.MISSING_LIBRARY,
            Severity.ERROR,
            HUGE,
            f"{HUGE}: cannot open shared object file",
            FatalAt.STARTUP,
            required_by="/bin/x",
            symbols=(HUGE,) * 1000,
        )
        for _ in range(count)
    )
    return FileVerdict(
        "/bin/x", "pie-exec", Status.BROKEN, 0, needed=(HUGE,) * count, findings=findings
    )


def test_a_string_is_cut_and_says_how_much() -> None:
    assert cut_string("short") == "short"
    cut = cut_string(HUGE)
    assert len(cut) < MAX_STRING + 40 and cut.endswith(
        f"({len(HUGE) - MAX_STRING} more characters)"
    )


def test_one_file_contributes_a_bounded_amount_to_every_format() -> None:
    verdict = bounded_verdict(hostile_verdict())
    assert len(verdict.findings) == MAX_FINDINGS_PER_FILE
    assert verdict.findings_cut == 5000 - MAX_FINDINGS_PER_FILE
    assert all(f.symbols_cut == 1000 - MAX_SYMBOLS_PER_FINDING for f in verdict.findings)
    report = Report(ImageInfo("dir:/x", "dir", None, "amd64", "linux"), (verdict,))
    for fmt in Format:
        text = render(report, fmt)
        assert len(text) < 50 << 20, (fmt, len(text))  # 5000 x 1 MiB x 1000 unbounded
    data = json.loads(render(report, Format.JSON))
    entry = data["files"][0]
    assert entry["findings_cut"] == 5000 - MAX_FINDINGS_PER_FILE
    assert entry["findings"][0]["symbols_cut"] == 1000 - MAX_SYMBOLS_PER_FINDING
    sarif = json.loads(render(report, Format.SARIF))
    result = sarif["runs"][0]["results"][0]["properties"]
    assert result["findingsCut"] == 5000 - MAX_FINDINGS_PER_FILE
    assert "and 4800 more findings" in render(report, Format.TEXT)


def test_root_causes_are_kept_before_their_fallout() -> None:
    cause = hostile_verdict(1).findings[0]
    fallout = tuple(
        Finding(FindingKind.UNDEFINED_SYMBOL, Severity.ERROR, f"s{i}", "u", caused_by="x")
        for i in range(MAX_FINDINGS_PER_FILE + 10)
    )
    verdict = FileVerdict("/bin/x", "pie-exec", Status.BROKEN, findings=(*fallout, cause))
    kept = bounded_verdict(verdict)
    assert kept.findings[-1].kind == FindingKind.MISSING_LIBRARY and kept.findings_cut == 11


def test_a_verdict_within_the_bounds_is_reported_as_it_is() -> None:
    """The report shares the analysis' values (an audit's next image holds no copy of
    them: issue 12); what is over a bound is cut, the rest still shared."""
    short = Finding(FindingKind.MISSING_LIBRARY, Severity.ERROR, "libz.so.1", "missing")
    verdict = FileVerdict(
        "/bin/x", "pie-exec", Status.BROKEN, needed=("libz.so.1",), findings=(short,)
    )
    assert bounded_verdict(verdict) is verdict
    long = Finding(FindingKind.MISSING_LIBRARY, Severity.ERROR, HUGE, "missing")
    for over in (
        FileVerdict("/bin/x", "pie-exec", Status.BROKEN, findings=(short, long)),
        FileVerdict("/bin/x", "pie-exec", Status.OK, resolved={"libz.so.1": HUGE}),
        FileVerdict("/bin/x", "pie-exec", Status.OK, needed=("a",) * 501),
    ):
        cut = bounded_verdict(over)
        assert cut != over
    cut = bounded_verdict(FileVerdict("/bin/x", "pie-exec", Status.BROKEN, findings=(short, long)))
    assert cut.findings[0] is short and len(cut.findings[1].subject) < len(HUGE)
