"""What varies by C library is one interface (issue 8): every LibC has its implementation,
and each interpreter is owned by exactly the loader it names."""

from __future__ import annotations

from imagescan.loader.libc import LoaderCheck
from imagescan.loader.model import LibC
from imagescan.loader.registry import C_LIBRARIES, c_library, c_library_for
from imagescan.machines import by_oci


def test_every_c_library_has_its_implementation() -> None:
    assert set(C_LIBRARIES) == set(LibC)
    for libc, lib in C_LIBRARIES.items():
        assert lib.libc is libc
        assert c_library(libc) is lib


def test_interpreters_name_their_loader() -> None:
    assert c_library_for("/lib/ld-musl-x86_64.so.1").libc is LibC.MUSL
    assert c_library_for("/lib/ld-musl-aarch64.so.1").libc is LibC.MUSL
    assert c_library_for("/lib64/ld-linux-x86-64.so.2").libc is LibC.GLIBC
    assert c_library_for("/opt/odd/ld.so").libc is LibC.GLIBC


def test_what_each_loader_checks_and_how_it_binds() -> None:
    """glibc: dl-version.c, DT_RELR, ld.so.cache, NSS; lazy PLT binding, version names.
    musl: none of those; every relocation at start, version names ignored (find_sym2)."""
    glibc, musl = c_library(LibC.GLIBC), c_library(LibC.MUSL)
    assert glibc.checks == frozenset(LoaderCheck)
    assert musl.checks == frozenset()
    assert (glibc.binding.versions, glibc.binding.lazy) == (True, True)
    assert (musl.binding.versions, musl.binding.lazy) == (False, False)


def test_default_loader_paths_come_from_the_machines_table() -> None:
    arm64 = by_oci("arm64")
    assert arm64 is not None
    assert c_library(LibC.GLIBC).default_loaders(arm64) == ("/lib/ld-linux-aarch64.so.1",)
    assert c_library(LibC.MUSL).default_loaders(arm64) == ("/lib/ld-musl-aarch64.so.1",)
