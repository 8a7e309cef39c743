"""dpkg databases written by the real dpkg, distroless status.d/, and the corpus' Debian."""

from __future__ import annotations

from pathlib import Path

from imagescan.packages import read_packages
from imagescan.packages.dpkg import paragraphs, read_dpkg
from imagescan.packages.found import PackageFacts
from imagescan.scan import ScanOptions, read_image
from tests.packages_support import build_deb, dpkg_install, packages_of

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def _merged_usr_root(root: Path) -> None:
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text(OS_RELEASE)


def test_a_package_installed_by_dpkg_owns_its_files_by_any_name(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _merged_usr_root(root)
    files = {"/lib/demo/libdemo.so.1.0": "not an ELF"}
    deb = build_deb(tmp_path, "libdemo1", files, {"/lib/demo/libdemo.so.1": "libdemo.so.1.0"})
    dpkg_install(root, deb)
    db = packages_of(root)
    assert db.problems == ()
    (package,) = db.packages
    assert (package.name, package.version, package.arch) == ("libdemo1", "1:2.0-1", "all")
    assert package.source == "libdemo1-src"
    assert package.purl == "pkg:deb/debian/libdemo1@1:2.0-1?arch=all&distro=debian-12"
    # dpkg lists /lib/...; merged /usr puts the file under /usr/lib; the symlink resolves.
    for name in ("/lib/demo/libdemo.so.1", "/usr/lib/demo/libdemo.so.1.0"):
        assert db.owner(name) == package
    assert db.owner("/etc/os-release") is None


def test_removed_but_not_purged_packages_are_not_installed() -> None:
    status = (
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: here\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n"
        "Description: first line\n continued\n"
    )
    kept = {"/var/lib/dpkg/status": status.encode()}
    found = read_dpkg(kept, set(), PackageFacts())
    assert [p.name for p in found.packages] == ["here"]
    assert list(paragraphs(status))[1]["Description"] == "first line\ncontinued"


def test_file_lists_over_the_keep_budget_are_named_as_a_problem() -> None:
    kept = {"/var/lib/dpkg/status": b"Package: a\nVersion: 1\nArchitecture: all\n"}
    listed = {"/var/lib/dpkg/info/a.list"}  # in the image, not kept
    found = read_dpkg(kept, listed, PackageFacts())
    (problem,) = found.problems
    assert "1 of 1 over the keep budget" in problem and "a.list" in problem


def test_distroless_status_d_and_md5sums(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _merged_usr_root(root)
    status_d = root / "var" / "lib" / "dpkg" / "status.d"
    status_d.mkdir(parents=True)
    (status_d / "libssl3").write_text(
        "Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n"
    )
    (status_d / "libssl3.md5sums").write_text(
        "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libssl.so.3\n"
    )
    (root / "usr/lib/x86_64-linux-gnu").mkdir()
    (root / "usr/lib/x86_64-linux-gnu/libssl.so.3").write_text("x")
    db = packages_of(root)
    (package,) = db.packages
    assert package.source == "openssl"
    assert db.owner("/lib/x86_64-linux-gnu/libssl.so.3") == package


def test_the_corpus_debian_image_has_its_libc_from_libc6(corpus_dir: Path) -> None:
    reference = f"oci-dir:{corpus_dir / 'oci'}:deb12-base"
    _, rootfs = read_image(reference, ScanOptions(), symbols=False)
    db = read_packages(rootfs)
    assert db.problems == ()
    assert len(db.packages) > 50
    libc = db.owner("/lib/x86_64-linux-gnu/libc.so.6")
    assert libc is not None and libc.name == "libc6" and libc.source == "glibc"
    assert libc.purl.startswith("pkg:deb/debian/libc6@2.36-9") and "distro=debian-12" in libc.purl
    assert db.owner("/usr/bin/ls") == db.owner("/bin/ls") is not None
