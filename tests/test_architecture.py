"""The package's shape (issue 8): imports run one way along the pipeline, no module imports
another's private names, there is no import cycle, and only the CLI talks to the terminal.

Imports are read with `ast` from the source (function-level and TYPE_CHECKING imports
included), so a cycle hidden inside a function still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "imagescan"

# The pipeline's stages in import order: a module may import its own stage and earlier ones.
# `elf` is the parser that reading (rootfs) calls; the Report (report) is the value that the
# policy judges and the renderers print; scan/diff/audit drive the whole pipeline for cli.
STAGES: tuple[tuple[str, ...], ...] = (
    ("imagescan", "imagescan.errors", "imagescan.machines", "imagescan.globs", "imagescan.heap"),
    ("imagescan.parallel",),
    ("imagescan.image",),
    ("imagescan.elf",),
    ("imagescan.rootfs",),
    ("imagescan.packages",),  # issue 11: the image's package databases, read from the RootFS
    ("imagescan.loader",),
    ("imagescan.checks", "imagescan.hints.model"),  # hints.model: values the Report carries
    ("imagescan.store",),  # layer facts and audit results (issue 12)
    ("imagescan.analyze", "imagescan.linkgraph"),  # linkgraph: the SBOMs' edges (issue 13)
    ("imagescan.report",),
    ("imagescan.hints",),  # issue 11: provenance and fixes, made from a Report
    ("imagescan.policy",),
    ("imagescan.render", "imagescan.attest"),
    ("imagescan.scan", "imagescan.diff", "imagescan.recorded"),  # recorded: kept reports
    ("imagescan.audit", "imagescan.history"),
    ("imagescan.cluster",),  # audits on Dask (issue 12)
    ("imagescan.cli",),
    ("imagescan.__main__",),
)
# Where the terminal is spoken to (DESIGN.md: "cli.py: the only module that reads argv,
# prints, or exits"); render/text holds rich's console for it.
TERMINAL_MODULES = ("imagescan.cli", "imagescan.__main__")
# A forked child must leave by os._exit (no atexit handlers, no flushing the parent's
# buffers twice): the fork machinery may, nothing else.
EXITS_ALLOWED = {"os._exit": ("imagescan.parallel",)}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("imagescan"):
                    yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, package)
            if not target.startswith("imagescan"):
                continue
            names = tuple(a.name for a in node.names)
            # `from imagescan.loader import setup` imports the module imagescan.loader.setup
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            for sub in submodules:
                yield Import(name, sub, (), node.lineno)
            rest = tuple(n for n in names if f"{target}.{n}" not in known)
            if rest or not submodules:
                yield Import(name, target, rest, node.lineno)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def all_imports() -> list[Import]:
    known = modules()
    return [imp for name, path in known.items() for imp in imports_of(name, path, known)]


def stage_of(module: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, stage)
    for index, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            # "imagescan" is the package's own face only, not every module below it
            below = prefix != "imagescan" and module.startswith(prefix + ".")
            if module == prefix or below:
                best = max(best, (len(prefix), index))
    assert best[1] >= 0, f"{module} belongs to no stage of STAGES: add it"
    return best[1]


def test_every_module_has_a_stage() -> None:
    for name in modules():
        stage_of(name)


def test_imports_run_along_the_pipeline() -> None:
    backwards = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in all_imports()
        if stage_of(imp.target) > stage_of(imp.source)
    ]
    assert not backwards, "imports against the pipeline's direction:\n" + "\n".join(backwards)


def test_no_private_names_across_modules() -> None:
    private = [
        f"{imp.source}:{imp.line} takes {name} from {imp.target}"
        for imp in all_imports()
        for name in imp.names
        if name.startswith("_") and not name.startswith("__") and imp.target != imp.source
    ]
    assert not private, "\n".join(private)


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for imp in all_imports():
        if imp.target in graph and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, or None: a depth-first search on an explicit stack."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(graph):
        if start in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(child) :], child]
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("call", ["print", "input", "sys.exit", "sys.argv", "os._exit"])
def test_only_the_cli_talks_to_the_terminal(call: str) -> None:
    offenders = []
    for name, path in modules().items():
        if name in TERMINAL_MODULES or name in EXITS_ALLOWED.get(call, ()):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if _spells(node, call):
                offenders.append(f"{name}:{getattr(node, 'lineno', '?')}")
    assert not offenders, f"{call} outside the CLI: {offenders}"


def _spells(node: ast.AST, dotted: str) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return "." not in dotted and node.func.id == dotted
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}" == dotted
    return False
