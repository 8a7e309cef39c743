"""Scan reports kept whole by result key (imagescan.recorded, issue 14): a rescan of the
same image with the same judging reads the kept report, says so, and reports exactly what
a fresh scan reports; anything it depends on changed, or an entry that does not decode,
and the image is scanned again."""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from imagescan.cli import main
from imagescan.image.model import ImageConfig
from imagescan.policy.load import load_policy
from imagescan.recorded import Judging, report_codec, report_key
from imagescan.scan import ScanOptions
from imagescan.store.sqlite import FILE_NAME

NOTE = "from the store (--rescan to scan again)"
# Fields of a document that say when it was made (or are named by that time), not what was
# found.
TIMES = ("created", "documentNamespace", "serialNumber", "timestamp", "startTimeUtc", "endTimeUtc")


@pytest.fixture
def reference(corpus_dir: Path) -> str:
    return f"oci-dir:{corpus_dir / 'oci'}:missing-symbol"  # broken files: exit 1


def scanned(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["scan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def untimed(value: Any) -> Any:
    """A rendered document without the times it was made at."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def kept_rows(cache: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(cache / FILE_NAME) as db:
        return list(db.execute("SELECT result_key, size FROM scan_reports"))


@pytest.mark.parametrize("form", ["json", "sarif", "cyclonedx-json", "spdx-json"])
def test_a_rescan_reports_what_a_fresh_scan_reports_and_says_where_from(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    cache = str(tmp_path / "cache")
    fresh = scanned(capsys, reference, "-o", form)
    first = scanned(capsys, reference, "-o", form, "--cache", cache)
    again = scanned(capsys, reference, "-o", form, "--cache", cache)
    assert fresh[0] == first[0] == again[0] == 1
    assert NOTE not in first[2] and NOTE in again[2]
    documents = [untimed(json.loads(out)) for _, out, _ in (fresh, first, again)]
    assert documents[0] == documents[1] == documents[2]
    assert len(kept_rows(tmp_path / "cache")) == 1


def test_rescan_and_quiet(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(tmp_path / "cache")
    scanned(capsys, reference, "--cache", cache)
    code, out, err = scanned(capsys, reference, "--cache", cache, "--rescan", "-o", "json")
    assert code == 1 and NOTE not in err and json.loads(out)["files"]
    code, _, err = scanned(capsys, reference, "--cache", cache, "-q")
    assert code == 1 and err == ""  # reused, and -q says nothing


@pytest.mark.parametrize(
    "other",
    [
        ["--fail-on", "warning"],
        ["--policy", "strict"],
        ["--cpu", "x86-64-v2"],
        ["-o", "spdx-json"],  # the SBOMs need the files' digests: another scan's options
    ],
)
def test_other_judging_is_not_served_the_kept_report(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], other: list[str]
) -> None:
    cache = str(tmp_path / "cache")
    scanned(capsys, reference, "--cache", cache, "-o", "json")
    _, _, err = scanned(capsys, reference, "--cache", cache, *other)
    assert NOTE not in err
    assert len(kept_rows(tmp_path / "cache")) == 2
    _, _, err = scanned(capsys, reference, "--cache", cache, *other)
    assert NOTE in err


def test_another_name_for_the_same_image_is_reported_under_that_name(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(tmp_path / "cache")
    layout = tmp_path / "copy"
    layout.symlink_to(corpus_dir / "oci")
    scanned(capsys, f"oci-dir:{corpus_dir / 'oci'}:deb11", "--cache", cache)
    code, out, err = scanned(capsys, f"oci-dir:{layout}:deb11", "--cache", cache, "-o", "json")
    assert NOTE in err and code == 0
    assert json.loads(out)["image"]["reference"] == f"oci-dir:{layout}:deb11"


class Planted:
    """Pickled, it would create `marker` when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def damaged_entries(marker: Path) -> list[bytes]:
    """Entries that must not be used: a planted pickle, bytes that are no entry, and an
    entry of the right envelope whose report has a field of the wrong type."""
    codec = report_codec("x")
    wrong = {"format": codec.format, "version": "?", "key": "?", "report": [1, 2]}
    return [pickle.dumps(Planted(marker)), b"\x00garbage", json.dumps(wrong).encode()]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_damaged_entry_is_ignored_with_a_note_and_the_image_scanned_again(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: int
) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "ran"
    _, before, _ = scanned(capsys, reference, "--cache", str(cache), "-o", "json")
    with sqlite3.connect(cache / FILE_NAME) as db:
        db.execute("UPDATE scan_reports SET data = ?", (damaged_entries(marker)[which],))
    code, out, err = scanned(capsys, reference, "--cache", str(cache), "-o", "json")
    assert code == 1 and not marker.exists()
    assert "stored scan report ignored" in err and NOTE not in err
    assert untimed(json.loads(out)) == untimed(json.loads(before))
    _, _, err = scanned(capsys, reference, "--cache", str(cache))  # written again, whole
    assert NOTE in err and "ignored" not in err


def test_an_image_without_diff_ids_is_never_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], corpus_dir: Path
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=test\n")
    cache = tmp_path / "cache"
    scanned(capsys, f"dir:{root}", "--cache", str(cache), "--allow-empty")
    scanned(capsys, f"dir:{root}", "--cache", str(cache), "--allow-empty")
    assert kept_rows(cache) == []


def test_prune_drops_reports_unused_for_long(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    scanned(capsys, reference, "--cache", str(cache))
    with sqlite3.connect(cache / FILE_NAME) as db:
        db.execute("UPDATE scan_reports SET used = ?", (time.time() - 31 * 86400,))
    assert main(["cache", "prune", "--older-than", "30d", "--cache", str(cache)]) == 0
    assert "and 1 scan reports" in capsys.readouterr().out
    assert kept_rows(cache) == []


def test_prune_by_size_counts_the_reports(
    reference: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    scanned(capsys, reference, "--cache", str(cache))
    ((_, size),) = kept_rows(cache)
    with sqlite3.connect(cache / FILE_NAME) as db:
        db.execute("UPDATE scan_reports SET used = ?", (time.time() - 86400,))  # the oldest
        total = db.execute("SELECT SUM(size) FROM layer_facts").fetchone()[0]
    assert main(["cache", "prune", "--max-size", str(total), "--cache", str(cache)]) == 0
    assert kept_rows(cache) == [] and f"{size / (1 << 20):.1f} MiB" in capsys.readouterr().out


# ------------------------------------------------------------------ the key, pure


def judging(**changes: Any) -> Judging:
    return replace(Judging(ScanOptions(), load_policy("default"), "error"), **changes)


CONFIG = ImageConfig(diff_ids=("sha256:" + "1" * 64,), env=("PATH=/usr/bin",))


@pytest.mark.parametrize(
    "config, other",
    [
        (replace(CONFIG, env=("PATH=/usr/bin", "LD_LIBRARY_PATH=/opt")), judging()),
        (replace(CONFIG, diff_ids=("sha256:" + "2" * 64,)), judging()),
        (replace(CONFIG, user="1000"), judging()),
        (CONFIG, judging(fail_on="warning")),
        (CONFIG, judging(policy=load_policy("strict"))),
        (CONFIG, judging(policy_name="strict")),
        (CONFIG, judging(options=ScanOptions(cpu_level="x86-64-v2"))),
        (CONFIG, judging(options=ScanOptions(digests=False))),
        (CONFIG, judging(today=date(2026, 12, 3))),
        (CONFIG, judging(indexes=(("debian-12-amd64.json", 10, 1),))),
    ],
)
def test_the_key_changes_with_what_the_report_depends_on(
    config: ImageConfig, other: Judging
) -> None:
    assert report_key(config, other, "v1") != report_key(CONFIG, judging(), "v1")


def test_the_key_is_the_same_for_what_the_report_does_not_depend_on() -> None:
    key = report_key(CONFIG, judging(), "v1")
    elsewhere = judging(options=ScanOptions(jobs=2, cache_dir=Path("/tmp/x")))
    assert report_key(CONFIG, elsewhere, "v1") == key
    assert report_key(CONFIG, judging(), "v2") != key  # another analysis version
    assert report_key(replace(CONFIG, diff_ids=()), judging(), "v1") is None


def test_a_report_round_trips_through_its_codec(reference: str) -> None:
    """Every field of a report with findings, fixes, provenance and links comes back equal."""
    from imagescan.cli import apply_defaults, build_parser, judged

    args = build_parser().parse_args(["scan", reference, "-o", "spdx-json"])  # links too
    apply_defaults(args)
    _, report = judged(reference, args, load_policy("default"))
    assert report.hints is not None and report.links is not None and report.broken()
    codec = report_codec("v1")
    assert codec.loads(codec.dumps(report, "k"), "k") == report
