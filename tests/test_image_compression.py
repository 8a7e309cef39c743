"""Layer blob streams: digest verification at EOF and decompression chosen by magic bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Callable

import pytest
import zstandard

from imagescan.errors import ImageReadError
from imagescan.image.compression import (
    ENTRY_EXPANSION,
    GZIP_INPUT_CHUNK,
    DigestVerifyingReader,
    entry_compressor,
    entry_inflate,
    open_decompressed,
    parse_digest,
)

PAYLOAD = os.urandom(300_000) + b"layer" * 200_000  # incompressible and compressible parts


def digest_of(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def zstd_frames(*parts: bytes) -> bytes:
    # With checksums, as containerd/klauspost write zstd layers: corruption is then detectable.
    compressor = zstandard.ZstdCompressor(write_checksum=True)
    return b"".join(compressor.compress(p) for p in parts)


BLOBS = {
    "gzip": gzip.compress(PAYLOAD, mtime=0),
    "zstd": zstd_frames(PAYLOAD),
    "none": PAYLOAD,
}


@pytest.mark.parametrize("kind", sorted(BLOBS))
def test_decompresses_by_magic_bytes(kind: str) -> None:
    stream = open_decompressed(io.BytesIO(BLOBS[kind]))
    assert stream.read() == PAYLOAD
    assert stream.compression == kind


@pytest.mark.parametrize("kind", sorted(BLOBS))
def test_verified_stream_reads_through(kind: str) -> None:
    blob = BLOBS[kind]
    verified = DigestVerifyingReader(io.BytesIO(blob), digest_of(blob), "layer 1", len(blob))
    assert open_decompressed(verified).read() == PAYLOAD


def test_small_reads_match_one_big_read() -> None:
    stream = open_decompressed(io.BytesIO(BLOBS["zstd"]))
    chunks = iter(lambda: stream.read(7_777), b"")
    assert b"".join(chunks) == PAYLOAD


def test_zstd_reads_every_frame() -> None:
    stream = open_decompressed(io.BytesIO(zstd_frames(b"first ", b"second")))
    assert stream.read() == b"first second"


def test_gzip_reads_every_member() -> None:
    blob = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)
    assert open_decompressed(io.BytesIO(blob)).read() == b"first second"


def test_digest_mismatch_raises_at_eof_naming_the_blob() -> None:
    blob = BLOBS["gzip"]
    wrong = digest_of(b"something else")
    stream = DigestVerifyingReader(io.BytesIO(blob), wrong, "layer 2/3 (x) of oci-dir /y")
    assert stream.read(100) == blob[:100]  # no check before EOF
    with pytest.raises(ImageReadError, match=r"layer 2/3 \(x\) of oci-dir /y: digest mismatch"):
        stream.read()


def test_drain_checks_the_digest_when_the_consumer_stops_early() -> None:
    stream = DigestVerifyingReader(io.BytesIO(b"abc"), digest_of(b"abd"), "blob")
    stream.read(1)
    with pytest.raises(ImageReadError, match="digest mismatch"):
        stream.drain()


def test_drain_of_a_good_blob_is_quiet() -> None:
    stream = DigestVerifyingReader(io.BytesIO(b"abc"), digest_of(b"abc"), "blob")
    stream.read(1)
    stream.drain()


def test_decompressed_drain_reaches_the_blob_check() -> None:
    blob = gzip.compress(os.urandom(3 * GZIP_INPUT_CHUNK), mtime=0)  # several reads of the blob
    verifier = DigestVerifyingReader(io.BytesIO(blob), digest_of(blob + b"x"), "layer 1")
    stream = open_decompressed(verifier)
    stream.read(10)
    with pytest.raises(ImageReadError, match="digest mismatch"):
        stream.drain()


def test_sha512_digests_verify() -> None:
    digest = "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert DigestVerifyingReader(io.BytesIO(b"abc"), digest, "blob").read() == b"abc"


def test_shorter_than_declared_size_is_reported() -> None:
    stream = DigestVerifyingReader(io.BytesIO(b"abc"), digest_of(b"abc"), "blob", size=10)
    with pytest.raises(ImageReadError, match="3 bytes stored, 10 declared"):
        stream.read()


def test_longer_than_declared_size_fails_before_eof() -> None:
    data = b"x" * 5_000_000
    stream = DigestVerifyingReader(io.BytesIO(data), digest_of(data), "blob", size=100)
    with pytest.raises(ImageReadError, match="longer than the 100 bytes declared"):
        stream.read(4096)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_compressed_stream_is_an_image_read_error(kind: str) -> None:
    blob = BLOBS[kind]
    stream = open_decompressed(io.BytesIO(blob[: len(blob) // 2]), "layer 4")
    with pytest.raises(ImageReadError, match=f"layer 4: corrupt {kind} data"):
        stream.read()


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_corrupt_compressed_stream_is_an_image_read_error(kind: str) -> None:
    blob = bytearray(BLOBS[kind])
    blob[20:60] = b"\xff" * 40
    stream = open_decompressed(io.BytesIO(bytes(blob)), "layer 1")
    with pytest.raises(ImageReadError, match=f"corrupt {kind} data"):
        stream.read()


def test_gzip_with_a_bad_crc_fails_when_drained() -> None:
    blob = bytearray(gzip.compress(b"hello" * 1000, mtime=0))
    blob[-8] ^= 0xFF  # CRC32 of the member trailer
    stream = open_decompressed(io.BytesIO(bytes(blob)), "layer 1")
    with pytest.raises(ImageReadError, match="corrupt gzip data"):
        stream.drain()


def test_tiny_uncompressed_blobs_pass_through() -> None:
    for data in (b"", b"a", b"\x1f"):
        assert open_decompressed(io.BytesIO(data)).read() == data


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64, "sha256/../../etc", "sha256"],
)
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(ImageReadError, match="malformed digest"):
        parse_digest(digest, "layer 1")


@pytest.mark.parametrize("kind", sorted(BLOBS))
def test_reading_ahead_gives_the_same_bytes(kind: str) -> None:
    with open_decompressed(io.BytesIO(BLOBS[kind]), read_ahead=True) as stream:
        assert stream.read(7) + stream.read(100_000) + stream.read() == PAYLOAD


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_reading_ahead_raises_the_threads_errors_to_the_reader(kind: str) -> None:
    blob = BLOBS[kind]
    stream = open_decompressed(io.BytesIO(blob[: len(blob) // 2]), "layer 4", read_ahead=True)
    with stream, pytest.raises(ImageReadError, match=f"layer 4: corrupt {kind} data"):
        stream.read()


def test_reading_ahead_still_checks_the_digest_when_drained() -> None:
    blob = gzip.compress(os.urandom(3 * GZIP_INPUT_CHUNK), mtime=0)
    verifier = DigestVerifyingReader(io.BytesIO(blob), digest_of(blob + b"x"), "layer 1")
    with open_decompressed(verifier, read_ahead=True) as stream:
        stream.read(10)
        with pytest.raises(ImageReadError, match="digest mismatch"):
            stream.drain()


def test_zstd_many_small_frames_across_the_input_pieces() -> None:
    """Frame boundaries fall anywhere inside the 4 KiB pieces and 64 KiB reads the decoder
    feeds (issue 12): every frame's bytes come out, in order."""
    parts = [os.urandom(n) + bytes(n) for n in range(1, 3000, 7)]
    stream = open_decompressed(io.BytesIO(zstd_frames(*parts)))
    assert b"".join(iter(lambda: stream.read(1000), b"")) == b"".join(parts)


