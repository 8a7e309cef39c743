"""GitLab Code Quality: the report validates against a JSON schema of the fields GitLab
documents (description, check_name, fingerprint, severity, location.path,
location.lines.begin), fingerprints are unique (GitLab keeps only the first of a
fingerprint) and stable across runs, and severities follow when the file fails."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from imagescan.render.codequality import render_codequality
from imagescan.report import Report
from tests.render_support import IMAGES, corpus_report, synthetic_report

# GitLab's "Code Quality report format": an array of these objects (docs.gitlab.com,
# ci/testing/code_quality, "Implement a custom tool"); GitLab reads no other field.
DOCUMENTED: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "minLength": 1, "pattern": "^[^/]"},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "additionalProperties": False,
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def issues(report: Report) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(render_codequality(report))
    jsonschema.validate(data, DOCUMENTED)
    fingerprints = [i["fingerprint"] for i in data]
    assert len(set(fingerprints)) == len(fingerprints)
    return data


@pytest.mark.parametrize("name", IMAGES)
def test_every_corpus_image_has_the_documented_fields(name: str) -> None:
    report = corpus_report(name)
    found = issues(report)
    count = sum(len(v.findings) for v in report.files) + len(report.image_findings)
    assert len(found) == count


def test_severity_follows_when_the_file_fails() -> None:
    found = issues(corpus_report("missing-symbol"))
    by_path: dict[str, set[str]] = {}
    for item in found:
        by_path.setdefault(item["location"]["path"], set()).add(item["severity"])
    assert by_path["usr/local/bin/sym-now"] == {"blocker"}
    assert by_path["usr/local/bin/sym-lazy"] == {"major"}


def test_hostile_report_and_stable_fingerprints() -> None:
    first = issues(synthetic_report())
    assert first == issues(synthetic_report())
    assert {i["check_name"] for i in first} >= {"missing-library", "stale-ld-cache"}
    assert all("oci-archive:test.tar:latest" in i["description"] for i in first)
