"""Shared by the renderer tests: corpus reports (scanned once per process), a synthetic report
with every kind of entry, and golden files (refreshed only with IMAGESCAN_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.linkgraph import FileDigest, Link, LinkGraph, LinkKind
from imagescan.report import ImageInfo, Report
from imagescan.rootfs.model import Skipped
from imagescan.scan import ScanOptions, scan
from tests.conftest import CORPUS, CORPUS_IMAGES, REPO

IMAGES = CORPUS_IMAGES
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
GOLDEN_IMAGE = "glibc-too-new"
UPDATE_GOLDEN = os.environ.get("IMAGESCAN_UPDATE_GOLDEN") == "1"
GOLDEN_CREATED = "2026-01-02T03:04:05Z"  # the SBOMs' creation time in golden files


def require_corpus() -> None:
    if not (CORPUS / "oci" / "index.json").exists():
        pytest.skip(f"no shared corpus at {CORPUS}")


@cache
def corpus_report(name: str) -> Report:
    """The report of one corpus image, its reference spelt without this machine's paths."""
    require_corpus()
    report = _cached_scan(name)
    image = dataclasses.replace(report.image, reference=f"oci-dir:corpus/oci:{name}")
    return dataclasses.replace(report, image=image)


@cache
def _cache_dir() -> Path:
    """Reports kept between test processes (xdist workers), keyed by the code that made them
    and the corpus index, so a changed analyser never serves a stale report."""
    digest = hashlib.sha256((CORPUS / "oci" / "index.json").read_bytes())
    for path in sorted((REPO / "imagescan").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return REPO / ".pytest_cache" / "imagescan-render-reports" / digest.hexdigest()[:24]


def _cached_scan(name: str) -> Report:
    path = _cache_dir() / f"{name}.pickle"
    if path.exists():
        report: Report = pickle.loads(path.read_bytes())
        return report
    report = scan(f"oci-dir:{CORPUS / 'oci'}:{name}", ScanOptions()).report
    if not path.parent.exists():
        for stale in path.parent.parent.glob("*"):  # reports of code that has changed since
            shutil.rmtree(stale, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(report))
    partial.replace(path)  # atomic: another worker never reads half a file
    return report


def golden_report() -> Report:
    """The golden image's report cut to what a renderer shows differently: every file that
    is not ok, every file of the top layer and one ok program (the full list is 700 ok
    files, and goldens should change when rendering changes, not when a base image does)."""
    report = corpus_report(GOLDEN_IMAGE)
    top = len(report.image.layers) - 1
    files = tuple(
        v for v in report.files if v.status != Status.OK or v.layer == top or v.path == "/bin/bash"
    )
    links = dataclasses.replace(report.links, created=GOLDEN_CREATED) if report.links else None
    return dataclasses.replace(report, files=files, tool_version="0.0.0-golden", links=links)


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; IMAGESCAN_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN_DIR / name
    if UPDATE_GOLDEN:
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run the tests once with IMAGESCAN_UPDATE_GOLDEN=1")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


HOSTILE_PATH = "/opt/we|ird/`tick`` *star* <script>x</script> [a](b) &amp; #h \udcff\x01.so"


def finding(kind: FindingKind, severity: Severity, subject: str, **extra: Any) -> Finding:
    fatal = {Severity.ERROR: FatalAt.STARTUP, Severity.WARNING: FatalAt.CALL}.get(severity)
    return Finding(kind, severity, subject, f"{kind}: {subject}", fatal_at=fatal, **extra)


def synthetic_report() -> Report:
    """One file of every status, hostile names, a skipped file and an image finding."""
    missing = finding(
        FindingKind.MISSING_LIBRARY,
        Severity.ERROR,
        "libgone.so.1",
        required_by="/usr/bin/app",
        tried=(("/opt/lib/libgone.so.1", "RUNPATH of /usr/bin/app"),),
    )
    lazy = finding(
        FindingKind.UNDEFINED_SYMBOL, Severity.WARNING, "ps_getpid", required_by="/usr/lib/l.so"
    )
    version = finding(
        FindingKind.MISSING_SYMBOL_VERSION,
        Severity.ERROR,
        "GLIBC_2.99",
        required_by="/usr/lib/libdep.so",
        provider="/lib/libc.so.6",
        version="GLIBC_2.99",
        symbols=("memcpy",),
    )
    hostile = finding(FindingKind.MISSING_INTERPRETER, Severity.ERROR, "/lib/ld-x|`y`.so")
    hostile = dataclasses.replace(hostile, message=f"{HOSTILE_PATH}: bad | interp `x`\nline 2")
    note = finding(FindingKind.NO_VERSION_INFORMATION, Severity.NOTE, "libold.so")
    files = (
        FileVerdict("/usr/bin/app", "pie-exec", Status.BROKEN, 1, findings=(missing, version)),
        FileVerdict("/usr/bin/go-app", "static-exec", Status.STATIC, 0, go_version="go1.19"),
        FileVerdict("/usr/bin/ok", "pie-exec", Status.OK, 0, findings=(note,)),
        FileVerdict("/usr/lib/arm.so", "shared", Status.FOREIGN_ARCH, 0, note="aarch64"),
        FileVerdict("/usr/lib/l.so", "shared", Status.BROKEN_LAZY, None, findings=(lazy,)),
        FileVerdict("/usr/lib/x.o", "relocatable", Status.SKIPPED, 0),
        FileVerdict(HOSTILE_PATH, "exec", Status.INTERPRETER_MISSING, 1, findings=(hostile,)),
        FileVerdict("/usr/lib/py.so", "shared", Status.OK, 1, host="/usr/bin/python3"),
    )
    image = ImageInfo(
        "oci-archive:test.tar:latest",
        "oci-archive",
        "sha256:" + "ab" * 32,
        "amd64",
        "linux",
        ("sha256:" + "01" * 32, None),
    )
    skipped = (Skipped("/usr/lib/trunc|ated.so", "ELF header: file too short", 1),)
    stale = finding(FindingKind.STALE_LD_CACHE, Severity.WARNING, "/etc/ld.so.cache")
    return Report(
        image, files, skipped, (stale,), tool_version="9.9.9", links=synthetic_links(files)
    )


def synthetic_links(files: tuple[FileVerdict, ...]) -> LinkGraph:
    """Edges of every kind between the synthetic files (one to a file the report lacks),
    and made-up digests of each file."""
    links = (
        Link("/usr/bin/app", "/usr/lib/l.so", LinkKind.NEEDED),
        Link("/usr/bin/ok", "/usr/lib/l.so", LinkKind.PRELOAD),
        Link(HOSTILE_PATH, "/usr/lib/l.so", LinkKind.INTERPRETER),
        Link("/usr/lib/py.so", "/usr/bin/ok", LinkKind.PLUGIN_HOST),
        Link("/usr/bin/app", "/usr/lib/gone.so", LinkKind.NEEDED),
    )
    digests = {
        v.path: FileDigest(
            hashlib.sha256(v.path.encode("utf-8", "surrogateescape")).hexdigest(),
            hashlib.sha1(v.path.encode("utf-8", "surrogateescape")).hexdigest(),
        )
        for v in files
    }
    return LinkGraph(links, digests, "2026-01-02T03:04:05Z")
