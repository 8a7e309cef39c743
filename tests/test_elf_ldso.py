"""imagescan.elf.ldso: ld.so defaults against what the host's own ld.so prints (`--help`,
LD_DEBUG=libs on a $LIB runpath) and against the corpus images' loaders."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from imagescan.elf.ldso import is_ldso_name, ldso_defaults
from imagescan.elf.reader import parse_elf

HOST_LDSO = [
    p for p in (Path("/lib64/ld-linux-x86-64.so.2"), Path("/lib/ld-linux.so.2")) if p.exists()
]
DEBIAN_X86_64 = ("/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib/", "/usr/lib/")


def _help_dirs(ldso: Path) -> tuple[str, ...]:
    """The "(system search path)" lines of `ld.so --help` (glibc >= 2.33)."""
    out = subprocess.run([str(ldso), "--help"], capture_output=True, text=True, check=True).stdout
    return tuple(m + "/" for m in re.findall(r"^\s+(/\S*) \(system search path\)", out, re.M))


@pytest.mark.parametrize("ldso", HOST_LDSO, ids=lambda p: p.name)
def test_system_dirs_match_ld_so_help(ldso: Path) -> None:
    expected = _help_dirs(ldso)
    if not expected:
        pytest.skip("this ld.so has no --help listing")
    defaults = ldso_defaults(ldso.read_bytes())
    assert defaults is not None and defaults.system_dirs == expected


def test_lib_matches_what_ld_so_expands(tmp_path: Path) -> None:
    ldso = Path("/lib64/ld-linux-x86-64.so.2")
    if not ldso.exists():
        pytest.skip("no x86_64 ld.so")
    (tmp_path / "gone.c").write_text("int gone(void) { return 1; }\n")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "gone.c", "-o", "libgone.so"], cwd=tmp_path, check=True
    )
    subprocess.run(
        ["gcc", "main.c", "-o", "main", "-Wl,-rpath,/nowhere/$LIB", "-Wl,--no-as-needed",
         "-L.", "-lgone"],
        cwd=tmp_path,
        check=True,
    )  # fmt: skip
    (tmp_path / "libgone.so").unlink()
    trace = subprocess.run(
        [str(ldso), "./main"],
        cwd=tmp_path,
        env={"LD_DEBUG": "libs", "LD_TRACE_LOADED_OBJECTS": "1"},
        capture_output=True,
        text=True,
    ).stderr
    runpath = next(line for line in trace.splitlines() if "RUNPATH from file" in line)
    base = runpath.split("search path=", 1)[1].split()[0].split(":")[-1]
    defaults = ldso_defaults(ldso.read_bytes())
    assert defaults is not None and base == f"/nowhere/{defaults.lib}"


def test_corpus_loaders(corpus_dir: Path) -> None:
    seen = 0
    for image in ("deb11", "deb12-base"):
        verdict = json.loads((corpus_dir / "verdicts" / f"{image}.json").read_text())
        blob = corpus_dir / "oci" / "blobs" / "sha256" / verdict["layers"][0]["layer"][7:]
        with tarfile.open(blob, "r:gz") as tf:
            for member in tf:
                name = member.name.rsplit("/", 1)[-1]
                fh = tf.extractfile(member) if member.isreg() and is_ldso_name(name) else None
                if fh is None:
                    continue
                facts = parse_elf(fh.read(), "/" + member.name)
                assert facts.ldso is not None, member.name
                assert facts.ldso.system_dirs == DEBIAN_X86_64
                assert facts.ldso.lib == "lib/x86_64-linux-gnu"
                seen += 1
    assert seen == 2  # deb11's ld-2.31.so, deb12's ld-linux-x86-64.so.2


def test_names() -> None:
    for name in ("ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux-aarch64.so.1", "ld64.so.2"):
        assert is_ldso_name(name)
    assert is_ldso_name("ld-2.31.so") and is_ldso_name("ld.so.1")
    assert not is_ldso_name("libc.so.6") and not is_ldso_name("ld-musl-x86_64.so.1")
    assert not is_ldso_name("ldconfig") and not is_ldso_name("old-linux.so.2")


def test_only_loader_files_carry_defaults() -> None:
    ldso = Path("/lib64/ld-linux-x86-64.so.2")
    if not ldso.exists():
        pytest.skip("no x86_64 ld.so")
    data = ldso.read_bytes()
    assert parse_elf(data, "/usr/lib64/ld-linux-x86-64.so.2").ldso is not None
    assert parse_elf(data, "/usr/lib64/libfoo.so").ldso is None


def test_fallback_when_strings_are_absent() -> None:
    ldso = Path("/lib64/ld-linux-x86-64.so.2")
    if not ldso.exists():
        pytest.skip("no x86_64 ld.so")
    data = ldso.read_bytes()
    blank = re.sub(rb"/(?:usr/)?lib[\x21-\x7e]*/\x00", lambda m: b"x" * len(m.group()), data)
    defaults = ldso_defaults(blank)
    assert defaults is not None
    assert (defaults.system_dirs, defaults.lib) == (("/lib64/", "/usr/lib64/"), "lib64")
    assert ldso_defaults(b"not an ELF file") is None


def test_the_glibc_release_comes_from_the_banner() -> None:
    """ld.so's banner ("stable release version 2.36.") decides whether the legacy hwcaps
    subdirectories (removed in glibc 2.37) are searched."""
    host = ldso_defaults(Path("/lib64/ld-linux-x86-64.so.2").read_bytes())
    banner = subprocess.run(
        ["/lib64/ld-linux-x86-64.so.2", "--version"], capture_output=True, text=True, check=True
    ).stdout
    major, minor = banner.split("release version ", 1)[1].split(".")[:2]
    assert host is not None and host.version == (int(major), int(minor))
    assert ldso_defaults(b"\x7fELF" + bytes(60)) is not None
    assert ldso_defaults(b"\x7fELF" + bytes(60)).version is None  # type: ignore[union-attr]
