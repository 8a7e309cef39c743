"""imagescan.elf.inspect: full export/import lists of gcc-built fixtures, against readelf."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from imagescan.elf.inspect import inspect_elf
from imagescan.errors import MalformedElf

FIXTURES = Path(__file__).parent / "fixtures" / "elf"


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspect")
    subprocess.run(
        ["gcc", "-O1", "-fPIC", "-shared", f"-Wl,--version-script={FIXTURES / 'libver.map'}",
         "-Wl,-soname,libver.so.1", "-Wl,--build-id", str(FIXTURES / "libver.c"),
         "-o", str(out / "libver.so")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        ["gcc", "-O1", str(FIXTURES / "usever.c"), "-L", str(out), "-l:libver.so", "-ldl",
         "-o", str(out / "use")],
        check=True,
    )  # fmt: skip
    return out


def test_exports_with_versions(libs: Path) -> None:
    result = inspect_elf((libs / "libver.so").read_bytes(), "/usr/lib/libver.so.1")
    foo = sorted((s.version, s.hidden) for s in result.exports if s.name == "foo")
    assert foo == [("V1", True), ("V2", False)]
    by_name = {s.name: s for s in result.exports}
    assert (by_name["counter"].type, by_name["counter"].size) == ("OBJECT", 4)
    assert by_name["tls_var"].type == "TLS" and by_name["weak_def"].binding == "WEAK"
    assert "hidden_fn" not in by_name
    assert result.facts.soname == "libver.so.1" and ".dynsym" in result.sections


def test_imports_and_build_id(libs: Path) -> None:
    path = libs / "use"
    result = inspect_elf(path.read_bytes(), str(path))
    by_name = {s.name: s for s in result.imports}
    assert (by_name["foo"].version, by_name["foo"].version_file) == ("V2", "libver.so.1")
    assert by_name["maybe_missing"].binding == "WEAK" and by_name["maybe_missing"].version is None
    notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    assert result.build_id == re.search(r"Build ID: (\w+)", notes).group(1)  # type: ignore[union-attr]


def test_section_stripped_file_still_lists_symbols(libs: Path) -> None:
    data = (libs / "libver.so").read_bytes()
    stripped = data[:0x28] + b"\0" * 8 + data[0x30:0x3C] + b"\0" * 4 + data[0x40:]
    result = inspect_elf(stripped, "libver.so")
    assert {s.name for s in result.exports} >= {"foo", "bar", "counter"}
    assert result.sections == () and result.build_id is not None


def test_malformed(libs: Path) -> None:
    with pytest.raises(MalformedElf):
        inspect_elf((libs / "libver.so").read_bytes()[:200], "libver.so")
