"""What a scan tells a progress display (issue 10 item 9): which layer, how many of its bytes
have been read, then how many ELF files have been analysed. The display itself (rich, on a
terminal only) lives in `cli`; the pipeline only calls these methods.

Layer bytes are counted as the source hands them over (the stored blob, compressed or not),
so that they compare with the size the manifest gives.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO, Protocol, cast

from imagescan.image.model import LayerAccess, OpenedImage


class ProgressSink(Protocol):
    """Receives the progress of one scan; every method is cheap and never raises."""

    def layer(self, index: int, count: int, size: int | None, diff_id: str | None) -> None: ...

    def read(self, nbytes: int) -> None: ...

    def analysing(self, total: int) -> None: ...

    def analysed(self, path: str) -> None: ...

    def message(self, text: str) -> None: ...


def short_id(digest: str | None) -> str:
    """`sha256:0123456789ab…` -> `0123456789ab`, as docker shortens image ids."""
    if not digest:
        return "unknown"
    return digest.partition(":")[2][:12] or digest[:12]


class _Counted(io.RawIOBase):
    """A blob stream that reports every byte read to the sink."""

    def __init__(self, inner: BinaryIO, sink: ProgressSink) -> None:
        self._inner = inner
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self._sink.read(len(data))
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class CountingAccess:
    """An image's LayerAccess that tells `sink` which layer opens and how much of it is read."""

    def __init__(self, image: OpenedImage, access: LayerAccess, sink: ProgressSink) -> None:
        self._image = image
        self._access = access
        self._sink = sink
        self.random_access = access.random_access
        self.forkable = False  # the bytes are counted as this process reads them

    def _announce(self, index: int | None, number: int) -> None:
        layers = self._image.layers
        count = max(len(layers), len(self._image.config.diff_ids))
        at = number if index is None else index
        size = layers[at].size if at < len(layers) else None
        diff_ids = self._image.config.diff_ids
        diff_id = diff_ids[at] if at < len(diff_ids) else None
        self._sink.layer(at, count, size, diff_id)

    def _counted(self, blob: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, _Counted(blob, self._sink))

    def open_layer(self, index: int) -> BinaryIO:
        self._announce(index, index)
        return self._counted(self._access.open_layer(index))

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]:
        for number, (index, blob) in enumerate(self._access.iter_layers()):
            self._announce(index, number)
            yield index, self._counted(blob)

    def close(self) -> None:
        self._access.close()
