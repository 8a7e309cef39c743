"""Package databases written by the real tools (dpkg, rpm) into test roots."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imagescan.packages import PackageDb, read_packages
from imagescan.rootfs.dirwalk import index_directory
from imagescan.rootfs.squash import squash


def packages_of(root: Path) -> PackageDb:
    """The package database of an unpacked root, read as imagescan reads an image."""
    return read_packages(squash([index_directory(str(root))]))


def build_deb(work: Path, name: str, files: dict[str, str], links: dict[str, str]) -> Path:
    """A .deb built by dpkg-deb: `files` path -> content, `links` path -> symlink text."""
    tree = work / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1:2.0-1\nArchitecture: all\nSource: {name}-src (2.0-1)\n"
        "Maintainer: Test <test@example.org>\nDescription: test package\n"
    )
    for path, text in files.items():
        (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tree / path.lstrip("/")).write_text(text)
    for path, target in links.items():
        (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tree / path.lstrip("/")).symlink_to(target)
    deb = work / f"{name}.deb"
    run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
    return deb


def dpkg_root(root: Path) -> Path:
    """An empty dpkg database under `root`, as debootstrap leaves one before any install."""
    admin = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True, exist_ok=True)
    (admin / "status").touch()
    return admin


def dpkg_install(root: Path, deb: Path) -> None:
    """`dpkg --root ROOT -i DEB`, the real dpkg writing status and info/NAME.list."""
    admin = dpkg_root(root)
    dpkg = ["dpkg", f"--root={root}", f"--admindir={admin}", "--force-not-root", "--log=/dev/null"]
    run([*dpkg, "--force-script-chrootless", "--force-unsafe-io", "-i", str(deb)])


def run(command: list[str]) -> None:
    """Run a tool; its output in the failure message."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"


RPM_SPEC = """Name: demo
Version: 1.2
Release: 3
Epoch: 1
Summary: demo
License: MIT
BuildArch: noarch
%description
demo
%install
mkdir -p %{buildroot}/usr/lib/demo
echo hi > %{buildroot}/usr/lib/demo/libdemo.so.1.0
ln -s libdemo.so.1.0 %{buildroot}/usr/lib/demo/libdemo.so.1
%files
/usr/lib/demo
"""


def rpm_install(work: Path, root: Path, dbpath: str) -> None:
    """rpmbuild a tiny noarch package and install it with the real rpm into `root`, its
    database in sqlite under `dbpath` (Debian's rpm defaults to ~/.rpmdb)."""
    top = work / "rpmbuild"
    (top / "SPECS").mkdir(parents=True)
    spec = top / "SPECS" / "demo.spec"
    spec.write_text(RPM_SPEC)
    run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)])
    (package,) = (top / "RPMS" / "noarch").glob("*.rpm")
    rpm = ["rpm", f"--root={root}", f"--dbpath={dbpath}", "--define", "_db_backend sqlite"]
    run([*rpm, "--initdb"])
    run([*rpm, "-i", "--nodeps", "--noscripts", "--ignoreos", str(package)])
