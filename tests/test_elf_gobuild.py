"""imagescan.elf.gobuild: build info of real `go build` outputs, compared with `go version -m`;
the pre-1.18 pointer layout on synthetic bytes; damaged build info gives None."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from imagescan.elf.gobuild import BUILDINFO_MAGIC, parse_go_buildinfo
from imagescan.elf.model import FileKind, GoBuildInfo
from imagescan.elf.reader import parse_elf

GO_SRC = Path(__file__).parent / "fixtures" / "elf" / "go"
# name -> (source dir, extra go build args, CGO_ENABLED)
RECIPES = {
    "static": ("hello", [], "0"),
    "stripped": ("hello", ["-ldflags=-s -w"], "0"),
    "cgo": ("cgo", [], "1"),
    "cgo-stripped": ("cgo", ["-ldflags=-s -w"], "1"),
    "plugin.so": ("plugin", ["-buildmode=plugin"], "1"),
    "cshared.so": ("cshared", ["-buildmode=c-shared"], "1"),
}


@pytest.fixture(scope="session")
def go_built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`go build` of a fixture program, once per session, offline, cache in a tmp dir."""
    if shutil.which("go") is None:
        pytest.skip("go not installed")
    out = tmp_path_factory.mktemp("go")
    env = dict(
        os.environ,
        GOFLAGS="-mod=mod -buildvcs=false",
        GOTOOLCHAIN="local",
        GOCACHE=str(out / "cache"),
        GOPROXY="off",
    )
    cache: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in cache:
            src, args, cgo = RECIPES[name]
            target = out / name
            subprocess.run(
                ["go", "build", *args, "-o", str(target), "."],
                cwd=GO_SRC / src,
                env={**env, "CGO_ENABLED": cgo},
                check=True,
                capture_output=True,
            )
            cache[name] = target
        return cache[name]

    return build


def _go_version_m(path: Path) -> dict[str, list[str]]:
    """`go version -m` output: first word of each line -> the rest."""
    out = subprocess.run(
        ["go", "version", "-m", str(path)], check=True, capture_output=True, text=True
    ).stdout
    lines: dict[str, list[str]] = {"version": [out.split(":", 1)[1].split()[0]]}
    for line in out.splitlines()[1:]:
        key, _, rest = line.strip().partition("\t")
        lines.setdefault(key, []).append(rest)
    return lines


@pytest.mark.parametrize("name", ["static", "stripped", "cgo", "cgo-stripped"])
def test_matches_go_version_m(go_built: Callable[[str], Path], name: str) -> None:
    path = go_built(name)
    facts = parse_elf(path.read_bytes(), str(path))
    expected = _go_version_m(path)
    assert facts.go is not None
    assert facts.go.go_version == expected["version"][0]
    assert facts.go.main_module == expected["mod"][0].split("\t")[0]
    assert [f"{k}={v}" for k, v in facts.go.settings] == expected["build"]
    assert facts.go.cgo_enabled is (RECIPES[name][2] == "1")
    assert facts.go.stripped is ("stripped" in name)


def test_c_shared_library(go_built: Callable[[str], Path]) -> None:
    # `go version -m` refuses shared objects ("not executable file"); compare with `go env`.
    goversion = subprocess.run(
        ["go", "env", "GOVERSION"], check=True, capture_output=True, text=True
    ).stdout.strip()
    facts = parse_elf(go_built("cshared.so").read_bytes(), "libcshared.so")
    assert facts.go is not None and facts.go.go_version == goversion
    assert facts.go.main_module == "example.com/cshared" and facts.go.cgo_enabled
    assert "Add" in facts.defined


def test_kinds_of_go_binaries(go_built: Callable[[str], Path]) -> None:
    kinds = {
        name: parse_elf(go_built(name).read_bytes(), name).kind
        for name in ("static", "stripped", "cgo", "cshared.so")
    }
    assert kinds == {
        "static": FileKind.STATIC_EXEC,
        "stripped": FileKind.STATIC_EXEC,
        "cgo": FileKind.EXEC,
        "cshared.so": FileKind.SHARED,
    }


