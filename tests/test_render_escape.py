"""Strings from an image are made visible for a terminal, never acted on (issue 15)."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console

from imagescan.render.escape import display


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("/usr/bin/ok", "/usr/bin/ok"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),  # CSI: clear screen
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC 0: window title
        ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),  # OSC 52: clipboard
        ("a\rb\nc\td\x00", "a\\rb\\nc\\td\\x00"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("b\udcffd", "b\\xffd"),  # an undecodable byte kept as a surrogate
        ("\u202eevil", "\\u202eevil"),  # right-to-left override
        ("café ✓", "café ✓"),
    ],
)
def test_control_characters_become_visible(raw: str, shown: str) -> None:
    assert display(raw) == shown


def test_rich_markup_in_a_name_is_printed_not_interpreted() -> None:
    from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status
    from imagescan.render.text import render_text
    from imagescan.report import ImageInfo, Report

    name = "/usr/bin/[bold red]x[/] [link=http://evil]y[/link]"
    finding = Finding(FindingKind.MISSING_LIBRARY, Severity.ERROR, "l", f"{name}: missing")
    report = Report(
        ImageInfo("dir:/r", "dir", None, "amd64", "linux"),
        (FileVerdict(name, "pie-exec", Status.BROKEN, findings=(finding,)),),
    )
    buffer = StringIO()
    render_text(report, Console(file=buffer, force_terminal=True, soft_wrap=True), quiet=False)
    out = buffer.getvalue()
    assert "[bold red]x[/] [link=http://evil]y[/link]" in out
    assert "\x1b]8;" not in out  # no hyperlink was made of it
