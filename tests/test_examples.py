"""The admission examples decide as they say, on real outputs of imagescan for the corpus
images: the Kyverno ClusterPolicy's attestation conditions (each `key` evaluated by a
JMESPath implementation, as Kyverno does, against predicates `imagescan attest` made), and
the Ratify schemavalidator's schema against imagescan's SARIF. One accepted image
(env-ld-library-path: everything starts) and denied ones (a library not found, a missing
interpreter, a symbol missing at start and at call time)."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jmespath
import jsonschema
import pytest
import yaml

from imagescan.attest import PREDICATE_TYPE, PolicyUsed, predicate
from imagescan.checks.model import Severity
from imagescan.policy.apply import apply_policy
from imagescan.policy.load import load_policy
from imagescan.render.sarif import sarif_dict
from imagescan.report import Report
from imagescan.scan import ScanOptions, scan
from tests.conftest import CORPUS, REPO
from tests.render_support import require_corpus

EXAMPLES = REPO / "examples"
ACCEPTED = ("env-ld-library-path",)
DENIED = ("env-ld-library-path-unset", "missing-interpreter", "missing-symbol", "glibc-too-new")
# Kyverno's condition operators that the example uses, with Kyverno's meaning
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.ne,
    "GreaterThan": operator.gt,
    "GreaterThanOrEquals": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEquals": operator.le,
}
_VARIABLE = re.compile(r"^\{\{\s*(?P<expr>.*?)\s*\}\}$")


@cache
def judged(name: str) -> Report:
    """The report as `imagescan attest`/`scan` make it: scanned, then the default policy."""
    require_corpus()
    policy = load_policy("default")
    hosts = tuple((h.plugins, h.host) for h in policy.plugin_hosts)
    scanned = scan(f"oci-dir:{CORPUS / 'oci'}:{name}", ScanOptions(plugin_hosts=hosts))
    return apply_policy(scanned.report, policy, today=date.today(), rootfs=scanned.rootfs)


def link_check(name: str) -> dict[str, Any]:
    used = PolicyUsed("default", load_policy("default"), Severity.ERROR)
    return json.loads(json.dumps(predicate(judged(name), used)))  # as cosign stores it


def kyverno_attestation() -> dict[str, Any]:
    policy = yaml.safe_load((EXAMPLES / "kyverno" / "require-link-check.yaml").read_text())
    assert policy["kind"] == "ClusterPolicy"
    (rule,) = policy["spec"]["rules"]
    (verify,) = rule["verifyImages"]
    assert verify["required"] is True
    (attestation,) = verify["attestations"]
    assert attestation["type"] == PREDICATE_TYPE
    return dict(attestation)


def conditions_hold(attestation: dict[str, Any], data: dict[str, Any]) -> bool:
    """Kyverno: every `all` block holds (and at least one of an `any` block)."""
    verdicts = []
    for block in attestation["conditions"]:
        for mode, conditions in block.items():
            results = [_holds(condition, data) for condition in conditions]
            verdicts.append(all(results) if mode == "all" else any(results))
    return bool(verdicts) and all(verdicts)


def _holds(condition: dict[str, Any], data: dict[str, Any]) -> bool:
    match = _VARIABLE.match(condition["key"])
    assert match is not None, condition["key"]
    if condition["operator"] not in OPERATORS:
        pytest.fail(f"the test does not know Kyverno's operator {condition['operator']}")
    value = jmespath.search(match["expr"], data)
    return OPERATORS[condition["operator"]](value, condition["value"])


@pytest.mark.parametrize("name", ACCEPTED + DENIED)
def test_kyverno_conditions_accept_only_images_whose_programs_start(name: str) -> None:
    assert conditions_hold(kyverno_attestation(), link_check(name)) is (name in ACCEPTED)


def test_each_kyverno_condition_denies_on_its_own() -> None:
    """No condition is dead weight: each one alone rejects a predicate made to fail it."""
    attestation = kyverno_attestation()
    good = link_check("env-ld-library-path")
    bad = link_check("missing-symbol")
    (block,) = attestation["conditions"]
    for condition in block["all"]:
        assert _holds(condition, good)
    assert not _holds(block["all"][0], {**good, "summary": {**good["summary"], "files": 0}})
    assert not _holds(block["all"][1], {**good, "summary": bad["summary"]})
    assert not _holds(block["all"][2], {**good, "files": bad["files"]})


def ratify_schema() -> dict[str, Any]:
    path = EXAMPLES / "ratify" / "imagescan-sarif-gate.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


@pytest.mark.parametrize("name", ACCEPTED + DENIED)
def test_ratify_schema_accepts_only_images_whose_programs_start(name: str) -> None:
    validator = jsonschema.Draft7Validator(ratify_schema())
    assert validator.is_valid(sarif_dict(judged(name))) is (name in ACCEPTED)


def test_ratify_verifier_reads_the_schema_for_sarif_referrers() -> None:
    documents = list(
        yaml.safe_load_all((EXAMPLES / "ratify" / "ratify-imagescan-sarif.yaml").read_text())
    )
    verifier = next(d for d in documents if d["kind"] == "Verifier")
    assert verifier["spec"]["name"] == "schemavalidator"
    schemas = verifier["spec"]["parameters"]["schemas"]
    assert Path(schemas["application/sarif+json"]).name == "imagescan-sarif-gate.schema.json"
    policy = next(d for d in documents if d["kind"] == "Policy")
    artifact = verifier["spec"]["artifactTypes"]
    assert policy["spec"]["parameters"]["artifactVerificationPolicies"] == {artifact: "all"}
