"""ld.so.conf parsing, checked against the host's static ldconfig run in a chroot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Hashable, Iterable
from pathlib import Path

import pytest

from imagescan.loader.ldconf import LdConf, conf_dir, glob, ldconfig_dirs, parse_ld_so_conf
from tests.hostile import ld_so_conf_doubling

LDCONFIG = shutil.which("ldconfig")
# Debian's ldconfig adds these after the configured directories (seen with ldconfig -v).
DEBIAN_SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")

TOP_CONF = """\
# top
include /etc/ld.so.conf.d/*.conf
/opt/a/   # trailing slash and comment
  /opt/b
hwcap 0 nosegneg
HWCAP\t1 x
include sub/rel.conf  nothere.conf
/opt/c=libc6
/
/linka
/opt/missing
"""
FILES = {
    "etc/ld.so.conf": TOP_CONF,
    "etc/ld.so.conf.d/10-d.conf": "/opt/d\n",
    "etc/ld.so.conf.d/05-e.conf": "/opt/e\n",
    "etc/ld.so.conf.d/.hidden.conf": "/opt/hidden\n",  # '*' does not match a leading dot
    "etc/ld.so.conf.d/x.txt": "/opt/notconf\n",
    "etc/sub/rel.conf": "/opt/f\ninclude ../ld.so.conf.d/05-e.conf\n",
}
DIRS = ("opt/a/glibc-hwcaps/x86-64-v2", "opt/b", "opt/c", "opt/d", "opt/e", "opt/f", "opt/hidden")
DIRS += ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "sbin")


def _make_root(root: Path, files: dict[str, str]) -> None:
    for rel in DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "linka").symlink_to("opt/a")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


class _View:
    """read/listdir/dir_id over a directory standing for an image root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> bytes | None:
        target = self._path(path)
        return target.read_bytes() if target.is_file() else None

    def listdir(self, path: str) -> Iterable[str]:
        target = self._path(path)
        return os.listdir(target) if target.is_dir() else []

    def dir_id(self, path: str) -> Hashable | None:
        try:
            st = os.stat(self._path(path))
        except OSError:
            return None
        return (st.st_dev, st.st_ino)


def _ldconfig_scanned(root: Path) -> tuple[list[str], str]:
    """Directories the real ldconfig scans in `root` (glibc-hwcaps subdirs left out)."""
    shutil.copy(str(LDCONFIG), root / "sbin/ldconfig")
    done = subprocess.run(
        ["chroot", str(root), "/sbin/ldconfig", "-v", "-N", "-X"],
        capture_output=True,
        text=True,
        check=True,
    )
    dirs = re.findall(r"^(/\S*): (?:\(hwcap: [^)]*\) )?\(from ", done.stdout, re.MULTILINE)
    return [d for d in dirs if "/glibc-hwcaps/" not in d], done.stderr


@pytest.mark.skipif(
    LDCONFIG is None or os.geteuid() != 0 or not shutil.which("chroot"),
    reason="needs the host's ldconfig and root for chroot",
)
def test_scan_order_agrees_with_ldconfig(tmp_path: Path) -> None:
    _make_root(tmp_path, FILES)
    view = _View(tmp_path)
    conf = parse_ld_so_conf(view.read, view.listdir)
    expected, stderr = _ldconfig_scanned(tmp_path)
    assert ldconfig_dirs(conf, DEBIAN_SYSTEM_DIRS, dir_id=view.dir_id) == tuple(expected)
    assert expected[:3] == ["/opt/e", "/opt/d", "/opt/a"]  # the test is not vacuous
    for lineno in (5, 6):
        assert f"/etc/ld.so.conf:{lineno}: hwcap directive ignored" in stderr
        assert f"/etc/ld.so.conf:{lineno}: hwcap directive ignored" in conf.problems


def test_parse_conf_lines(tmp_path: Path) -> None:
    _make_root(tmp_path, FILES)
    view = _View(tmp_path)
    conf = parse_ld_so_conf(view.read, view.listdir)
    assert conf.dirs == (
        "/opt/e",
        "/opt/d",
        "/opt/a",
        "/opt/b",
        "/opt/f",
        "/opt/e",
        "/opt/c",
        "/linka",
        "/opt/missing",
    )
    assert conf.files == (
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d/05-e.conf",
        "/etc/ld.so.conf.d/10-d.conf",
        "/etc/sub/rel.conf",
        "/etc/sub/../ld.so.conf.d/05-e.conf",
    )


def test_ldconfig_dirs_without_identity_dedupes_strings() -> None:
    conf = LdConf(("/opt/a", "/lib", "/opt/a"))
    assert ldconfig_dirs(conf, ("/lib/", "/usr/lib")) == ("/opt/a", "/lib", "/usr/lib")


def test_ldconfig_dirs_drops_missing_and_same_inode() -> None:
    ids = {"/lib": 1, "/usr/lib": 1, "/opt/a": 2}
    conf = LdConf(("/opt/a", "/opt/gone"))
    assert ldconfig_dirs(conf, ("/lib", "/usr/lib"), dir_id=ids.get) == ("/opt/a", "/lib")


def _fake(files: dict[str, str]) -> tuple[object, object]:
    def read(path: str) -> bytes | None:
        text = files.get(path)
        return text.encode() if text is not None else None

    def listdir(path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in files if p.startswith(prefix)})

    return read, listdir


def test_include_loop_is_a_problem_not_a_hang() -> None:
    read, listdir = _fake(
        {"/etc/ld.so.conf": "include /etc/a.conf\n/top\n", "/etc/a.conf": "/a\ninclude a.conf\n"}
    )
    conf = parse_ld_so_conf(read, listdir)  # type: ignore[arg-type]
    assert conf.dirs == ("/a", "/top")
    assert conf.problems == ("include loop ignored: /etc/ld.so.conf -> /etc/a.conf -> /etc/a.conf",)


def test_tabs_nul_and_include_keyword_forms() -> None:
    read, listdir = _fake(
        {
            "/etc/ld.so.conf": "\t/opt/t \t\ninclude\t/etc/x.conf\nincludes /opt/i\n/opt/n\0junk\n",
            "/etc/x.conf": "/opt/x\n",
        }
    )
    conf = parse_ld_so_conf(read, listdir)  # type: ignore[arg-type]
    # "includes /opt/i" is not an include line: the whole line is a directory.
    assert conf.dirs == ("/opt/t", "/opt/x", "includes /opt/i", "/opt/n")


def test_conf_dir_canonical_form() -> None:
    assert conf_dir("/usr/lib//  ") == "/usr/lib"
    assert conf_dir("/opt/x=libc5") == "/opt/x"
    assert conf_dir("/") == ""
    assert conf_dir("relative/dir/") == "relative/dir"


def test_glob_matches_per_component_sorted() -> None:
    tree = {
        "/etc": ["a.d", "b.d", ".h.d"],
        "/etc/a.d": ["2.conf", "1.conf", "x"],
        "/etc/b.d": ["0.conf"],
    }

    def listdir(path: str) -> list[str]:
        return tree.get(path, [])

    assert glob("/etc/*.d/*.conf", listdir) == [
        "/etc/a.d/1.conf",
        "/etc/a.d/2.conf",
        "/etc/b.d/0.conf",
    ]
    assert glob("/etc/.*.d", listdir) == ["/etc/.h.d"]
    assert glob("/etc/[ab].d/[^1]*", listdir) == [
        "/etc/a.d/2.conf",
        "/etc/a.d/x",
        "/etc/b.d/0.conf",
    ]
    assert glob("/etc/plain.conf", listdir) == ["/etc/plain.conf"]


def test_each_file_is_parsed_once_however_often_it_is_included() -> None:
    """Issue 15: files that each include the next twice, depth 22, took 85 s and 1.5 GB."""
    files = ld_so_conf_doubling(22)
    reads: list[str] = []

    def read(path: str) -> bytes | None:
        reads.append(path)
        return files.get(path)

    conf = parse_ld_so_conf(read, lambda d: ())
    assert conf.dirs == tuple(f"/opt/d{i}" for i in range(22))
    assert len(reads) == len(files) and len(conf.files) == len(files)
