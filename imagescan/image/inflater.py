"""A layer blob inflated by a forked child, its bytes piped back (issue 14).

In one process the inflater's thread and the tar walk with the ELF parser share the GIL:
the large image's read with symbol tables took 3.1-3.6 s against a single-threaded floor
(inflate and walk) of 2.6 s, with 3.4 s of CPU on the main thread and 2.5 s on the
inflater's, much of it spent handing the GIL back and forth. Here a child reads the blob,
checks its digest and inflates it, and this process, on the other core, walks the tar and
parses with no other thread to share its GIL with. In the child a thread inflates DEPTH
chunks ahead of the one that writes to the pipe (both release the GIL for their work), so
that the child goes on while this process parses a large library.

Frames on the pipe are (length, kind) and a body: a chunk of the layer's bytes, the end
(every byte sent, the gzip check and the blob's digest passed), or the child's error,
raised here as reading in this process would have raised it. The child never returns into
the caller, and is killed when the reader stops early.
"""

from __future__ import annotations

import io
import marshal
import os
import struct
from collections.abc import Callable

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
_HEADER = struct.Struct("=IB")  # body length, kind
_DATA, _END, _ERROR = 1, 2, 3
_MAX_BODY = 4 * CHUNK  # a chunk is at most CHUNK, an error's text far less


def inflated_by_child(read: Read, finish: Callable[[], None]) -> tuple[Read, Callable[[], None]]:
    """(read, close) of the bytes `read(n)` gives, produced by a forked child that calls
    `finish()` (the checks at the end) after the last of them."""
    pid, read_end = fork_writer(lambda out: _child(read, finish, out))
    frames = _Frames(read_end)

    def close() -> None:
        reap(pid, kill=not frames.ended)
        os.close(read_end)

    return frames.read, close


def _child(read: Read, finish: Callable[[], None], out: int) -> None:
    """The child's work: inflate (on a thread DEPTH chunks ahead), send, and the end or
    the error."""
    try:
        ahead = ReadAhead(read, CHUNK, DEPTH)
        while data := ahead.read(CHUNK):
            _send(out, _DATA, data)
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

    def __init__(self, fd: int) -> None:
        self._pipe = io.FileIO(fd, closefd=False)
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
        if length > _MAX_BODY:  # our own child's, but memory stays bounded all the same
            raise ImageReadError("the process inflating the layer sent a broken frame")
        body = self._exactly(length) if kind else b""
        if not kind or len(body) != length:
            raise ImageReadError("the process inflating the layer ended before the layer did")
        if kind == _DATA:
            return body
        self.ended = True
        if kind == _END:
            return b""
        raise _raised(*marshal.loads(body))

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
