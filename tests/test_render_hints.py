"""Provenance and fixes in every output: JSON (against the schema), text, Markdown, SARIF;
a hostile build step from the image config is escaped on the way."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

from rich.console import Console

from imagescan.hints.model import Provenance
from imagescan.render.json import render_json
from imagescan.render.markdown import render_markdown
from imagescan.render.sarif import render_sarif
from imagescan.render.text import render_text
from imagescan.report import Report
from tests.test_hints_make import corpus, judged
from tests.test_render_json_schema import validator

PROGRAM = "/usr/local/bin/hello-bookworm"
HOSTILE = "RUN echo \x1b[31mred | `x` <b>*bold*</b>\nnext"


def hinted(corpus_dir: Path) -> Report:
    report = judged(corpus("glibc-too-new"))
    assert report.hints is not None
    files = dict(report.hints.files)
    files[PROGRAM] = dataclasses.replace(files[PROGRAM], created_by=HOSTILE)
    return dataclasses.replace(report, hints=dataclasses.replace(report.hints, files=files))


def test_json_carries_provenance_and_fixes_and_conforms(corpus_dir: Path) -> None:
    doc = json.loads(render_json(hinted(corpus_dir)))
    validator().validate(doc)
    assert doc["provenance"]["libc"] == {
        "name": "glibc",
        "version": "2.31",
        "path": "/lib/x86_64-linux-gnu/libc-2.31.so",
        "source": "package libc6 2.31-13+deb11u14",
    }
    bash = next(f for f in doc["files"] if f["path"] == "/bin/bash")
    assert bash["provenance"]["package"]["purl"].startswith("pkg:deb/debian/bash@5.1-2")
    program = next(f for f in doc["files"] if f["path"] == PROGRAM)
    assert program["provenance"]["created_by"] == HOSTILE
    assert {f["fix"]["cause"] for f in program["findings"]} == {
        "built-against-newer-glibc",
        "follows-from",
    }


def test_text_prints_origin_cause_and_fix_under_the_file(corpus_dir: Path) -> None:
    out = io.StringIO()
    render_text(hinted(corpus_dir), Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    block = text[text.index(PROGRAM) : text.index("/usr/local/bin/newglibc")]
    assert "  from: added by layer 1: RUN echo \\x1b[31mred" in block and "\x1b" not in block
    assert "  why: /usr/local/bin/hello-bookworm needs GLIBC_2.34" in block
    assert "    fix: build it in a stage FROM the runtime's base (debian:11)" in block
    assert "image: Debian GNU/Linux 11 (bullseye), glibc 2.31" in text


def test_markdown_has_a_how_to_fix_section_with_escaped_text(corpus_dir: Path) -> None:
    text = render_markdown(hinted(corpus_dir))
    section = text[text.index("### How to fix") :]
    assert "`/usr/local/bin/hello-bookworm`" in section
    assert "\\<b\\>\\*bold\\*\\</b\\>" in section and "<b>" not in section
    assert "Debian 12 (bookworm) (debian:12)" in section


def test_sarif_results_carry_the_fix_in_message_and_properties(corpus_dir: Path) -> None:
    doc = json.loads(render_sarif(hinted(corpus_dir)))
    run = doc["runs"][0]
    result = next(
        r
        for r in run["results"]
        if r["ruleId"] == "missing-symbol-version" and PROGRAM in r["message"]["text"]
    )
    assert "\nWhy: /usr/local/bin/hello-bookworm needs GLIBC_2.34" in result["message"]["text"]
    assert "\nFix: build it in a stage FROM" in result["message"]["text"]
    assert result["properties"]["fix"]["cause"] == "built-against-newer-glibc"
    assert result["properties"]["provenance"]["layer"] == 1
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "missing-symbol-version")
    assert "oldest common bases" in rule["help"]["text"]


def test_a_report_without_hints_renders_no_hint(corpus_dir: Path) -> None:
    report = dataclasses.replace(hinted(corpus_dir), hints=None)
    assert "provenance" not in json.loads(render_json(report))
    assert "How to fix" not in render_markdown(report)
    assert Provenance(None).summary == "added by an unknown layer, not from a package"


def test_sarif_with_hints_still_validates(corpus_dir: Path) -> None:
    from tests.test_render_sarif import sarif_validator

    sarif_validator().validate(json.loads(render_sarif(hinted(corpus_dir))))
