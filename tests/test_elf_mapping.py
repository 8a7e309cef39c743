"""What the loader says when it maps a library's segments (imagescan.elf.mapping), on copies of
a library compiled here with one program header field changed. Each expected message is what
glibc 2.36's ld.so printed for the same change (tests/test_conformance_flips.py, root)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from imagescan.elf.mapping import (
    CODE_ZEROED,
    DYNAMIC_UNMAPPED,
    MAP_FAILED,
    NO_DYNAMIC,
    NO_LOADS,
    NOT_PAGE_ALIGNED,
    PAST_EOF,
    READ_FAILED,
    RELRO_FAILED,
    ZERO_FILL_FAILED,
)
from imagescan.elf.reader import parse_elf
from imagescan.loader.verify import library_problem, own_problem

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conformance"
PT_LOAD, PT_DYNAMIC, PT_GNU_RELRO = 1, 2, 0x6474E552
# Phdr64 field offsets
P_TYPE, P_FLAGS, P_OFFSET, P_VADDR, P_FILESZ, P_MEMSZ = 0, 4, 8, 16, 32, 40


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("mapping") / "libm.so.1"
    cmd = ["gcc", "-shared", "-fPIC", "-DFN=m_func", "-Wl,-soname,libm.so.1", "-o", str(out)]
    subprocess.run([*cmd, str(FIXTURES / "common" / "lib.c")], check=True)
    return out.read_bytes()


def _phdrs(data: bytes) -> list[tuple[int, int]]:
    """(file offset of the Phdr, p_type) in table order."""
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    (phnum,) = struct.unpack_from("<H", data, 0x38)
    return [
        (phoff + i * 56, struct.unpack_from("<I", data, phoff + i * 56)[0]) for i in range(phnum)
    ]


def _field(
    data: bytes, p_type: int, nth: int, field: int, change: int, *, xor: bool = False
) -> bytes:
    """A copy with the `nth` Phdr of `p_type` changed in one 8-byte field (or p_type/p_flags)."""
    at = [off for off, t in _phdrs(data) if t == p_type][nth] + field
    out = bytearray(data)
    fmt = "<I" if field in (P_TYPE, P_FLAGS) else "<Q"
    (old,) = struct.unpack_from(fmt, out, at)
    struct.pack_into(fmt, out, at, old ^ change if xor else change)
    return bytes(out)


def _problem(data: bytes) -> str | None:
    return parse_elf(data, "/lib/libm.so.1").map_problem


def test_the_library_itself_maps(library: bytes) -> None:
    facts = parse_elf(library, "/lib/libm.so.1")
    assert facts.map_problem is None and library_problem(facts) is None


def test_load_address_and_offset_not_congruent(library: bytes) -> None:
    assert _problem(_field(library, PT_LOAD, 1, P_OFFSET, 0x1, xor=True)) == NOT_PAGE_ALIGNED


def test_no_loads_and_no_dynamic(library: bytes) -> None:
    no_loads = library
    for _ in range(sum(t == PT_LOAD for _, t in _phdrs(library))):
        no_loads = _field(no_loads, PT_LOAD, 0, P_TYPE, 0)  # PT_NULL
    assert _problem(no_loads) == NO_LOADS
    assert _problem(_field(library, PT_DYNAMIC, 0, P_FILESZ, 0)) == NO_DYNAMIC


def test_segments_out_of_order_and_too_far(library: bytes) -> None:
    assert _problem(_field(library, PT_LOAD, 1, P_VADDR, 0x10000, xor=True)) == MAP_FAILED
    assert _problem(_field(library, PT_LOAD, 1, P_FILESZ, 1 << 40, xor=True)) == MAP_FAILED
    assert _problem(_field(library, PT_LOAD, 3, P_MEMSZ, 1 << 40, xor=True)) == ZERO_FILL_FAILED


def test_relro_outside_the_object(library: bytes) -> None:
    assert _problem(_field(library, PT_GNU_RELRO, 0, P_VADDR, 1 << 40, xor=True)) == RELRO_FAILED


def test_crashes_without_a_message(library: bytes) -> None:
    assert _problem(_field(library, PT_LOAD, 1, P_OFFSET, 0x100000, xor=True)) == PAST_EOF
    assert _problem(_field(library, PT_LOAD, 1, P_FILESZ, 0x10, xor=True)) == CODE_ZEROED
    assert _problem(_field(library, PT_DYNAMIC, 0, P_VADDR, 0x10000)) == DYNAMIC_UNMAPPED


def test_program_headers_past_the_end(library: bytes) -> None:
    out = bytearray(library)
    struct.pack_into("<Q", out, 0x20, len(library) - 8)  # e_phoff
    assert _problem(bytes(out)) == READ_FAILED


def test_an_executable_or_pie_is_no_library(library: bytes) -> None:
    exe = bytearray(library)
    struct.pack_into("<H", exe, 0x10, 2)  # ET_EXEC
    facts = parse_elf(bytes(exe), "/lib/libm.so.1")
    assert library_problem(facts) == "cannot dynamically load executable"
    assert own_problem(facts) is None  # `ld.so FILE` maps executables
