"""Reading policies: YAML, TOML or JSON files and the built-ins, `extends` chains, every problem.

A policy reference is a built-in name (`default`, `strict`, ...) or a file. All problems of
all files in the chain are collected and raised once as a `PolicyError`, on one line:
`FILE: loc.path: message; FILE: loc.path: message`.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from imagescan.errors import ImagescanError
from imagescan.policy.merge import merge_documents
from imagescan.policy.model import PolicyDocument
from imagescan.policy.rules import Policy

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
MAX_POLICY_BYTES = 1 << 20  # a policy is hand-written; anything bigger is a mistake


class PolicyError(ImagescanError):
    """A policy cannot be used: unreadable, malformed, or invalid (every problem listed)."""


@dataclass(frozen=True)
class PolicySource:
    """One policy text: `label` names it in messages, `key` identifies it for loop checks,
    `directory` is where its relative `extends` point (None for built-ins)."""

    label: str
    key: str
    text: str
    format: str
    directory: Path | None


@dataclass(frozen=True)
class Parsed:
    """A source's document (None when invalid), its raw `extends`, and its problems."""

    source: PolicySource
    document: PolicyDocument | None
    extends: str | None
    problems: tuple[str, ...]


def builtin_names() -> tuple[str, ...]:
    """The names of the policies shipped in imagescan/policy/builtin/."""
    files = _builtin_dir().iterdir()
    return tuple(sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml")))


def _builtin_dir() -> resources.abc.Traversable:
    return resources.files("imagescan.policy").joinpath("builtin")


def builtin_source(name: str) -> PolicySource:
    text = _builtin_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return PolicySource(f"{name} (built-in)", f"builtin:{name}", text, "yaml", None)


def file_source(path: Path) -> PolicySource:
    """Read a policy file; its format comes from its extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PolicyError(f"{path}: unknown policy format (use .yaml, .yml, .toml or .json)")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as err:
        raise PolicyError(f"{path}: cannot read policy: {err.strerror or err}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: policy file larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PolicyError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return PolicySource(str(path), str(path.resolve()), text, fmt, path.resolve().parent)


def looks_like_file(reference: str) -> bool:
    return "/" in reference or Path(reference).suffix.lower() in FORMATS


def source_for(reference: str, directory: Path | None) -> PolicySource:
    """A built-in by name, else a file (relative to `directory`, or the working directory)."""
    path = Path(reference).expanduser()
    if directory is not None and not path.is_absolute():
        path = directory / path
    if not looks_like_file(reference):
        if reference in builtin_names():
            return builtin_source(reference)
        if not path.is_file():
            names = ", ".join(builtin_names())
            raise PolicyError(f"unknown policy {reference!r}: not a built-in ({names}) nor a file")
    return file_source(path)


def load_policy(reference: str, *, directory: Path | None = None) -> Policy:
    """Load and validate a policy and everything it extends; PolicyError lists every problem."""
    chain = load_chain(source_for(reference, directory))
    problems = [p for parsed in chain for p in parsed.problems]
    if problems:
        raise PolicyError("; ".join(problems))
    documents = [(p.source.label, p.document) for p in chain if p.document is not None]
    return merge_documents(list(reversed(documents)))


def load_chain(first: PolicySource) -> list[Parsed]:
    """`first` and the policies it extends, the extending first; a loop or an unreadable
    parent becomes a problem of the file that names it."""
    chain = [parse_source(first)]
    seen = [first.key]
    while chain[-1].extends is not None:
        current = chain[-1]
        try:
            parent = source_for(current.extends or "", current.source.directory)
        except PolicyError as err:
            chain[-1] = _with_problem(current, f"extends: {err.message}")
            break
        if parent.key in seen:
            cycle = " -> ".join([*(_short(k) for k in seen), _short(parent.key)])
            chain[-1] = _with_problem(current, f"extends: loop {cycle}")
            break
        seen.append(parent.key)
        chain.append(parse_source(parent))
    return chain


def _short(key: str) -> str:
    return key.removeprefix("builtin:")


def _with_problem(parsed: Parsed, problem: str) -> Parsed:
    return Parsed(
        parsed.source, None, None, (*parsed.problems, f"{parsed.source.label}: {problem}")
    )


def parse_source(source: PolicySource) -> Parsed:
    """Parse and validate one policy text, keeping every problem."""
    label = source.label
    try:
        raw = parse_text(source.text, source.format)
    except SyntaxProblem as err:
        return Parsed(source, None, None, (f"{label}: {err}",))
    extends = raw.get("extends") if isinstance(raw, dict) else None
    extends = extends if isinstance(extends, str) and extends else None
    try:
        document = PolicyDocument.model_validate_json(to_json(raw))
    except SyntaxProblem as err:
        return Parsed(source, None, extends, (f"{label}: {err}",))
    except ValidationError as err:
        return Parsed(source, None, extends, tuple(f"{label}: {p}" for p in problems_of(err)))
    return Parsed(source, document, extends, ())


class SyntaxProblem(Exception):
    """A text that is not valid YAML/TOML/JSON, or holds values JSON cannot carry."""


def parse_text(text: str, fmt: str) -> Any:
    """The data of a policy text, duplicate keys refused in every format."""
    if fmt == "toml":
        try:
            return tomllib.loads(text)  # rejects duplicate keys itself
        except tomllib.TOMLDecodeError as err:
            raise SyntaxProblem(f"TOML syntax: {err}") from None
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as err:
            raise SyntaxProblem(f"line {err.lineno}: JSON syntax: {err.msg}") from None
    return _parse_yaml(text)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SyntaxProblem(f"duplicate key {key!r}")
        out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (YAML 1.2 says keys
    are unique; PyYAML silently keeps the last)."""

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


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SyntaxProblem(f"{where}YAML syntax: {err.problem}") from None
    except (yaml.YAMLError, ValueError) as err:
        raise SyntaxProblem(f"YAML: {err}") from None


def to_json(data: Any) -> str:
    """JSON text of parsed policy data; dates as ISO text (YAML and TOML have date values)."""
    try:
        return json.dumps(data, default=_json_value)
    except (TypeError, ValueError) as err:
        raise SyntaxProblem(str(err)) from None


def _json_value(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"a value of type {type(value).__name__} is not allowed in a policy")


def problems_of(error: ValidationError) -> list[str]:
    """`loc.path: message` for every validation error, in the order of the model's fields."""
    return [f"{location(e['loc'])}: {message(e)}" for e in error.errors(include_url=False)]


_TAGS = {"level", "by_fatal_at"}  # discriminator tags pydantic puts in a union's location


def location(loc: tuple[int | str, ...]) -> str:
    """("waivers", 0, "reason") -> "waivers[0].reason"; a refused mapping key says so."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        elif part not in _TAGS:
            out += f".{part}" if out else part
    return out or "(document)"


def message(error: Any) -> str:
    """pydantic's message, reworded where a policy author would not recognise it."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "model_type" and not error["loc"]:
        return "a policy must be a mapping of keys to values"
    if kind == "missing":
        return "required key missing"
    text = str(error["msg"]).removeprefix("Value error, ")
    version = error["loc"][:1] == ("max_versions",)
    if version and kind == "string_type" and isinstance(error.get("input"), int | float):
        text += ' (quote numbers that are versions: "2.28")'
    return text
