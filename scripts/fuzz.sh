#!/usr/bin/env bash
# A bounded fuzz campaign: scripts/fuzz.sh TARGET SECONDS (TARGET: elf, ldcache, layer,
# ldconf, reference, manifest, or all). Installs the `fuzz` extra (atheris) into .venv when
# it can; without it the campaign is a plain mutation loop. Exits 1 when a target crashed
# or hung; the inputs that did it stay in .fuzz/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
fi
if ! .venv/bin/python -c 'import atheris' 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[fuzz]' \
    || echo "fuzz.sh: atheris does not install here; using the mutation loop" >&2
fi
exec .venv/bin/python -m tests.fuzz.run "$1" "$2"
