"""Local references: the existing path wins, then the selector after ':' or '@'."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagescan.errors import ReferenceError_
from imagescan.image.pathref import LocalReference, split_local_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def paths(tmp_path: Path) -> Path:
    (tmp_path / "img.tar").write_bytes(b"")
    (tmp_path / "with:colon").mkdir()
    (tmp_path / "with:colon:v1").mkdir()
    return tmp_path


def test_whole_reference_that_exists(paths: Path) -> None:
    assert split_local_reference(f"{paths}/img.tar", "k") == LocalReference(f"{paths}/img.tar")
    ref = split_local_reference(f"{paths}/with:colon:v1", "k")
    assert ref == LocalReference(f"{paths}/with:colon:v1")  # the existing path wins


def test_tag_after_the_last_existing_path(paths: Path) -> None:
    assert split_local_reference(f"{paths}/img.tar:repo/app:2", "k") == LocalReference(
        f"{paths}/img.tar", tag="repo/app:2"
    )
    assert split_local_reference(f"{paths}/with:colon:v2", "k") == LocalReference(
        f"{paths}/with:colon", tag="v2"
    )


def test_digest_after_at(paths: Path) -> None:
    assert split_local_reference(f"{paths}/img.tar@{DIGEST}", "k") == LocalReference(
        f"{paths}/img.tar", digest=DIGEST
    )


@pytest.mark.parametrize(
    ("suffix", "message"),
    [(":", "names no tag"), ("@", "names no digest"), ("@sha256:xyz", "malformed digest")],
)
def test_bad_selectors(paths: Path, suffix: str, message: str) -> None:
    with pytest.raises(ReferenceError_, match=message):
        split_local_reference(f"{paths}/img.tar{suffix}", "oci-archive")


def test_nothing_exists(paths: Path) -> None:
    with pytest.raises(ReferenceError_, match=r"oci-dir:.*/nope:tag: no such file or directory"):
        split_local_reference(f"{paths}/nope:tag", "oci-dir")
    with pytest.raises(ReferenceError_, match="needs a path"):
        split_local_reference("", "oci-dir")
