"""One raw-stream adapter for the image sources: a `read(n) -> bytes` function as a file.

Every source turns something that hands out bytes (a blob file, an HTTP body, an export's
chunks, a decompressor) into the `BinaryIO` the reader takes; this is the one place that
speaks `io.RawIOBase`'s readinto protocol, so that a source supplies only its `read` and
what closing means (and its own errors, raised from `read`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO, cast

Read = Callable[[int], bytes]
CHUNK = 1 << 20


class RawStream(io.RawIOBase):
    """A raw stream whose bytes come from `read(n)` (at most n bytes, b"" at the end);
    closing it calls `close` once."""

    def __init__(self, read: Read, close: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._read, self._close = read, close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and self._close is not None:
            self._close()
        super().close()


def buffered(read: Read, close: Callable[[], None] | None = None, size: int = CHUNK) -> BinaryIO:
    """`RawStream(read, close)` behind a buffer of `size` bytes (with peek)."""
    return cast(BinaryIO, io.BufferedReader(RawStream(read, close), buffer_size=size))


def piece_of(chunk: bytes, offset: int, size: int) -> bytes:
    """At most `size` bytes of `chunk` from `offset`: the chunk itself, not a copy, when
    all of it is asked for (a reader of whole chunks copies nothing)."""
    if offset == 0 and size >= len(chunk):
        return chunk
    return chunk[offset : offset + size]
