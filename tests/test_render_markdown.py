"""Markdown for pull-request comments, read back with a CommonMark parser (markdown-it-py,
GFM tables on): the verdict heading, the status table and the broken-files table say what the
loader decided; hostile paths and messages cannot break a table or inject HTML; long lists
fold into <details>."""

from __future__ import annotations

import dataclasses
import re

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from imagescan.checks.model import FileVerdict, FindingKind, Severity, Status
from imagescan.render.markdown import (
    COLLAPSE_ROWS,
    MAX_ROWS,
    SHOWN_FINDINGS,
    code,
    plain,
    render_markdown,
)
from imagescan.report import Report
from imagescan.rootfs.model import Skipped
from tests.render_support import HOSTILE_PATH, IMAGES, corpus_report, finding, synthetic_report

ALLOWED_HTML = re.compile(r"^</?(br|details|summary)>$")
Table = list[list[Token]]


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def inline_text(token: Token) -> str:
    """What a reader sees: text and code spans, markup dropped."""
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))


def tables(tokens: list[Token]) -> list[Table]:
    """Each table as rows of cells (the header row first), each cell its inline token."""
    found: list[Table] = []
    previous = ""
    for token in tokens:
        if token.type == "table_open":
            found.append([])
        elif token.type == "tr_open":
            found[-1].append([])
        elif token.type == "inline" and previous in ("th_open", "td_open"):
            found[-1][-1].append(token)
        previous = token.type
    return found


def body_rows(table: Table) -> list[list[str]]:
    return [[inline_text(cell) for cell in row] for row in table[1:]]


def html_tags(tokens: list[Token]) -> list[str]:
    tags = [
        tag for t in tokens if t.type == "html_block" for tag in re.findall("<[^>]*>", t.content)
    ]
    for token in tokens:
        tags += [c.content for c in token.children or [] if c.type == "html_inline"]
    return tags


@pytest.mark.parametrize("name", IMAGES)
def test_corpus_comment_says_what_the_loader_decided(name: str) -> None:
    report = corpus_report(name)
    text = render_markdown(report)
    tokens = parse(text)
    heading = next(t for t in tokens if t.type == "inline")
    fatal = len(
        [v for v in report.files if v.status in (Status.BROKEN, Status.INTERPRETER_MISSING)]
    )
    if fatal:
        assert f"{fatal} of {len(report.files)} ELF files will not start" in heading.content
    found = tables(tokens)
    statuses = {row[0]: int(row[1]) for row in body_rows(found[0])}
    assert statuses == {s: n for s, n in report.status_counts().items() if n}
    broken = report.broken()
    if broken:
        status = {v.path: str(v.status) for v in broken}
        shown = {row[0].split(" (inside ")[0]: row[1] for row in body_rows(found[1])}
        assert shown == status
    assert all(ALLOWED_HTML.match(tag) for tag in html_tags(tokens))
    assert "/work/" not in text


def test_files_that_will_not_start_come_first() -> None:
    rows = body_rows(tables(parse(render_markdown(corpus_report("glibc-too-new"))))[1])
    assert [row[1] for row in rows] == ["broken", "broken", "broken-lazy"]


def test_hostile_path_and_message_keep_the_table_intact() -> None:
    text = render_markdown(synthetic_report())
    tokens = parse(text)
    broken = tables(tokens)[1]
    assert all(len(row) == 4 for row in broken)
    row = next(r for r in broken if r[0].children and "tick" in inline_text(r[0]))
    shown = HOSTILE_PATH.replace("\udcff", "\\xff").replace("\x01", "\\x01")
    assert inline_text(row[0]) == shown
    assert inline_text(row[3]) == f"error: {shown}: bad | interp `x` line 2"
    assert all(ALLOWED_HTML.match(tag) for tag in html_tags(tokens))
    text.encode("utf-8")  # no lone surrogates left


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "a|b",
        "`tick`",
        "``double`` ` x",
        "a\\|b",
        "<b>&amp;</b>",
        "*_[x](y)_*",
        "#1 !x ~y~",
    ],
)
def test_code_span_shows_text_verbatim_inside_a_table(text: str) -> None:
    cell = tables(parse(f"| h |\n|---|\n| {code(text)} |\n"))[0][1][0]
    assert [c.type for c in cell.children or []] == ["code_inline"]
    assert inline_text(cell) == text


