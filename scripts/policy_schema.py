"""Developer tool: print the policy JSON Schema, or `--write` it to imagescan/policy/schema.json
(the committed file a test compares with the models)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from imagescan.policy.schema import SCHEMA_FILE, schema_text


def main(argv: Sequence[str] | None = None, schema_file: str | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write"]:
        target = SCHEMA_FILE if schema_file is None else schema_file
        with open(target, "w", encoding="utf-8") as out:
            out.write(schema_text())
        return 0
    if args:
        print("usage: python scripts/policy_schema.py [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
