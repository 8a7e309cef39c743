"""The atheris (libFuzzer) entry point.

python -m tests.fuzz.atheris_main TARGET [LIBFUZZER ARGS]
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["imagescan"]):
    from tests.fuzz.targets import EXPECTED, TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]

    def one_input(data: bytes) -> None:
        with contextlib.suppress(*EXPECTED):
            target(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
