"""The JSON Schema of policy files, generated from the pydantic models.

`imagescan policy schema` prints it; `python scripts/policy_schema.py --write` rewrites the
committed imagescan/policy/schema.json (never edit that file by hand; a test fails when it
drifts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagescan.policy.model import PolicyDocument

SCHEMA_FILE = Path(__file__).with_name("schema.json")


def policy_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that policy documents follow."""
    return PolicyDocument.model_json_schema(mode="validation")


def schema_text() -> str:
    """The schema as the committed file spells it."""
    return json.dumps(policy_schema(), indent=2, sort_keys=True) + "\n"
