"""`max_versions` ceilings: version needs (Verneed/Vernaux) above what a target host defines.

A program built against glibc 2.34 records `GLIBC_2.34` in its .gnu.version_r and the host's
ld.so refuses it where libc.so.6 has no such Verdef (dl-version.c match_symbol, "version
`GLIBC_2.34' not found"). A ceiling says which versions the target host has at most.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.elf.model import ElfFacts, VersionNeed

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def version_number(text: str) -> tuple[int, ...]:
    """ "2.28" -> (2, 28): compared as numbers, so 2.3 < 2.28."""
    return tuple(int(part) for part in text.split("."))


def split_version(name: str, prefix: str) -> tuple[int, ...] | None:
    """The number of `name` when it is `<prefix>_<number>` ("GLIBC_2.34" -> (2, 34))."""
    if not name.startswith(prefix + "_"):
        return None
    rest = name[len(prefix) + 1 :]
    return version_number(rest) if _NUMBER.fullmatch(rest) else None


def ceiling_findings(
    path: str, facts: ElfFacts, ceilings: Mapping[str, str], severity: Severity
) -> list[Finding]:
    """One finding per version `path` needs above its prefix's ceiling, naming the symbols
    bound to that version. A file that defines versions of a prefix (libc.so.6 for GLIBC) is
    that implementation itself, not a user of it: it is not held to that ceiling."""
    findings: list[Finding] = []
    for prefix, ceiling in sorted(ceilings.items()):
        if any(split_version(d.name, prefix) is not None for d in facts.version_defs):
            continue
        limit = version_number(ceiling)
        for need in facts.version_needs:
            number = split_version(need.name, prefix)
            if number is not None and number > limit:
                findings.append(_finding(path, facts, need, prefix, ceiling, severity))
    return findings


def _finding(
    path: str, facts: ElfFacts, need: VersionNeed, prefix: str, ceiling: str, severity: Severity
) -> Finding:
    symbols = tuple(
        sorted(
            u.name
            for u in facts.undefined
            if u.version == need.name and u.version_file in (None, need.file)
        )
    )
    using = f" (used by {', '.join(symbols)})" if symbols else ""
    return Finding(
        FindingKind.VERSION_CEILING,
        severity,
        need.name,
        f"{path} needs {need.name} from {need.file}{using}, above the policy's ceiling "
        f"{prefix} {ceiling}",
        required_by=path,
        provider=need.file,
        version=need.name,
        symbols=symbols,
    )
