"""How this process gives memory back between images (issue 8: an audit's peak must stay
one image's, not grow with the images before it).

glibc's malloc raises its mmap threshold to the size of each large block freed, so after
the first image the next image's large buffers (inflated layers, store entries, pickled
verdicts) come from the heap, and the heap keeps the high-water mark of every image
before. A fixed threshold keeps large buffers in their own mappings, unmapped on free;
`malloc_trim` after an image returns the heap's free pages. Elsewhere (musl, macOS) both
are no-ops: the results never depend on them, only the peak memory does.

CPython's own free lists (tuples, dicts, lists, floats) keep freed objects scattered over
pymalloc's arenas, and an arena goes back to the system only when all of it is free; a
full collection empties those lists. After an image of another base, whose objects were
all just let go, that gives back about 7 MiB that the next image's peak would otherwise
sit on (issue 8).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
# Fixed at 4 MiB, not glibc's 128 KiB default: at 128 KiB every 1 MiB read-ahead chunk and
# inflate buffer was a fresh mapping, faulted in and unmapped, and reading a 1 GB layer took
# 9.3 s instead of 2.4 s; the audit's peak is the same either way (benchmarks/README.md,
# "2026-12-02 night: the cold audit").
LARGE_BLOCK = 4 << 20
# The largest buffer a reader should ask for at once: under LARGE_BLOCK with room for the
# allocator's and the bytes object's headers, so it comes from the heap. A buffer of
# exactly 4 MiB is a mapping of its own, faulted in page by page and unmapped again
# (issue 14: read-ahead chunks of 4 MiB, since dropped, made a read 3.1 s -> 3.7 s).
HEAP_BUFFER = LARGE_BLOCK - (64 << 10)
# Free memory the heap's top keeps before free() gives it back. Setting the mmap threshold
# also stops glibc from raising this one with it (its default of 128 KiB stays): each freed
# 1 MiB buffer at the top was given back and the next one faulted in again, 1.1 million
# page faults and 2-3 s more to read the XL image (issue 14). Twice LARGE_BLOCK holds a
# buffer or two; malloc_trim between images still gives back everything free.
TRIM_THRESHOLD = 2 * LARGE_BLOCK


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both present: glibc)
    except (OSError, AttributeError):
        return None
    return libc


def fix_mmap_threshold() -> bool:
    """Large blocks get their own mappings for the rest of the process, and the heap
    keeps a few blocks' worth of free memory; False where the C library has no such
    setting."""
    libc = _glibc()
    if libc is None or libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK) != 1:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)


def release_free_memory(*, free_lists: bool = False) -> None:
    """Give the heap's free pages back (after one image of many); with `free_lists`, also
    CPython's free lists (a full collection: tens of milliseconds, so only where much was
    just freed)."""
    # The analysis freezes what it made (parallel.collector_paused): a process that goes
    # on to other images hands it back to the collector, so that a cycle among them
    # cannot outlive its image.
    gc.unfreeze()
    if free_lists:
        gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim; a no-op
    elsewhere): 3 ms after an XL layer's entry is decoded."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
