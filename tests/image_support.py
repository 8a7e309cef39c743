"""Reading back what a source hands over: the member names of each layer blob."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from imagescan.image.compression import open_decompressed
from imagescan.image.model import OpenedImage


def member_names(stream: BinaryIO) -> list[str]:
    """The tar member names of one layer blob, read to its end so its digest is checked."""
    decoded = open_decompressed(stream)
    with tarfile.open(fileobj=decoded, mode="r|") as tar:
        names = [member.name for member in tar]
    decoded.drain()
    return names


def read_all_layers(image: OpenedImage) -> list[list[str]]:
    """Every layer's member names, in the order the source yields the layers."""
    assert image.access is not None
    return [member_names(stream) for _, stream in image.access.iter_layers()]
