"""SPDX 2.3: every corpus image's document, and the synthetic report's (hostile names, every
status), parse and validate with the SPDX project's own tools (spdx-tools); files carry the
SHA-1 SPDX requires and the SHA-256 of their bytes; the verdict is each file's comment."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from spdx_tools.spdx.model import ChecksumAlgorithm, Document, RelationshipType
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from imagescan.render.spdx import render_spdx
from imagescan.report import Report
from tests.render_support import IMAGES, corpus_report, synthetic_report


def parsed(report: Report, tmp_path: Path) -> Document:
    """The document as the SPDX parser reads it, after the SPDX validator found nothing."""
    path = tmp_path / "report.spdx.json"
    path.write_text(render_spdx(report), encoding="utf-8")
    document = parse_file(str(path))
    problems = [m.validation_message for m in validate_full_spdx_document(document, "SPDX-2.3")]
    assert problems == []
    return document


@pytest.mark.parametrize("name", IMAGES)
def test_every_corpus_image_validates(name: str, tmp_path: Path) -> None:
    report = corpus_report(name)
    document = parsed(report, tmp_path)
    assert len(document.files) == len(report.files)
    links = [
        r for r in document.relationships if r.relationship_type is RelationshipType.DYNAMIC_LINK
    ]
    assert len(links) > 1000
    digest = report.image.manifest_digest
    assert digest is not None
    image = document.packages[0]
    assert image.checksums[0].value == digest.removeprefix("sha256:")


def test_files_have_sha1_and_sha256_and_say_their_verdict(tmp_path: Path) -> None:
    report = corpus_report("missing-symbol")
    document = parsed(report, tmp_path)
    files = {f.name: f for f in document.files}
    lazy = files["./usr/local/bin/sym-lazy"]
    assert {c.algorithm for c in lazy.checksums} == {
        ChecksumAlgorithm.SHA1,
        ChecksumAlgorithm.SHA256,
    }
    assert lazy.comment is not None and lazy.comment.startswith(
        "imagescan: broken-lazy, fatal at call"
    )
    now = files["./usr/local/bin/sym-now"]
    assert now.comment is not None and "broken, fatal at startup" in now.comment


def test_hostile_names_still_validate(tmp_path: Path) -> None:
    document = parsed(synthetic_report(), tmp_path)
    names = {f.name for f in document.files}
    assert any("\\xff" in name for name in names)  # a non-UTF-8 byte, spelled out
    kinds = {r.comment for r in document.relationships if r.comment}
    assert kinds == {
        "DT_NEEDED",
        "LD_PRELOAD",
        "PT_INTERP",
        "plugin judged inside its host program",
    }


def test_a_report_without_a_link_graph_says_so_by_failing_validation(tmp_path: Path) -> None:
    """No digests are ever made up: without the reader's hashes a file has no checksum, and
    the SPDX parser refuses the document."""
    report = dataclasses.replace(synthetic_report(), links=None)
    data = json.loads(render_spdx(report))
    assert all(f["checksums"] == [] for f in data["files"])
    path = tmp_path / "bare.spdx.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SPDXParsingError, match="checksums"):
        parse_file(str(path))


def test_packages_contain_the_files_they_own(tmp_path: Path) -> None:
    document = parsed(corpus_report("runpath-vs-rpath"), tmp_path)
    names = {f.spdx_id: f.name for f in document.files}
    coreutils = next(p for p in document.packages if p.name == "coreutils")
    assert coreutils.external_references[0].locator.startswith("pkg:deb/debian/coreutils@")
    contains = {
        (r.spdx_element_id, names.get(str(r.related_spdx_element_id)))
        for r in document.relationships
        if r.relationship_type is RelationshipType.CONTAINS
    }
    assert (coreutils.spdx_id, "./usr/bin/ls") in contains
    assert ("SPDXRef-Image", "./opt/app/bin/app-runpath") in contains  # from no package
    assert ("SPDXRef-Image", "./usr/bin/ls") not in contains
