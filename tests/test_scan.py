"""The pipeline end to end through its Python API: progress, report, analysis."""

from __future__ import annotations

from imagescan.checks.model import Status
from imagescan.scan import ScanOptions, read_image, scan
from tests.conftest import REPO

SAMPLE = str(REPO / "sample-images" / "sample.tar")


def test_progress_names_each_layer_then_the_analysis() -> None:
    said: list[str] = []
    scanned = scan(SAMPLE, ScanOptions(), said.append)
    assert said == [
        "reading layer 1/2",
        "reading layer 2/2",
        "analysing 5 ELF files as the image's loader would",
    ]
    statuses = {v.path: v.status for v in scanned.report.files}
    assert statuses["/usr/local/bin/needs-newer"] == Status.BROKEN
    assert scanned.report.image.source == "oci-archive"


def test_listing_read_keeps_headers_but_not_symbols() -> None:
    _, rootfs = read_image(SAMPLE, ScanOptions(), symbols=False)
    facts = rootfs.entries["/usr/local/bin/needs-newer"].elf
    assert facts is not None and not facts.symbols_read
    assert facts.needed == ("libgreet.so.1", "libc.so.6") and facts.undefined == ()
    assert facts.sha256 is None and facts.sha1 is None  # a listing hashes nothing


def test_a_read_with_symbols_hashes_each_elf_file_for_the_sboms() -> None:
    _, rootfs = read_image(SAMPLE, ScanOptions())
    facts = rootfs.entries["/usr/local/bin/needs-newer"].elf
    assert facts is not None and facts.sha256 is not None and len(facts.sha256) == 64
    assert facts.sha1 is not None and len(facts.sha1) == 40
