"""A layer blob inflated by a forked child: the same bytes, the same errors, no child left."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import zstandard

from imagescan import parallel
from imagescan.errors import ImageReadError
from imagescan.image.compression import DigestVerifyingReader, open_decompressed
from imagescan.image.inflater import SLOTS
from imagescan.image.rawstream import CHUNK
from tests.fresh import in_fresh_process

# 5 MiB: several pipe chunks, incompressible and compressible parts.
PAYLOAD = os.urandom(3 << 20) + b"layer" * (400 << 10)
BLOBS = {
    "gzip": gzip.compress(PAYLOAD, compresslevel=1, mtime=0),
    "zstd": zstandard.ZstdCompressor(write_checksum=True).compress(PAYLOAD),
    "none": PAYLOAD,
}


def digest_of(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def verified(blob: bytes, digest: str | None = None) -> DigestVerifyingReader:
    return DigestVerifyingReader(io.BytesIO(blob), digest or digest_of(blob), "layer 1", len(blob))


def read_all(blob: bytes, fork: bool, digest: str | None = None) -> bytes:
    with open_decompressed(verified(blob, digest), "layer 1", read_ahead=True, fork=fork) as s:
        data = b"".join(iter(lambda: s.direct(70_000), b""))
        s.drain()
    return data


def error_of(blob: bytes, fork: bool, digest: str | None = None) -> str:
    with pytest.raises((ImageReadError, EOFError, OSError)) as caught:
        read_all(blob, fork, digest)
    return f"{type(caught.value).__name__}: {caught.value}"


@contextmanager
def counted_forks() -> Iterator[list[int]]:
    """The pids of the children the inflater forks, each checked to be reaped at the end
    or, while it still exits, left to parallel.wait_exiting (which then reaps it)."""
    pids: list[int] = []
    real = os.fork

    def counted() -> int:
        pid = real()
        if pid:
            pids.append(pid)
        return pid

    parallel.os.fork = counted  # type: ignore[assignment]  # in a fresh process only
    try:
        yield pids
    finally:
        parallel.os.fork = real
    exiting = set(parallel._EXITING)
    parallel.wait_exiting()
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # reaped already (or by wait_exiting): not our child any more
        raise AssertionError(f"child {pid} was left unreaped")
    assert not parallel._EXITING and exiting <= set(pids)


def fresh(call: str) -> None:
    in_fresh_process("tests.test_image_inflater", call)


# ------------------------------------------------------------ run in fresh processes


def same_bytes(kind: str) -> None:
    with counted_forks() as forks:
        assert read_all(BLOBS[kind], fork=True) == PAYLOAD
    assert len(forks) == 1


def same_error(blob: bytes, digest: str | None = None) -> None:
    here = error_of(blob, False, digest)
    with counted_forks() as forks:
        assert error_of(blob, True, digest) == here
    assert len(forks) == 1


def digest_mismatch() -> None:
    wrong = "sha256:" + "0" * 64
    assert "digest mismatch" in error_of(BLOBS["gzip"], False, wrong)
    same_error(BLOBS["gzip"], wrong)


def truncated(kind: str) -> None:
    same_error(BLOBS[kind][: len(BLOBS[kind]) // 2])


def corrupt() -> None:
    blob = bytearray(BLOBS["gzip"])
    blob[len(blob) // 3 : len(blob) // 3 + 64] = bytes(64)
    same_error(bytes(blob))


def stops_early() -> None:
    with counted_forks() as forks:
        stream = open_decompressed(verified(BLOBS["gzip"]), read_ahead=True, fork=True)
        with stream:
            assert stream.direct(1000) == PAYLOAD[:1000]
    assert len(forks) == 1  # and killed and reaped


def child_dies() -> None:
    with counted_forks() as forks:
        stream = open_decompressed(verified(BLOBS["none"]), read_ahead=True, fork=True)
        with stream, pytest.raises(ImageReadError, match="ended before the layer did"):
            stream.direct(1000)
            os.kill(forks[0], 9)
            while stream.direct(1 << 20):
                pass


def many_turns() -> None:
    """More chunks than the shared ring has slots, each its own bytes, read in pieces
    that straddle them, by a reader that lets the child fill every slot first."""
    payload = b"".join(bytes([n]) * CHUNK for n in range(3 * SLOTS + 1)) + b"end"
    with counted_forks() as forks:
        stream = open_decompressed(verified(payload), read_ahead=True, fork=True)
        with stream:
            got = [stream.direct(777_777)]
            time.sleep(0.2)  # the child waits for a slot meanwhile
            while piece := stream.direct(777_777):
                got.append(piece)
    assert b"".join(got) == payload and len(forks) == 1


def another_thread() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with counted_forks() as forks:
            assert read_all(BLOBS["gzip"], fork=True) == PAYLOAD
    finally:
        stop.set()
        other.join()
    assert forks == []  # a lock the other thread held would stay held in a child


# ------------------------------------------------------------ the tests


@pytest.mark.parametrize("kind", sorted(BLOBS))
def test_a_child_gives_the_same_bytes(kind: str) -> None:
    fresh(f"same_bytes({kind!r})")


def test_a_digest_mismatch_is_the_same_error() -> None:
    fresh("digest_mismatch()")


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_truncated_blob_is_the_same_error(kind: str) -> None:
    fresh(f"truncated({kind!r})")


def test_corrupt_data_is_the_same_error() -> None:
    fresh("corrupt()")


def test_a_reader_that_stops_early_leaves_no_child() -> None:
    fresh("stops_early()")


def test_a_child_that_dies_is_an_image_read_error() -> None:
    fresh("child_dies()")


def test_every_chunk_comes_in_order_through_the_ring() -> None:
    fresh("many_turns()")


def test_no_child_while_another_thread_runs() -> None:
    fresh("another_thread()")
