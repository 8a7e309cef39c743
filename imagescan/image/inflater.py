"""A layer blob inflated by a forked child, its bytes piped back (issue 14).

In one process the inflater's thread and the tar walk with the ELF parser share the GIL:
the large image's read with symbol tables took 3.1-3.6 s against a single-threaded floor
(inflate and walk) of 2.6 s, with 3.4 s of CPU on the main thread and 2.5 s on the
inflater's, much of it spent handing the GIL back and forth. Here a child reads the blob,
checks its digest and inflates it, and this process, on the other core, walks the tar and
parses with no other thread to share its GIL with. In the child a thread inflates DEPTH
chunks ahead of the one that writes to the pipe (both release the GIL for their work), so
that the child goes on while this process parses a large library.

The chunks themselves go through a ring of SLOTS chunks in memory both processes share
(`_Ring`), not through the pipe: reading 1.2 GB from a pipe took this process 0.26-0.30 s
of CPU, a copy out of shared memory a tenth of that, and this process is the one the read
waits for (issue 14). Frames on the pipe are (length, kind) and a body: a chunk put in the
ring's next slot (no body), the end (every byte sent, the gzip check and the blob's digest
passed), or the child's error, raised here as reading in this process would have raised
it. This process hands each slot back by a byte on a second pipe once it has copied the
chunk out. The child never returns into the caller, and is killed when the reader stops
early.
"""

from __future__ import annotations

import io
import marshal
import mmap
import os
import struct
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from imagescan.errors import ImageReadError
from imagescan.image.rawstream import CHUNK, Read, piece_of
from imagescan.image.readahead import ReadAhead
from imagescan.parallel import fork_writer, reap

# Chunks read ahead of the parser (64 MiB at most). The parser's work comes in stretches
# (a directory of libraries, then one of scripts and data) that a short queue cannot
# even out: with 24 the child waited while the parser was busy and the parser while the
# child inflated, the large image's read with symbols at 3.01-3.04 s; with 48 2.65-2.78 s,
# with 96 2.52-2.59 s, 64 as fast as 96 (A/B 0.995 over 6 pairs), 192 no faster. The child's peak
# (about 90 MiB with the pages it shares with this process) stays below the parser's.
DEPTH = 64
SLOTS = 4  # chunks in the shared ring: what the pipe's 1 MiB held, and some more
_HEADER = struct.Struct("=IB")  # body length (a slot's chunk: its length), kind
_SLOT, _END, _ERROR = 1, 2, 3
_MAX_BODY = 4 * CHUNK  # an error's text is far less


@dataclass(frozen=True)
class _Ring:
    """SLOTS chunks of memory shared by this process and the child (an anonymous shared
    mapping made before the fork), used in turn, and the pipe on which this process
    hands each slot back."""

    memory: mmap.mmap
    freed: int  # read end: the child's
    free: int  # write end: this process's

    @classmethod
    def make(cls) -> _Ring:
        freed, free = os.pipe()
        return cls(mmap.mmap(-1, SLOTS * CHUNK), freed, free)

    def close(self) -> None:
        self.memory.close()
        os.close(self.free)


def inflated_by_child(read: Read, finish: Callable[[], None]) -> tuple[Read, Callable[[], None]]:
    """(read, close) of the bytes `read(n)` gives, produced by a forked child that calls
    `finish()` (the checks at the end) after the last of them."""
    ring = _Ring.make()
    try:
        pid, read_end = fork_writer(lambda out: _child(read, finish, out, ring))
    except BaseException:
        os.close(ring.freed)
        ring.close()
        raise
    os.close(ring.freed)  # the child's end: with it closed here, the child sees us go
    frames = _Frames(read_end, ring)

    def close() -> None:
        reap(pid, kill=not frames.ended)
        os.close(read_end)
        ring.close()

    return frames.read, close


