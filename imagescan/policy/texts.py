"""Policy texts to data: YAML (1.2 words, unique keys), TOML and JSON, then JSON for pydantic.

Every format refuses a key given twice; YAML keeps `off`/`no`/`yes` as words and dates as
text (YAML 1.2 core schema) so that all three formats mean the same to the models.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import yaml


class SyntaxProblem(Exception):
    """A text that is not valid YAML/TOML/JSON, or holds values JSON cannot carry."""


def parse_text(text: str, fmt: str) -> Any:
    """The data of a policy text, duplicate keys refused in every format."""
    if fmt == "toml":
        try:
            return tomllib.loads(text)  # rejects duplicate keys itself
        except tomllib.TOMLDecodeError as err:
            raise SyntaxProblem(f"TOML syntax: {err}") from None
        except RecursionError:
            raise SyntaxProblem("TOML: nested too deeply") from None
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as err:
            raise SyntaxProblem(f"line {err.lineno}: JSON syntax: {err.msg}") from None
        except RecursionError:
            raise SyntaxProblem("JSON: nested too deeply") from None
    return parse_yaml(text)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SyntaxProblem(f"duplicate key {key!r}")
        out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 says keys
    are unique; PyYAML silently keeps the last) and aliases (`*name`: a few nested ones
    expand to gigabytes once turned into JSON, and a policy has no need of them)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            line = event.start_mark.line + 1
            raise SyntaxProblem(f"line {line}: YAML aliases (*name) are not allowed in policies")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1
                raise SyntaxProblem(f"line {line}: duplicate key {key!r}")
            seen.add(key if isinstance(key, str | int | float | bool) else id(key))
        return super().construct_mapping(node, deep=deep)


def _yaml_1_2_resolvers() -> dict[Any, list[tuple[str, Any]]]:
    """SafeLoader's implicit types minus YAML 1.1's surprises: `off`, `no`, `yes` stay words
    (YAML 1.2 booleans are only true/false) and dates stay text for the schema to check."""
    dropped = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
    resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in dropped]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    boolean = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    for first in "tTfF":
        resolvers.setdefault(first, []).append(("tag:yaml.org,2002:bool", boolean))
    return resolvers


_UniqueKeyLoader.yaml_implicit_resolvers = _yaml_1_2_resolvers()


def parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SyntaxProblem(f"{where}YAML syntax: {err.problem}") from None
    except (yaml.YAMLError, ValueError) as err:
        raise SyntaxProblem(f"YAML: {err}") from None
    except RecursionError:
        raise SyntaxProblem("YAML: nested too deeply") from None


def to_json(data: Any) -> str:
    """JSON text of parsed policy data; dates as ISO text (YAML and TOML have date values)."""
    try:
        return json.dumps(data, default=_json_value)
    except (TypeError, ValueError) as err:
        raise SyntaxProblem(str(err)) from None
    except RecursionError:
        raise SyntaxProblem("nested too deeply") from None


def _json_value(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"a value of type {type(value).__name__} is not allowed in a policy")


def yaml_lines(text: str) -> Callable[[Sequence[int | str]], int | None]:
    """A function from a validation location to the 1-based line of the YAML node it points
    at (the key, for mapping entries) or of its nearest existing parent; None when unknown."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, ValueError):
        root = None
    return lambda loc: _line(root, loc)


def _line(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            entry = next(((k, v) for k, v in node.value if k.value == part), None)
            if entry is None:
                continue  # a union tag or "[key]": stays at the key found last
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
    return line
