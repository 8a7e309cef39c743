"""Print the policy JSON Schema, or rewrite the committed imagescan/policy/schema.json.

A developer tool (issue 8: the package's modules neither read argv nor print):
    python scripts/policy_schema.py            # print it
    python scripts/policy_schema.py --write    # after a change to imagescan/policy/model.py
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from imagescan.policy.schema import SCHEMA_FILE, schema_text


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--write"]:
        SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
        return 0
    if argv:
        print("usage: python scripts/policy_schema.py [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