def test_zstd_truncated_anywhere_is_an_error() -> None:
    blob = zstd_frames(os.urandom(200_000), b"z" * 300_000)
    for cut in (100, 4096, 65_536, 65_537, len(blob) - 1):
        with pytest.raises(ImageReadError, match=r"truncated|corrupt zstd"):
            open_decompressed(io.BytesIO(blob[:cut])).read()


def test_zstd_output_per_read_stays_bounded() -> None:
    """A blob of 16 KiB that decodes to 512 MiB of zeros: each raw read of the decoder
    yields at most what one 4 KiB piece can expand to (1,024 RLE blocks of 128 KiB) on top
    of the ZSTD_OUTPUT it stops after, never the whole expansion (issue 15); the 64 KiB
    reads from the blob are not fed at once (issue 12)."""
    from imagescan.image.compression import ZSTD_INPUT_CHUNK, ZSTD_OUTPUT, _ZstdDecoder

    blob = zstandard.ZstdCompressor(level=19).compress(bytes(512 << 20))
    assert len(blob) < 64 << 10
    decoder = _ZstdDecoder(io.BytesIO(blob))
    largest = total = 0
    while data := decoder.read(1 << 30):
        largest, total = max(largest, len(data)), total + len(data)
    assert total == 512 << 20
    assert largest <= ZSTD_INPUT_CHUNK // 4 * (128 << 10) + ZSTD_OUTPUT


def entry(*pieces: bytes) -> bytes:
    """A store entry as the codec writes it: pieces through one compressor."""
    compressor = entry_compressor()
    return b"".join(compressor.compress(piece) for piece in pieces) + compressor.flush()


def test_an_entry_inflates_to_what_was_compressed() -> None:
    assert entry_inflate(entry(PAYLOAD[:1000], PAYLOAD[1000:])) == PAYLOAD
    assert entry_inflate(entry()) == b""
    assert len(entry(PAYLOAD)) < len(zlib.compress(PAYLOAD, 1))  # smaller than before


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-4],  # the checksum cut off
        lambda data: data[: len(data) // 2],  # truncated inside a block
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # a wrong checksum
        lambda data: data[:20] + bytes([data[20] ^ 0xFF]) + data[21:],  # a broken block
        lambda data: b"not zstd at all",
        lambda data: zlib.compress(PAYLOAD, 1),  # an entry of the version before
    ],
)
def test_a_damaged_entry_is_refused(damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError, match="damaged zstd data"):
        entry_inflate(damage(entry(PAYLOAD)))


def test_an_entry_inflates_to_a_bounded_size() -> None:
    """Zeros compress past deflate's 1032:1, which bounds what an entry may claim."""
    zeros = bytes(64 << 20)
    data = entry(zeros)
    assert len(data) * ENTRY_EXPANSION < len(zeros)
    with pytest.raises(ValueError, match="damaged zstd data"):
        entry_inflate(data)
    assert entry_inflate(entry(bytes(1 << 20))) == bytes(1 << 20)  # within the 1 MiB floor
