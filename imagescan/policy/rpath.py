"""RPATH/RUNPATH hygiene: search directories that let someone else choose the libraries.

glibc splits DT_RPATH/DT_RUNPATH at ':' (dl-load.c decompose_rpath -> fillin_rpath); an empty
element becomes "./" and a relative one is opened relative to the working directory, so
whoever picks the directory a program runs in picks its libraries. `$ORIGIN` is the directory
of the object itself (dl-load.c _dl_get_origin / expand_dynamic_string_token).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.elf.model import ElfFacts
from imagescan.globs import path_matches
from imagescan.policy.rules import OFF, Level, RpathRules
from imagescan.rootfs import paths
from imagescan.rootfs.model import EntryType, RootFS

_ORIGIN = re.compile(r"\$(?:ORIGIN\b|\{ORIGIN\})")
_OTHER_TOKEN = re.compile(r"\$(?:\{?(?:LIB|PLATFORM)\b\}?)")
S_IWOTH = 0o002


@dataclass(frozen=True)
class Problem:
    """One problem of one element: which rule (an RpathRules field) and what it means."""

    rule: str
    explanation: str


def elements(facts: ElfFacts) -> Iterator[tuple[str, str]]:
    """(tag, element) for every DT_RPATH and DT_RUNPATH element, in file order."""
    for tag, value in (("DT_RPATH", facts.rpath), ("DT_RUNPATH", facts.runpath)):
        if value is not None:
            for element in value.split(":"):
                yield tag, element


def expand_origin(element: str, path: str) -> str:
    """The element with $ORIGIN replaced by the object's directory, normalised."""
    expanded = _ORIGIN.sub(lambda _: posixpath.dirname(path), element)
    return posixpath.normpath(expanded) if expanded.startswith("/") else expanded


def problems(element: str, path: str, rules: RpathRules, rootfs: RootFS | None) -> list[Problem]:
    """What is wrong with one element of the object at `path` (empty list: nothing)."""
    if element == "":
        return [Problem("empty", "is empty: ld.so searches the current working directory")]
    directory = expand_origin(element, path)
    if not directory.startswith("/"):
        return [Problem("relative", "is relative: ld.so opens it from the working directory")]
    found: list[Problem] = []
    if not path_matches(directory, rules.trusted):
        found.append(Problem("untrusted", f"({directory}) is outside the trusted directories"))
    if rootfs is not None and not _OTHER_TOKEN.search(directory):
        found += _filesystem_problems(directory, rootfs)
    return found


def _filesystem_problems(directory: str, rootfs: RootFS) -> list[Problem]:
    entry = paths.lookup(rootfs, directory)
    found: list[Problem] = []
    if entry is None or entry.type is not EntryType.DIR:
        found.append(Problem("missing", f"({directory}) is not a directory in the image"))
    writable = _nearest_existing(directory, rootfs)
    if writable is not None:
        found.append(Problem("world_writable", f"({directory}): {writable} is writable by anyone"))
    return found


def _nearest_existing(directory: str, rootfs: RootFS) -> str | None:
    """The directory itself, or the parent where it could be created, when anyone may write
    there (S_IWOTH; a sticky bit still lets anyone create a name that does not exist)."""
    current = directory
    while True:
        entry = paths.lookup(rootfs, current)
        if entry is not None:
            return current if entry.type is EntryType.DIR and entry.mode & S_IWOTH else None
        if current == "/":
            return None
        current = posixpath.dirname(current)


def rpath_findings(
    path: str, facts: ElfFacts, rules: RpathRules, rootfs: RootFS | None
) -> list[Finding]:
    """One `rpath-hygiene` finding per problem the policy checks, per element."""
    findings: list[Finding] = []
    for tag, element in elements(facts):
        for problem in problems(element, path, rules, rootfs):
            level: Level | None = getattr(rules, problem.rule)
            if level is None or level == OFF:
                continue
            findings.append(_finding(path, tag, element, problem, Severity(level)))
    return findings


def _finding(path: str, tag: str, element: str, problem: Problem, level: Severity) -> Finding:
    return Finding(
        FindingKind.RPATH_HYGIENE,
        level,
        element,
        f"{path}: {tag} element '{element}' {problem.explanation}",
        required_by=path,
    )
