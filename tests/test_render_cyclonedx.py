"""CycloneDX 1.6: every corpus image's BOM, and the synthetic report's, validate with the
CycloneDX project's own library (its strict JSON validator, the official 1.6 schema); the
verdict rides in documented `imagescan:` properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from imagescan.render.cyclonedx import render_cyclonedx
from imagescan.report import Report
from tests.render_support import HOSTILE_PATH, IMAGES, corpus_report, synthetic_report


def validated(report: Report) -> dict[str, Any]:
    text = render_cyclonedx(report)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    bom: dict[str, Any] = json.loads(text)
    return bom


def file_components(bom: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `file` component, top-level or nested in its package (a worklist)."""
    found, pending = [], list(bom["components"])
    while pending:
        component = pending.pop()
        pending.extend(component.get("components", []))
        if component["type"] == "file":
            found.append(component)
    return found


def properties(component: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in component.get("properties", []):
        out.setdefault(item["name"], []).append(item["value"])
    return out


@pytest.mark.parametrize("name", IMAGES)
def test_every_corpus_image_validates(name: str) -> None:
    report = corpus_report(name)
    bom = validated(report)
    assert len(file_components(bom)) == len(report.files)
    packages = [c for c in bom["components"] if c["type"] == "library"]
    assert len(packages) > 50 and all(c["purl"].startswith("pkg:deb/debian/") for c in packages)
    assert bom["metadata"]["component"]["version"] == report.image.manifest_digest
    assert sum(len(d["dependsOn"]) for d in bom["dependencies"][1:]) > 1000


def test_the_verdict_is_in_documented_properties() -> None:
    bom = validated(corpus_report("missing-symbol"))
    files = {c["name"]: properties(c) for c in file_components(bom)}
    assert files["/usr/local/bin/sym-lazy"]["imagescan:status"] == ["broken-lazy"]
    assert files["/usr/local/bin/sym-lazy"]["imagescan:fatal_at"] == ["call"]
    assert files["/usr/local/bin/sym-now"]["imagescan:fatal_at"] == ["startup"]
    assert "imagescan:fatal_at" not in files["/usr/bin/ls"]
    assert files["/usr/bin/ls"]["imagescan:status"] == ["ok"]
    hashes = next(c for c in file_components(bom) if c["name"] == "/usr/bin/ls")["hashes"]
    assert [h["alg"] for h in hashes] == ["SHA-1", "SHA-256"]


def test_hostile_names_and_every_status_validate() -> None:
    bom = validated(synthetic_report())
    statuses = {properties(c)["imagescan:status"][0] for c in file_components(bom)}
    assert len(statuses) == 7
    names = {c["name"] for c in file_components(bom)}
    assert HOSTILE_PATH not in names and any("\\xff" in n for n in names)


def test_files_are_nested_in_the_package_that_owns_them() -> None:
    bom = validated(corpus_report("runpath-vs-rpath"))
    coreutils = next(c for c in bom["components"] if c["name"] == "coreutils")
    assert coreutils["purl"].startswith("pkg:deb/debian/coreutils@")
    assert "/usr/bin/ls" in {c["name"] for c in coreutils["components"]}
    loose = {c["name"] for c in bom["components"] if c["type"] == "file"}
    assert "/opt/app/bin/app-runpath" in loose  # added by the image's own layer
