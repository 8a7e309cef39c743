"""Every report format behind one Protocol, in one registry keyed by `Format`."""

from __future__ import annotations

import enum
from typing import Protocol

from imagescan.render.json import render_json
from imagescan.render.junit import render_junit
from imagescan.render.markdown import render_markdown
from imagescan.render.sarif import render_sarif
from imagescan.render.text import render_plain
from imagescan.report import Report


class Renderer(Protocol):
    """Turns a report into the whole text of one output (a file or stdout)."""

    def __call__(self, report: Report) -> str: ...


class Format(enum.StrEnum):
    """The `-o FORMAT[=FILE]` names."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"


RENDERERS: dict[Format, Renderer] = {
    Format.TEXT: render_plain,
    Format.JSON: render_json,
    Format.SARIF: render_sarif,
    Format.JUNIT: render_junit,
    Format.MARKDOWN: render_markdown,
}


def render(report: Report, fmt: Format | str) -> str:
    """The report in one format; `fmt` may be the format's name."""
    return RENDERERS[Format(fmt)](report)
