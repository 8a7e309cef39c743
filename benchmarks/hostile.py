"""The hostile images of issue 15 at the sizes the issue measured, before and after.

Usage: python benchmarks/hostile.py [--before SRC] [--only NAME,...] [--timeout S]

Builds each image of tests/hostile.py CASES (full size), runs `imagescan` on it in a child
process and prints wall time and the child's peak RSS (wait4); with --before, the same runs
on another checkout's code too (e.g. `git archive main imagescan | tar -x -C /tmp/main`),
side by side, in the same session. Targets: under 10 s and under 300 MB for every image,
with a message or finding that says what was wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.hostile import CASES, Measured, run_imagescan


def cell(m: Measured | None, timeout: float) -> str:
    if m is None:
        return f"{'-':>9} {'-':>8}"
    if m.exit == -9:
        return f"{'>' + format(timeout, '.0f') + 's':>9} {m.peak_mb:>6.0f}MB"
    return f"{m.seconds:>8.1f}s {m.peak_mb:>6.0f}MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="checkout (dir holding imagescan/) to compare")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}, {os.cpu_count()} CPUs; timeout {args.timeout:.0f}s")
    print(f"{'image':24} {'before':>18} {'after':>18}  after: exit, last line")
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if wanted and case.name not in wanted:
                continue
            command = case.build(Path(tmp) / case.name, True)
            before = None
            if args.before:
                before = run_imagescan(command, timeout=args.timeout, src=args.before)
            after = run_imagescan(command, timeout=args.timeout)
            last = after.output.strip().splitlines()[-1][:90] if after.output.strip() else ""
            print(
                f"{case.name:24} {cell(before, args.timeout)} {cell(after, args.timeout)}"
                f"  {after.exit}, {last}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