@pytest.mark.parametrize(
    "text",
    [
        "a|b",
        "`tick`",
        "<script>alert(1)</script>",
        "*not em* _no_",
        "[l](u) ![i](u)",
        "&amp;",
        "\\n",
    ],
)
def test_plain_text_shows_text_verbatim_inside_a_table(text: str) -> None:
    cell = tables(parse(f"| h |\n|---|\n| {plain(text)} |\n"))[0][1][0]
    assert {c.type for c in cell.children or []} == {"text"}
    assert inline_text(cell) == text


def _broken(count: int, findings: int = 1) -> Report:
    report = synthetic_report()
    each = tuple(
        finding(FindingKind.MISSING_LIBRARY, Severity.ERROR, f"lib{i}.so") for i in range(findings)
    )
    files = tuple(
        FileVerdict(f"/bin/p{i:03}", "pie-exec", Status.BROKEN, 0, findings=each)
        for i in range(count)
    )
    return dataclasses.replace(report, files=files, skipped=(), image_findings=())


def test_long_lists_fold_and_are_capped() -> None:
    short = render_markdown(_broken(COLLAPSE_ROWS))
    assert "<details>" not in short
    folded = render_markdown(_broken(COLLAPSE_ROWS + 1))
    assert f"<details><summary>{COLLAPSE_ROWS + 1} files</summary>" in folded
    assert "<details><summary>1 file</summary>" in render_markdown(synthetic_report())
    capped = tables(parse(render_markdown(_broken(MAX_ROWS + 5))))[1]
    assert len(capped) == 1 + MAX_ROWS + 1
    assert inline_text(capped[-1][0]).startswith("and 5 more")


def test_many_findings_of_one_file_fold_in_the_cell() -> None:
    cell = tables(parse(render_markdown(_broken(1, findings=SHOWN_FINDINGS + 2))))[1][1][3]
    html = [c.content for c in cell.children or [] if c.type == "html_inline"]
    assert html.count("<br>") == SHOWN_FINDINGS - 1 + 1  # shown ones, then inside the fold
    assert "<summary>" in html and "2 more" in inline_text(cell)


def test_heading_when_nothing_is_broken() -> None:
    report = synthetic_report()
    fine = tuple(v for v in report.files if v.status in (Status.OK, Status.STATIC))
    text = render_markdown(dataclasses.replace(report, files=fine, skipped=(), image_findings=()))
    assert text.startswith(f"## imagescan: nothing broken in {len(fine)} ELF files\n")
    assert "### Broken files" not in text


def test_other_findings_skipped_files_and_image_findings_have_sections() -> None:
    text = render_markdown(synthetic_report())
    for title in (
        "### Image findings",
        "### Broken files",
        "### Other findings",
        "### Files not read",
    ):
        assert title in text
    rows = body_rows(tables(parse(text))[-1])
    assert rows == [["/usr/lib/trunc|ated.so", "1", "ELF header: file too short"]]


def test_a_plugin_names_its_host() -> None:
    report = synthetic_report()
    plugin = FileVerdict(
        "/usr/lib/py.so",
        "shared",
        Status.BROKEN,
        1,
        findings=(finding(FindingKind.UNDEFINED_SYMBOL, Severity.ERROR, "PyFoo"),),
        host="/usr/bin/python3",
    )
    text = render_markdown(dataclasses.replace(report, files=(plugin,)))
    row = tables(parse(text))[1][1]
    assert inline_text(row[0]) == "/usr/lib/py.so (inside /usr/bin/python3)"


def test_a_huge_report_fits_in_a_github_comment() -> None:
    report = _broken(3000, findings=30)
    noisy = tuple(
        FileVerdict(
            f"/usr/lib/n{i:04}.so", "shared", Status.OK, 0, findings=report.files[0].findings
        )
        for i in range(2000)
    )
    long = "x" * 300
    report = dataclasses.replace(
        report,
        files=report.files + noisy,
        skipped=tuple(Skipped(f"/s/{i}{long}", long, 0) for i in range(500)),
        image_findings=tuple(
            finding(FindingKind.STALE_LD_CACHE, Severity.WARNING, f"{i}{long}") for i in range(300)
        ),
    )
    text = render_markdown(report)
    assert len(text) <= 65536  # GitHub's limit for a comment body
    found = tables(parse(text))
    broken_rows = body_rows(found[1])
    assert (
        broken_rows[-1][0]
        == f"and {3000 - len(broken_rows) + 1} more (see the JSON or SARIF report)"
    )
    assert body_rows(found[2])[-1][0].startswith("and ")
    assert body_rows(found[3])[-1][0].startswith("and ")
    assert "- and " in text.split("### Image findings")[1].split("###")[0]
