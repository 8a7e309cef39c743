"""One function over many items, split across forked processes; results in item order.

The children are made by `fork` after the image is read, so they inherit the root
filesystem copy-on-write: nothing is sent to them. The items are cut into chunks of
neighbours, and every process (the parent too) takes the next chunk from one queue until
none is left, so a process slowed by dearer items, by the machine's other work or by
reading its children's results simply takes fewer (issue 14: a fixed share per process
left one idle while the other finished). A child sends each chunk's results back as soon
as it has them, pickled with every `shared` object (the ELF facts both sides already hold)
replaced by a reference to the parent's own copy; the parent reads them between its own
chunks. Where fork is unavailable, or the work is small, the parent does it all itself:
the results are the same either way, only the time differs.
"""

from __future__ import annotations

import atexit
import copyreg
import dataclasses
import functools
import gc
import io
import operator
import os
import pickle
import select
import signal
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Value = TypeVar("Value")

MIN_ITEMS_PER_JOB = 64  # below this a fork costs more than it saves
CHUNKS_PER_JOB = 8  # enough that the last chunk taken is a small part of the wait
MAX_CHUNK = 16  # items of one chunk: neighbours share the loader's memos
_TASK = struct.Struct("=I")  # a chunk's number in the queue (4 bytes: one atomic read)
_FRAME = struct.Struct("=II")  # (chunk number or _LEARNED, length of the pickle)
_LEARNED = 0xFFFFFFFF
_PIPE_SIZE = 1 << 20  # a child writes on without waiting for the parent to read


class Learner(Protocol):
    """What the work memoises as it goes, carried from each child back to the parent, so
    that the parent's later work (outside `map_forked`) does not compute it again."""

    def learned(self) -> object:
        """What this process has memoised (picklable)."""
        ...

    def learn(self, learned: object) -> None:
        """Take in what a child memoised."""
        ...


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


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside the block, and what is alive at its end
    left out of the collector's later passes.

    The analysis makes hundreds of thousands of small objects and no cycles (refcounting
    frees all of it), and each of the collector's passes walks every object still alive:
    those passes were a fifth of the analysis' time, and the first one after a pause (over
    all that the block made) a tenth more, which `gc.freeze` spares. Paused, it also
    leaves alone the inherited pages a forked child would otherwise copy."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.freeze()
            gc.enable()


class Meanwhile(Generic[Value]):
    """Work whose result the caller needs later and that needs none of the items' results:
    done once, by the parent while its forked children start on the items
    (`map_forked`), else when first asked for."""

    def __init__(self, work: Callable[[], Value]) -> None:
        self._work: Callable[[], Value] | None = work
        self._value: Value | None = None

    def run(self) -> None:
        """Do the work now, unless it is done."""
        if self._work is not None:
            self._value, self._work = self._work(), None

    def result(self) -> Value:
        """The work's result (done now if it was not)."""
        self.run()
        return self._value  # type: ignore[return-value]  # set by run()


def map_forked(
    work: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    shared: Iterable[object] = (),
    learner: Learner | None = None,
    meanwhile: Meanwhile[Any] | None = None,
) -> list[Result]:
    """[work(item) for item in items], with up to `jobs` processes (the parent is one).

    A chunk no child delivered (it failed, or died) is done by the parent afterwards, so
    an error is raised as the sequential path raises it. `learner` is told, in the parent,
    what each child memoised. `meanwhile` is run by the parent once its children are
    started, before its own chunks (the children take more of them meanwhile)."""
    processes = jobs_for(len(items), jobs)
    if processes == 1:
        return [work(item) for item in items]
    chunks = _chunks(len(items), processes)
    run = _Run(work, items, chunks, _Codec.of(shared))
    with collector_paused():  # the children inherit it paused
        run.start(processes - 1, learner)
        finished = False
        try:
            if meanwhile is not None:
                meanwhile.run()
            run.work_in_parent(learner)
            finished = True
        finally:
            run.finish(learner if finished else None, read=finished)
    return run.results()


def map_isolated(work: Callable[[Item], Result], items: Sequence[Item], jobs: int) -> list[Result]:
    """[work(item) for item in items], each item in a forked child of its own, up to `jobs`
    at once: what one item leaves in a process's heap (fragmentation, CPython's free lists)
    never raises the next one's peak (issue 8: an audit's image groups). An item whose
    child fails or dies is done in the parent afterwards, so that its error is raised as
    the sequential path raises it; where fork is unavailable or unsafe, all of them are."""
    if not items or not can_fork():
        return [work(item) for item in items]
    done: dict[int, Result] = {}
    running: dict[int, _Child] = {}
    index: dict[int, int] = {}  # results pipe -> item
    waiting = list(range(len(items)))
    try:
        while waiting or running:
            while waiting and len(running) < max(1, jobs):
                item = waiting.pop(0)
                child = _isolated(work, items[item])
                running[child.results], index[child.results] = child, item
            _collect(running, index, done)
    finally:
        for child in running.values():
            os.close(child.results)
            reap(child.pid, kill=True)
    return [done[i] if i in done else work(item) for i, item in enumerate(items)]


