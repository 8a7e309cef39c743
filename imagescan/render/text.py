"""The human report: broken files with the loader's own words, then a one-line summary."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.render.hints import image_text_lines, text_lines
from imagescan.render.markdown import one_line
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
                for indent, hint in text_lines(report, verdict):
                    console.print(Text(" " * indent + one_line(hint), style="cyan"))
        for hint in image_text_lines(report):
            console.print(Text(one_line(hint), style="dim"))
        for item in report.skipped:
            console.print(Text(f"skipped {item.path}: {item.reason}", style="dim"))
    console.print(summary_line(report))


def _file(console: Console, verdict: FileVerdict) -> None:
    head = Text(verdict.path, style="bold")
    head.append(f"  {verdict.status}", style=_STATUS_STYLE.get(verdict.status, "green"))
    if verdict.host:
        head.append(f"  (judged inside {verdict.host})", style="dim")
    console.print(head)
    symbols: dict[tuple[Severity, str, str], list[str]] = {}
    for finding in verdict.findings:
        if finding.severity == Severity.NOTE:
            continue
        if finding.kind == FindingKind.UNDEFINED_SYMBOL:
            key = (finding.severity, str(finding.fatal_at), finding.required_by or "")
            symbols.setdefault(key, []).append(_versioned(finding))
            continue
        line = Text(f"  {finding.severity}: ", style=_STYLE[finding.severity])
        line.append(finding.message)
        if finding.symbols and finding.kind == FindingKind.MISSING_SYMBOL_VERSION:
            line.append(f" (used by: {_names(finding.symbols)})", style="dim")
        console.print(line)
    for (severity, when, required_by), names in symbols.items():
        line = Text(f"  {severity}: ", style=_STYLE[severity])
        fails = "fails at start" if when == "startup" else "fails when called"
        line.append(f"undefined symbols ({fails}) in {required_by}: {_names(names)}")
        console.print(line)


def _versioned(finding: Finding) -> str:
    return f"{finding.subject}@{finding.version}" if finding.version else finding.subject


def _names(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


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
