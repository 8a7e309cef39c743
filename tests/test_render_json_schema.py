"""The committed JSON Schema of the JSON report: the schema is valid draft 2020-12, every
corpus image's report and a synthetic report with every optional field conform, and reports
that drift from it (unknown status, missing or extra field) are rejected."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from imagescan.render.json import render_json, report_dict
from tests.render_support import (
    GOLDEN_DIR,
    GOLDEN_IMAGE,
    IMAGES,
    corpus_report,
    synthetic_report,
)


def schema() -> dict[str, Any]:
    text = files("imagescan").joinpath("schemas/report.schema.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_is_valid_draft_2020_12() -> None:
    doc = schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)


@pytest.mark.parametrize("name", IMAGES)
def test_corpus_report_conforms(name: str) -> None:
    doc = json.loads(render_json(corpus_report(name)))
    errors = [e.message for e in validator().iter_errors(doc)]
    assert errors == []
    assert doc["summary"]["files"] == len(doc["files"]) > 0


def test_synthetic_report_with_every_optional_field_conforms() -> None:
    doc = json.loads(render_json(synthetic_report()))
    seen = {key for f in doc["files"] for key in f} | {
        key for f in doc["files"] for g in f["findings"] for key in g
    }
    assert {"host", "go_version", "note", "tried", "symbols", "provider", "version"} <= seen
    assert doc["skipped"] and doc["image_findings"]
    validator().validate(doc)


def _drifted() -> list[tuple[str, dict[str, Any]]]:
    base = report_dict(synthetic_report())
    cases: list[tuple[str, dict[str, Any]]] = []
    for label, edit in (
        ("unknown status", lambda d: d["files"][0].update(status="fine")),
        ("missing path", lambda d: d["files"][0].pop("path")),
        ("extra field", lambda d: d["files"][0].update(colour="red")),
        ("bad severity", lambda d: d["files"][0]["findings"][0].update(severity="fatal")),
        ("relative path", lambda d: d["files"][0].update(path="usr/bin/app")),
        ("other schema version", lambda d: d.update(schema_version=2)),
        ("status missing from summary", lambda d: d["summary"]["by_status"].pop("static")),
        ("tried without rule", lambda d: d["files"][0]["findings"][0]["tried"][0].pop("rule")),
    ):
        doc = copy.deepcopy(base)
        edit(doc)
        cases.append((label, doc))
    return cases


@pytest.mark.parametrize(("label", "doc"), _drifted(), ids=[c[0] for c in _drifted()])
def test_schema_rejects_drift(label: str, doc: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)


def test_golden_json_conforms() -> None:
    doc = json.loads((GOLDEN_DIR / f"{GOLDEN_IMAGE}.json").read_text("utf-8"))
    validator().validate(doc)
    assert doc["summary"]["by_status"]["broken"] == 2


def test_a_report_with_waived_findings_conforms() -> None:
    """The default policy waives libthread_db's debugger-provided symbols: each waived
    finding says so in `waiver`, and the report still conforms."""
    from datetime import date

    from imagescan.policy.apply import apply_policy
    from imagescan.policy.load import load_policy

    report = apply_policy(corpus_report("deb12-base"), load_policy("default"), today=date.today())
    doc = json.loads(render_json(report))
    validator().validate(doc)
    waived = [f for x in doc["files"] for f in x["findings"] if "waiver" in f]
    assert waived and all(f["severity"] == "note" and f["fatal_at"] == "call" for f in waived)
