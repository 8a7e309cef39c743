"""checks.symbols: the memo of binding across processes (the rules themselves are pinned in
tests/test_checks_rules.py and judged by the real loader in tests/test_conformance.py)."""

from __future__ import annotations

from imagescan.checks.symbols import SymbolChecker, undefined_symbol_findings
from imagescan.elf.model import ElfFacts
from imagescan.loader.model import LoadedObject, Process, Resolution
from tests.loader_factories import library, program, ref

LIBC = "/usr/lib/libc.so.6"


def _process(*objects: tuple[str, ElfFacts, int | None]) -> Process:
    """Objects (path, facts, loader index) in load order; each resolved by its loader."""
    loaded = tuple(
        LoadedObject(path, path, facts, (path.rsplit("/", 1)[-1],), loader)
        for path, facts, loader in objects
    )
    resolutions = tuple(
        Resolution(obj.loader, obj.names[0], (), index)
        for index, obj in enumerate(loaded)
        if obj.loader is not None
    )
    return Process(loaded, resolutions)


def _names(process: Process) -> list[str]:
    return [f.subject for f in undefined_symbol_findings(process, SymbolChecker())]


def test_a_library_bound_by_its_own_dependencies_is_known_bound_wherever_they_are() -> None:
    # libA needs libc, which defines its one reference; libB is in the process but unrelated.
    liba = library("libA.so.1", ["libc.so.6"], undefined=[ref("malloc")])
    process = _process(
        ("/usr/bin/exe", program(["libB.so.1", "libA.so.1"]), None),
        ("/usr/lib/libB.so.1", library("libB.so.1", defines=["other"]), 0),
        ("/usr/lib/libA.so.1", liba, 0),
        (LIBC, library("libc.so.6", defines=["malloc"]), 2),
    )
    checker = SymbolChecker()
    assert undefined_symbol_findings(process, checker) == []
    # Another process holding libA and libc, but neither exe nor libB, needs no new lookup.
    assert checker.bound(process.objects[2], frozenset({"/usr/lib/libA.so.1", LIBC}))
    assert not checker.bound(process.objects[2], frozenset({"/usr/lib/libA.so.1"}))


def test_a_reference_only_an_object_outside_its_dependencies_defines_is_bound() -> None:
    # An underlinked library: `hook` comes from the program (its global scope), which the
    # library does not need; the search tries its own dependencies first, then the rest.
    lib = library("libU.so.1", ["libc.so.6"], undefined=[ref("hook"), ref("malloc")])
    process = _process(
        ("/usr/bin/exe", program(["libU.so.1"], defines=["hook"]), None),
        ("/usr/lib/libU.so.1", lib, 0),
        (LIBC, library("libc.so.6", defines=["malloc"]), 1),
    )
    assert _names(process) == []


def test_what_no_object_defines_is_reported_once_in_reference_order() -> None:
    lib = library("libU.so.1", ["libc.so.6"], undefined=[ref("zeta"), ref("malloc"), ref("alpha")])
    process = _process(
        ("/usr/bin/exe", program(["libU.so.1"]), None),
        ("/usr/lib/libU.so.1", lib, 0),
        (LIBC, library("libc.so.6", defines=["malloc"]), 1),
    )
    assert _names(process) == ["zeta", "alpha"]
