"""Reading ahead on a thread: a `read(n)` function drained into a bounded queue of chunks.

A layer's bytes pass three stages that mostly run outside the GIL (the blob's digest in
hashlib, inflating in isal or zstandard) before the tar walk and the ELF parser, which
hold it, see them. Running the first stages on a thread lets one core inflate while the
other parses (issue 14). At most DEPTH chunks of CHUNK bytes wait in the queue, so memory
stays bounded whatever the layer's size; errors of the thread are raised to the reader.

The reading thread needs the GIL back after every call that released it (a read, a hash
update, an inflate step), and a thread asking for it waits out the interpreter's switch
interval (5 ms) while the parser holds it: the inflater then ran a quarter slower than
alone, and it is the slower stage. While a read-ahead thread runs the interval is
SWITCH_INTERVAL, so the parser hands the GIL over sooner (large image: the read with
symbols 3.5 s -> 3.2 s, against a floor of 2.8 s).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable

from imagescan.image.rawstream import piece_of

# 1 MiB chunks, 8 in flight (8 MiB at most). Larger ones were faster only where the heap
# is the CLI's (imagescan.heap: 4 MiB x 4 3.18 s against 3.27 s for the large image's read
# with symbols), and slower and bigger where it is glibc's own, as a library caller has it
# (3.65 s at 132 MiB against 3.24 s at 116 MiB; the XL image's scan 258 against 241 MiB).
CHUNK = 1 << 20
DEPTH = 8
_POLL = 0.05  # seconds between looks at the stop flag while the queue is full
SWITCH_INTERVAL = 0.0001  # seconds; 0.5 ms gave back half the gain, 50 us no more


class _FastSwitching:
    """The interpreter's switch interval at SWITCH_INTERVAL while any read-ahead thread
    runs (several may: one per Dask worker thread), and as it was once none does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = sys.getswitchinterval()

    def enter(self) -> None:
        with self._lock:
            if self._running == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL))
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setswitchinterval(self._saved)


_SWITCHING = _FastSwitching()


class ReadAhead:
    """`read(n)` of the bytes `source(CHUNK)` yields, fetched ahead on a thread.

    `read` returns at most n bytes, fewer only at the end of a chunk or of the data (as a
    raw stream may); `close` stops the thread and waits for it, so that the caller may
    close what `source` reads from."""

    def __init__(
        self, source: Callable[[int], bytes], chunk: int = CHUNK, depth: int = DEPTH
    ) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._chunk, self._offset, self._ended = b"", 0, False
        self._thread = threading.Thread(
            target=self._fill, args=(source, chunk), name="imagescan-read-ahead", daemon=True
        )
        _SWITCHING.enter()
        self._thread.start()

    def read(self, size: int) -> bytes:
        if self._offset >= len(self._chunk):
            if self._ended or size <= 0:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            self._chunk, self._offset, self._ended = item, 0, not item
        data = piece_of(self._chunk, self._offset, size)
        self._offset += len(data)
        return data

    def close(self) -> None:
        """Stop reading ahead (at once, even mid-layer) and wait for the thread."""
        self._stop.set()  # seen within _POLL by a thread waiting on a full queue
        self._thread.join()

    def _fill(self, source: Callable[[int], bytes], chunk: int) -> None:
        try:
            while not self._stop.is_set():
                data = source(chunk)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:
            self._put(exc)
        finally:
            _SWITCHING.leave()  # once per thread, however it ends

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
