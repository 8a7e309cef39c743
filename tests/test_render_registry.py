"""The renderer registry is complete (every Format renders), each format renders the golden
image's report exactly as its golden file (tests/golden/glibc-too-new.<format>; refresh with
IMAGESCAN_UPDATE_GOLDEN=1 after a deliberate change), and the text format is plain, without
colour codes, and never hard-wrapped (issue 10 item 5: a file must not depend on a window)."""

from __future__ import annotations

import pytest

from imagescan.render.json import render_json
from imagescan.render.registry import RENDERERS, Format, render
from tests.conftest import CORPUS
from tests.render_support import (
    GOLDEN_IMAGE,
    IMAGES,
    check_golden,
    corpus_report,
    golden_report,
    synthetic_report,
)


def test_every_format_has_a_renderer() -> None:
    assert set(RENDERERS) == set(Format)
    assert [str(f) for f in Format] == ["text", "json", "sarif", "junit", "markdown"]


@pytest.mark.parametrize("fmt", list(Format))
def test_every_renderer_renders_every_kind_of_entry(fmt: Format) -> None:
    text = RENDERERS[fmt](synthetic_report())
    assert isinstance(text, str) and text.endswith("\n")
    assert "usr/bin/app" in text  # SARIF spells it as a relative URI


@pytest.mark.parametrize("fmt", [Format.JSON, Format.SARIF, Format.JUNIT, Format.MARKDOWN])
def test_machine_formats_are_writable_as_utf8_whatever_the_paths(fmt: Format) -> None:
    RENDERERS[fmt](synthetic_report()).encode("utf-8")  # lone surrogates would raise


def test_render_takes_a_format_or_its_name() -> None:
    report = synthetic_report()
    assert render(report, "json") == render(report, Format.JSON) == render_json(report)
    with pytest.raises(ValueError):
        render(report, "xml")


def test_text_is_plain_and_never_wrapped() -> None:
    report = golden_report()
    text = render(report, Format.TEXT)
    assert "\x1b[" not in text
    lines = text.splitlines()
    for verdict in report.files:
        for finding in verdict.findings:
            if finding.severity != "note" and finding.kind != "undefined-symbol":
                assert any(finding.message in line for line in lines), finding.message
    assert max(len(line) for line in lines) > 100  # a long message stays on its line
    assert lines[-1].startswith("5 ELF files in oci-dir:corpus/oci:glibc-too-new")


@pytest.mark.parametrize("fmt", list(Format))
def test_golden(fmt: Format) -> None:
    text = render(golden_report(), fmt)
    assert str(CORPUS) not in text and "/work/" not in text
    check_golden(f"{GOLDEN_IMAGE}.{fmt}", text)


@pytest.mark.parametrize("name", IMAGES)
def test_every_format_renders_every_corpus_image(name: str) -> None:
    report = corpus_report(name)
    texts = {fmt: render(report, fmt) for fmt in Format}
    broken = [v.path for v in report.broken()]
    for fmt, text in texts.items():
        text.encode("utf-8")
        assert f"oci-dir:corpus/oci:{name}" in text, fmt
        assert all(path.lstrip("/") in text for path in broken), fmt
    assert f"{len(report.files)} ELF files in oci-dir:corpus/oci:{name}: " in texts[Format.TEXT]


def test_rich_stays_inside_render_text_and_cli() -> None:
    """Issue 8: the terminal library is one adapter (render/text.py) plus the command line."""
    from tests.conftest import REPO

    users = {
        str(path.relative_to(REPO / "imagescan"))
        for path in (REPO / "imagescan").rglob("*.py")
        if "from rich" in path.read_text(encoding="utf-8")
        or "import rich" in path.read_text(encoding="utf-8")
    }
    assert users == {"render/text.py", "cli.py"}
