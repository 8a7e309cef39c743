"""Differential test: for every ELF file of the nine corpus images, imagescan reaches the
verdict the image's own loader reached (../shared/corpus/verdicts, recorded by oracle.py):
the same status, missing libraries, missing versions, undefined symbols (with start-up or
call), and plugins judged inside the same host."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from imagescan.analyze import Analysis, analyze
from imagescan.checks.model import FileVerdict, FindingKind
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.reader import read_rootfs
from tests.conftest import CORPUS, CORPUS_IMAGES

IMAGES = CORPUS_IMAGES
STATUS = {
    "broken_lazy": "broken-lazy",
    "interp_missing": "interpreter-missing",
    "foreign_arch": "foreign-arch",
}


@cache
def scanned(name: str) -> Analysis:
    image = open_image(f"oci-dir:{CORPUS / 'oci'}:{name}", SourceOptions())
    try:
        rootfs = read_rootfs(image)
    finally:
        image.close()
    return analyze(rootfs, image.config)


def verdicts(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CORPUS / "verdicts" / f"{name}.json").read_text())
    return doc["elves"]  # type: ignore[no-any-return]


def expected_undefined(entry: dict[str, Any]) -> set[tuple[str, str, str]]:
    if "undefined_in_host" in entry.get("plugin", {}):
        # the host resolves the rest; the oracle lists what stays undefined inside it
        names = set(entry["plugin"]["undefined_in_host"])
        return {
            (u["symbol"], u["required_by"], u["when"])
            for u in entry["undefined_symbols"]
            if u["symbol"] in names
        }
    return {(u["symbol"], u["required_by"], u["when"]) for u in entry.get("undefined_symbols", [])}


def actual_undefined(verdict: FileVerdict) -> set[tuple[str, str, str]]:
    return {
        (f.subject, f.required_by or "", str(f.fatal_at))
        for f in verdict.findings
        if f.kind == FindingKind.UNDEFINED_SYMBOL
    }


def missing_libraries(verdict: FileVerdict) -> set[str]:
    kinds = (FindingKind.MISSING_LIBRARY, FindingKind.INCOMPATIBLE_LIBRARY)
    return {f.subject for f in verdict.findings if f.kind in kinds}


def missing_versions(verdict: FileVerdict) -> set[tuple[str, str, str]]:
    return {
        (f.subject, f.provider or "", f.required_by or "")
        for f in verdict.findings
        if f.kind == FindingKind.MISSING_SYMBOL_VERSION and f.fatal_at is not None
    }


def differences(name: str) -> list[str]:
    """Every disagreement with the oracle, one line each (empty = agreement)."""
    analysis = scanned(name)
    problems = [f"{p}: not reported" for p in verdicts(name) if p not in analysis.verdicts]
    problems += [
        f"{p}: not in the oracle's list" for p in analysis.verdicts if p not in verdicts(name)
    ]
    for path, entry in verdicts(name).items():
        verdict = analysis.verdicts.get(path)
        if verdict is not None:
            problems += [f"{path}: {d}" for d in file_differences(entry, verdict)]
    return problems


def file_differences(entry: dict[str, Any], verdict: FileVerdict) -> list[str]:
    found = []
    status = STATUS.get(entry["status"], entry["status"])
    if str(verdict.status) != status:
        found.append(f"status {verdict.status} != {status}")
    if verdict.kind != entry["kind"]:
        found.append(f"kind {verdict.kind} != {entry['kind']}")
    if missing_libraries(verdict) != set(entry.get("missing_deps", [])):
        found.append(f"missing {missing_libraries(verdict)} != {entry.get('missing_deps')}")
    want_versions = {
        (v["version"], v["lib"], v["required_by"]) for v in entry.get("missing_versions", [])
    }
    if missing_versions(verdict) != want_versions:
        found.append(f"versions {missing_versions(verdict)} != {want_versions}")
    if actual_undefined(verdict) != expected_undefined(entry):
        found.append(f"undefined {actual_undefined(verdict)} != {expected_undefined(entry)}")
    # Only a host the oracle traced in (undefined_in_host) decides the verdict; a host it
    # merely dlopen()ed a module with is not a plugin judgement.
    plugin = entry.get("plugin", {})
    want_host = plugin.get("host") if "undefined_in_host" in plugin else None
    if verdict.host != want_host:
        found.append(f"host {verdict.host} != {want_host}")
    return found


@pytest.mark.parametrize("name", IMAGES)
def test_every_elf_agrees_with_the_real_loader(corpus_dir: Path, name: str) -> None:
    assert differences(name) == []


@pytest.mark.parametrize("name", IMAGES)
def test_resolved_paths_match_the_loaders_trace(corpus_dir: Path, name: str) -> None:
    """`resolved` spells paths as ld.so prints them ($ORIGIN/../lib stays unnormalised)."""
    analysis = scanned(name)
    wrong = []
    for path, entry in verdicts(name).items():
        verdict = analysis.verdicts[path]
        for soname, where in entry.get("deps", {}).items():
            if soname in verdict.resolved and verdict.resolved[soname] != where:
                wrong.append((path, soname, verdict.resolved[soname], where))
    assert wrong == []


def test_cli_json_report_for_a_broken_image(corpus_dir: Path) -> None:
    """End to end through the CLI: exit 1, and the JSON names what the loader said."""
    ref = f"oci-dir:{CORPUS / 'oci'}:glibc-too-new"
    done = subprocess.run(
        [sys.executable, "-m", "imagescan", ref, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["schema_version"] == 1
    files = {f["path"]: f for f in report["files"]}
    app = files["/usr/local/bin/newglibc"]
    assert app["status"] == "broken"
    versions = {f["subject"] for f in app["findings"] if f["kind"] == "missing-symbol-version"}
    assert versions == {"GLIBC_2.34", "GLIBC_2.36"}
    message = next(f["message"] for f in app["findings"] if f["subject"] == "GLIBC_2.34")
    assert "version `GLIBC_2.34' not found (required by /usr/local/bin/newglibc)" in message
    assert app["resolved"]["libc.so.6"] == "/lib/x86_64-linux-gnu/libc.so.6"


def test_cli_exits_zero_on_a_clean_image(corpus_dir: Path) -> None:
    """deb12-base is clean at start-up; its one call-time problem (libthread_db, whose ps_*
    symbols a debugger provides) is waived by the default policy, with its reason."""
    ref = f"oci-dir:{CORPUS / 'oci'}:deb12-base"
    done = subprocess.run(
        [sys.executable, "-m", "imagescan", ref, "-q"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "750 ok, 1 broken-lazy, 1 static; 1 of the broken pass under the policy" in done.stdout
    strict = subprocess.run(
        [sys.executable, "-m", "imagescan", ref, "-q", "--policy", "strict"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert strict.returncode == 0, strict.stdout + strict.stderr
