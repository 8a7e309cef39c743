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
import sys
from pathlib import Path

from imagescan.analyze import analyze
from imagescan.image.model import ImageConfig
from imagescan.linkgraph import link_graph
from imagescan.render.cyclonedx import render_cyclonedx
from imagescan.render.spdx import render_spdx
from imagescan.report import ImageInfo, Report
from imagescan.rootfs.model import RootFS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_floor import DEFAULT
from scan import best_of, read


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
    read_time, (rootfs, config) = best_of(args.runs, lambda: read(args.reference))
    assert isinstance(rootfs, RootFS) and isinstance(config, ImageConfig)
    hash_time, total = best_of(args.runs, lambda: hash_elf_sizes(rootfs))
    analysis = analyze(rootfs, config)
    graph_time, graph = best_of(args.runs, lambda: link_graph(rootfs, analysis, "now"))
    files = tuple(analysis.verdicts[p] for p in sorted(analysis.verdicts))
    info = ImageInfo(args.reference, "bench", None, config.architecture, config.os)
    report = Report(info, files, links=graph)
    spdx_time, _ = best_of(args.runs, lambda: render_spdx(report))
    cdx_time, _ = best_of(args.runs, lambda: render_cyclonedx(report))
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
