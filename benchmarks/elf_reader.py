"""Symbols per second: imagescan's struct-based reader against pyelftools on host libraries.

    python benchmarks/elf_reader.py [FILE...]

pyelftools is the floor (about 9,000 symbols/s); the reader must stay above 100,000/s.
pyelftools reads the dynamic symbols with their versym entries; the reader's time is a whole
parse_elf (symbols, versions, relocations, dynamic section, strings), so the ratio is modest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from imagescan.elf.reader import parse_elf

DEFAULT_FILES = (
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    "/usr/lib/x86_64-linux-gnu/libperl.so.5.36",
    "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
)


def _pyelftools(path: Path) -> int:
    """Symbols read by pyelftools: dynsym entries and their versym values."""
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        dynsym = elf.get_section_by_name(".dynsym")
        versym = elf.get_section_by_name(".gnu.version")
        assert isinstance(dynsym, SymbolTableSection)
        count = 0
        for i, sym in enumerate(dynsym.iter_symbols()):
            _ = (sym.name, sym["st_info"], sym["st_shndx"], sym["st_value"])
            if isinstance(versym, GNUVerSymSection):
                _ = versym.get_symbol(i)["ndx"]
            count += 1
    return count


def _dynsym_count(path: Path) -> int:
    with path.open("rb") as fh:
        section = ELFFile(fh).get_section_by_name(".dynsym")
        return section.num_symbols() if isinstance(section, SymbolTableSection) else 0


def _rate(read: Callable[[Path], object], path: Path, symbols: int, repeat: int) -> float:
    """Dynamic symbols per second, best of `repeat` runs (the host is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        read(path)
        best = min(best, time.perf_counter() - start)
    return symbols / best


def main(argv: list[str]) -> int:
    files = [Path(p) for p in (argv or DEFAULT_FILES) if Path(p).exists()]
    print(f"{'file':32} {'dynsym':>7} {'reader sym/s':>13} {'pyelftools sym/s':>17} {'x':>6}")
    for path in files:
        symbols = _dynsym_count(path)
        fast = _rate(lambda p: parse_elf(p.read_bytes(), str(p)), path, symbols, 20)
        slow = _rate(_pyelftools, path, symbols, 2)
        print(f"{path.name:32} {symbols:7d} {fast:13,.0f} {slow:17,.0f} {fast / slow:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
