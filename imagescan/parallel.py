"""One function over many items, split across forked processes; results in item order.

The children are made by `fork` after the image is read, so they inherit the root
filesystem copy-on-write: nothing is sent to them, and what they send back is pickled with
every `shared` object (the ELF facts both sides already hold) replaced by a reference to
the parent's own copy. Where fork is unavailable, or the work is small, the parent does it
all itself: the results are the same either way, only the time differs (issue 14).
"""

from __future__ import annotations

import gc
import io
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MIN_ITEMS_PER_JOB = 64  # below this a fork costs more than it saves
_OK = b"o"


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def jobs_for(count: int, jobs: int) -> int:
    """How many processes `count` items are worth: one when fork is unavailable, or unsafe
    because another thread runs (a lock it holds would stay held in the child forever)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    return max(1, min(jobs, count // MIN_ITEMS_PER_JOB))


def map_forked(
    work: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    shared: Iterable[object] = (),
) -> list[Result]:
    """[work(item) for item in items], with up to `jobs` processes (the parent is one).

    Items are dealt round-robin (neighbours in path order cost alike). A child that fails
    has its share redone by the parent, so an error is raised as the sequential path
    raises it."""
    processes = jobs_for(len(items), jobs)
    if processes == 1:
        return [work(item) for item in items]
    known = {id(obj): obj for obj in shared}
    children: list[tuple[int, int]] = []
    shares: list[list[Result]] = []
    collected = 0
    try:
        gc.freeze()  # the collector would otherwise touch, and so copy, every inherited page
        try:
            for k in range(1, processes):
                children.append(_fork(work, items[k::processes], known))
        finally:
            gc.unfreeze()
        shares.append([work(item) for item in items[0::processes]])
        for k, child in enumerate(children, start=1):
            got: list[Result] | None = _collect(child, known)
            collected = k
            shares.append(got if got is not None else [work(i) for i in items[k::processes]])
    finally:
        for k, (pid, read_end) in enumerate(children, start=1):
            if k > collected:  # the parent failed before collecting it: the work is moot
                os.close(read_end)
            _reap(pid, kill=k > collected)
    return _interleave(shares, len(items))


def _fork(
    work: Callable[[Item], Result], share: Sequence[Item], known: dict[int, object]
) -> tuple[int, int]:
    """(pid, read end of its pipe) of a child computing `work` over `share`."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    # The child: never returns into the caller, whatever happens. A failure sends no
    # complete pickle, which the parent takes as "redo this share".
    status = 1
    try:
        os.close(read_end)
        with os.fdopen(write_end, "wb") as out:
            _send(out, [work(item) for item in share], known)
        status = 0
    finally:
        os._exit(status)


def _send(out: io.BufferedWriter, results: list[object], known: dict[int, object]) -> None:
    out.write(_OK)
    _SharedPickler(out, known).dump(results)


def _collect(child: tuple[int, int], known: dict[int, object]) -> list[Result] | None:
    """The child's results; None when it failed (or died)."""
    _, read_end = child
    with os.fdopen(read_end, "rb") as pipe:
        if pipe.read(1) != _OK:
            return None
        try:
            results: list[Result] = _SharedUnpickler(pipe, known).load()
        except Exception:
            return None
    return results


def _reap(pid: int, kill: bool) -> None:
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass


def _interleave(shares: list[list[Result]], count: int) -> list[Result]:
    """Undo the round-robin deal: item i is share i % n, position i // n."""
    n = len(shares)
    return [shares[i % n][i // n] for i in range(count)]


class _SharedPickler(pickle.Pickler):
    """Pickles a shared object as its id: the parent holds the very same object."""

    def __init__(self, out: io.BufferedWriter, known: dict[int, object]) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self._known = known

    def persistent_id(self, obj: object) -> int | None:
        # Not `.get(key) is obj`: for None (in most results) that is `None is None`, and
        # every child's share was then refused by the parent and redone by it.
        key = id(obj)
        return key if key in self._known and self._known[key] is obj else None


class _SharedUnpickler(pickle.Unpickler):
    def __init__(self, pipe: io.BufferedReader, known: dict[int, object]) -> None:
        super().__init__(pipe)
        self._known = known

    def persistent_load(self, pid: object) -> object:
        if not isinstance(pid, int) or pid not in self._known:
            raise pickle.UnpicklingError(f"unknown shared object {pid!r}")
        return self._known[pid]
