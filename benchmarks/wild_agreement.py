"""Agreement with the real loader on the wild-binaries image (issue 9).

Usage: python benchmarks/wild_agreement.py LAYOUT [--ref wild] [--build [--set S]] [--list N]

LAYOUT is the OCI layout tests/wild/make_wild_image.py writes (`--build` makes it first).
Runs shared/corpus/oracle.py (the image's own loader in a chroot, as root) and `imagescan
scan` on the same image, then prints, for every ELF file the oracle judged: how many verdicts
agree, every file imagescan calls ok that the loader refuses (false ok), and the other
disagreements by pair of verdicts. The peer figure is the oracle's own run time.

The oracle knows Python, Perl, GCC and tc hosts only; a plugin imagescan judged inside
another host (postgres, nginx, node, python for a library without PyInit_) is traced again
by the real loader inside that host (`LD_PRELOAD=plugin ld.so host`, trace mode, as the
oracle does for its own hosts), and an extension module that only failed the oracle's
python dlopen() is dlopen()ed again with /proc mounted (a real process has it; constructors
that read it abort without it). The second figure is the agreement with those verdicts.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
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


def oracle(layout: Path, ref: str, out: Path, keep: Path) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, str(ORACLE), str(layout), "--ref", ref, "-o", str(out)]
    seconds, done = _timed([*cmd, "--jobs", "2", "--keep", str(keep)])
    if done.returncode != 0:
        raise SystemExit(f"oracle failed: {done.stderr[-2000:]}")
    return seconds, json.loads(out.read_text())


def imagescan(layout: Path, ref: str) -> tuple[float, dict[str, str], dict[str, str]]:
    """Run time, status by path, and the host of each file judged inside one."""
    cmd = [sys.executable, "-m", "imagescan", "scan", f"oci-dir:{layout}:{ref}", "-o", "json"]
    seconds, done = _timed(cmd)
    if done.returncode not in (0, 1):
        raise SystemExit(f"imagescan failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    statuses = {f["path"]: WORDS.get(f["status"], f["status"]) for f in report["files"]}
    statuses |= {s["path"]: "skipped" for s in report.get("skipped", [])}
    hosts = {f["path"]: f["host"] for f in report["files"] if f.get("host")}
    return seconds, statuses, hosts


def _oracle_module() -> Any:
    spec = importlib.util.spec_from_file_location("wild_oracle", ORACLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fatal_messages(messages: list[str]) -> bool:
    """A preload (the plugin) that cannot be loaded is fatal for a plugin, unlike for
    LD_PRELOAD of a program; so are the loader's open errors."""
    words = ("error while loading", "cannot open shared object", "wrong ELF class", "preloaded")
    return any(w in m for m in messages for w in words)


def in_host(orc: Any, tracer: Any, loader: str, host: str, plugin: str) -> str:
    """The real loader's verdict on `plugin` loaded into `host` (its own references only)."""
    _, out_now = tracer.trace(loader, host, True, preload=plugin)
    _, out_lazy = tracer.trace(loader, host, False, preload=plugin)
    now, lazy = orc.parse_trace(out_now), orc.parse_trace(out_lazy)
    if any(v is None for v in now["deps"].values()) or now["missing_versions"]:
        return "broken"
    if _fatal_messages(now["messages"] + lazy["messages"]):
        return "broken"
    if any(u["required_by"] == plugin for u in lazy["undefined_symbols"]):
        return "broken"
    if any(u["required_by"] == plugin for u in now["undefined_symbols"]):
        return "broken_lazy"
    return "ok"


def _enter(root: Path) -> None:
    os.chroot(root)
    os.chdir("/")


def python_dlopen_with_proc(root: Path, python: str, module: str) -> str:
    """dlopen() by the image's python with /proc mounted: ok, or the error."""
    code = "import ctypes,sys; ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL|2)"
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", code, module],
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: _enter(root),
        )
    finally:
        subprocess.run(["umount", str(root / "proc")], check=True)
    return "ok" if done.returncode == 0 else "broken"


def _only_dlopen_failed(entry: dict[str, Any]) -> bool:
    problems = entry.get("problems", [])
    return bool(problems) and all(p.startswith("python_dlopen:") for p in problems)


def host_verdicts(
    out: dict[str, Any], root: Path, hosts: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """The real loader's verdicts on the plugins the oracle judged alone or whose only
    failure was its dlopen() without /proc: path -> (verdict, how it was reached)."""
    orc = _oracle_module()
    tracer = orc.Tracer(str(root), orc.env_list_to_dict(out["env"]))
    checked: dict[str, tuple[str, str]] = {}
    for path, host in sorted(hosts.items()):
        entry = out["elves"].get(path, {})
        if _only_dlopen_failed(entry):
            how = f"dlopen by {host} with /proc"
            checked[path] = (python_dlopen_with_proc(root, host, path), how)
        elif entry.get("plugin", {}).get("host") != host:
            loader = orc.resolve_host_loader(str(root), host, out["default_loader"])
            checked[path] = (in_host(orc, tracer, loader, host, path), f"traced in {host}")
    return checked


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
    parser.add_argument("--set", default="issue", help="package set to build (issue, unseen)")
    parser.add_argument("--list", type=int, default=40, help="disagreements to list")
    args = parser.parse_args()
    if args.build:
        builder = REPO / "tests" / "wild" / "make_wild_image.py"
        cmd = [sys.executable, str(builder), str(args.layout), "--set", args.set]
        subprocess.run(cmd, check=True)
    keep = args.layout.parent / f"{args.layout.name}-rootfs"  # beside the layout, per layout
    verdicts = args.layout.parent / f"{args.layout.name}-oracle.json"
    oracle_s, out = oracle(args.layout, args.ref, verdicts, keep)
    scan_s, mine, hosts = imagescan(args.layout, args.ref)
    elves = out["elves"]
    print(f"ELF files judged by the loader: {len(elves)}")
    print("== against the oracle as it stands (standalone traces for plugins it has no host for)")
    report(elves, mine, args.list)
    start = time.perf_counter()
    checked = host_verdicts(out, keep, hosts)
    host_s = time.perf_counter() - start
    changed = {p: dict(elves[p], status=v) for p, (v, _) in checked.items() if p in elves}
    print(f"== with the real loader inside imagescan's host ({len(checked)} plugins re-checked)")
    for path, (verdict, how) in sorted(checked.items()):
        if elves.get(path, {}).get("status") != verdict:
            print(f"  {path}: {verdict} ({how})")
    report(elves | changed, mine, args.list)
    print(f"time: imagescan {scan_s:.1f} s, the oracle (peer) {oracle_s:.1f} s", end="")
    print(f" + {host_s:.1f} s of in-host traces")
    return 0


def report(elves: dict[str, Any], mine: dict[str, str], listed: int) -> None:
    agree, differ = compare(elves, mine)
    false_ok = [d for d in differ if d[2] == "ok" and d[1] in REFUSED]
    print(f"agreement: {agree}/{len(elves)} = {100 * agree / max(1, len(elves)):.1f}%")
    print(f"false ok (imagescan ok, the loader refuses): {len(false_ok)}")
    for path, theirs, _ in false_ok:
        print(f"  {path}: loader {theirs}")
    pairs = collections.Counter((theirs, ours) for _, theirs, ours in differ)
    print("disagreements by pair (loader -> imagescan):")
    for (theirs, ours), count in pairs.most_common():
        print(f"  {theirs} -> {ours}: {count}")
    for path, theirs, ours in differ[:listed]:
        print(f"  {path}: loader {theirs}, imagescan {ours}")


if __name__ == "__main__":
    raise SystemExit(main())
