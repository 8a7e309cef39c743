"""The ten most expensive functions of a scan, by CPU time of the main thread.

Usage: python benchmarks/profile_scan.py [REFERENCE] [--top N] [--jobs N] [--analysis]

Runs `imagescan.scan.scan` under cProfile with `time.thread_time` as its clock: CPU time of
the thread that reads and analyses, so that the figures hold on a loaded machine (wall
clock there counts the other agents' work too) and a read-ahead thread's inflating is not
charged to the functions that wait for it. Prints the top N by own time (tottime), then
by cumulative time. With --jobs above 1 the forked children are not profiled.
--analysis profiles the analysis alone (`imagescan.analyze.analyze` of the root filesystem
read before the profiler starts): what benchmarks/scan.py times as "analysis".
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

from imagescan.analyze import analyze
from imagescan.scan import ScanOptions, read_image, scan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_floor import DEFAULT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", default=DEFAULT)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--analysis", action="store_true", help="the analysis alone")
    args = parser.parse_args()
    options = ScanOptions()
    if "jobs" in ScanOptions.__dataclass_fields__:  # the same script profiles older trees
        options = ScanOptions(jobs=args.jobs)  # type: ignore[call-arg]
    profiler = cProfile.Profile(time.thread_time)
    if args.analysis:
        image, rootfs = read_image(args.reference, options)
        start = time.thread_time()
        profiler.runcall(analyze, rootfs, image.config, jobs=args.jobs)
    else:
        start = time.thread_time()
        profiler.runcall(scan, args.reference, options)
    print(f"main thread CPU {time.thread_time() - start:.2f} s")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