def _child(read: Read, finish: Callable[[], None], out: int, ring: _Ring) -> None:
    """The child's work: inflate (on a thread DEPTH chunks ahead), put each chunk in the
    ring and say so, and the end or the error."""
    os.close(ring.free)
    try:
        ahead = ReadAhead(read, CHUNK, DEPTH)
        slot = 0
        while data := ahead.read(CHUNK):
            if slot >= SLOTS and not os.read(ring.freed, 1):
                return  # the reader is gone: nobody to send the rest to
            at = slot % SLOTS * CHUNK
            ring.memory[at : at + len(data)] = data
            os.write(out, _HEADER.pack(len(data), _SLOT))  # under PIPE_BUF: written whole
            slot += 1
        ahead.close()
        finish()
    except BaseException as exc:  # any error, sent for the parent to raise
        _send(out, _ERROR, marshal.dumps(_described(exc)))
    else:
        _send(out, _END, b"")


def _send(out: int, kind: int, body: bytes) -> None:
    for piece in (_HEADER.pack(len(body), kind), body):
        view = memoryview(piece)
        while view:  # a write to a pipe may take less than all
            view = view[os.write(out, view) :]


def _described(exc: BaseException) -> tuple[str, str]:
    text = str(exc)
    for group, kind in _GROUPS.items():
        if isinstance(exc, kind):
            return group, text
    return "other", f"{type(exc).__name__}: {text}"


_GROUPS: dict[str, type[BaseException]] = {
    "image": ImageReadError,
    "eof": EOFError,
    "os": OSError,
}


class _Frames:
    """The parent's side of the pipe: `read(n)` of the bytes the frames carry."""

    def __init__(self, fd: int, ring: _Ring) -> None:
        self._pipe = io.FileIO(fd, closefd=False)
        self._ring = ring
        self._slot = 0
        self._chunk, self._offset = b"", 0
        self.ended = False

    def read(self, size: int) -> bytes:
        """At most `size` bytes, fewer at the end of a chunk, b"" at the end."""
        if self._offset >= len(self._chunk):
            self._chunk, self._offset = self._next(), 0
        data = piece_of(self._chunk, self._offset, size)
        self._offset += len(data)
        return data

    def _next(self) -> bytes:
        if self.ended:
            return b""
        header = self._exactly(_HEADER.size)
        length, kind = _HEADER.unpack(header) if len(header) == _HEADER.size else (0, 0)
        if length > (CHUNK if kind == _SLOT else _MAX_BODY):  # our own child's, but bounded
            raise ImageReadError("the process inflating the layer sent a broken frame")
        if kind == _SLOT:
            return self._taken(length)
        body = self._exactly(length) if kind else b""
        if not kind or len(body) != length:
            raise ImageReadError("the process inflating the layer ended before the layer did")
        self.ended = True
        if kind == _END:
            return b""
        raise _raised(*marshal.loads(body))

    def _taken(self, length: int) -> bytes:
        """The chunk in the ring's next slot, copied out, and the slot handed back."""
        at = self._slot * CHUNK
        chunk = self._ring.memory[at : at + length]
        self._slot = (self._slot + 1) % SLOTS
        # SLOTS bytes at most wait (far below PIPE_BUF). A child that sent its last chunk
        # may have ended already: what it sent after it is on the pipe all the same.
        with suppress(BrokenPipeError):
            os.write(self._ring.free, b"\0")
        return chunk

    def _exactly(self, size: int) -> bytes:
        """`size` bytes, fewer only when the child ended first."""
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size and (count := self._pipe.readinto(view[got:])):
            got += count
        view.release()
        return bytes(buffer) if got == size else bytes(buffer[:got])


def _raised(group: str, text: str) -> BaseException:
    """The child's error as reading in this process would have raised it."""
    kind = _GROUPS.get(group)
    if kind is not None:
        return kind(text)
    return RuntimeError(f"the process inflating the layer failed: {text}")
