"""Agreement with the real loader on the wild-binaries image (issue 9).

Usage: python benchmarks/wild_agreement.py LAYOUT [--ref wild] [--build] [--list N]

LAYOUT is the OCI layout tests/wild/make_wild_image.py writes (`--build` makes it first).
Runs shared/corpus/oracle.py (the image's own loader in a chroot, as root) and `imagescan
scan` on the same image, then prints, for every ELF file the oracle judged: how many verdicts
agree, every file imagescan calls ok that the loader refuses (false ok), and the other
disagreements by pair of verdicts. The peer figure is the oracle's own run time.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ORACLE = REPO.parent / "shared" / "corpus" / "oracle.py"
REFUSED = {"broken", "broken_lazy", "interp_missing"}
WORDS = {"broken-lazy": "broken_lazy", "interpreter-missing": "interp_missing"}
WORDS |= {"foreign-arch": "foreign_arch"}


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def oracle(layout: Path, ref: str, out: Path) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, str(ORACLE), str(layout), "--ref", ref, "-o", str(out)]
    seconds, done = _timed([*cmd, "--jobs", "2"])
    if done.returncode != 0:
        raise SystemExit(f"oracle failed: {done.stderr[-2000:]}")
    return seconds, json.loads(out.read_text())["elves"]


def imagescan(layout: Path, ref: str) -> tuple[float, dict[str, str]]:
    cmd = [sys.executable, "-m", "imagescan", "scan", f"oci-dir:{layout}:{ref}", "-o", "json"]
    seconds, done = _timed(cmd)
    if done.returncode not in (0, 1):
        raise SystemExit(f"imagescan failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    statuses = {f["path"]: WORDS.get(f["status"], f["status"]) for f in report["files"]}
    statuses |= {s["path"]: "skipped" for s in report.get("skipped", [])}
    return seconds, statuses


def compare(elves: dict[str, Any], mine: dict[str, str]) -> tuple[int, list[tuple[str, str, str]]]:
    """(agreeing count, [(path, oracle, imagescan)] for the others)."""
    agree, differ = 0, []
    for path, entry in sorted(elves.items()):
        theirs = "skipped" if entry["status"] == "error" else entry["status"]
        ours = mine.get(path, "absent")
        if theirs == ours:
            agree += 1
        else:
            differ.append((path, theirs, ours))
    return agree, differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("layout", type=Path)
    parser.add_argument("--ref", default="wild")
    parser.add_argument("--build", action="store_true", help="run make_wild_image.py first")
    parser.add_argument("--list", type=int, default=40, help="disagreements to list")
    args = parser.parse_args()
    if args.build:
        builder = REPO / "tests" / "wild" / "make_wild_image.py"
        subprocess.run([sys.executable, str(builder), str(args.layout)], check=True)
    oracle_s, elves = oracle(args.layout, args.ref, args.layout.parent / "wild-oracle.json")
    scan_s, mine = imagescan(args.layout, args.ref)
    agree, differ = compare(elves, mine)
    false_ok = [d for d in differ if d[2] == "ok" and d[1] in REFUSED]
    print(f"ELF files judged by the loader: {len(elves)}")
    print(f"agreement: {agree}/{len(elves)} = {100 * agree / max(1, len(elves)):.1f}%")
    print(f"false ok (imagescan ok, the loader refuses): {len(false_ok)}")
    for path, theirs, _ in false_ok:
        print(f"  {path}: loader {theirs}")
    pairs = collections.Counter((theirs, ours) for _, theirs, ours in differ)
    print("other disagreements (loader -> imagescan):")
    for (theirs, ours), count in pairs.most_common():
        print(f"  {theirs} -> {ours}: {count}")
    for path, theirs, ours in differ[: args.list]:
        print(f"  {path}: loader {theirs}, imagescan {ours}")
    print(f"time: imagescan {scan_s:.1f} s, the oracle (peer) {oracle_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
