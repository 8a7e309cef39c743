"""How close `read_rootfs` comes to the floor: inflating every layer and walking its tar.

Usage: python benchmarks/read_floor.py [REFERENCE]   (default: the corpus image deb12-base;
REFERENCE is anything imagescan opens: oci-dir:DIR:tag, docker-archive:FILE.tar, a path, ...)

Prints the floor (the same inflater, tar headers walked, nothing else), `read_rootfs` on the
same image, each with its peak RSS, and the ratio. Target: read_rootfs within 1.3x the floor.
"""

from __future__ import annotations

import resource
import sys
import tarfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from imagescan.image.compression import open_decompressed
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.reader import read_rootfs

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "oci"
DEFAULT = f"oci-dir:{CORPUS}:deb12-base"


def floor(image: OpenedImage) -> int:
    """Inflate every layer and walk its tar headers; the number of members seen."""
    assert image.access is not None
    members = 0
    for _, blob in image.access.iter_layers():
        with closing(blob), tarfile.open(fileobj=open_decompressed(blob), mode="r|") as tar:
            while tar.next() is not None:
                members += 1
                vars(tar)["members"].clear()
    return members


def timed(label: str, reference: str, work: Callable[[OpenedImage], object]) -> float:
    image = open_image(reference, SourceOptions())
    try:
        start = time.perf_counter()
        result = work(image)
        elapsed = time.perf_counter() - start
    finally:
        image.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{label:12} {elapsed:7.2f} s  peak RSS {rss:5d} MiB  ({result})")
    return elapsed


def main() -> None:
    reference = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    print(reference)
    base = timed("floor", reference, lambda image: f"{floor(image)} members")
    full = timed("read_rootfs", reference, lambda i: f"{len(read_rootfs(i).entries)} entries")
    print(f"ratio        {full / base:7.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
