"""glibc-hwcaps names and legacy subdirectories, checked against the host's ld.so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imagescan.errors import UsageError
from imagescan.loader.hwcaps import hwcaps_subdirs, legacy_subdirs

HOST_LDSO = Path("/lib64/ld-linux-x86-64.so.2")
FIXTURES = Path(__file__).parent / "fixtures" / "ldcache"


def _ld_so_help() -> str:
    if not HOST_LDSO.exists():
        pytest.skip("needs an x86_64 glibc host")
    return subprocess.run([HOST_LDSO, "--help"], capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("x86-64-v4", ("x86-64-v4", "x86-64-v3", "x86-64-v2")),
        ("x86-64-v3", ("x86-64-v3", "x86-64-v2")),
        ("v2", ("x86-64-v2",)),
        ("x86-64", ()),
        ("v1", ()),
        ("", ()),
    ],
)
def test_x86_64_levels(level: str, expected: tuple[str, ...]) -> None:
    assert hwcaps_subdirs(level) == expected


def test_other_architectures() -> None:
    assert hwcaps_subdirs("power10", 21) == ("power10", "power9")
    assert hwcaps_subdirs("power8", 21) == ()
    assert hwcaps_subdirs("z15", 22) == ("z15", "z14", "z13")
    assert hwcaps_subdirs("baseline", 183) == ()


@pytest.mark.parametrize(("level", "machine"), [("x86-64-v5", 62), ("power9", 62), ("v3", 183)])
def test_unknown_level_is_a_usage_error(level: str, machine: int) -> None:
    with pytest.raises(UsageError, match="unknown CPU level"):
        hwcaps_subdirs(level, machine)


def test_host_level_matches_ld_so_help() -> None:
    supported = re.findall(r"^\s+(x86-64-v\d) \(supported, searched\)$", _ld_so_help(), re.M)
    best = supported[0] if supported else "x86-64"
    assert hwcaps_subdirs(best) == tuple(supported)


def test_legacy_default_is_debian_12_plain_x86_64() -> None:
    assert legacy_subdirs() == (
        "tls/x86_64/x86_64",
        "tls/x86_64",
        "tls/x86_64",
        "tls",
        "x86_64/x86_64",
        "x86_64",
        "x86_64",
    )


def test_legacy_without_platform() -> None:
    assert legacy_subdirs(None, ()) == ("tls",)
    assert legacy_subdirs(None, ("x86_64",)) == ("tls/x86_64", "tls", "x86_64")
    assert legacy_subdirs("haswell", ("x86_64", "avx512_1")) == (
        "tls/haswell/avx512_1/x86_64",
        "tls/haswell/avx512_1",
        "tls/haswell/x86_64",
        "tls/haswell",
        "tls/avx512_1/x86_64",
        "tls/avx512_1",
        "tls/x86_64",
        "tls",
        "haswell/avx512_1/x86_64",
        "haswell/avx512_1",
        "haswell/x86_64",
        "haswell",
        "avx512_1/x86_64",
        "avx512_1",
        "x86_64",
    )


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_legacy_subdirs_match_ld_debug_on_this_host(tmp_path: Path) -> None:
    help_text = _ld_so_help()
    if "Legacy HWCAP subdirectories" not in help_text:
        pytest.skip("the host's glibc has no legacy hwcaps (>= 2.37)")
    # A list, not a dict: the platform and a hwcap may have the same name (x86_64).
    legacy = re.findall(r"^\s+(\S+) \((AT_PLATFORM; )?supported, searched\)$", help_text, re.M)
    platform = next((name for name, how in legacy if how), None)
    # Bit order of HWCAP_IMPORTANT on x86_64 (glibc 2.36 sysdeps/x86/dl-hwcap.h).
    hwcaps = {name for name, how in legacy if not how}
    names = tuple(n for n in ("x86_64", "avx512_1") if n in hwcaps)
    prog = tmp_path / "prog"
    runpath = tmp_path / "rp"
    subprocess.run(
        ["gcc", "-o", prog, FIXTURES / "main.c", f"-Wl,-rpath,{runpath}"],
        check=True,
        capture_output=True,
    )
    done = subprocess.run([prog], env={"LD_DEBUG": "libs"}, capture_output=True, text=True)
    search = re.search(r"search path=(\S+)\s+\(RUNPATH", done.stderr)
    assert search is not None, done.stderr
    subdirs = [p[len(str(runpath)) + 1 :] for p in search.group(1).split(":")]
    glibc_hwcaps = [s for s in subdirs if s.startswith("glibc-hwcaps/")]
    assert glibc_hwcaps  # the legacy part follows the glibc-hwcaps part, then the base dir
    assert subdirs == [*glibc_hwcaps, *legacy_subdirs(platform, names), ""]
