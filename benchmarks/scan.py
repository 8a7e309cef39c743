"""A full scan (reading, loader, symbols) against the read floor, in one run.

Usage: python benchmarks/scan.py [REFERENCE] [--runs N]
(default: the corpus image deb12-base; for the large image see make_debian_image.py)

Prints the floor (inflate every layer with the same inflater and walk the tar headers),
`read_rootfs`, the analysis alone (loader emulation, version and symbol checks, plugins;
one core), and their sum, each the best of N runs, with peak RSS; then the ratios and the
analysis rate in ELF files per second. Targets: reading within 1.3x the floor, the
analysis adding at most 50% of the floor, at least 500 ELF files/s, under 300 MB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from imagescan.analyze import analyze
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_floor import DEFAULT, floor


def best_of(runs: int, work: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        result = None  # drop the last run's result first: peak RSS is of one run
        start = time.perf_counter()
        result = work()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def read(reference: str) -> tuple[RootFS, object]:
    image = open_image(reference, SourceOptions())
    try:
        return read_rootfs(image), image.config
    finally:
        image.close()


def floor_of(reference: str) -> str:
    image = open_image(reference, SourceOptions())
    try:
        return floor(image)
    finally:
        image.close()


def rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    t_floor, members = best_of(args.runs, lambda: floor_of(args.reference))
    print(f"floor        {t_floor:7.2f} s  ({members})  peak RSS {rss()} MiB")
    t_read, (rootfs, config) = best_of(args.runs, lambda: read(args.reference))
    elves = sum(1 for e in rootfs.entries.values() if e.elf is not None)
    print(f"read_rootfs  {t_read:7.2f} s  ({elves} ELF files)  peak RSS {rss()} MiB")
    t_analyze, analysis = best_of(args.runs, lambda: analyze(rootfs, config))
    print(
        f"analysis     {t_analyze:7.2f} s  ({len(analysis.verdicts)} verdicts)  "  # type: ignore[attr-defined]
        f"peak RSS {rss()} MiB"
    )
    print(f"full scan    {t_read + t_analyze:7.2f} s")
    print(f"reading      {t_read / t_floor:7.2f}x the floor (target <= 1.3x)")
    print(f"analysis     {t_analyze / t_floor:7.2%} of the floor (target <= 50%)")
    print(f"analysis     {elves / t_analyze:7.0f} ELF files/s on one core (target >= 500)")
    print(f"peak RSS     {rss():7d} MiB (target < 300)")


if __name__ == "__main__":
    main()