def fork_writer(body: Callable[[int], None], pipe_size: int = _PIPE_SIZE) -> tuple[int, int]:
    """(pid, read end of its pipe) of a forked child that runs `body(write end)` and then
    exits, whatever happens: it never returns into the caller."""
    read_end, write_end = os.pipe()
    with suppress(AttributeError, OSError):  # Linux only; the default size works, slower
        import fcntl

        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, pipe_size)
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    status = 1
    try:
        os.close(read_end)
        body(write_end)
        status = 0
    finally:
        os._exit(status)


def can_fork() -> bool:
    """True where fork exists and no other thread runs (a lock one holds would stay held
    in the child forever)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _isolated(work: Callable[[Any], Any], item: Any) -> _Child:
    """A child that does `work(item)` and sends back its pickled result, then exits."""

    def send(out: int) -> None:
        with os.fdopen(out, "wb") as pipe:
            pipe.write(pickle.dumps(work(item), protocol=pickle.HIGHEST_PROTOCOL))

    return _Child(*fork_writer(send))


def _collect(running: dict[int, _Child], index: dict[int, int], done: dict[int, Any]) -> None:
    """Read what the running children sent; take in the results of those that ended."""
    ready, _, _ = select.select(list(running), [], [])
    for fd in ready:
        child = running[fd]
        data = os.read(fd, _PIPE_SIZE)
        if data:
            child.received += data
            continue
        del running[fd]
        os.close(fd)
        _, status = os.waitpid(child.pid, 0)
        if status == 0:
            with suppress(Exception):  # an unreadable result: the item is done again
                done[index[fd]] = pickle.loads(child.received)


def _chunks(count: int, processes: int) -> list[range]:
    """Consecutive index ranges, CHUNKS_PER_JOB or more for each process, the last ones
    smaller: a chunk is at most a (2 x processes)th of the items after it (guided
    self-scheduling), so the processes finish their last chunks close together (issue 14:
    one process waited 15-22 ms for the other's last chunk of 16 on the XL image)."""
    size = max(1, min(MAX_CHUNK, count // (processes * CHUNKS_PER_JOB)))
    chunks, start = [], 0
    while start < count:
        step = max(1, min(size, (count - start) // (2 * processes)))
        chunks.append(range(start, start + step))
        start += step
    return chunks


@dataclass
class _Child:
    pid: int
    results: int  # read end of its results pipe
    received: bytearray = field(default_factory=bytearray)
    done: bool = False
    receiving: _Receiving | None = None  # map_forked's decoder of its frames


@dataclass
class _Run:
    """One map_forked call: the queue of chunk numbers, the children, what came back."""

    work: Callable[[Any], Any]
    items: Sequence[Any]
    chunks: list[range]
    codec: _Codec
    children: list[_Child] = field(default_factory=list)
    done: dict[int, list[Any]] = field(default_factory=dict)
    queue: int = -1  # read end of the queue pipe

    def start(self, count: int, learner: Learner | None) -> None:
        """Fork `count` children; each process's first chunk is its own (chunk k for
        process k, the parent 0), the rest are in the queue."""
        self.queue = _queue(range(count + 1, len(self.chunks)))
        for first in range(1, count + 1):
            self.children.append(self._fork(first, learner))

    def _fork(self, first: int, learner: Learner | None) -> _Child:
        read_end, write_end = os.pipe()
        with suppress(AttributeError, OSError):  # Linux only; the default works, slower
            import fcntl

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        pid = os.fork()
        if pid:
            os.close(write_end)
            os.set_blocking(read_end, False)
            return _Child(pid, read_end)
        # The child: never returns into the caller, whatever happens. A chunk it did not
        # send whole is done again by the parent.
        status = 1
        try:
            os.close(read_end)
            for other in self.children:
                os.close(other.results)
            self._serve(write_end, first, learner)
            status = 0
        finally:
            os._exit(status)

    def _serve(self, out: int, first: int, learner: Learner | None) -> None:
        """The child's loop: take a chunk, send its results; what it learned at the end."""
        sending = self.codec.sending()
        with os.fdopen(out, "wb") as pipe:
            for number in _taken(self.queue, first):
                results = [self.work(self.items[i]) for i in self.chunks[number]]
                pipe.write(sending.frame(number, results))
                pipe.flush()
            if learner is not None:
                pipe.write(sending.frame(_LEARNED, learner.learned()))

    def work_in_parent(self, learner: Learner | None) -> None:
        """The parent's own chunks, reading what the children sent between them (what a
        child learned too: one that ends before the parent's last chunk sends it then)."""
        for number in _taken(self.queue, 0):
            self.done[number] = [self.work(self.items[i]) for i in self.chunks[number]]
            for child in self.children:
                self._receive(child, learner)

    def finish(self, learner: Learner | None, read: bool) -> None:
        """Read the children to their end (`read`: the queue is empty; not when the
        parent failed, which makes their work moot), then reap them."""
        os.close(self.queue)
        for child in self.children:
            if read:
                os.set_blocking(child.results, True)
                with suppress(OSError):
                    while not child.done:
                        self._receive(child, learner)
            os.close(child.results)
            reap(child.pid, kill=not child.done)

    def _receive(self, child: _Child, learner: Learner | None) -> None:
        """What `child` has sent since last time, as far as whole frames go."""
        try:
            data = os.read(child.results, _PIPE_SIZE)
        except BlockingIOError:
            return
        if not data:
            child.done = True
        child.received += data
        if child.receiving is None:
            child.receiving = self.codec.receiving()
        for number, value in child.receiving.frames(child.received):
            if number == _LEARNED:
                if learner is not None:
                    learner.learn(value)
            else:
                self.done[number] = value

    def results(self) -> list[Any]:
        """Every item's result in item order; chunks nobody delivered are done now."""
        out: list[Any] = []
        for number, chunk in enumerate(self.chunks):
            got = self.done.get(number)
            out += got if got is not None else [self.work(self.items[i]) for i in chunk]
        return out


def _queue(numbers: range) -> int:
    """A pipe holding the chunk numbers, its write end closed: the read end."""
    read_end, write_end = os.pipe()
    try:
        data = b"".join(_TASK.pack(n) for n in numbers)
        if os.write(write_end, data) != len(data):  # 4 bytes a chunk: far below 64 KiB
            raise OSError("the queue did not fit its pipe")
    finally:
        os.close(write_end)
    return read_end


def _taken(queue: int, first: int) -> Iterator[int]:
    """`first`, then the next chunk number from the queue until it is empty. A pipe read
    of at most PIPE_BUF bytes is atomic, so two processes never take the same number."""
    yield first
    while len(data := os.read(queue, _TASK.size)) == _TASK.size:
        yield _TASK.unpack(data)[0]


# Children that ended their work and were still exiting when reaped: waited for later.
_EXITING: list[int] = []


def reap(pid: int, kill: bool) -> None:
    """Child `pid` ended: killed first with `kill` and waited for; without, waited for
    only if it has exited, else by a later call. A child that has sent its last result
    still unmaps the memory it shares with the parent as it exits, which took 10 ms of
    the XL image's analysis, after its results were in and before plugin judging could
    start (issue 14); until waited for, it is a zombie, which holds no memory."""
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        elif os.waitpid(pid, os.WNOHANG) == (0, 0):
            _EXITING.append(pid)
    except (ChildProcessError, ProcessLookupError):
        pass
    _reap_exiting(os.WNOHANG)


def wait_exiting() -> None:
    """Wait for every child left exiting: their use of memory and time then counts in
    this process's RUSAGE_CHILDREN (a wrapper's measure of its peak, benchmarks), and
    none outlives it as a zombie. Run at exit."""
    _reap_exiting(0)


atexit.register(wait_exiting)


def _reap_exiting(flags: int) -> None:
    """waitpid(pid, flags) for each child left exiting; those it reaps are dropped (with
    os.WNOHANG only those that have exited: it never blocks then)."""
    for pid in list(_EXITING):
        try:
            if os.waitpid(pid, flags) == (0, 0):  # WNOHANG: still exiting
                continue
        except ChildProcessError:  # not ours (a forked child's copy of the list) or gone
            pass
        _EXITING.remove(pid)


def _shared(key: int) -> object:
    """Stands, in a pickle, for the parent's own copy of a shared object; the parent's
    unpickler resolves it (`_Codec.frames`), so it is never called."""
    raise pickle.UnpicklingError(f"unknown shared object {key!r}")


@dataclass(frozen=True)
class _Codec:
    """Pickles a process's results with each shared object as its id, and back.

    The shared objects' types get a reducer in the pickler's dispatch table, so only their
    instances cost a Python call: a `persistent_id` method is called for every object
    pickled, and took more time than pickling itself."""

    known: dict[int, object]
    dispatch: dict[type, Callable[[Any], Any]]

    @classmethod
    def of(cls, shared: Iterable[object]) -> _Codec:
        known = {id(obj): obj for obj in shared}

        def reduce(obj: object) -> Any:
            if known.get(id(obj)) is obj:
                return _shared, (id(obj),)
            return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

        types = {type(obj) for obj in known.values()}
        return cls(known, _Reducers({**copyreg.dispatch_table, **{t: reduce for t in types}}))

    def sending(self) -> _Sending:
        """The encoder of one child's frames."""
        return _Sending(self.dispatch)

    def receiving(self) -> _Receiving:
        """The decoder of one child's frames, in the order it sent them."""
        return _Receiving(self.known)


class _Sending:
    """One child's frames, pickled by one pickler: an object an earlier frame sent goes
    again as a reference to it (the pickle memo), as the processes of one image share
    their resolutions and search steps (loader.context; issue 14)."""

    def __init__(self, dispatch: dict[type, Callable[[Any], Any]]) -> None:
        self._out = io.BytesIO()
        self._pickler = pickle.Pickler(self._out, protocol=pickle.HIGHEST_PROTOCOL)
        self._pickler.dispatch_table = dispatch

    def frame(self, number: int, value: object) -> bytes:
        """The frame of chunk `number`'s results. An error here ends the child: the
        memo would then hold objects the parent never received."""
        self._out.seek(0)
        self._out.truncate()
        self._out.write(_FRAME.pack(number, 0))
        self._pickler.dump(value)
        with self._out.getbuffer() as data:
            _FRAME.pack_into(data, 0, number, len(data) - _FRAME.size)
            return bytes(data)


class _Receiving:
    """The parent's decoder of one child's frames: one unpickler for all, its memo that
    of the child's pickler (`_Sending`)."""

    def __init__(self, known: dict[int, object]) -> None:
        self._feed = _Feed()
        # The unpickler holds the feed's methods, the feed nothing of it: no cycle that
        # would keep every object of the frames until the collector runs (issue 8).
        self._unpickler = _Unpickler(self._feed, known)
        self._broken = False

    def frames(self, received: bytearray) -> Iterator[tuple[int, Any]]:
        """The whole frames at the start of `received`, taken out of it. After a frame it
        cannot read, none is read: a later one may refer to what that one held, so
        their chunks are done again, as a child's that died."""
        while len(received) >= _FRAME.size:
            number, length = _FRAME.unpack_from(received)
            end = _FRAME.size + length
            if len(received) < end:
                return
            self._feed.body = io.BytesIO(received[_FRAME.size : end])
            del received[:end]
            if self._broken:
                continue
            try:
                value = self._unpickler.load()
            except Exception:
                self._broken = True
                continue
            yield number, value


class _Feed:
    """What an unpickler reads: the body of the frame being read."""

    def __init__(self) -> None:
        self.body = io.BytesIO()

    def read(self, size: int = -1) -> bytes:
        return self.body.read(size)

    def readinto(self, buffer: bytearray) -> int:
        return self.body.readinto(buffer)

    def readline(self) -> bytes:
        return self.body.readline()


class _Reducers(dict[type, Callable[[Any], Any]]):
    """A pickler's dispatch table that makes a type's reducer the first time it is asked
    for one (the pickler asks for every object that is not a str, number or container)."""

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        if issubclass(cls, type):  # a class (an Enum's, say): the pickler saves it by name
            raise KeyError(cls)
        reducer = self[cls] = _by_fields(cls) or _as_usual
        return reducer


def _as_usual(obj: Any) -> Any:
    return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


def _by_fields(cls: type) -> Callable[[Any], Any] | None:
    """(cls, field values) for a frozen dataclass with slots whose __init__ takes every
    field: its generated __init__ rebuilds it. dataclasses' own __setstate__ for such a
    class calls fields() for each instance, and was a tenth of the parent's time."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in vars(cls):
        return None
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    if len(names) != len(dataclasses.fields(cls)) or hasattr(cls, "__post_init__") or not names:
        return None
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (cls, (get(obj),))
    return lambda obj: (cls, get(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, body: _Feed, known: dict[int, object]) -> None:
        super().__init__(body)
        self._known = known

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_shared":
            # Not a method of self: the unpickler's memo keeps what find_class returns, and
            # a bound method there made a cycle that held every object of the frame until
            # the collector ran (an audit of 180 images grew to 814 MiB; issue 8).
            return functools.partial(_lookup, self._known)
        return super().find_class(module, name)


def _lookup(known: dict[int, object], key: int) -> object:
    if key not in known:
        raise pickle.UnpicklingError(f"unknown shared object {key!r}")
    return known[key]
