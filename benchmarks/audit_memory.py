"""Peak memory of `imagescan audit` as the image list grows (issue 8: memory must not grow
with the work). Prints, each measured in a fresh process in the same run:

- one scan: the largest peak RSS of `imagescan scan` over the corpus images, one at a time
  (with --cache: each scanned twice, the second, warm, like the audits' reads, counts);
- `imagescan audit` of the nine corpus images;
- `imagescan audit` of the nine listed `--repeat` times (20: 180 scans);
and the ratio of the last to the first. Peak RSS is the child's own (ru_maxrss).

    python benchmarks/audit_memory.py [--repeat 20] [--corpus ../shared/corpus/oci]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import CORPUS, CORPUS_IMAGES  # noqa: E402


def measured(command: list[str]) -> tuple[float, float, int]:
    """(seconds, peak MiB, exit code) of `command` run in a child of a fresh wrapper, so
    that ru_maxrss is that one command's."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(time.perf_counter() - t, peak, rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    seconds, peak_kib, code = out.stdout.split()
    return float(seconds), int(peak_kib) / 1024, int(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--corpus", type=Path, default=CORPUS / "oci")
    parser.add_argument(
        "--cache", action="store_true", help="give every run one layer cache (faster)"
    )
    args = parser.parse_args()
    imagescan = str(Path(sys.executable).with_name("imagescan"))
    refs = [f"oci-dir:{args.corpus}:{name}" for name in CORPUS_IMAGES]
    print(f"load average: {os.getloadavg()}")
    cache_dir = tempfile.TemporaryDirectory()
    cache = ["--cache", cache_dir.name] if args.cache else []
    singles = []
    for ref in refs:
        # --rescan: a warm store would otherwise serve the kept report (issue 14), which
        # reads no layer; the audits below rescan too.
        scan = [imagescan, "scan", ref, "-q", "--exit-zero", "--rescan", *cache]
        if cache:  # the audits below read a warm cache: so does the scan they are held to
            cold = measured(scan)[1]
            print(f"  scan {ref.rsplit(':', 1)[1]:<28} cold cache {cold:7.1f} MiB")
        seconds, peak, _ = measured(scan)
        singles.append(peak)
        print(f"  scan {ref.rsplit(':', 1)[1]:<28} {seconds:6.2f} s  {peak:7.1f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        # An audit takes each reference once: the repeats name the layout through links.
        for copy in range(args.repeat):
            (Path(tmp) / f"layout-{copy}").symlink_to(args.corpus.resolve())
        results = {}
        for times in (1, args.repeat):
            listing = Path(tmp) / f"images-{times}.txt"
            listed = [
                f"oci-dir:{Path(tmp) / f'layout-{copy}'}:{name}"
                for copy in range(times)
                for name in CORPUS_IMAGES
            ]
            listing.write_text("\n".join(listed) + "\n")
            command = [imagescan, "audit", "--from", str(listing), "--rescan", *cache]
            results[times] = measured(command)
    single = max(singles)
    print(f"one scan (largest peak of the nine):   {single:7.1f} MiB")
    for times, (seconds, peak, code) in results.items():
        label = f"audit of {len(refs) * times} scans"
        print(f"{label:<38} {peak:7.1f} MiB  {seconds:6.1f} s  exit {code}")
    cache_dir.cleanup()
    ratio = results[args.repeat][1] / single
    print(f"audit of {len(refs) * args.repeat} / one scan: {ratio:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
