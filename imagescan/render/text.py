"""The human report: broken files with the loader's own words, then a one-line summary."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from imagescan.checks.model import FileVerdict, Severity, Status
from imagescan.report import Report

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "dim"}
_STATUS_STYLE = {
    Status.BROKEN: "bold red",
    Status.INTERPRETER_MISSING: "bold red",
    Status.BROKEN_LAZY: "yellow",
}


def render_text(report: Report, console: Console, *, quiet: bool = False) -> None:
    """Print each file with findings (errors and warnings), then the summary line."""
    if not quiet:
        for verdict in report.files:
            if any(f.severity != Severity.NOTE for f in verdict.findings):
                _file(console, verdict)
        for item in report.skipped:
            console.print(Text(f"skipped {item.path}: {item.reason}", style="dim"))
    console.print(summary_line(report))


def _file(console: Console, verdict: FileVerdict) -> None:
    head = Text(verdict.path, style="bold")
    head.append(f"  {verdict.status}", style=_STATUS_STYLE.get(verdict.status, "green"))
    if verdict.host:
        head.append(f"  (judged inside {verdict.host})", style="dim")
    console.print(head)
    for finding in verdict.findings:
        if finding.severity == Severity.NOTE:
            continue
        line = Text(f"  {finding.severity}: ", style=_STYLE[finding.severity])
        line.append(finding.message)
        if finding.symbols and finding.kind != "undefined-symbol":
            line.append(f" [symbols: {', '.join(finding.symbols[:8])}]", style="dim")
        console.print(line)


def summary_line(report: Report) -> Text:
    counts = report.status_counts()
    text = Text(f"{len(report.files)} ELF files in {report.image.reference}: ")
    parts = [(k, v) for k, v in counts.items() if v]
    for i, (status, count) in enumerate(parts):
        style = _STATUS_STYLE.get(Status(status), "")
        text.append(f"{count} {status}", style=style)
        if i < len(parts) - 1:
            text.append(", ")
    if report.skipped:
        text.append(f"; {len(report.skipped)} skipped files")
    return text
