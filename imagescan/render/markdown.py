"""GitHub-flavoured Markdown for pull-request comments: verdict, status table, broken files.

Everything taken from the image (paths, loader messages) is escaped: paths go in code spans
whose fence outgrows any backtick run in them, other text is backslash-escaped, and `|` is
escaped inside tables, so a hostile file name cannot break the table or inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from imagescan.checks.causes import roots
from imagescan.checks.model import FileVerdict, Finding, Status
from imagescan.render.fold import fallout_phrase
from imagescan.render.hints import causes
from imagescan.report import Report
from imagescan.rootfs.model import Skipped

SHOWN_FINDINGS = 3  # per file; the rest fold into a <details>
MAX_FINDINGS = 25  # per file, in all; a PR comment is capped at 65536 characters
MAX_ROWS = 100
COLLAPSE_ROWS = 10  # longer tables start folded
# GitHub refuses comments over 65536 characters: each section gets a share of that
BUDGET_BROKEN, BUDGET_OTHERS, BUDGET_SKIPPED, BUDGET_IMAGE = 36_000, 12_000, 8_000, 6_000
BUDGET_FIXES = 6_000  # issue 11: the fix hints of the broken files; taken from BROKEN's share
FATAL = (Status.BROKEN, Status.INTERPRETER_MISSING)
# CommonMark lets any ASCII punctuation be backslash-escaped; these start markup in a line.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#!])")
_BACKTICKS = re.compile(r"`+")
# control characters and undecodable bytes (kept by paths as surrogates) cannot be written as
# UTF-8 or would be invisible: they are shown as \xNN, as ls -b would
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) become one space; unprintables become \\xNN."""
    return _UNPRINTABLE.sub(_escape_char, " ".join(text.split()))


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape of one undecodable byte
        code -= 0xDC00
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def plain(text: str) -> str:
    """Text shown as it is, on one line, in a paragraph or a table cell."""
    return _MARKUP.sub(r"\\\1", one_line(text))


