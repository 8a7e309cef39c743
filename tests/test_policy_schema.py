"""The committed policy JSON Schema and built-in policies: not drifted, and they agree."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from imagescan.checks.model import FindingKind
from imagescan.policy import builtin_names
from imagescan.policy.schema import SCHEMA_FILE, policy_schema, schema_text

REPO = Path(__file__).resolve().parent.parent
BUILTIN = REPO / "imagescan" / "policy" / "builtin"
POLICIES = REPO / "policies"


def test_committed_schema_has_not_drifted() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "the policy models changed: run `python scripts/policy_schema.py --write`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["schema_version"]


def test_schema_knows_every_finding_kind_as_a_severity_key() -> None:
    keys = policy_schema()["$defs"]["SeverityKey"]["enum"]
    assert keys == ["default", *(str(k) for k in FindingKind)]


def test_policies_dir_is_a_copy_of_the_packaged_builtins() -> None:
    packaged = {p.name: p.read_bytes() for p in BUILTIN.glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in POLICIES.glob("*.yaml")}
    assert shipped == packaged, "policies/ must equal imagescan/policy/builtin/ (copy it over)"
    assert sorted(n.removesuffix(".yaml") for n in packaged) == list(builtin_names())


@pytest.mark.parametrize("name", sorted(p.stem for p in BUILTIN.glob("*.yaml")))
def test_builtins_follow_the_committed_schema(name: str) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    document = yaml.safe_load((BUILTIN / f"{name}.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_what_the_models_reject() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    bad = {
        "schema_version": 1,
        "severty": {},
        "severity": {"no-such-kind": "error"},
        "waivers": [{"path": "/x"}],
        "max_versions": {"GLIBC": 2.28},
    }
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert len(messages) == 4, messages


def test_schema_script_prints_and_writes(tmp_path: Path) -> None:
    script = [sys.executable, str(REPO / "scripts" / "policy_schema.py")]
    printed = subprocess.run(script, capture_output=True, text=True, check=True)
    assert printed.stdout == schema_text()
    target = tmp_path / "schema.json"
    spec = importlib.util.spec_from_file_location(
        "policy_schema", REPO / "scripts" / "policy_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--write"], schema_file=str(target)) == 0
    assert target.read_text(encoding="utf-8") == schema_text()
    bogus = subprocess.run([*script, "--bogus"], capture_output=True, text=True)
    assert bogus.returncode == 2


def test_the_documented_example_is_a_valid_policy(tmp_path: Path) -> None:
    from imagescan.policy import load_policy

    readme = (POLICIES / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    policy = load_policy(str(tmp_path / "example.yaml"))
    assert policy.max_versions["GLIBC"] == "2.28"
    assert policy.waivers[-1].reason == "provided by the debugger that loads it"
    assert policy.rpath.trusted == ("/usr/**", "/opt/**")
