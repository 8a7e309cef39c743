"""The renderer registry is complete (every Format renders), each format renders the golden
image's report exactly as its golden file (tests/golden/glibc-too-new.<format>; refresh with
IMAGESCAN_UPDATE_GOLDEN=1 after a deliberate change), and the text format is plain 100
columns without colour codes."""

from __future__ import annotations

import pytest

from imagescan.render.json import render_json
from imagescan.render.registry import RENDERERS, TEXT_WIDTH, Format, render
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
    assert [str(f) for f in Format] == [
        "text",
        "json",
        "sarif",
        "junit",
        "markdown",
        "spdx-json",
        "cyclonedx-json",
        "codequality",
    ]


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


def test_text_is_plain_and_fits_the_width() -> None:
    text = render(golden_report(), Format.TEXT)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    assert text.splitlines()[-1].startswith("5 ELF files in oci-dir:corpus/oci:glibc-too-new")


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
    words = " ".join(texts[Format.TEXT].split())  # rich wraps the summary at 100 columns
    assert f"{len(report.files)} ELF files in oci-dir:corpus/oci:{name}: " in words
