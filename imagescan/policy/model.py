"""Policy documents as pydantic models: strict, unknown keys rejected (the JSON Schema's source).

These are what a policy FILE says. `imagescan.policy.rules` holds the resolved `Policy` (its
`extends` chain merged) as plain frozen dataclasses: pydantic types stay in this package.
Documents are validated from JSON text (YAML and TOML are turned into JSON first), so the three
formats accept exactly the same things and strict mode still takes "2027-01-31" as a date.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

from imagescan.checks.model import FindingKind
from imagescan.globs import glob_problem

Level = Literal["error", "warning", "note", "off"]

# The keys of `severity`: every finding kind, and "default" for the kinds a policy does not name.
# Built from FindingKind so that a new kind is a valid key at once (and the schema test notices).
SeverityKey = enum.StrEnum(  # type: ignore[misc]
    "SeverityKey", [("DEFAULT", "default")] + [(k.name, k.value) for k in FindingKind]
)


def _usable_glob(pattern: str) -> str:
    problem = glob_problem(pattern)
    if problem is not None:
        raise ValueError(problem)
    return pattern


Glob = Annotated[
    str,
    Field(min_length=1, description="a path glob: * ? [..] and ** (any depth)"),
    AfterValidator(_usable_glob),
]
VersionNumber = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)*$",
        description='a version number such as "2.28" (quote it in YAML and TOML)',
    ),
]
VersionPrefix = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="the part of a version name before '_<number>': GLIBC, GLIBCXX, CXXABI",
    ),
]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ByFatalAt(_Document):
    """A level per moment of failure; a moment left out keeps what the finding had."""

    startup: Level | None = Field(None, description="findings that stop the program at start")
    call: Level | None = Field(None, description="findings that fail when a function is called")
    other: Level | None = Field(None, description="findings that never stop the program")


def _rule_tag(value: Any) -> str:
    return "level" if isinstance(value, str) else "by_fatal_at"


SeverityRule = Annotated[
    Annotated[Level, Tag("level")] | Annotated[ByFatalAt, Tag("by_fatal_at")],
    Discriminator(_rule_tag),
]


class Waiver(_Document):
    """Accept a known finding: which one, why, and until when."""

    path: Glob = Field(description="the judged file or the object that needs the thing")
    kind: FindingKind | None = Field(None, description="only findings of this kind")
    subject: str | None = Field(
        None, min_length=1, description="fnmatch pattern on the subject (soname, version, symbol)"
    )
    reason: str = Field(min_length=1, pattern=r"\S", description="why this is acceptable")
    expires: date | None = Field(None, description="the last day the waiver applies (YYYY-MM-DD)")


class PluginHost(_Document):
    """Shared objects that a program loads as plugins, judged inside that program."""

    plugins: Glob = Field(description="glob of the plugin files")
    host: str = Field(pattern=r"^/", description="absolute path of the program that loads them")


class Rpath(_Document):
    """Levels for DT_RPATH/DT_RUNPATH elements that let others choose the libraries loaded."""

    empty: Level | None = Field(None, description="an empty element: the current directory")
    relative: Level | None = Field(None, description="a relative element: from the current dir")
    untrusted: Level | None = Field(None, description="a directory that matches no `trusted` glob")
    missing: Level | None = Field(None, description="a directory the image does not have")
    world_writable: Level | None = Field(
        None, description="a directory (or its nearest existing parent) anyone may write to"
    )
    trusted: list[Glob] | None = Field(
        None, description="directories considered safe ($ORIGIN expanded); replaces the parent's"
    )


class PolicyDocument(_Document):
    """One policy file. Lists add to the policy it extends; mappings override it key by key."""

    model_config = ConfigDict(
        title="imagescan policy",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    schema_version: Literal[1] = Field(description="the version of this policy format")
    extends: str | None = Field(
        None,
        min_length=1,
        description="a built-in policy name or a file relative to this one; without it the "
        "policy builds on 'default', and 'none' starts from nothing",
    )
    description: str | None = None
    severity: dict[SeverityKey, SeverityRule] = Field(
        default_factory=dict, description="level per finding kind ('default': all other kinds)"
    )
    include: list[Glob] | None = Field(
        None, description="judge only files matching these globs (replaces the parent's)"
    )
    exclude: list[Glob] = Field(default_factory=list, description="do not judge these files")
    max_versions: dict[VersionPrefix, VersionNumber] = Field(
        default_factory=dict, description="ceilings: highest version needed per version prefix"
    )
    host_provided: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="sonames (fnmatch) the host provides at run time"
    )
    plugin_hosts: list[PluginHost] = Field(default_factory=list)
    rpath: Rpath | None = None
    waivers: list[Waiver] = Field(default_factory=list)
