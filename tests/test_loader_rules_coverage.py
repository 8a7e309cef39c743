"""Every numbered rule of LOADER.md has a fast unit test (issue 8).

LOADER.md (in the shared docs beside the checkout) is parsed for its numbered sections
(3.1 ... 3.9), its numbered edge cases (1. ... 14.), the letters of its conformance table
and its "Secure mode" and "Preloads" sections. Each rule-test module keeps a `RULES` table
from rule to test names; this test fails when a rule has no test, when a table names a test
that does not exist or a rule LOADER.md does not have, or when a rule test is in no table.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tests import test_checks_rules, test_loader_rules_glibc, test_loader_rules_musl
from tests.conftest import SHARED

LOADER_MD = SHARED / "docs" / "LOADER.md"
MODULES = (test_loader_rules_glibc, test_loader_rules_musl, test_checks_rules)
NAMED_SECTIONS = ("Secure mode", "Preloads")


def loader_rules(text: str) -> list[str]:
    """The rule keys of LOADER.md: "3.N", "edge N", "case X" and the named sections."""
    rules = list(re.findall(r"^### (3\.\d+)\b", text, re.M))
    edges = text.split("\n## 4.", 1)[1].split("\n## ", 1)[0] if "\n## 4." in text else ""
    rules += [f"edge {n}" for n in re.findall(r"^(\d+)\. ", edges, re.M)]
    rules += [f"case {c}" for c in re.findall(r"^\| ([A-Z]) \|", text, re.M)]
    rules += [s for s in NAMED_SECTIONS if re.search(rf"^## {s}\b", text, re.M)]
    return rules


def _table() -> dict[str, list[tuple[ModuleType, str]]]:
    table: dict[str, list[tuple[ModuleType, str]]] = {}
    for module in MODULES:
        for rule, tests in module.RULES.items():
            table.setdefault(rule, []).extend((module, name) for name in tests)
    return table


def _rule_tests(module: ModuleType) -> Iterator[tuple[str, Callable[..., object]]]:
    for name, func in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("test_") and func.__module__ == module.__name__:
            yield name, func


@pytest.fixture(scope="module")
def rules() -> list[str]:
    if not LOADER_MD.exists():
        pytest.skip(f"no shared docs at {LOADER_MD}")
    return loader_rules(LOADER_MD.read_text(encoding="utf-8"))


def test_loader_md_parses_into_its_numbered_rules(rules: list[str]) -> None:
    """The parser finds what LOADER.md numbers today (so a rewording cannot empty it)."""
    assert [r for r in rules if r.startswith("3.")] == [f"3.{n}" for n in range(1, 10)]
    assert [r for r in rules if r.startswith("edge ")] == [f"edge {n}" for n in range(1, 15)]
    assert [r for r in rules if r.startswith("case ")] == [f"case {c}" for c in "ABCDEGHIL"]
    assert [r for r in rules if r in NAMED_SECTIONS] == list(NAMED_SECTIONS)


def test_every_loader_rule_has_a_unit_test(rules: list[str]) -> None:
    """Each numbered section, edge case, conformance case and named section of LOADER.md
    is listed in some RULES table with at least one test."""
    table = _table()
    assert [r for r in rules if not table.get(r)] == []
    assert sorted(set(table) - set(rules)) == []


def test_rule_tables_name_real_tests_with_a_citation() -> None:
    """Every test a RULES table names exists in that module and cites LOADER.md."""
    problems = []
    for rule, entries in _table().items():
        for module, name in entries:
            func = getattr(module, name, None)
            if func is None:
                problems.append(f"{rule}: {module.__name__}.{name} does not exist")
            elif "LOADER.md" not in (func.__doc__ or ""):
                problems.append(f"{rule}: {name} has no LOADER.md citation in its docstring")
    assert problems == []


def test_every_rule_test_is_in_a_table() -> None:
    """No rule test is left out of its module's RULES table (the table stays complete)."""
    listed = {(module.__name__, name) for entries in _table().values() for module, name in entries}
    unlisted = [
        f"{module.__name__}.{name}"
        for module in MODULES
        for name, _ in _rule_tests(module)
        if (module.__name__, name) not in listed
    ]
    assert unlisted == []


def test_loader_rules_parser_on_a_sample() -> None:
    """The parser reads headings, the edge-case list of section 4 only, and table rows."""
    sample = "\n".join(
        [
            "### 3.1 Load order",
            "1. not an edge case (outside section 4)",
            "## 4. Edge cases",
            "1. **first**",
            "12. twelfth",
            "## Conformance cases",
            "| case | layout |",
            "| A | x |",
            "## Secure mode (AT_SECURE)",
        ]
    )
    assert loader_rules(sample) == ["3.1", "edge 1", "edge 12", "case A", "Secure mode"]
