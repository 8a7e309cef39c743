"""Reading policies: YAML, TOML or JSON files and the built-ins, `extends` chains, every problem.

A policy reference is a built-in name (`default`, `strict`, ...) or a file. All problems of
all files in the chain are collected and raised once as a `PolicyError`, on one line:
`FILE: loc.path: message; FILE: loc.path: message`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from imagescan.errors import ImagescanError
from imagescan.policy.merge import merge_documents
from imagescan.policy.model import PolicyDocument
from imagescan.policy.rules import Policy
from imagescan.policy.texts import SyntaxProblem, parse_text, to_json, yaml_lines

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


IMPLICIT_BASE = "default"  # what a policy without `extends` builds on
NO_BASE = "none"  # `extends: none`: nothing to build on


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
    # issue 10: without `extends` a policy builds on `default`; `extends: none` starts empty
    extends = raw.get("extends", IMPLICIT_BASE) if isinstance(raw, dict) else None
    extends = extends if isinstance(extends, str) and extends else None
    if extends == NO_BASE or source.key == f"builtin:{IMPLICIT_BASE}":
        extends = None
    try:
        document = PolicyDocument.model_validate_json(to_json(raw))
    except SyntaxProblem as err:
        return Parsed(source, None, extends, (f"{label}: {err}",))
    except ValidationError as err:
        lines = yaml_lines(source.text) if source.format == "yaml" else None
        found = problems_of(err, lines)
        return Parsed(source, None, extends, tuple(f"{label}: {p}" for p in found))
    return Parsed(source, document, extends, ())


def problems_of(
    error: ValidationError, lines: Callable[[Sequence[int | str]], int | None] | None = None
) -> list[str]:
    """`loc.path: message (line N)` for every validation error, in the file's line order
    where the lines are known (YAML), else in the order of the model's fields. Sorting here
    keeps the listing stable whatever order a pydantic release reports errors in."""
    found: list[tuple[int, int, str]] = []
    for rank, item in enumerate(error.errors(include_url=False)):
        line = lines(item["loc"]) if lines is not None else None
        where = f" (line {line})" if line is not None else ""
        found.append((line or 0, rank, f"{location(item['loc'])}: {message(item)}{where}"))
    return [text for _, _, text in sorted(found)]


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
