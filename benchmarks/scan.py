"""A scan, `ls`, the analysis and a warm rescan against the read floor, in one run.

Usage: python benchmarks/scan.py [REFERENCE] [--runs N] [--jobs N] [--syft PATH] [--syft-runs N]
(default: the corpus image deb12-base; for the large image see make_debian_image.py)

Every figure is measured in a fresh process (so that its peak RSS is its own), the kinds
taken in turn, N runs each, and the median printed with the spread:

- floor: the single-threaded read floor (read_floor.py's: inflate every layer with the
  reader's inflater and walk its tar headers, nothing else);
- ls: `read_rootfs` without symbol tables, what `imagescan ls` reads (with --jobs: a
  large local layer is inflated by a forked child, as the CLI does);
- scan: `imagescan.scan.scan` as `imagescan scan REF` runs it (read with symbols, no file
  digests as no SBOM is written, analysis with --jobs processes, report);
- analysis: the analysis alone of the read root filesystem, with 1 and with --jobs
  processes, in ELF files per second;
- warm rescan: a scan with `--cache DIR` whose every layer is already cached (the layers'
  facts from the store, the analysis done again: `imagescan scan --rescan`);
- kept report: `imagescan scan REF --cache DIR` a second time, which serves the report the
  store kept for the same image and judging (issue 14; reads the manifest and config only);
- syft: `syft REFERENCE -o syft-json` when syft is installed (`--syft`, else on PATH).

The package is byte-compiled first, as `pip install .` leaves it (an environment with
PYTHONDONTWRITEBYTECODE would make every measured process compile it from source). Peak
RSS is the process's maximum (getrusage) and, with forked analysis, the largest child's.
Wall time on a shared machine counts other work too: the load (from /proc/loadavg) is
printed before and after, and the CPU time of each run beside it.
Targets (issue 14): scan <= 1.2x the floor on 2 cores, ls <= 1.0x, analysis >= 2,500 ELF
files/s on 2 cores, peak RSS <= 250 MB, warm rescan <= 1 s.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_floor import DEFAULT, floor

Figures = dict[str, Any]
REPO = Path(__file__).resolve().parent.parent


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ------------------------------------------------------------------ one measurement


def measured(work: Callable[[], str]) -> Figures:
    """Wall and CPU seconds of `work()` (children included), and peak RSS in MiB."""
    start, cpu = time.perf_counter(), _cpu()
    what = work()
    wall = time.perf_counter() - start
    from imagescan.parallel import wait_exiting  # after the clock: imports count in work()

    wait_exiting()  # forked children that are still exiting: their CPU and peak count too
    cpu = _cpu() - cpu
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return {"wall": wall, "cpu": cpu, "rss": own, "child_rss": children, "what": what}


def _cpu() -> float:
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_floor(reference: str) -> str:
    from imagescan.image.model import SourceOptions
    from imagescan.image.sources import open_image

    image = open_image(reference, SourceOptions())
    try:
        return floor(image)
    finally:
        image.close()


def run_ls(reference: str, jobs: int) -> str:
    from imagescan.scan import ScanOptions, read_image

    # As `imagescan ls` runs it: with --jobs processes (a large layer inflated by a child).
    _, rootfs = read_image(reference, ScanOptions(jobs=jobs), symbols=False)
    return f"{sum(1 for e in rootfs.entries.values() if e.elf is not None)} ELF"


def run_scan(reference: str, jobs: int, cache: str | None = None) -> str:
    from imagescan.scan import ScanOptions, scan

    # As `imagescan scan REF` with its text output: no SBOM, so no file digests (cli.py
    # wants_digests); a layer read for the store is hashed all the same.
    options = ScanOptions(jobs=jobs, cache_dir=Path(cache) if cache else None, digests=False)
    return f"{len(scan(reference, options).report.files)} verdicts"


def run_cli_scan(reference: str, jobs: int, cache: str | None) -> str:
    """`imagescan scan REF --cache DIR` as typed: a report the store kept is served."""
    from imagescan.cli import main

    args = ["scan", reference, "-q", "--exit-zero", "--jobs", str(jobs), "-o", "json=/dev/null"]
    return f"exit {main([*args, '--cache', cache] if cache else args)}"


def run_analysis(reference: str, jobs: int) -> Figures:
    """The analysis alone, after reading (its own timer: the read is not counted)."""
    from imagescan.analyze import analyze
    from imagescan.scan import ScanOptions, read_image

    image, rootfs = read_image(reference, ScanOptions())
    elves = sum(1 for e in rootfs.entries.values() if e.elf is not None)
    figures = measured(lambda: f"{len(analyze(rootfs, image.config, jobs=jobs).verdicts)}")
    figures["rate"] = elves / figures["wall"]
    return figures


def measure(kind: str, reference: str, jobs: int, cache: str | None) -> Figures:
    if kind == "floor":
        return measured(lambda: run_floor(reference))
    if kind == "ls":
        return measured(lambda: run_ls(reference, jobs))
    if kind == "scan":
        return measured(lambda: run_scan(reference, jobs))
    if kind == "warm":
        return measured(lambda: run_scan(reference, jobs, cache))
    if kind == "kept":
        return measured(lambda: run_cli_scan(reference, jobs, cache))
    return run_analysis(reference, int(kind.removeprefix("analysis")))


# ------------------------------------------------------------------ the run


def in_child(kind: str, reference: str, jobs: int, cache: str | None) -> Figures:
    command = [sys.executable, __file__, reference, "--measure", kind, "--jobs", str(jobs)]
    if cache:
        command += ["--cache", cache]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def syft_once(syft: str, reference: str) -> Figures | None:
    """syft's wall time and peak RSS (RUSAGE_CHILDREN of a process that only runs it)."""
    script = (
        "import resource,subprocess,sys,time;s=time.perf_counter();"
        "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True);"
        "w=time.perf_counter()-s;u=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(w,u.ru_utime+u.ru_stime,u.ru_maxrss//1024)"
    )
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    done = subprocess.run(
        [sys.executable, "-c", script, syft, reference, "-o", "syft-json", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode:  # e.g. a layout with several images, which syft cannot choose from
        print(f"syft failed on {reference}: {done.stderr.strip()[-200:]}")
        return None
    wall, cpu, rss = done.stdout.split()
    return {"wall": float(wall), "cpu": float(cpu), "rss": int(rss), "child_rss": 0, "what": ""}


def syft_reference(reference: str) -> str:
    """syft's spelling: its oci-dir: takes a directory, not DIR:TAG (one image per layout)."""
    kind, _, rest = reference.partition(":")
    if kind == "oci-dir" and ":" in rest:
        return f"oci-dir:{rest.rpartition(':')[0]}"
    return reference


def median(runs: list[Figures], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def line(label: str, runs: list[Figures], base: float | None = None) -> str:
    walls = sorted(run["wall"] for run in runs)
    text = (
        f"{label:16} {median(runs, 'wall'):7.2f} s  (runs {walls[0]:.2f}-{walls[-1]:.2f})"
        f"  CPU {median(runs, 'cpu'):6.2f} s  peak RSS {max(r['rss'] for r in runs):4d} MiB"
    )
    if max(r["child_rss"] for r in runs):
        text += f" (children {max(r['child_rss'] for r in runs)} MiB)"
    if base:
        text += f"  {median(runs, 'wall') / base:5.2f}x the floor"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--syft", default=shutil.which("syft"), help="syft to compare with")
    parser.add_argument("--syft-runs", type=int, default=1)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        from imagescan.heap import fix_mmap_threshold

        fix_mmap_threshold()  # as cli.main does: every kind measured in the CLI's heap
        print(json.dumps(measure(args.measure, args.reference, args.jobs, args.cache)))
        return
    report(args)


def report(args: argparse.Namespace) -> None:
    print(f"{args.reference}  jobs {args.jobs}  cores {os.cpu_count()}  load {load()}")
    # The package byte-compiled first, as `pip install .` leaves it: where the environment
    # sets PYTHONDONTWRITEBYTECODE (this machine's does), each measured process would
    # otherwise compile imagescan from source, 0.1 s that no installed copy pays.
    compileall.compile_dir(str(REPO / "imagescan"), quiet=1)
    kinds = ["floor", "ls", "scan", "analysis1", f"analysis{args.jobs}"]
    runs: dict[str, list[Figures]] = {kind: [] for kind in [*kinds, "warm", "kept", "syft"]}
    with tempfile.TemporaryDirectory() as cache:
        in_child("kept", args.reference, args.jobs, cache)  # fills the store: layers, report
        for _ in range(args.runs):
            for kind in [*kinds, "warm", "kept"]:
                runs[kind].append(in_child(kind, args.reference, args.jobs, cache))
                print(f"  {kind}: {runs[kind][-1]}", file=sys.stderr, flush=True)
    for _ in range(args.syft_runs if args.syft else 0):  # slow: fewer runs than ours
        peer = syft_once(args.syft, syft_reference(args.reference))
        if peer is not None:
            runs["syft"].append(peer)
            print(f"  syft: {peer}", file=sys.stderr, flush=True)
    base = median(runs["floor"], "wall")
    print(line("floor", runs["floor"]) + f"  ({runs['floor'][0]['what']})")
    print(line("ls", runs["ls"], base) + "  (target <= 1.0x)")
    print(line(f"scan (jobs {args.jobs})", runs["scan"], base) + "  (target <= 1.2x)")
    for kind in kinds[3:]:
        rate = statistics.median(r["rate"] for r in runs[kind])
        label = f"analysis jobs {kind.removeprefix('analysis')}"
        print(line(label, runs[kind]) + f"  {rate:6.0f} ELF files/s (target >= 2500)")
    print(line("warm rescan", runs["warm"], base) + "  (layers cached, analysis again)")
    print(line("kept report", runs["kept"], base) + "  (target <= 1 s)")
    if runs["syft"]:
        print(line("syft", runs["syft"], base))
    print(f"load after {load()}")


if __name__ == "__main__":
    main()
