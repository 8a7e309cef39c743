"""Reading ahead on a thread: the same bytes in order, errors raised to the reader, a
bounded queue, and a thread that stops when closed."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from imagescan.image.readahead import DEPTH, ReadAhead

DATA = os.urandom(1 << 20) + bytes(range(256)) * 5000


class Counted:
    """A source that counts its reads and can be held still."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        return self.stream.read(size)


def read_all(ahead: ReadAhead, size: int) -> bytes:
    parts = []
    while part := ahead.read(size):
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("size", [511, 4093, 1 << 20, 8 << 20])
def test_every_byte_in_order_whatever_the_read_size(size: int) -> None:
    ahead = ReadAhead(Counted(DATA).read, chunk=65536)
    assert read_all(ahead, size) == DATA
    assert ahead.read(10) == b""
    ahead.close()


def test_reads_return_at_most_what_was_asked() -> None:
    ahead = ReadAhead(Counted(DATA).read, chunk=1000)
    assert [len(ahead.read(300)) for _ in range(4)] == [300, 300, 300, 100]
    ahead.close()


def test_an_error_of_the_source_is_raised_by_read() -> None:
    def broken(size: int) -> bytes:
        raise OSError("disk gone")

    ahead = ReadAhead(broken)
    with pytest.raises(OSError, match="disk gone"):
        ahead.read(10)
    assert ahead.read(10) == b""  # and the stream has ended
    ahead.close()


def test_the_thread_reads_at_most_a_queue_ahead() -> None:
    source = Counted(bytes(100 * 4096))
    ahead = ReadAhead(source.read, chunk=4096)
    time.sleep(0.5)  # ample time to read everything, were the queue unbounded
    assert source.reads <= DEPTH + 1
    ahead.close()


def test_close_stops_the_thread_midway() -> None:
    before = threading.active_count()
    ahead = ReadAhead(Counted(bytes(100 * 4096)).read, chunk=4096)
    ahead.read(10)
    ahead.close()
    assert threading.active_count() == before


def test_the_switch_interval_is_short_while_a_thread_reads_ahead_and_restored_after() -> None:
    """The parser hands the GIL to the inflating thread sooner while one runs; of two at
    once (Dask worker threads), the last to end restores it."""
    import sys

    from imagescan.image.readahead import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL
    endless = ReadAhead(lambda size: b"x" * size)  # its queue fills; it waits till closed
    first = ReadAhead(Counted(DATA).read)
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert read_all(first, 1 << 20) == DATA
    first.close()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)  # `endless` still runs
    endless.close()  # stopped mid-data: its thread ends all the same
    assert sys.getswitchinterval() == pytest.approx(before)
