"""Running a test's body in a new interpreter, where no other thread runs.

The fork machinery declines to fork while another thread runs (a lock it held would stay
held in the child), and a pytest worker may hold session fixtures' server threads: what
forks is tested in a process of its own."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def in_fresh_process(module: str, call: str) -> None:
    """Run `call` (an expression calling a function of `module`) in a new interpreter."""
    code = f"import {module} as t; t.{call}"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
