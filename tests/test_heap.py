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


FREE_LISTS = """
import gc, weakref
from imagescan import heap

class Node:
    pass

def cycle():
    node = Node()
    node.me = node  # only a full collection frees it
    return weakref.ref(node)

gc.disable()
kept = cycle()
gc.freeze()  # as parallel.collector_paused leaves what an analysis made
heap.release_free_memory()
assert kept() is not None, "a trim alone must not run the collector"
assert gc.get_freeze_count() == 0, "an image's frozen objects go back to the collector"
heap.release_free_memory(free_lists=True)
print("freed" if kept() is None else "kept")
"""


def test_with_free_lists_a_full_collection_runs() -> None:
    """After an image of another base the collector's full pass empties CPython's free
    lists (and any cycle): scan._forget_base relies on it."""
    done = subprocess.run(
        [sys.executable, "-c", FREE_LISTS], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "freed"


REUSE = """
import resource
from imagescan import heap

assert heap.fix_mmap_threshold() is True
chunk = 1 << 20  # a read-ahead buffer: under the fixed threshold, so from the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    buffer = b"x" * chunk
    del buffer
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_freed_buffer_stays_in_the_heap_for_the_next() -> None:
    """With the mmap threshold fixed, glibc no longer raises the trim threshold: at its
    128 KiB default each freed 1 MiB buffer went back to the system and the next was
    faulted in again (256 faults each; 1.1 million reading the XL image, issue 14)."""
    done = subprocess.run(
        [sys.executable, "-c", REUSE], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert int(done.stdout) < 200 * 256 // 10
