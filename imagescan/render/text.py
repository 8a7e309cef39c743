"""The human report: which image and policy, broken files with the loader's own words (each
root cause once, its fallout folded under it), then a one-line summary.

Every string from the image goes through `display` (visible escapes, never raw control
characters) and into rich `Text` objects, so that neither the terminal nor rich's markup
interprets it. Only a terminal view wraps; files and pipes get whole lines (grep-able).
"""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from rich.text import Text

from imagescan.checks.causes import roots
from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.render.escape import display
from imagescan.render.fold import fallout_phrase, names_text, versioned
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
    """Print the header, each file with findings (errors, warnings, waivers), the files not
    judged, then the summary line; only the summary when `quiet`."""
    if not quiet:
        console.print(header_line(report))
        for verdict in report.files:
            if any(_shown(f) for f in verdict.findings):
                _file(console, verdict)
                for indent, hint in text_lines(report, verdict):
                    console.print(Text(" " * indent + display(one_line(hint)), style="cyan"))
        for finding in report.image_findings:
            if _shown(finding):
                console.print(_finding_line(finding, "image: "))
        for hint in image_text_lines(report):
            console.print(Text(display(one_line(hint)), style="dim"))
        for path, reason in report.not_judged():
            console.print(Text(f"skipped {display(path)}: {display(reason)}", style="dim"))
    console.print(summary_line(report))


def render_plain(report: Report) -> str:
    """The human report without colour, as written to a file: whole lines, never wrapped."""
    buffer = StringIO()
    console = Console(file=buffer, no_color=True, soft_wrap=True, highlight=False, width=100)
    render_text(report, console)
    return buffer.getvalue()


def _shown(finding: Finding) -> bool:
    return finding.severity != Severity.NOTE or finding.waiver is not None


def header_line(report: Report) -> Text:
    """What was scanned, and under which policy and config file."""
    image = report.image
    text = Text(f"{display(image.reference)} ({image.os}/{image.architecture})", style="bold")
    if report.policy is not None:
        text.append(f", policy {display(report.policy)}")
    if report.config_file is not None:
        text.append(f", config {display(report.config_file)}")
    return text


def _file(console: Console, verdict: FileVerdict) -> None:
    head = Text(display(verdict.path), style="bold")
    head.append(f"  {verdict.status}", style=_STATUS_STYLE.get(verdict.status, "green"))
    if verdict.gate is not None:
        head.append(f"  gate: {verdict.gate}", style="dim")
    if verdict.host:
        head.append(f"  (judged inside {display(verdict.host)})", style="dim")
    console.print(head)
    symbols: dict[tuple[Severity, str, str, str], list[str]] = {}
    for finding, fallout in roots(verdict.findings):
        if not _shown(finding):
            continue
        if finding.kind == FindingKind.UNDEFINED_SYMBOL:
            waived = f"waived ({finding.waiver}): " if finding.waiver else ""
            key = (finding.severity, str(finding.fatal_at), finding.required_by or "", waived)
            symbols.setdefault(key, []).append(versioned(finding))
            continue
        console.print(_finding_line(finding, ""))
        if fallout:
            console.print(Text(f"    {display(fallout_phrase(finding, fallout))}", style="dim"))
    for (severity, when, required_by, waived), names in symbols.items():
        line = Text(f"  {severity}: {display(waived)}", style=_STYLE[severity])
        fails = "fails at start" if when == "startup" else "fails when called"
        line.append(f"undefined symbols ({fails}) in {display(required_by)}: ")
        line.append(display(names_text(names)))
        console.print(line)
    if verdict.findings_cut:
        console.print(Text(f"  and {verdict.findings_cut} more findings (left out)", style="dim"))


def _finding_line(finding: Finding, prefix: str) -> Text:
    line = Text(f"  {prefix}{finding.severity}: ", style=_STYLE[finding.severity])
    line.append(display(finding.message))
    if finding.symbols and finding.kind == FindingKind.MISSING_SYMBOL_VERSION:
        used = names_text(finding.symbols, finding.symbols_cut)
        line.append(f" (used by: {display(used)})", style="dim")
    return line


def summary_line(report: Report) -> Text:
    counts = report.status_counts()
    counts.pop(str(Status.SKIPPED), None)  # counted below, with the files not read
    text = Text(f"{len(report.files)} ELF files in {display(report.image.reference)}: ")
    parts = [(k, v) for k, v in counts.items() if v]
    for i, (status, count) in enumerate(parts):
        style = _STATUS_STYLE.get(Status(status), "")
        text.append(f"{count} {status}", style=style)
        if i < len(parts) - 1:
            text.append(", ")
    broken = report.broken()
    waived = sum(1 for v in broken if v.gate == "pass")
    if waived:
        text.append(f"; {waived} of the broken pass under the policy (waived or below --fail-on)")
    skipped = len(report.not_judged())
    if skipped:
        text.append(f"; {skipped} skipped")
    return text
