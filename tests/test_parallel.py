"""imagescan.parallel: forked processes give the sequential results, in order; and the
analysis of every corpus image is the same with several processes as with one."""

from __future__ import annotations

import os
import select
import threading
import time
from dataclasses import dataclass, replace

import pytest

from imagescan import parallel
from imagescan.analyze import analyze
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.parallel import jobs_for, map_forked
from imagescan.rootfs.reader import read_rootfs
from imagescan.scan import make_report
from tests import fresh
from tests.conftest import CORPUS, CORPUS_IMAGES

PARENT = os.getpid()


@dataclass(frozen=True)
class Big:
    """Stands for an ELF file's facts: both sides hold it, so it comes back by reference."""

    payload: bytes


@pytest.fixture
def small_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)


def where(item: int) -> tuple[int, int]:
    return item * item, os.getpid()


def in_fresh_process(call: str) -> None:
    fresh.in_fresh_process("tests.test_parallel", call)


def order_body(jobs: int) -> None:
    parallel.MIN_ITEMS_PER_JOB = 1
    items = list(range(23))
    results = map_forked(where, items, jobs)
    assert [square for square, _ in results] == [i * i for i in items]
    assert len({pid for _, pid in results}) == jobs  # the parent and jobs - 1 children
    assert results[0][1] == os.getpid()


def small_work_body() -> None:
    results = map_forked(where, list(range(parallel.MIN_ITEMS_PER_JOB)), 8)
    assert {pid for _, pid in results} == {os.getpid()}
    assert jobs_for(10 * parallel.MIN_ITEMS_PER_JOB, 4) == 4
    assert jobs_for(10, 0) == 1


def shared_body() -> None:
    parallel.MIN_ITEMS_PER_JOB = 1
    shared = [Big(bytes([i]) * 100_000) for i in range(8)]
    results = map_forked(lambda big: (big, os.getpid()), shared, 2, shared)
    assert all(got is sent for (got, _), sent in zip(results, shared, strict=True))
    assert {pid for _, pid in results} != {os.getpid()}
    # None is in most real results (a verdict's unset fields): it once matched every
    # unknown id, so the parent refused each child's share and redid it itself.
    with_none = map_forked(lambda big: (big, None, os.getpid()), shared, 2, shared)
    assert {pid for _, _, pid in with_none} != {os.getpid()}
    unshared = map_forked(lambda big: big, shared, 2)
    assert unshared == shared and unshared[1] is not shared[1]  # a copy, made by pickling


def no_cycles_body() -> None:
    """What a child sends back is freed by reference counting alone once let go."""
    import gc

    parallel.MIN_ITEMS_PER_JOB = 1
    shared = [Big(bytes([i]) * 1000) for i in range(8)]
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds unreachable, to count it
    results = map_forked(lambda big: ((big,), os.getpid()), shared, 2, shared)
    assert {pid for _, pid in results} != {os.getpid()}  # frames came from a child
    del results
    gc.collect()
    assert gc.garbage == [], {type(o).__name__ for o in gc.garbage}


def carried_facts_body() -> None:
    """Children judging an image on the last one's base send back the ELF facts of the
    carried files (a library every process loads) as references too."""
    from imagescan.checks.reuse import Carry
    from imagescan.scan import ScanOptions, read_image

    parallel.MIN_ITEMS_PER_JOB = 1
    carry = Carry()
    for name in ("glibc-too-new", "deb11"):  # the second is on the first's base
        ref = f"oci-dir:{CORPUS / 'oci'}:{name}"
        image, rootfs = read_image(ref, ScanOptions(source=SourceOptions()), carry=carry)
        kept = carry.judged
        analysis = analyze(rootfs, image.config, jobs=2, carry=carry)
    assert kept is not None and kept.files  # something was carried into the second
    earlier = {p: judging[1] for p, judging in kept.files.items()}
    judged_here = [p for p, process in analysis.processes.items() if process is not earlier.get(p)]
    assert len(judged_here) < len(analysis.processes)
    assert len(judged_here) > 1
    for path in judged_here:
        for obj in analysis.processes[path].objects:
            entry = rootfs.entries.get(obj.file)
            assert entry is not None and obj.facts is entry.elf, (path, obj.file)


@pytest.mark.usefixtures("corpus_dir")  # skipped where no corpus is beside the checkout
def test_carried_files_facts_come_back_by_reference() -> None:
    """They once came back pickled whole, once per chunk: a carried libc's symbol tables
    27 MiB over on one corpus image, and an audit's peak 1.25x a scan's (issue 8)."""
    in_fresh_process("carried_facts_body()")


def test_a_childs_results_leave_no_cycle_behind() -> None:
    """The unpickler's memo once held a bound method of the unpickler: a cycle that kept
    every object of a child's frame alive until the collector ran, so an audit of 180
    images grew to 814 MiB while the analysis pauses the collector (issue 8)."""
    in_fresh_process("no_cycles_body()")


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_results_in_item_order_from_several_processes(jobs: int) -> None:
    in_fresh_process(f"order_body({jobs})")


