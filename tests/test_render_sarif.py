"""SARIF 2.1.0: every corpus image's log validates against the official schema and says what
the loader decided (one result per finding, at the file's path inside the image, with its
layer); rules cover every finding kind; URIs are valid relative references; fingerprints are
stable and distinct."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from imagescan.checks.model import FindingKind, Severity
from imagescan.policy.apply import apply_policy
from imagescan.policy.rules import Policy, Waiver
from imagescan.render.sarif import (
    IMAGE_ROOT,
    RULES,
    image_uri,
    render_sarif,
    rule_text,
    sarif_dict,
)
from imagescan.report import Report
from tests.conftest import SHARED
from tests.render_support import (
    HOSTILE_PATH,
    IMAGES,
    corpus_report,
    finding,
    synthetic_report,
)

SARIF_SCHEMA = SHARED / "schemas" / "sarif-schema-2.1.0.json"
# RFC 3986 relative-ref with a path-noscheme/path-empty: unreserved, pct-encoded, sub-delims,
# '@' and '/', and no ':' before the first '/' (the schema's "uri-reference" format is not
# checked by jsonschema without rfc3987 installed, so the test checks it itself).
_URI_PATH = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=@/]|%[0-9A-F]{2})*$")


@cache
def sarif_validator() -> jsonschema.Draft7Validator:
    if not SARIF_SCHEMA.exists():
        pytest.skip(f"no SARIF schema at {SARIF_SCHEMA}")
    schema = json.loads(Path(SARIF_SCHEMA).read_text())
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def valid_log(report: Report) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(report))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator().iter_errors(log)]
    assert errors == []
    return log


def all_uris(log: dict[str, Any]) -> list[str]:
    run = log["runs"][0]
    places = [loc for r in run["results"] for loc in r.get("locations", [])]
    places += [loc for r in run["results"] for loc in r.get("relatedLocations", [])]
    places += [
        loc
        for inv in run["invocations"]
        for n in inv["toolExecutionNotifications"]
        for loc in n["locations"]
    ]
    return [
        p["physicalLocation"]["artifactLocation"]["uri"] for p in places if "physicalLocation" in p
    ]


@pytest.mark.parametrize("name", IMAGES)
def test_corpus_log_validates_and_says_what_the_loader_decided(name: str) -> None:
    report = corpus_report(name)
    log = valid_log(report)
    run = log["runs"][0]
    expected = [(v.path, f) for v in report.files for f in v.findings]
    assert len(run["results"]) == len(expected) + len(report.image_findings)
    for result, (path, want) in zip(run["results"], expected, strict=False):
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert (location["uri"], location["uriBaseId"]) == (path.lstrip("/"), IMAGE_ROOT)
        assert (result["ruleId"], result["level"]) == (want.kind, want.severity)
        assert result["message"]["text"] == want.message
        rule = run["tool"]["driver"]["rules"][result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        layer = result["properties"]["layer"]
        assert result["properties"]["layerDiffId"] == report.image.layers[layer]
        assert result["properties"]["image"] == f"oci-dir:corpus/oci:{name}"
    assert all(_URI_PATH.match(uri) for uri in all_uris(log))


def test_broken_corpus_programs_are_errors_at_their_paths() -> None:
    results = valid_log(corpus_report("missing-interpreter"))["runs"][0]["results"]
    errors = {
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"])
        for r in results
        if r["level"] == "error"
    }
    assert errors == {
        ("usr/local/bin/hello-musl", "missing-interpreter"),
        ("usr/local/bin/hello-badinterp", "missing-interpreter"),
    }
    top = corpus_report("missing-interpreter").image.layers[-1]
    assert all(r["properties"]["layerDiffId"] == top for r in results if r["level"] == "error")


def test_one_rule_per_finding_kind_with_text_and_level() -> None:
    rules = sarif_dict(synthetic_report())["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [str(k) for k in FindingKind]
    assert set(RULES) == set(FindingKind), "every finding kind needs its rule text"
    for rule in rules:
        for key in ("shortDescription", "fullDescription", "help"):
            assert rule[key]["text"].strip()
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    assert rule_text(FindingKind.STALE_LD_CACHE).level == Severity.WARNING


def test_driver_and_base_id_are_described() -> None:
    run = valid_log(synthetic_report())["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("imagescan", "9.9.9")
    assert driver["informationUri"].startswith("https://")
    assert (
        "oci-archive:test.tar:latest"
        in run["originalUriBaseIds"][IMAGE_ROOT]["description"]["text"]
    )
    assert run["properties"]["image"]["layers"] == ["sha256:" + "01" * 32, None]


def test_synthetic_log_validates_with_skipped_files_and_image_findings() -> None:
    report = synthetic_report()
    run = valid_log(report)["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in notes] == [
        "usr/lib/trunc%7Cated.so"
    ]
    assert notes[0]["properties"]["layer"] == 1
    assert "layerDiffId" not in notes[0]["properties"]  # layer 1 has no diff_id in this image
    image_level = [r for r in run["results"] if r["ruleId"] == "stale-ld-cache"]
    assert [uri_of(r) for r in image_level] == ["etc/ld.so.cache"]
    assert sum(len(v.findings) for v in report.files) + 1 == len(run["results"])


def uri_of(result: dict[str, Any]) -> str:
    uri: str = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    return uri


def test_every_result_has_a_file_as_github_code_scanning_demands() -> None:
    # GitHub refuses the whole upload when one result lacks physicalLocation.artifactLocation.uri
    # (locationFromSarifResult: expected at least one location / expected artifact location)
    report = synthetic_report()
    dangling = finding(
        FindingKind.STALE_LD_CACHE, Severity.WARNING, "libz.so.1", provider="/usr/lib/libz.so.1"
    )
    unknown = finding(FindingKind.FRAGILE_DEPENDENCY, Severity.WARNING, "something")
    report = dataclasses.replace(report, image_findings=(*report.image_findings, dangling, unknown))
    results = valid_log(report)["runs"][0]["results"]
    assert all(len(r["locations"]) == 1 and uri_of(r) for r in results)
    image_level = [uri_of(r) for r in results[-3:]]
    assert image_level == ["etc/ld.so.cache", "etc/ld.so.cache", "./"]
    prints = [r["partialFingerprints"]["imagescanFinding/v1"] for r in results]
    assert len(set(prints)) == len(prints)


def test_related_locations_name_requirer_and_provider() -> None:
    run = sarif_dict(synthetic_report())["runs"][0]
    version = next(r for r in run["results"] if r["ruleId"] == "missing-symbol-version")
    related = [
        (loc["physicalLocation"]["artifactLocation"]["uri"], loc["message"]["text"])
        for loc in version["relatedLocations"]
    ]
    assert related == [
        ("usr/lib/libdep.so", "required by: /usr/lib/libdep.so"),
        ("lib/libc.so.6", "provider: /lib/libc.so.6"),
    ]


@pytest.mark.parametrize(
    "path",
    ["/usr/lib/libstdc++.so.6", "/a b/c:d", "/x/%41", "/weird#name?q", HOSTILE_PATH, "/é/ü"],
)
def test_image_uri_is_a_relative_reference_that_round_trips(path: str) -> None:
    uri = image_uri(path)
    assert _URI_PATH.match(uri), uri
    assert not uri.startswith("/")
    assert unquote(uri, errors="surrogateescape") == path.lstrip("/")


def test_fingerprints_are_distinct_and_do_not_depend_on_order_or_version() -> None:
    report = synthetic_report()
    shuffled = dataclasses.replace(report, files=report.files[::-1], tool_version="1.0")

    def prints(r: Report) -> list[str]:
        return [
            x["partialFingerprints"]["imagescanFinding/v1"]
            for x in sarif_dict(r)["runs"][0]["results"]
        ]

    assert sorted(prints(report)) == sorted(prints(shuffled))
    assert len(set(prints(report))) == len(prints(report))


@pytest.mark.parametrize("name", ["glibc-too-new", "missing-symbol", "runpath-vs-rpath"])
def test_corpus_fingerprints_are_distinct(name: str) -> None:
    results = sarif_dict(corpus_report(name))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["imagescanFinding/v1"] for r in results]
    assert len(set(prints)) == len(prints) > 0


def test_policy_waivers_become_accepted_suppressions_with_the_same_fingerprint() -> None:
    report = corpus_report("glibc-too-new")
    waiver = Waiver(path="/usr/local/bin/newglibc", reason="built for bookworm hosts")
    waived = apply_policy(report, Policy(waivers=(waiver,)), today=date(2026, 1, 1))
    before = {_key(r): r for r in valid_log(report)["runs"][0]["results"]}
    after = valid_log(waived)["runs"][0]["results"]
    suppressed = [r for r in after if "suppressions" in r]
    assert {uri_of(r) for r in suppressed} == {"usr/local/bin/newglibc"}
    assert len(suppressed) == len(
        next(v for v in report.files if v.path.endswith("newglibc")).findings
    )
    for result in suppressed:
        assert result["level"] == "note"
        assert result["suppressions"] == [
            {"kind": "external", "justification": "built for bookworm hosts"}
        ]
        assert _key(result) in before  # the alert keeps its identity, now dismissed
    assert all("suppressions" not in r for r in after if uri_of(r) != "usr/local/bin/newglibc")


def _key(result: dict[str, Any]) -> str:
    key: str = result["partialFingerprints"]["imagescanFinding/v1"]
    return key
