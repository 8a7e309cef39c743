"""imagescan.hints.context: which files define a symbol, the same whether the symbol is
one the report's findings name (looked up in one pass, issue 14) or any other."""

from __future__ import annotations

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.hints.context import HintContext
from imagescan.hints.model import ImageProvenance
from imagescan.image.model import ImageConfig
from imagescan.packages.model import PackageDb
from tests.loader_factories import EM_AARCH64, Tree, library, program


def _context(*named: str) -> HintContext:
    """An image where libraries, programs and a library of another machine define f and g;
    the report's one verdict has an undefined-symbol finding for each of `named`."""
    tree = Tree()
    tree.file("/usr/lib/libz.so.1", library("libz.so.1", defines=("f", "g")))
    tree.file("/opt/liba.so", library("liba.so", defines=("f",)))
    tree.file("/usr/lib/libarm.so", library("libarm.so", defines=("f",), machine=EM_AARCH64))
    tree.file("/usr/bin/host", program(defines=("f",)))
    tree.file("/usr/bin/plain", program(defines=("main",)))
    tree.link("/usr/lib/libz.so", "libz.so.1")
    findings = tuple(
        Finding(FindingKind.UNDEFINED_SYMBOL, Severity.ERROR, name, f"undefined symbol: {name}")
        for name in named
    )
    verdict = FileVerdict("/usr/bin/plain", "program", Status.BROKEN, findings=findings)
    return HintContext(
        tree.rootfs(), ImageConfig(), PackageDb(), ImageProvenance(), {}, {verdict.path: verdict}
    )


def _answers(ctx: HintContext) -> list[list[str]]:
    return [
        look(symbol, machine)
        for look in (ctx.defining, ctx.programs_defining)
        for symbol in ("f", "g", "main", "absent")
        for machine in (62, EM_AARCH64)
    ]


def test_named_symbols_and_others_are_found_alike() -> None:
    found = _context("f", "absent")
    assert found.defining("f", 62) == ["/opt/liba.so", "/usr/lib/libz.so.1"]
    assert found.defining("f", EM_AARCH64) == ["/usr/lib/libarm.so"]
    assert found.programs_defining("f", 62) == ["/usr/bin/host"]
    assert found.programs_defining("main", 62) == ["/usr/bin/plain"]
    assert found.defining("g", 62) == ["/usr/lib/libz.so.1"]  # named by no finding
    assert found.defining("absent", 62) == []
    assert _answers(found) == _answers(_context())  # nothing named: every one searched
