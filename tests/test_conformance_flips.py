"""Byte-flipped copies of a real library, judged by imagescan and by the real loader (issue 9).

One library (tests/fixtures/conformance/common/lib.c) is compiled, then one copy per flipped
header byte -- every byte of the ELF header (two flips each) and the low, second, third and
sixth byte of every program header field -- each in its own directory next to a copy of a
program that needs it (RUNPATH $ORIGIN/../lib). The oracle (shared/corpus/oracle.py, the
image's own ld.so in trace mode) judges every program and every copy; imagescan must reach the
same status for each, and above all never say ok where the loader refuses.

Where the loader itself crashes (a signal while it relocates garbage) there is no verdict to
agree with; those flips are counted and left out.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.conformance_cases import PATH
from tests.imagebuilder import Dir, File, ImageSpec, Member, glibc_base, write_oci_dir
from tests.test_conformance import ORACLE, run_imagescan, run_oracle, start

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conformance"
TAG = "flips"
E_PHENTSIZE = (0x36, 0x37)
PHDR_FIELDS = (0, 4, 8, 16, 24, 32, 40, 48)  # p_type p_flags p_offset p_vaddr ... p_align
# imagescan's status -> the oracle's word for it
ORACLE_WORDS = {"broken-lazy": "broken_lazy", "foreign-arch": "foreign_arch"}
ORACLE_WORDS |= {"interpreter-missing": "interp_missing", "absent": "skipped"}


@dataclass(frozen=True)
class Flip:
    """One copy: byte `offset` XORed with `mask`."""

    offset: int
    mask: int

    @property
    def name(self) -> str:
        return f"{self.offset:04x}-{self.mask:02x}"


def flips(library: bytes) -> Iterator[Flip]:
    """Every Ehdr byte (x^1, x^0x80); bytes 0, 1, 2 and 5 of every Phdr field (x^1)."""
    for offset in range(64):
        yield Flip(offset, 0x01)
        if offset not in (0x27, 0x2F):  # e_phoff, e_shoff past 2**63 stop the oracle itself
            yield Flip(offset, 0x80)
    (phoff,) = struct.unpack_from("<Q", library, 0x20)
    (phnum,) = struct.unpack_from("<H", library, 0x38)
    for index in range(phnum):
        for field in PHDR_FIELDS:
            for byte in (0, 1, 2, 5):
                if field in (0, 4) and byte == 5:
                    continue  # 4-byte fields
                yield Flip(phoff + index * 56 + field + byte, 0x01)


def _compile(out: Path, *args: str) -> None:
    cmd = ["gcc", *args, "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _build(work: Path) -> tuple[bytes, bytes]:
    """The library and a program that needs it through RUNPATH $ORIGIN/../lib."""
    lib, app = work / "libflip.so.1", work / "app"
    common = FIXTURES / "common"
    _compile(
        lib, str(common / "lib.c"), "-shared", "-fPIC", "-DFN=flip_func", "-Wl,-soname,libflip.so.1"
    )
    _compile(
        app,
        str(common / "main.c"),
        "-DCALL1=flip_func",
        "-Wl,--no-as-needed",
        "-Wl,-z,lazy",
        "-Wl,--enable-new-dtags",
        "-Wl,-rpath,$ORIGIN/../lib",
        str(lib),
    )
    return lib.read_bytes(), app.read_bytes()


def _members(library: bytes, program: bytes, chosen: list[Flip]) -> list[Member]:
    members: list[Member] = [Dir("/opt"), Dir("/opt/flip")]
    for flip in chosen:
        data = bytearray(library)
        data[flip.offset] ^= flip.mask
        top = f"/opt/flip/{flip.name}"
        members += [Dir(top), Dir(f"{top}/bin"), Dir(f"{top}/lib")]
        members.append(File(f"{top}/bin/app", program, 0o755))
        members.append(File(f"{top}/lib/libflip.so.1", bytes(data), 0o755))
    return members


@dataclass(frozen=True)
class Judged:
    """Per flipped copy: the oracle's and imagescan's statuses (program, library)."""

    flip: Flip
    oracle: tuple[str, str]
    imagescan: tuple[str, str]
    crashed: bool
    # The loader disagrees with itself: the program dies of the library, which alone loads,
    # or its verdict changes from one run to the next (a segment or RELRO page mapped over
    # whatever lies there: address-space luck).
    layout_dependent: bool = False


def _crashed(entry: Mapping[str, Any]) -> bool:
    rc = entry.get("trace_rc") or {}
    return any(isinstance(v, int) and v < 0 for v in rc.values())


def _word(status: str) -> str:
    return ORACLE_WORDS.get(status, status)


def _oracle_status(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "skipped"  # not an ELF file to the oracle
    if entry.get("status") == "error":
        return "skipped"  # the oracle's own reader cannot parse it: ld.so never ran
    return str(entry["status"])


def _started(root: Path, program: str) -> str | None:
    """A real start's verdict where it overrules the trace: "broken" when the loader (or the
    program, in code the trace never runs) dies of a signal."""
    status, _ = start(root, program, (PATH,), None)
    return "broken" if status < 0 else None


def judge(layout: Path, chosen: list[Flip], work: Path) -> list[Judged]:
    """Each flip judged by the oracle (its files in `work`) and by imagescan."""
    elves = run_oracle(layout, TAG, work)["elves"]
    root = work / f"rootfs-{TAG}"
    report = run_imagescan(layout, TAG)
    files = {f["path"]: f["status"] for f in report["files"]}
    out = []
    for flip in chosen:
        app, lib = f"/opt/flip/{flip.name}/bin/app", f"/opt/flip/{flip.name}/lib/libflip.so.1"
        entries = (elves.get(app), elves.get(lib))
        mine = tuple(_word(files.get(p, "absent")) for p in (app, lib))
        oracle = (_oracle_status(entries[0]), _oracle_status(entries[1]))
        if flip.offset in E_PHENTSIZE:
            # the oracle's own reader strides by the bad e_phentsize and calls the copy a
            # static PIE; ld.so and the kernel refuse it. Only the program is compared.
            oracle = (oracle[0], "skipped")
        crashed = any(e is not None and _crashed(e) for e in entries)
        luck = oracle == ("broken", "ok")
        if _started(root, app) == "broken":
            # the trace never runs the code a real start dies in: the start judges the
            # program, and nothing judges the library copy on its own
            oracle, crashed, luck = ("broken", mine[1]), False, False
        out.append(Judged(flip, oracle, (mine[0], mine[1]), crashed, luck))
    return out


def _unstable_marked(first: list[Judged], again: list[Judged]) -> list[Judged]:
    """The first run's judgings, each flip whose real-loader verdict changed in the second
    run marked layout-dependent: the loader disagrees with itself from one start to the
    next (ASLR; flip 00c5-01 gave program ok and library broken once, broken and broken on
    every other run)."""
    pairs = zip(first, again, strict=True)
    return [r if r.oracle == a.oracle else replace(r, layout_dependent=True) for r, a in pairs]


def _usable() -> str | None:
    if os.geteuid() != 0 or shutil.which("chroot") is None or not ORACLE.exists():
        return "the oracle needs root, chroot and shared/corpus/oracle.py"
    return None


@pytest.mark.oracle
def test_flipped_headers_agree_with_the_real_loader(tmp_path: Path) -> None:
    reason = _usable()
    if reason:
        pytest.skip(reason)
    library, program = _build(tmp_path)
    chosen = list(flips(library))
    spec = ImageSpec(layers=[glibc_base(), _members(library, program, chosen)])
    layout = write_oci_dir(tmp_path / "oci", {TAG: spec})
    results = judge(layout, chosen, layout.parent)
    if any(r.oracle != r.imagescan for r in results if not (r.crashed or r.layout_dependent)):
        (tmp_path / "again").mkdir()
        results = _unstable_marked(results, judge(layout, chosen, tmp_path / "again"))
    judged = [r for r in results if not (r.crashed or r.layout_dependent)]
    luck = sum(r.layout_dependent and not r.crashed for r in results)
    differ = [r for r in judged if r.oracle != r.imagescan]
    false_ok = [
        r for r in differ if any(i == "ok" != o for i, o in zip(r.imagescan, r.oracle, strict=True))
    ]
    crashed = sum(r.crashed for r in results)
    summary = f"{len(judged) - len(differ)}/{len(judged)} agree; the loader crashed on "
    summary += f"{crashed}, and on {luck} its verdict depends on the address-space layout"
    print(summary)
    lines = [f"{r.flip.name}: oracle {r.oracle} imagescan {r.imagescan}" for r in differ]
    # A loader that dies of a signal does not start the program: never ok for those.
    crash_ok = [r for r in results if r.crashed and "ok" in r.imagescan]
    lines += [f"{r.flip.name}: the loader crashed, imagescan {r.imagescan}" for r in crash_ok]
    assert not false_ok and not crash_ok, summary + "\n" + "\n".join(lines)
    assert not differ, summary + "\n" + "\n".join(lines)
