"""imagescan.elf.symtab: undefined references are shared by value, looked up by name and
fields before any object is made (issue 14), with a bound on a name's variants (issue 15)."""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time

from imagescan.elf import symtab
from imagescan.elf.model import UndefinedSymbol, VersionNeed
from imagescan.elf.symtab import STB_GLOBAL, STB_WEAK, STT_FUNC, STT_OBJECT, _reference, _RelocUse

NEEDS = {
    2: VersionNeed("libc.so.6", "GLIBC_2.2.5", 0x09691A75),
    3: VersionNeed("libc.so.6", "GLIBC_2.34", 0x069691B4),
    4: VersionNeed("libm.so.6", "GLIBC_2.34", 0x069691B4),
}


def _fields() -> itertools.product[tuple[object, ...]]:
    return itertools.product(
        (0, 1, 2, 3, 4),  # versym: none, unversioned, three needs (two of one version name)
        (STB_GLOBAL, STB_WEAK),
        (STT_FUNC, STT_OBJECT),
        (False, True),  # bound at start
        (False, True),  # lazy
        (False, True),  # copy
        (False, True),  # canonical
    )


def _expected(versym: int, bind: int, stype: int, flags: tuple[bool, ...]) -> UndefinedSymbol:
    need = NEEDS.get(versym)
    bound, lazy, copy, canonical = flags
    return UndefinedSymbol(
        "printf",
        need.name if need else None,
        need.file if need else None,
        bind == STB_WEAK,
        bound,
        lazy,
        stype,
        copy,
        canonical,
    )


def _made(versym: int, bind: int, stype: int, flags: tuple[bool, ...]) -> UndefinedSymbol:
    bound, lazy, copy, canonical = flags
    index = 7
    use = _RelocUse(
        frozenset({index} if bound else ()),
        frozenset({index} if lazy else ()),
        frozenset({index} if copy else ()),
    )
    return _reference("printf", index, bind, stype, versym, NEEDS, use, canonical)


def _shared(ref: UndefinedSymbol) -> UndefinedSymbol:
    """The shared object of `ref`'s value, made from its fields as the store's decoder does."""
    return symtab.reference(*(getattr(ref, f.name) for f in dataclasses.fields(ref)))


def test_a_new_reference_keeps_its_texts_interned() -> None:
    symtab._BY_NAME.clear()
    texts = ["".join(t) for t in (("mal", "loc"), ("GLIBC_", "2.2.5"), ("libc", ".so.6"))]
    made = symtab.reference(*texts, False, False, False, STT_FUNC, False, False)
    assert made.name is sys.intern("malloc")
    assert made.version is sys.intern("GLIBC_2.2.5")
    assert made.version_file is sys.intern("libc.so.6")


def test_every_variant_of_a_name_is_its_own_value_and_shared() -> None:
    """Each field tells two references apart; equal ones are one object, in any order."""
    symtab._BY_NAME.clear()
    symtab._MAX_VARIANTS, saved = 1000, symtab._MAX_VARIANTS
    try:
        combos = list(_fields())
        first = {}
        for versym, bind, stype, *flags in combos:
            made = _made(versym, bind, stype, tuple(flags))  # type: ignore[arg-type]
            assert made == _expected(versym, bind, stype, tuple(flags))  # type: ignore[arg-type]
            first[made] = made
        assert len(first) == 4 * 2 * 2 * 16  # versym 0 and 1 are both unversioned
        for versym, bind, stype, *flags in reversed(combos):
            made = _made(versym, bind, stype, tuple(flags))  # type: ignore[arg-type]
            assert made is first[made]
            assert _shared(_expected(versym, bind, stype, tuple(flags))) is made  # type: ignore[arg-type]
    finally:
        symtab._MAX_VARIANTS = saved


def test_reference_returns_the_first_equal_object() -> None:
    symtab._BY_NAME.clear()
    one = _shared(UndefinedSymbol("malloc", "GLIBC_2.2.5", "libc.so.6"))
    again = _shared(UndefinedSymbol("malloc", "GLIBC_2.2.5", "libc.so.6"))
    other = _shared(UndefinedSymbol("malloc", "GLIBC_2.2.5", "libc.so.6", True))
    assert again is one
    assert other is not one and other == UndefinedSymbol("malloc", "GLIBC_2.2.5", "libc.so.6", True)


def test_a_name_in_thousands_of_versions_stays_linear() -> None:
    """A hostile table: one name in 20,000 versions. Only the first few variants are kept,
    so each lookup compares a bounded number of them; every value is still right."""
    symtab._BY_NAME.clear()
    started = time.process_time()
    made = [_shared(UndefinedSymbol("f", f"V{i}", "libx.so")) for i in range(20_000)]
    assert time.process_time() - started < 5  # quadratic would be 2e8 comparisons
    assert [ref.version for ref in made] == [f"V{i}" for i in range(20_000)]
    assert len(symtab._named("f")) == symtab._MAX_VARIANTS


def test_the_table_starts_again_past_its_bound() -> None:
    symtab._BY_NAME.clear()
    symtab._MAX_SHARED, saved = 10, symtab._MAX_SHARED
    try:
        for i in range(25):
            _shared(UndefinedSymbol(f"name{i}"))
        assert len(symtab._BY_NAME) <= 10
    finally:
        symtab._MAX_SHARED = saved


def test_kept_names_are_one_object_across_files() -> None:
    """Memory (issue 14): a name that several files define, or one defines and another
    references, is one string object; the string table itself is not interned."""
    from pathlib import Path

    from imagescan.elf.reader import parse_elf

    libc, libm = (
        parse_elf(Path(path).read_bytes(), path)
        for path in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6")
    )
    both = libc.defined.keys() & libm.defined.keys()  # _end, __bss_start, ... and more
    assert both
    kept = {id(name) for name in libc.defined}
    assert all(id(name) in kept for name in libm.defined if name in both)
    defined_by_libc = {name: name for name in libc.defined}
    referenced = [ref.name for ref in libm.undefined if ref.name in defined_by_libc]
    assert referenced
    assert all(name is defined_by_libc[name] for name in referenced)
