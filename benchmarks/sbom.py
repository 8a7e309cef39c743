"""What the SBOMs add to a scan: hashing every ELF file while reading, building the link
graph and package owners, and rendering SPDX and CycloneDX.

Usage: python benchmarks/sbom.py [REFERENCE] [--runs N]   (default: the corpus image
deb12-base, best of 3)

The peer is the scan's own read (`read_rootfs` with symbol tables), measured in the same
run. Hashing is measured as the reader does it (SHA-256 and SHA-1 over a buffer the size of
each ELF file), so its ratio to the read is the share the digests add. Target: under 10%.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from imagescan.analyze import analyze
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.linkgraph import link_graph
from imagescan.render.cyclonedx import render_cyclonedx
from imagescan.render.spdx import render_spdx
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs
from imagescan.scan import make_report

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "oci"
DEFAULT = f"oci-dir:{CORPUS}:deb12-base"


def best(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def read(reference: str) -> RootFS:
    image = open_image(reference, SourceOptions())
    try:
        return read_rootfs(image)
    finally:
        image.close()


def hash_elf_sizes(rootfs: RootFS) -> int:
    """SHA-256 and SHA-1 over buffers of each ELF file's size (what with_digests does)."""
    sizes = [e.size for e in rootfs.entries.values() if e.elf is not None and e.size]
    buffer = memoryview(bytearray(max(sizes, default=0)))
    for size in sizes:
        hashlib.sha256(buffer[:size]).hexdigest()
        hashlib.sha1(buffer[:size]).hexdigest()
    return sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference", nargs="?", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    read_time, rootfs = best(args.runs, lambda: read(args.reference))
    assert isinstance(rootfs, RootFS)
    hash_time, total = best(args.runs, lambda: hash_elf_sizes(rootfs))
    image = open_image(args.reference, SourceOptions())
    image.close()
    analysis = analyze(rootfs, image.config)
    graph_time, _ = best(args.runs, lambda: link_graph(rootfs, analysis, "now"))
    report = make_report(image, rootfs, analysis)
    spdx_time, _ = best(args.runs, lambda: render_spdx(report))
    cdx_time, _ = best(args.runs, lambda: render_cyclonedx(report))
    elves = sum(1 for e in rootfs.entries.values() if e.elf is not None)
    print(f"{args.reference}: {elves} ELF files, {int(total) >> 20} MiB of ELF bytes")
    print(f"scan's read (peer)        {read_time:7.3f} s")
    print(
        f"hash SHA-256 + SHA-1      {hash_time:7.3f} s  ({hash_time / read_time:.1%} of the read)"
    )
    print(f"link graph + owners       {graph_time:7.3f} s")
    print(f"render spdx-json          {spdx_time:7.3f} s")
    print(f"render cyclonedx-json     {cdx_time:7.3f} s")


if __name__ == "__main__":
    main()
