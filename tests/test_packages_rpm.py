"""rpm databases written by the real rpm (sqlite backend), and header blobs that lie."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from imagescan.packages.rpmheader import BadHeader, parse_header
from tests.packages_support import packages_of, rpm_install

UBI = 'ID="rhel"\nVERSION_ID="9.4"\nID_LIKE="fedora"\n'


@pytest.mark.parametrize("dbpath", ["/var/lib/rpm", "/usr/lib/sysimage/rpm"])
def test_a_package_installed_by_rpm(tmp_path: Path, dbpath: str) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(UBI)
    rpm_install(tmp_path, root, dbpath)
    assert (root / dbpath.lstrip("/") / "rpmdb.sqlite").exists()
    db = packages_of(root)
    assert db.problems == ()
    (package,) = db.packages
    assert (package.name, package.version, package.arch) == ("demo", "1:1.2-3", "noarch")
    assert (package.source, package.license) == ("demo", "MIT")
    assert package.purl == "pkg:rpm/redhat/demo@1.2-3?arch=noarch&distro=rhel-9.4&epoch=1"
    assert db.owner("/usr/lib/demo/libdemo.so.1") == package  # the symlink's target
    assert db.owner("/usr/lib/demo/libdemo.so.1.0") == package


def test_a_berkeleydb_database_is_reported_not_readable(tmp_path: Path) -> None:
    rpmdir = tmp_path / "root" / "var" / "lib" / "rpm"
    rpmdir.mkdir(parents=True)
    (rpmdir / "Packages").write_bytes(b"\0" * 4096)
    db = packages_of(tmp_path / "root")
    assert db.packages == ()
    assert db.problems == (
        "BerkeleyDB rpm Packages database (/var/lib/rpm/Packages): not readable",
    )


def test_a_damaged_sqlite_database_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    rpmdir = tmp_path / "root" / "var" / "lib" / "rpm"
    rpmdir.mkdir(parents=True)
    (rpmdir / "rpmdb.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 100)
    (problem,) = packages_of(tmp_path / "root").problems
    assert problem.startswith("/var/lib/rpm/rpmdb.sqlite: not a readable sqlite database")


@pytest.mark.parametrize(
    "blob",
    [
        b"\0\0\0",  # shorter than il + dl
        struct.pack(">II", 1, 4),  # one entry announced, none there
        struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 100, 1) + b"abc\0",
        struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1000, 6, 0, 1) + b"abcd",  # no NUL
        struct.pack(">II", 1, 4) + struct.pack(">iIiI", 1116, 4, 0, 5) + b"\0" * 4,
    ],
)
def test_malformed_header_blobs(blob: bytes) -> None:
    with pytest.raises(BadHeader):
        parse_header(blob)
