"""The one raw-stream adapter: bytes from a read function, closed once."""

from __future__ import annotations

import io

import pytest

from imagescan.image.rawstream import RawStream, buffered


class _Trickle(io.BytesIO):
    """A stream that never returns more than `most` bytes per read."""

    def __init__(self, data: bytes, most: int) -> None:
        super().__init__(data)
        self.most = most

    def read(self, size: int | None = -1) -> bytes:
        want = self.most if size is None or size < 0 else min(size, self.most)
        return super().read(want)


def test_reads_everything_through_a_short_reading_source() -> None:
    data = bytes(range(256)) * 1000
    stream = buffered(_Trickle(data, 777).read, size=4096)
    assert stream.read() == data
    assert stream.read(10) == b""


def test_close_runs_once() -> None:
    closed: list[int] = []
    raw = RawStream(io.BytesIO(b"x").read, lambda: closed.append(1))
    raw.close()
    raw.close()
    assert closed == [1]
    assert raw.closed


def test_errors_of_read_pass_through() -> None:
    def read(size: int) -> bytes:
        raise ValueError("the source broke")

    with pytest.raises(ValueError, match="the source broke"):
        buffered(read).read(1)


def test_readinto_fills_the_callers_buffer() -> None:
    raw = RawStream(io.BytesIO(b"abcdef").read)
    buffer = bytearray(4)
    assert raw.readinto(buffer) == 4
    assert buffer == bytearray(b"abcd")
    assert raw.readable()