MADE: dict[str, tuple[str, int]] = {}


def made_once(item: int) -> tuple[tuple[str, int], int]:
    """The same object for every item a process does (as the loader's interned
    resolutions are), made where it is first asked for; slow enough that the child does
    several chunks."""
    time.sleep(0.002)
    return MADE.setdefault("made", ("made", os.getpid())), os.getpid()


def one_memo_body() -> None:
    """What a child sends in several frames comes back as one object, not a copy a frame."""
    parallel.MIN_ITEMS_PER_JOB = 1
    results = map_forked(made_once, list(range(40)), 2)
    from_child = [made for made, pid in results if pid != os.getpid()]
    chunk = len(parallel._chunks(40, 2)[0])
    assert len(from_child) > chunk  # the child did several chunks, each a frame of its own
    assert len({id(made) for made in from_child}) == 1
    assert from_child[0] == ("made", from_child[0][1]) and from_child[0][1] != os.getpid()


@pytest.mark.parametrize(("count", "processes"), [(1, 2), (40, 2), (2380, 2), (1137, 4), (97, 3)])
def test_the_chunks_cover_the_items_in_order_and_shrink_at_the_end(
    count: int, processes: int
) -> None:
    chunks = parallel._chunks(count, processes)
    assert [i for chunk in chunks for i in chunk] == list(range(count))
    sizes = [len(chunk) for chunk in chunks]
    assert len(chunks) >= min(count, processes * parallel.CHUNKS_PER_JOB)
    assert max(sizes) <= parallel.MAX_CHUNK and sizes == sorted(sizes, reverse=True)
    for chunk in chunks:  # at most a (2 x processes)th of what is left when it is taken
        assert len(chunk) == 1 or len(chunk) * 2 * processes <= count - chunk.start
    assert sizes[-processes:] == [1] * processes or count < processes


def test_an_object_a_child_sent_before_comes_back_as_the_same_one() -> None:
    in_fresh_process("one_memo_body()")


def test_after_a_frame_it_cannot_read_no_later_frame_of_that_child_is_read() -> None:
    """A later frame may refer to what the unreadable one held: decoded, it would be wrong,
    so its chunk is done again instead (as a child's that died)."""
    codec = parallel._Codec.of([])
    shared = ["x" * 100]
    frames = [codec.sending() for _ in range(2)]
    good = frames[0].frame(0, shared) + frames[0].frame(1, [shared[0], "y"])
    received = bytearray(good)
    back = list(codec.receiving().frames(received))
    assert [number for number, _ in back] == [0, 1] and not received
    assert back[1][1][0] is back[0][1][0]  # the second frame's reference to the first's
    first = frames[1].frame(0, shared)
    broken = bytearray(first[:-1] + b"\xff")  # unreadable at its end: after "x" * 100
    broken += frames[1].frame(1, [shared[0], "y"])
    assert list(codec.receiving().frames(broken)) == [] and not broken


class Taught:
    """A Learner that says which process learned what."""

    def __init__(self) -> None:
        self.told: list[int] = []

    def learned(self) -> object:
        return os.getpid()

    def learn(self, learned: object) -> None:
        assert isinstance(learned, int)
        self.told.append(learned)


def slow_in_the_parent(item: int) -> int:
    """The parent's first chunk outlasts every other: its child ends meanwhile."""
    if item == 0 and os.getpid() == PARENT:  # the fresh process imported this module
        time.sleep(0.5)
    return item * item


def learner_body() -> None:
    """Each child's memo reaches the learner, also from a child that ends (and sends it)
    while the parent still works on its own chunks: the parent read and dropped it."""
    parallel.MIN_ITEMS_PER_JOB = 1
    for work in (slow_in_the_parent, lambda item: item * item):
        taught = Taught()
        assert map_forked(work, list(range(40)), 3, learner=taught) == [i * i for i in range(40)]
        assert len(taught.told) == 2 and os.getpid() not in taught.told


def test_what_each_child_learned_reaches_the_parent() -> None:
    in_fresh_process("learner_body()")


def test_small_work_stays_in_the_parent() -> None:
    in_fresh_process("small_work_body()")


def test_shared_objects_come_back_as_the_parents_own() -> None:
    in_fresh_process("shared_body()")


def meanwhile_body() -> None:
    """With children, the parent does the side work once, after they are started; without,
    it is done when its result is first asked for."""
    parallel.MIN_ITEMS_PER_JOB = 1
    calls: list[tuple[int, int]] = []
    items = list(range(40))
    side = parallel.Meanwhile(lambda: calls.append((os.getpid(), len(calls))) or "read")
    results = map_forked(where, items, 2, meanwhile=side)
    assert calls == [(os.getpid(), 0)]  # once, in the parent, before anything asked
    assert side.result() == "read" and side.result() == "read" and len(calls) == 1
    assert {pid for _, pid in results} != {os.getpid()}  # children judged too
    assert [square for square, _ in results] == [i * i for i in items]
    alone = parallel.Meanwhile(lambda: calls.append((os.getpid(), len(calls))) or "later")
    map_forked(where, items, 1, meanwhile=alone)
    assert len(calls) == 1  # one process: nothing done early
    assert alone.result() == "later" and len(calls) == 2


