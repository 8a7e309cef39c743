"""`imagescan audit`: many images, one summary; an unreadable image does not stop it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from imagescan.audit import ImageResult, audit_dict, audit_lines
from tests.conftest import REPO

SAMPLE = str(REPO / "sample-images" / "sample.tar")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagescan", "audit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_summary_names_broken_files_and_unreadable_images(tmp_path: Path) -> None:
    done = run(SAMPLE, str(tmp_path / "missing.tar"), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2  # one image could not be scanned
    lines = done.stdout.splitlines()
    assert lines[0].endswith("5 ELF files, 1 broken, 0 broken-lazy")
    assert lines[1] == "  broken: /usr/local/bin/needs-newer"
    assert "missing.tar: not scanned:" in lines[2]
    assert lines[-1] == "2 images: 1 with programs that will not start, 1 not scanned"


def test_json_and_references_from_a_file(tmp_path: Path) -> None:
    refs = tmp_path / "images.txt"
    refs.write_text(f"# nightly\n{SAMPLE}\n\n{SAMPLE}\n")
    done = run("--from", str(refs), "-o", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert [i["broken"] for i in doc["images"]] == [["/usr/local/bin/needs-newer"]] * 2
    assert doc["images"][0]["by_status"]["ok"] == 4


def test_no_reference_is_a_usage_error() -> None:
    done = run()
    assert done.returncode == 2 and "at least one image reference" in done.stderr


def test_lines_for_a_clean_image_and_an_error() -> None:
    lines = audit_lines(audit_dict([ImageResult("img:1", error="registry said 404")]))
    assert lines == [
        "img:1: not scanned: registry said 404",
        "1 images: 0 with programs that will not start, 1 not scanned",
    ]
