"""The machines table (issue 8): one row per architecture, read by every module."""

from __future__ import annotations

import pytest

from imagescan.elf import symtab as reader
from imagescan.loader.hwcaps import hwcaps_subdirs
from imagescan.machines import (
    CPU_MODELS,
    MACHINES,
    baseline_cpu,
    by_elf,
    by_oci,
    by_uname,
    find_cpu,
    machine_name,
)


def test_rows_are_told_apart_by_their_elf_header() -> None:
    keys = [(m.e_machine, m.elf_class, m.little_endian) for m in MACHINES]
    assert len(keys) == len(set(keys))
    for row in MACHINES:
        assert by_elf(row.e_machine, row.elf_class, row.little_endian) is row


def test_oci_and_uname_names_find_their_row() -> None:
    assert by_oci("amd64") is by_uname("x86_64") is by_elf(62, 64)
    assert by_oci("arm64") is by_uname("aarch64")
    assert by_oci("ppc64le") is by_elf(21, 64, True)
    assert by_oci("ppc64") is by_elf(21, 64, False)
    assert by_oci("s390x") is not None and not by_oci("s390x").little_endian  # type: ignore[union-attr]
    assert by_oci("mips64") is None


def test_the_reader_takes_its_relocation_numbers_from_the_table() -> None:
    """psABI values: R_X86_64_JUMP_SLOT 7, R_AARCH64_JUMP_SLOT 1026, R_390_COPY 9, ..."""
    assert reader.JUMP_SLOT[62] == 7 and reader.COPY[62] == 5
    assert reader.JUMP_SLOT[183] == 1026 and reader.COPY[183] == 1024
    assert reader.JUMP_SLOT[22] == 11 and reader.COPY[22] == 9
    assert reader.JUMP_SLOT[40] == 22 and reader.COPY[40] == 20


def test_names_in_reports() -> None:
    assert machine_name(62, 64) == "x86_64"
    assert machine_name(21, 64, False) == "ppc64"
    assert machine_name(21, 64, True) == "ppc64le"
    assert machine_name(8) == "8"  # no row: the number


@pytest.mark.parametrize("model", CPU_MODELS, ids=lambda m: m.name)
def test_every_cpu_model_names_a_level_its_machine_has(model: object) -> None:
    row = by_uname(model.machine)  # type: ignore[attr-defined]
    assert row is not None
    level = model.level  # type: ignore[attr-defined]
    assert level == "" or level in row.hwcaps
    if level:
        assert hwcaps_subdirs(level, row.e_machine, row.little_endian)[0] == level


def test_cpu_models_by_name_and_alias() -> None:
    x86 = by_oci("amd64")
    assert x86 is not None
    assert baseline_cpu(x86).name == "x86-64"
    assert find_cpu(x86, "v3") == find_cpu(x86, "zen3") == find_cpu(x86, "x86-64-v3")
    intel = find_cpu(x86, "skylake-avx512")
    assert intel is not None and intel.platform == "haswell" and "avx512_1" in intel.legacy_hwcaps
    amd = find_cpu(x86, "zen4")
    assert amd is not None and amd.platform == "x86_64" and "avx512_1" not in amd.legacy_hwcaps
    assert find_cpu(x86, "power9") is None