def test_plugin_has_no_build_info_but_parses(go_built: Callable[[str], Path]) -> None:
    facts = parse_elf(go_built("plugin.so").read_bytes(), "plugin.so")
    assert facts.go is None  # Go writes no .go.buildinfo into plugins
    assert facts.kind is FileKind.SHARED and "libc.so.6" in facts.needed


def test_found_without_section_headers(go_built: Callable[[str], Path]) -> None:
    data = go_built("cgo").read_bytes()
    no_sections = data[:0x28] + b"\0" * 8 + data[0x30:0x3C] + b"\0" * 4 + data[0x40:]
    with_sections = parse_elf(data, "cgo").go
    found = parse_elf(no_sections, "cgo").go
    assert with_sections is not None and found is not None
    assert found.go_version == with_sections.go_version
    assert found.settings == with_sections.settings and found.stripped  # no .symtab left


def _old_layout(big_endian: bool) -> tuple[bytes, tuple[int, int, int, bool]]:
    """A Go < 1.18 data segment at vaddr 0x1000: header, pointers, string headers, text."""
    order = ">" if big_endian else "<"
    version, modinfo = b"go1.16.15", b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"
    modinfo += b"path\tex.com/old\nmod\tex.com/old\tv1.2.3\th1:x=\n"
    modinfo += b"dep\tgolang.org/x/sys\tv0.1.0\th1:y=\n=>\t../sys\t\t\n"
    modinfo += b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
    base = 0x1000
    seg = bytearray(BUILDINFO_MAGIC + bytes([8, 1 if big_endian else 0]))
    seg += struct.pack(order + "QQ", base + 32, base + 48)  # -> string headers
    seg += struct.pack(order + "QQ", base + 64, len(version))
    seg += struct.pack(order + "QQ", base + 64 + len(version), len(modinfo))
    seg += version + modinfo
    return bytes(seg), (base, 0, len(seg), True)


@pytest.mark.parametrize("big_endian", [False, True])
def test_pointer_layout_before_go_1_18(big_endian: bool) -> None:
    data, segment = _old_layout(big_endian)
    info = parse_go_buildinfo(data, section=None, segments=[segment], stripped=True)
    assert info is not None
    assert (info.go_version, info.main_module, info.main_version) == (
        "go1.16.15",
        "ex.com/old",
        "v1.2.3",
    )
    assert info.deps == (("golang.org/x/sys", "../sys"),)
    assert info.build_mode is None and info.cgo_enabled is None


def test_damaged_build_info_is_none(go_built: Callable[[str], Path]) -> None:
    data, segment = _old_layout(False)
    for cut in range(0, len(data), 7):
        # every prefix: pointers past the end, truncated string headers, missing text
        shorter = (segment[0], 0, cut, True)
        info = parse_go_buildinfo(data[:cut], section=None, segments=[shorter], stripped=True)
        assert info is None or info.go_version.startswith("go")
    inline = go_built("static").read_bytes()
    start = inline.find(BUILDINFO_MAGIC)
    huge_length = inline[: start + 32] + b"\xff" * 10 + inline[start + 42 :]
    assert parse_elf(huge_length, "static").go is None
    assert parse_go_buildinfo(b"", section=(0, 64), segments=[], stripped=False) is None


def test_corpus_go_image(corpus_dir: Path) -> None:
    verdict = json.loads((corpus_dir / "verdicts" / "go.json").read_text())
    blob = corpus_dir / "oci" / "blobs" / "sha256" / verdict["layers"][-1]["layer"][7:]
    found: dict[str, GoBuildInfo | None] = {}
    with tarfile.open(blob, "r:gz") as tf:
        for member in tf:
            fh = tf.extractfile(member) if member.isreg() else None
            if fh is not None and (data := fh.read())[:4] == b"\x7fELF":
                found[member.name.rsplit("/", 1)[-1]] = parse_elf(data, member.name).go
    static, stripped = found["go-static"], found["go-static-stripped"]
    assert static is not None and stripped is not None and found["go-cgo"] is not None
    assert (static.go_version, static.cgo_enabled, static.stripped) == ("go1.19.8", False, False)
    assert (stripped.cgo_enabled, stripped.stripped) == (False, True)
    assert found["go-cgo"].cgo_enabled and found["goplugin.so"] is None
