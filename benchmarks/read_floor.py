"""How close `read_rootfs` comes to the floor: inflating every layer and walking its tar.

Usage: python benchmarks/read_floor.py [REFERENCE] [--runs N]   (default: the corpus image
deb12-base, best of 3; REFERENCE is anything imagescan opens: oci-dir:DIR:tag,
docker-archive:FILE.tar, a path, ...)

Prints the floor (the same inflater and the same tar header walker, nothing else; and, for
reference, inflating alone and tarfile's stream-mode walk), `read_rootfs` on the same image,
the best wall time of N runs each, peak RSS after each (getrusage: the process's maximum so
far, so later lines include earlier ones), and the ratio. Target: `ls` (which reads ELF
headers and dynamic sections, not symbol tables) within 1.3x the floor. The read a scan
does, with every symbol table parsed, is printed too; benchmarks/scan.py measures a scan.
"""

from __future__ import annotations

import argparse
import resource
import tarfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from imagescan.image.compression import open_decompressed
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.reader import read_rootfs
from imagescan.rootfs.tarstream import TarStream

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "oci"
DEFAULT = f"oci-dir:{CORPUS}:deb12-base"


def inflate_only(image: OpenedImage) -> str:
    """Inflate every layer to its end."""
    assert image.access is not None
    total = 0
    for _, blob in image.access.iter_layers():
        with closing(blob):
            stream = open_decompressed(blob)
            while chunk := stream.read(1 << 20):
                total += len(chunk)
    return f"{total >> 20} MiB"


def floor(image: OpenedImage) -> str:
    """Inflate every layer and walk its tar headers with the reader's walker."""
    assert image.access is not None
    members = 0
    for _, blob in image.access.iter_layers():
        with closing(blob):
            for _ in TarStream(open_decompressed(blob).read, 1 << 40).members():
                members += 1
    return f"{members} members"


def tarfile_walk(image: OpenedImage) -> str:
    """Inflate every layer and walk its headers with tarfile's stream mode."""
    assert image.access is not None
    members = 0
    for _, blob in image.access.iter_layers():
        with closing(blob), tarfile.open(fileobj=open_decompressed(blob), mode="r|") as tar:
            while tar.next() is not None:
                members += 1
                vars(tar)["members"].clear()
    return f"{members} members"


def listing(image: OpenedImage) -> str:
    """What `imagescan ls` reads: every entry, ELF headers and dynamic sections."""
    fs = read_rootfs(image, symbols=False)
    elves = sum(1 for entry in fs.entries.values() if entry.elf is not None)
    return f"{len(fs.entries)} entries, {elves} ELF"


def full(image: OpenedImage) -> str:
    """What a scan reads: the same plus every ELF file's symbol and version tables (without
    the files' digests, as `imagescan scan` without an SBOM output: cli.wants_digests)."""
    fs = read_rootfs(image, digests=False)
    elves = sum(1 for entry in fs.entries.values() if entry.elf is not None)
    return f"{len(fs.entries)} entries, {elves} ELF"


def timed(label: str, reference: str, runs: int, work: Callable[[OpenedImage], str]) -> float:
    """Best wall time of `runs` (and the CPU time of that run: on a loaded machine the
    CPU time is the steadier number, since everything here runs in one thread)."""
    best, cpu, result = float("inf"), 0.0, ""
    for _ in range(runs):
        image = open_image(reference, SourceOptions())
        try:
            start, start_cpu = time.perf_counter(), time.process_time()
            result = work(image)
            wall = time.perf_counter() - start
            if wall < best:
                best, cpu = wall, time.process_time() - start_cpu
        finally:
            image.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{label:14} {best:6.2f} s wall {cpu:6.2f} s CPU  peak RSS {rss:4d} MiB  ({result})")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(args.reference)
    base = timed("floor", args.reference, args.runs, floor)
    got = timed("ls (reader)", args.reference, args.runs, listing)
    with_symbols = timed("scan's read", args.reference, args.runs, full)
    timed("(inflate only)", args.reference, args.runs, inflate_only)
    timed("(tarfile walk)", args.reference, args.runs, tarfile_walk)
    print(f"ratio          {got / base:7.2f}x the floor for ls (target <= 1.3x)")
    print(f"               {with_symbols / base:7.2f}x the floor with symbol tables (scan)")


if __name__ == "__main__":
    main()
