"""imagescan.heap: the allocator settings that keep an audit's peak one image's (issue 8).
Their effect is a benchmark's figure (benchmarks/audit_memory.py); here, that this
machine's C library takes them, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CALLS = (
    "from imagescan import heap; "
    "assert heap.fix_mmap_threshold() is True; heap.release_free_memory(); print('taken')"
)


def test_glibc_takes_the_fixed_threshold_and_the_trim() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CALLS], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "taken"
