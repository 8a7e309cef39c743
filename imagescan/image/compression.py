"""Layer blob streams: digest verification while reading, decompression recognised by magic.

A blob's media type is advice; the bytes decide (gzip 1f 8b, zstd 28 b5 2f fd, else a plain
tar), as containerd's `compression.DecompressStream` does. isal and zstandard stay inside this
module; callers see `BinaryIO` and `ImageReadError`.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol, cast

import zstandard

from imagescan.errors import ImageReadError
from imagescan.heap import HEAP_BUFFER
from imagescan.image.inflater import inflated_by_child
from imagescan.image.rawstream import CHUNK, RawStream, Read, buffered
from imagescan.image.readahead import ReadAhead
from imagescan.parallel import can_fork

try:  # isal's inflater is several times faster than zlib's; same format and errors.
    from isal import igzip as _gzip
    from isal.igzip_lib import IsalError

    # isal's stub declares IsalError as an instance; it is the exception class.
    _ISAL_ERROR = cast(type[Exception], IsalError)
    _GZIP_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error, _ISAL_ERROR)
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip  # type: ignore[no-redef]

    _GZIP_ERRORS = (OSError, EOFError, zlib.error)

_DECODE_ERRORS: tuple[type[Exception], ...] = (*_GZIP_ERRORS, zstandard.ZstdError)
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd input fed per call: bounds what one call can inflate to (an RLE block of 4 bytes
# expands to 128 KiB), so a hostile blob cannot make one read allocate gigabytes.
ZSTD_INPUT_CHUNK = 4096
ZSTD_READ = 64 << 10  # bytes read from the blob at once, then fed ZSTD_INPUT_CHUNK per call
ZSTD_OUTPUT = 256 << 10  # decoding stops for a read once this much is out (plus one call's)
# gzip input read from the blob per call: isal's GzipFile reads 512 KiB at a time through
# a Python-level wrapper, and each call back into Python waits for the GIL that the parser
# holds (issue 14: the large image's read with symbols 3.4 s -> 3.0 s).
GZIP_INPUT_CHUNK = HEAP_BUFFER  # just under 4 MiB: from the heap (imagescan.heap)
_HASHES: dict[str, Callable[[], hashlib._Hash]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


class Compressor(Protocol):
    """A streaming compressor: what `compress` returns, then `flush`, is one stream."""

    def compress(self, data: bytes) -> bytes:
        """The compressed bytes for `data` so far (maybe none)."""
        ...

    def flush(self) -> bytes:
        """The rest of the stream, which ends it."""
        ...


# The store's entries (issue 14): zstd at level 3 made the large image's 30 MiB entry
# 4.3 MiB in 0.08 s, against 7.2 MiB in 0.19 s for zlib at level 1, and reads it back in
# half of isal's inflate time (0.024 against 0.046 s).
ENTRY_LEVEL = 3
# At most this many times its compressed size is a store entry inflated to: zlib's own
# bound (deflate expands 1032:1 at most), which the zstd entries keep (an RLE block of 4
# bytes is 128 KiB of output: a damaged entry could otherwise claim gigabytes).
ENTRY_EXPANSION = 1032


def entry_compressor() -> Compressor:
    """The compressor of one store entry: a zstd frame with its checksum."""
    return zstandard.ZstdCompressor(level=ENTRY_LEVEL, write_checksum=True).compressobj()


def entry_inflate(data: bytes) -> bytes:
    """The store entry `data` (one zstd frame: `entry_compressor`'s) decoded, its checksum
    checked. ValueError when it is damaged, truncated, or inflates past ENTRY_EXPANSION
    times its size."""
    limit = max(1 << 20, len(data) * ENTRY_EXPANSION)
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise ValueError(f"damaged zstd data ({exc})") from exc


def parse_digest(digest: str, what: str) -> tuple[str, str]:
    """(algorithm, hex) of "sha256:<hex>"; ImageReadError for anything else (also path-safe)."""
    algorithm, sep, hexdigest = digest.partition(":")
    valid = (
        sep == ":"
        and algorithm in _HEX_LENGTH
        and len(hexdigest) == _HEX_LENGTH[algorithm]
        and all(c in "0123456789abcdef" for c in hexdigest)
    )
    if not valid:
        raise ImageReadError(f"{what}: unsupported or malformed digest {digest[:150]!r}")
    return algorithm, hexdigest


class _Hashing:
    """Reads `stream`, hashing every byte; checks digest (and size) when `stream` ends."""

    def __init__(self, stream: BinaryIO, digest: str, what: str, size: int | None) -> None:
        algorithm, self._expected = parse_digest(digest, what)
        self._stream, self._digest, self._what, self._size = stream, digest, what, size
        self._hash = _HASHES[algorithm]()
        self._count = 0
        self._checked = False

    def read(self, size: int) -> bytes:
        data = self._stream.read(size)
        if not data and size:
            self._check()
            return b""
        self._count += len(data)
        if self._size is not None and self._count > self._size:
            raise ImageReadError(f"{self._what}: longer than the {self._size} bytes declared")
        self._hash.update(data)
        return data

    def _check(self) -> None:
        # At EOF: the stored bytes must be exactly the ones the manifest names.
        if self._checked:
            return
        self._checked = True
        if self._size is not None and self._count != self._size:
            raise ImageReadError(
                f"{self._what}: {self._count} bytes stored, {self._size} declared (truncated?)"
            )
        if self._hash.hexdigest() != self._expected:
            raise ImageReadError(
                f"{self._what}: digest mismatch, content is "
                f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}, "
                f"expected {self._digest}"
            )


class DigestVerifyingReader(io.BufferedReader):
    """A blob stream that raises ImageReadError at EOF when its bytes do not hash to `digest`.

    `size`, when known (the descriptor's), is checked too, and reading past it fails at once.
    Call `drain()` after consuming what you need so the check runs even if you stop early.
    """

    def __init__(self, stream: BinaryIO, digest: str, what: str, size: int | None = None) -> None:
        hashing = _Hashing(stream, digest, what, size)
        super().__init__(RawStream(hashing.read, stream.close), buffer_size=CHUNK)

    def drain(self) -> None:
        """Reads to EOF, so that the digest is checked."""
        while self.read(CHUNK):
            pass


def _prefixed(prefix: bytes, stream: BinaryIO) -> RawStream:
    """`prefix` then the rest of `stream`: puts back the magic bytes that sniffing read."""
    rest = [prefix]

    def read(size: int) -> bytes:
        if rest[0]:
            head, rest[0] = rest[0][:size], rest[0][size:]
            return head
        return stream.read(size)

    return RawStream(read, stream.close)


class _ZstdDecoder:
    """zstd frames (one or more, back to back) decoded; a truncated last frame is an error.

    python-zstandard's stream_reader ends quietly on a truncated frame, so this drives
    decompressobj itself and checks that the input ended on a frame boundary. Input is read
    ZSTD_READ at a time and decoded ZSTD_INPUT_CHUNK per call, until ZSTD_OUTPUT bytes are
    out: a Python round trip per 4 KiB cost about 0.1-0.25 s per GB of incompressible data
    (issue 12, measured paired against the earlier reader).
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False
        self._pending = b""
        self._offset = 0
        self._input = memoryview(b"")

    def read(self, size: int) -> bytes:
        while self._offset >= len(self._pending) and self._feed():
            pass
        data = self._pending[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def _feed(self) -> bool:
        """Decodes more input into _pending; False at a clean end of input."""
        parts: list[bytes] = []
        out = 0
        while out < ZSTD_OUTPUT:
            piece = self._next_input()
            if piece is None:
                if parts:
                    break
                if self._in_frame:
                    raise zstandard.ZstdError("input ends inside a frame (truncated)")
                return False
            for decoded in self._decode(piece):
                parts.append(decoded)
                out += len(decoded)
        self._pending, self._offset = b"".join(parts), 0
        return True

    def _next_input(self) -> memoryview | None:
        """The next ZSTD_INPUT_CHUNK bytes of input at most; None at its end."""
        if not self._input:
            data = self._source.read(ZSTD_READ)
            if not data:
                return None
            self._input = memoryview(data)
        piece, self._input = self._input[:ZSTD_INPUT_CHUNK], self._input[ZSTD_INPUT_CHUNK:]
        return piece

    def _decode(self, piece: memoryview | bytes) -> Iterator[bytes]:
        while piece:
            self._in_frame = True
            yield self._decoder.decompress(piece)
            piece = b""
            if self._decoder.eof:  # frame complete: the rest starts the next frame
                piece = self._decoder.unused_data
                self._decoder = zstandard.ZstdDecompressor().decompressobj()
                self._in_frame = False


def _decoding(
    decoder: BinaryIO, source: BinaryIO, what: str, kind: str
) -> tuple[Read, Callable[[], None]]:
    """Reads a decompressor, turning its errors into one ImageReadError naming the blob."""

    def read(size: int) -> bytes:
        try:
            return decoder.read(size)
        except ImageReadError:
            raise
        except _DECODE_ERRORS as exc:
            raise ImageReadError(f"{what}: corrupt {kind} data ({exc})") from exc

    def close() -> None:
        decoder.close()
        source.close()

    return read, close


class DecompressedReader(io.BufferedReader):
    """The uncompressed bytes of a layer blob; `compression` is "gzip", "zstd" or "none".

    `direct` reads the same bytes without this reader's buffer (at most n, fewer at the end
    of a read-ahead chunk): for a caller that reads through it alone, from the start, and
    copes with short reads: no copy of every byte into the buffer, and the large image's
    read 7 MiB smaller, in the same time (issue 14); `drain` still works after it."""

    def __init__(self, raw: RawStream, source: BinaryIO, compression: str, direct: Read) -> None:
        super().__init__(raw, buffer_size=CHUNK)
        self._source = source
        self.compression = compression
        self.direct = direct

    def drain(self) -> None:
        """Reads to EOF (checking the gzip CRC or zstd frame), then drains the blob stream."""
        _read_out(self.read, self._source)


def _read_out(read: Read, source: BinaryIO) -> None:
    """`read` to its end (a gzip CRC or zstd frame is checked there), then `source` drained
    when it can be (a verified blob checks its digest)."""
    while read(CHUNK):
        pass
    drain = getattr(source, "drain", None)
    if callable(drain):
        drain()


def _sniff(stream: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first bytes of `stream` and a stream that still starts with them."""
    peek = getattr(stream, "peek", None)
    if callable(peek):
        head = bytes(peek(len(ZSTD_MAGIC)))[: len(ZSTD_MAGIC)]
        if len(head) >= len(ZSTD_MAGIC):
            return head, stream
    head = stream.read(len(ZSTD_MAGIC))
    return head, io.BufferedReader(_prefixed(head, stream), buffer_size=CHUNK)


def compression_of(head: bytes) -> str:
    """ "gzip", "zstd" or "none", from a blob's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return "zstd" if head.startswith(ZSTD_MAGIC) else "none"


def open_decompressed(
    stream: BinaryIO, what: str = "layer", *, read_ahead: bool = False, fork: bool = False
) -> DecompressedReader:
    """The uncompressed stream of a layer blob, compression recognised by its magic bytes.

    With `read_ahead`, a thread reads (fetches, verifies, inflates) ahead of the caller
    through a bounded queue, so decompression overlaps what the caller does with the bytes
    (isal, zstandard and hashlib release the GIL); close the reader to stop it. With `fork`
    too, and where this process may fork, a forked child does that work (`inflater`: for
    a blob read through a file descriptor of its own, which only the child reads on)."""
    head, stream = _sniff(stream)
    kind = compression_of(head)
    if read_ahead and fork and can_fork():
        read, close = _in_child(stream, what, kind)
        return DecompressedReader(RawStream(read, close), io.BytesIO(), kind, read)
    read, close = _decoded(stream, what, kind)
    if read_ahead:
        ahead = ReadAhead(read)
        read, close = ahead.read, _then(ahead.close, close)
    return DecompressedReader(RawStream(read, close), stream, kind, read)


def _in_child(stream: BinaryIO, what: str, kind: str) -> tuple[Read, Callable[[], None]]:
    """(read, close) of the decoded bytes of `stream`, decoded by a forked child, which
    also drains the blob (its digest checked) at the end."""
    read, close_decoder = _decoded(stream, what, kind)
    piped, close_pipe = inflated_by_child(read, lambda: _read_out(read, stream))
    return piped, _then(close_pipe, close_decoder)


def _decoded(stream: BinaryIO, what: str, kind: str) -> tuple[Read, Callable[[], None]]:
    """(read, close) of the decoded bytes of `stream`."""
    if kind == "none":
        return stream.read, stream.close
    decoder = _gzip_reader(stream) if kind == "gzip" else buffered(_ZstdDecoder(stream).read)
    return _decoding(decoder, stream, what, kind)


def _gzip_reader(stream: BinaryIO) -> BinaryIO:
    """isal's C gzip reader (the one inside its GzipFile) straight on the blob, reading
    GZIP_INPUT_CHUNK at a time; GzipFile where this isal has no such reader. Each read
    inflates at most the bytes asked for, and the CRC and length are checked at the end."""
    reader = getattr(_gzip, "_IGzipReader", None)
    if reader is None:  # pragma: no cover - isal without its C reader, or zlib's gzip
        return cast(BinaryIO, _gzip.GzipFile(fileobj=stream, mode="rb"))  # type: ignore[no-untyped-call]
    return cast(BinaryIO, reader(stream, GZIP_INPUT_CHUNK))


def _then(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            second()

    return both