def code(text: str) -> str:
    """A code span holding `text` verbatim, safe in a table cell (GFM: `\\|` inside spans)."""
    body = one_line(text).replace("|", "\\|")
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * (longest + 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def details(summary: str, body: str) -> str:
    """A folded block; blank lines let GitHub render the Markdown inside it."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict_line(report: Report) -> str:
    """The heading: how many files will not start, or that nothing is broken."""
    counts = report.status_counts()
    total = len(report.files)
    fatal = sum(counts[str(s)] for s in FATAL)
    lazy = counts[str(Status.BROKEN_LAZY)]
    parts = []
    if fatal:
        parts.append(f"{fatal} of {total} ELF files will not start")
    if lazy:
        parts.append(f"{files(lazy)} may fail when a function is called")
    if not parts:
        parts.append(f"nothing broken in {total} ELF files")
    return "## imagescan: " + ", ".join(parts)


def image_line(report: Report) -> str:
    image = report.image
    digest = f", {code(image.manifest_digest)}" if image.manifest_digest else ""
    platform = f"{image.os}/{image.architecture}"
    tool = plain(report.tool_version)
    return f"Image {code(image.reference)} ({plain(platform)}{digest}), imagescan {tool}."


def status_table(report: Report) -> str:
    rows = [(s, str(n)) for s, n in report.status_counts().items() if n]
    if report.skipped:
        rows.append(("not read", str(len(report.skipped))))
    return table(("Status", "Files"), rows)


def finding_text(finding: Finding) -> str:
    return f"**{finding.severity}**: {plain(finding.message)}"


def _cause_text(cause: Finding, fallout: Sequence[Finding]) -> str:
    text = finding_text(cause)
    return f"{text} ({plain(fallout_phrase(cause, fallout))})" if fallout else text


def findings_cell(findings: Sequence[Finding]) -> str:
    """The first few root causes, each with its fallout as a count, then the rest folded;
    one line, for a table cell."""
    grouped = roots(findings)
    texts = [_cause_text(cause, fallout) for cause, fallout in grouped[:MAX_FINDINGS]]
    if len(grouped) > MAX_FINDINGS:
        texts.append(f"and {len(grouped) - MAX_FINDINGS} more")
    cell = "<br>".join(texts[:SHOWN_FINDINGS])
    rest = texts[SHOWN_FINDINGS:]
    if rest:
        cell += f"<details><summary>{len(rest)} more</summary>{'<br>'.join(rest)}</details>"
    return cell


def layer_cell(layer: int | None) -> str:
    return "" if layer is None else str(layer)


def file_cell(verdict: FileVerdict) -> str:
    """The path; a plug-in also names the host program it was judged inside."""
    if verdict.host:
        return f"{code(verdict.path)} (inside {code(verdict.host)})"
    return code(verdict.path)


def fitting(texts: Iterable[str], budget: int) -> int:
    """How many of the first texts fit in `budget` characters: at least one, at most
    MAX_ROWS."""
    count = used = 0
    for text in texts:
        used += len(text)
        if count == MAX_ROWS or (count and used > budget):
            break
        count += 1
    return count


def more(count: int) -> str:
    return f"and {count} more (see the JSON or SARIF report)"


def file_rows(verdicts: Sequence[FileVerdict], budget: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (file_cell(v), str(v.status), layer_cell(v.layer), findings_cell(v.findings))
        for v in verdicts[:MAX_ROWS]
    ]
    rows = rows[: fitting(("".join(row) for row in rows), budget)]
    if len(rows) < len(verdicts):
        rows.append((more(len(verdicts) - len(rows)), "", "", ""))
    return rows


def files_section(title: str, verdicts: Sequence[FileVerdict], budget: int, *, folded: bool) -> str:
    """A titled table of files and their findings; folded when asked or when long."""
    body = table(("File", "Status", "Layer", "Findings"), file_rows(verdicts, budget))
    if folded or len(verdicts) > COLLAPSE_ROWS:
        body = details(files(len(verdicts)), body)
    return f"### {title}\n\n{body}"


def skipped_section(items: Sequence[Skipped]) -> str:
    rows = [(code(s.path), layer_cell(s.layer), plain(s.reason)) for s in items[:MAX_ROWS]]
    rows = rows[: fitting(("".join(row) for row in rows), BUDGET_SKIPPED)]
    if len(rows) < len(items):
        rows.append((more(len(items) - len(rows)), "", ""))
    body = table(("File", "Layer", "Why"), rows)
    return f"### Files not read\n\n{details(files(len(items)), body)}"


def image_section(findings: Sequence[Finding]) -> str:
    lines = [f"- {finding_text(f)}" for f in findings[:MAX_ROWS]]
    lines = lines[: fitting(lines, BUDGET_IMAGE)]
    if len(lines) < len(findings):
        lines.append(f"- {more(len(findings) - len(lines))}")
    return "### Image findings\n\n" + "\n".join(lines)


def fix_section(report: Report, verdicts: Sequence[FileVerdict]) -> str:
    """Where each broken file came from and how to fix each of its root causes (issue 11)."""
    items: list[str] = []
    for verdict in verdicts:
        origin = report.hints.files.get(verdict.path) if report.hints else None
        where = f" — {plain(origin.summary)}" if origin is not None else ""
        for _, fix in causes(report, verdict):
            steps = "".join(f"\n  - {plain(step)}" for step in fix.steps)
            items.append(f"- {code(verdict.path)}{where}: {plain(fix.why)}{steps}")
    shown = items[: fitting(items, BUDGET_FIXES)]
    if len(shown) < len(items):
        shown.append(f"- {more(len(items) - len(shown))}")
    return "### How to fix\n\n" + "\n".join(shown)


def render_markdown(report: Report) -> str:
    """The report as a Markdown comment."""
    # files that will not start come before those that fail only when a function is called
    broken = sorted(report.broken(), key=lambda v: v.status not in FATAL)
    listed = {v.path for v in broken}
    others = [v for v in report.files if v.findings and v.path not in listed]
    sections = [verdict_line(report), image_line(report), status_table(report)]
    if report.image_findings:
        sections.append(image_section(report.image_findings))
    if broken:
        budget = BUDGET_BROKEN - (BUDGET_FIXES if report.hints is not None else 0)
        sections.append(files_section("Broken files", broken, budget, folded=False))
    if broken and report.hints is not None:
        sections.append(fix_section(report, broken))
    if others:
        sections.append(files_section("Other findings", others, BUDGET_OTHERS, folded=True))
    if report.skipped:
        sections.append(skipped_section(report.skipped))
    return "\n\n".join(sections) + "\n"
