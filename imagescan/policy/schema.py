"""The JSON Schema of policy files, generated from the pydantic models.

`python -m imagescan.policy.schema` prints it; `--write` rewrites the committed
imagescan/policy/schema.json (never edit that file by hand; a test fails when it drifts).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
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


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write"]:
        SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
        return 0
    if args:
        print("usage: python -m imagescan.policy.schema [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