def test_side_work_runs_in_the_parent_while_children_work() -> None:
    in_fresh_process("meanwhile_body()")


def test_a_child_that_fails_has_its_share_redone(small_shares: None) -> None:
    def fails_in_children(item: int) -> int:
        if os.getpid() != PARENT:
            raise RuntimeError("a child breaks")
        return item + 1

    assert map_forked(fails_in_children, list(range(10)), 3) == list(range(1, 11))


def test_an_error_is_raised_as_the_sequential_path_raises_it(small_shares: None) -> None:
    def breaks_on_seven(item: int) -> int:
        if item == 7:
            raise ValueError("item 7")
        return item

    with pytest.raises(ValueError, match="item 7"):
        map_forked(breaks_on_seven, list(range(12)), 2)  # 7 is a child's item


@pytest.mark.usefixtures("corpus_dir")  # skipped where no corpus is beside the checkout
@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_the_analysis_is_the_same_with_several_processes(small_shares: None, name: str) -> None:
    image = open_image(f"oci-dir:{CORPUS / 'oci'}:{name}", SourceOptions())
    try:
        rootfs = read_rootfs(image)
    finally:
        image.close()
    one = analyze(rootfs, image.config, jobs=1)
    three = analyze(rootfs, image.config, jobs=3)
    assert three.verdicts == one.verdicts
    assert three.processes == one.processes  # what `why` explains, search steps and all
    assert three.image_findings == one.image_findings
    # the SBOM's creation time is the clock's: the rest must be equal
    reports = [make_report(image, rootfs, analysis) for analysis in (three, one)]
    untimed = [replace(r, links=replace(r.links, created="")) if r.links else r for r in reports]
    assert untimed[0] == untimed[1]


def test_no_fork_while_another_thread_runs(small_shares: None) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        results = map_forked(where, list(range(20)), 4)
    finally:
        stop.set()
        other.join()
    assert {pid for _, pid in results} == {PARENT}


def isolated_body() -> None:
    results = parallel.map_isolated(where, list(range(5)), 2)
    assert [square for square, _ in results] == [0, 1, 4, 9, 16]
    pids = [pid for _, pid in results]
    assert os.getpid() not in pids and len(set(pids)) == 5  # each item a child of its own


def isolated_failures_body() -> None:
    parent = os.getpid()

    def dies_in_a_child(item: int) -> int:
        if os.getpid() != parent and item == 2:
            os.kill(os.getpid(), 9)  # a child killed mid-item (the OOM killer, say)
        return item + 1

    assert parallel.map_isolated(dies_in_a_child, [1, 2, 3], 2) == [2, 3, 4]

    def breaks_on_two(item: int) -> int:
        if item == 2:
            raise ValueError("item 2")
        return item

    with pytest.raises(ValueError, match="item 2"):
        parallel.map_isolated(breaks_on_two, [1, 2, 3], 2)


def test_each_item_isolated_in_a_child_of_its_own() -> None:
    in_fresh_process("isolated_body()")


def test_an_isolated_item_whose_child_dies_is_done_in_the_parent() -> None:
    in_fresh_process("isolated_failures_body()")


def test_no_isolation_while_another_thread_runs() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        results = parallel.map_isolated(where, list(range(3)), 2)
    finally:
        stop.set()
        other.join()
    assert {pid for _, pid in results} == {PARENT}


def _state(pid: int) -> str | None:
    """A process's state letter (Z: exited, not yet waited for); None once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return None


def exiting_body() -> None:
    """A child that has sent all is not waited for while it exits, and is reaped by a
    later call once it has exited: no zombie stays behind."""
    go, let_go = os.pipe()
    # the child exits once let go (or after 10 s: a reap that waits fails, not hangs)
    pid, out = parallel.fork_writer(lambda _: select.select([go], [], [], 10))
    os.close(out)
    parallel.reap(pid, kill=False)  # returns at once: the child waits for us
    assert pid in parallel._EXITING and _state(pid) in ("S", "R")
    os.write(let_go, b"x")
    while _state(pid) != "Z":  # exited: a zombie until waited for
        time.sleep(0.01)
    results = map_forked(where, list(range(parallel.MIN_ITEMS_PER_JOB * 2)), 2)
    assert len({child for _, child in results}) == 2  # forked: its own child reaped too
    assert pid not in parallel._EXITING and _state(pid) is None
    killed, out = parallel.fork_writer(lambda _: time.sleep(60))
    os.close(out)
    parallel.reap(killed, kill=True)  # killed: waited for at once
    assert _state(killed) is None and killed not in parallel._EXITING


def test_a_child_that_has_sent_everything_is_reaped_after_it_exits() -> None:
    in_fresh_process("exiting_body()")
