"""apk databases in apk-tools' installed format, and what a package URL looks like."""

from __future__ import annotations

from pathlib import Path

from imagescan.packages import Package
from tests.packages_support import packages_of

# Two blocks as apk-tools writes /lib/apk/db/installed (apk's database.c
# apk_db_write_fdb: C checksum, P, V, A, S, I, T, U, L, o, m, t, c, D, p, then F/R/a/Z).
INSTALLED = """C:Q1bRqk0vA8kqz3OZCm8hJSkoLW0Qs=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teras <timo.teras@iki.fi>
t:1698405452
c:d8f3c0a6b7ae7bc8ea3b2f3d0e2b9c0ed5b0c0b1
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1DpCgKmy7LmQm1AhdmVwBQCIyDEw=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1pcfTfDNEbNKQc2s1tia7da05M8Q=
P:zlib
V:1.3.1-r0
A:x86_64
L:Zlib
o:zlib
D:so:libc.musl-x86_64.so.1
p:so:libz.so.1=1.3.1
F:lib
R:libz.so.1
a:0:0:777
R:libz.so.1.3.1

"""


def test_apk_installed_database(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "lib" / "apk" / "db").mkdir(parents=True)
    (root / "lib" / "apk" / "db" / "installed").write_text(INSTALLED)
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("ID=alpine\nVERSION_ID=3.19.1\n")
    (root / "lib" / "ld-musl-x86_64.so.1").write_text("x")
    (root / "lib" / "libc.musl-x86_64.so.1").symlink_to("ld-musl-x86_64.so.1")
    (root / "lib" / "libz.so.1.3.1").write_text("z")
    (root / "lib" / "libz.so.1").symlink_to("libz.so.1.3.1")
    db = packages_of(root)
    assert db.problems == ()
    musl, zlib = db.packages
    assert (musl.name, musl.version, musl.arch, musl.license) == (
        "musl",
        "1.2.4-r2",
        "x86_64",
        "MIT",
    )
    assert musl.purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
    assert db.owner("/lib/libc.musl-x86_64.so.1") == musl
    assert db.owner("/lib/libz.so.1") == zlib
    assert db.owner("/etc/os-release") is None


def test_purls_of_the_three_managers() -> None:
    deb = Package("libc6", "2.36-9", "amd64", "dpkg", "glibc", None, "debian", "debian-12")
    assert deb.purl == "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"
    apk = Package("musl", "1.2.4-r2", "x86_64", "apk", namespace="alpine")
    assert apk.purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"
    rpm = Package("bash", "5.1.8-6.el9", "x86_64", "rpm", namespace="redhat")
    assert rpm.purl == "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64"
    bare = Package("x y", "1", "", "rpm")
    assert bare.purl == "pkg:rpm/x%20y@1"
