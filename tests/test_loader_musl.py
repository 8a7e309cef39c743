"""musl path file and libc aliases, checked against the host's musl loader in a chroot.

The roots are built here with musl-gcc; the loader is the host's musl package
(/lib/ld-musl-x86_64.so.1), run with --list (musl's ldd mode) inside `chroot ROOT`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imagescan.loader.musl import (
    MUSL_DEFAULT_PATH,
    is_musl_interpreter,
    musl_libc_alias,
    musl_path_file,
    musl_sys_path,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ldcache"
HOST_MUSL = Path("/lib/ld-musl-x86_64.so.1")
LIBS = {"opt/p/libfoo.so": "libfoo.so", "usr/local/lib/libdef.so": "libdef.so"}
# NEEDED names of the test program: two real libraries, one musl answers itself, one that
# only looks like an alias ("libcx." is not "libc."), plus the libc.so musl-gcc adds.
NEEDED = ("libfoo.so", "libdef.so", "libm.so.6", "libcx.so")

needs_musl = pytest.mark.skipif(
    not (shutil.which("musl-gcc") and HOST_MUSL.exists())
    or os.geteuid() != 0
    or not shutil.which("chroot"),
    reason="needs musl-gcc, the host's musl loader and root for chroot",
)


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


def _musl_lib(out: Path, soname: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run("musl-gcc", "-shared", "-fPIC", "-o", out, f"-Wl,-soname,{soname}", FIXTURES / "lib.c")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Libraries and a program that NEEDs them, with PT_INTERP at /usr/lib/x (a prefix)."""
    base = tmp_path_factory.mktemp("musl")
    stubs = base / "stubs"
    for soname in ("libm.so.6", "libcx.so"):
        _musl_lib(stubs / soname, soname)
    for rel, soname in LIBS.items():
        _musl_lib(base / "tree" / rel, soname)
    links = [f"-l:{name}" for name in NEEDED]
    for interp, prog in (("/lib/ld-musl-x86_64.so.1", "prog"), ("/usr/lib/x/ld-musl.so.1", "p2")):
        _run("musl-gcc", "-o", base / "tree" / prog, FIXTURES / "main.c", "-Wl,--no-as-needed",
             f"-L{base}/tree/opt/p", f"-L{base}/tree/usr/local/lib", f"-L{stubs}", *links,
             f"-Wl,--dynamic-linker={interp}")  # fmt: skip
    return base / "tree"


def _root(built: Path, dest: Path, path_files: dict[str, bytes]) -> Path:
    root = dest / "root"
    shutil.copytree(built, root, symlinks=True)
    for loader in ("lib/ld-musl-x86_64.so.1", "usr/lib/x/ld-musl.so.1"):
        (root / loader).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(HOST_MUSL, root / loader)
    for rel, content in path_files.items():
        (root / rel.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / rel.lstrip("/")).write_bytes(content)
    return root


def _musl_list(root: Path, loader: str, prog: str) -> dict[str, str | None]:
    """What musl's ldd mode says for each NEEDED name: its path, or None when not found."""
    done = _run("chroot", root, loader, "--list", prog, check=False)
    found: dict[str, str | None] = dict(re.findall(r"^\t(\S+) => (\S+) \(", done.stdout, re.M))
    for name in re.findall(r"Error loading shared library (\S+):", done.stderr):
        found[name] = None
    return found


def _model(root: Path, loader: str) -> dict[str, str | None]:
    """The same answers from our parsers: alias -> loader, else first sys_path hit."""
    path_file = root / musl_path_file(loader, "x86_64").lstrip("/")
    dirs = musl_sys_path(path_file.read_bytes() if path_file.exists() else None)
    result: dict[str, str | None] = {"libc.so": loader}
    for name in NEEDED:
        if musl_libc_alias(name):
            result[name] = loader
            continue
        hits = [f"{d}/{name}" for d in dirs if (root / d.lstrip("/") / name).is_file()]
        result[name] = hits[0] if hits else None
    return result


CASES = {
    "missing file: default dirs": {},
    "dirs split on ':' and newlines": {"/etc/ld-musl-x86_64.path": b"/nonexist\n/opt/q:/opt/p\n"},
    "empty file: no dirs at all": {"/etc/ld-musl-x86_64.path": b""},
    "NUL ends the list": {"/etc/ld-musl-x86_64.path": b"/opt/p\0:/usr/local/lib"},
    "no whitespace trimming": {"/etc/ld-musl-x86_64.path": b" /usr/local/lib\n/opt/p \n"},
}


@needs_musl
@pytest.mark.parametrize("case", list(CASES))
def test_search_dirs_agree_with_musl(built: Path, tmp_path: Path, case: str) -> None:
    root = _root(built, tmp_path, CASES[case])
    loader = "/lib/ld-musl-x86_64.so.1"
    expected = _musl_list(root, loader, "/prog")
    assert set(expected) == {*NEEDED, "libc.so"}
    assert _model(root, loader) == expected


@needs_musl
def test_path_file_prefix_agrees_with_musl(built: Path, tmp_path: Path) -> None:
    # Loader /usr/lib/x/ld-musl.so.1 reads /usr/lib/etc/..., never /etc/...
    files = {"/usr/lib/etc/ld-musl-x86_64.path": b"/opt/p", "/etc/ld-musl-x86_64.path": b""}
    root = _root(built, tmp_path, files)
    loader = "/usr/lib/x/ld-musl.so.1"
    expected = _musl_list(root, loader, "/p2")
    assert expected["libfoo.so"] == "/opt/p/libfoo.so"
    assert _model(root, loader) == expected


@pytest.mark.parametrize(
    ("ldso", "path_file"),
    [
        ("/lib/ld-musl-x86_64.so.1", "/etc/ld-musl-x86_64.path"),
        ("/usr/lib/ld-musl-x86_64.so.1", "/usr/etc/ld-musl-x86_64.path"),
        ("/opt/musl/lib/ld-musl-x86_64.so.1", "/opt/musl/etc/ld-musl-x86_64.path"),
        ("/ld-musl-x86_64.so.1", "/etc/ld-musl-x86_64.path"),
        ("ld-musl-x86_64.so.1", "/etc/ld-musl-x86_64.path"),
    ],
)
def test_musl_path_file_prefix_rule(ldso: str, path_file: str) -> None:
    assert musl_path_file(ldso, "x86_64") == path_file


def test_musl_sys_path_forms() -> None:
    assert musl_sys_path(None) == MUSL_DEFAULT_PATH == ("/lib", "/usr/local/lib", "/usr/lib")
    assert musl_sys_path(b"") == ()
    assert musl_sys_path(b"\n::\n") == ()
    assert musl_sys_path(b"/a:/b\n/c\n") == ("/a", "/b", "/c")


def test_libc_aliases_and_interpreters() -> None:
    for name in ("libc.so", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2"):
        assert musl_libc_alias(name), name
    for name in ("librt.so.1", "libutil.so.1", "libxnet.so", "libc.musl-x86_64.so.1"):
        assert musl_libc_alias(name), name
    for name in ("libcx.so", "libcrypt.so.1", "libmagic.so.1", "libc", "c.so", "libdlx.so"):
        assert not musl_libc_alias(name), name
    assert is_musl_interpreter("/lib/ld-musl-x86_64.so.1")
    assert is_musl_interpreter("/lib/ld-musl-armhf.so.1")
    assert not is_musl_interpreter("/lib64/ld-linux-x86-64.so.2")
