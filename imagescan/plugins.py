"""Plugins judged inside the program that loads them (Python, Perl, GCC, tc modules).

A plugin's undefined symbols are meant to come from its host, which exports them. The
host's process is built with the plugin loaded early (as `LD_PRELOAD=plugin host` does in
the reference oracle), and only the plugin's own references are judged there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Status
from imagescan.checks.symbols import undefined_symbol_findings
from imagescan.elf.model import ElfFacts, FileKind

if TYPE_CHECKING:
    from imagescan.analyze import Analysis, _Judge

_CPYTHON = re.compile(r"\.cpython-(\d)(\d+)[^/]*\.so$")
_HINTS = (
    (re.compile(r"^/usr/lib/gcc/[^/]+/[^/]+/plugin/[^/]+\.so"), ("cc1", "cc1plus", "lto1")),
    (re.compile(r"^/usr/lib/[^/]+/tc/[^/]+\.so$"), ("/usr/sbin/tc", "/sbin/tc", "/usr/bin/tc")),
)


def host_candidates(path: str, facts: ElfFacts) -> Iterator[str]:
    """The natural hosts of a plugin, most specific first."""
    yield from _python_hosts(path, facts)
    if "perl" in path and any(name.startswith("boot_") for name in facts.defined):
        yield from ("/usr/bin/perl", "/usr/local/bin/perl")
    for pattern, hosts in _HINTS:
        if pattern.search(path):
            gccdir = "/".join(path.split("/")[:6])
            yield from (h if h.startswith("/") else f"{gccdir}/{h}" for h in hosts)


def _python_hosts(path: str, facts: ElfFacts) -> Iterator[str]:
    match = _CPYTHON.search(path)
    is_python = (
        bool(match)
        or path.endswith(".abi3.so")
        or any(name.startswith("PyInit_") for name in facts.defined)
    )
    if not is_python:
        return
    if match:
        version = f"{match[1]}.{match[2]}"
        yield from (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")
    yield from ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python")


def _needs_host(verdict: FileVerdict, facts: ElfFacts) -> bool:
    if verdict.kind != FileKind.SHARED or verdict.status in (Status.SKIPPED, Status.FOREIGN_ARCH):
        return False
    unresolved = any(f.kind == FindingKind.UNDEFINED_SYMBOL for f in verdict.findings)
    return unresolved or (not facts.needed and bool(facts.undefined))


def judge_plugins(
    judge: _Judge, analysis: Analysis, declared: Sequence[tuple[str, str]] = ()
) -> None:
    """Re-judge each plugin inside the host that leaves the fewest undefined symbols.

    `declared` (plugin glob, host) pairs are not used yet: see issue 5."""
    for path, verdict in list(analysis.verdicts.items()):
        facts = judge.ctx.facts(path)
        if facts is None or not _needs_host(verdict, facts):
            continue
        best = _best_host(judge, path, facts)
        if best is not None:
            host, remaining = best
            analysis.verdicts[path] = _in_host(verdict, host, remaining)


def _best_host(judge: _Judge, path: str, facts: ElfFacts) -> tuple[str, list[Finding]] | None:
    best: tuple[str, list[Finding]] | None = None
    seen: set[str] = set()
    for host in host_candidates(path, facts):
        real = judge.ctx.resolve(host)
        entry = judge.ctx.regular_file(host)
        if real is None or real in seen or entry is None or entry.elf is None:
            continue
        seen.add(real)
        remaining = _remaining_in(judge, host, entry, entry.elf, path)
        if remaining is not None and (best is None or len(remaining) < len(best[1])):
            best = (host, remaining)
    return best


def _remaining_in(
    judge: _Judge, host: str, entry: object, host_facts: ElfFacts, plugin: str
) -> list[Finding] | None:
    from imagescan.rootfs.model import Entry

    assert isinstance(entry, Entry)
    loader = host_facts.interpreter or judge.default_loader
    if loader is None or judge.ctx.regular_file(loader) is None:
        return None
    process = judge.process(host, entry, host_facts, loader, extra_preloads=(plugin,))
    plugin_file = judge.ctx.resolve(plugin)
    mine = [i for i, o in enumerate(process.objects) if o.file == plugin_file]
    return undefined_symbol_findings(process, judge.checker(process.musl), only=mine)


def _in_host(verdict: FileVerdict, host: str, remaining: list[Finding]) -> FileVerdict:
    import dataclasses

    from imagescan.analyze import status_of

    kept = [f for f in verdict.findings if f.kind != FindingKind.UNDEFINED_SYMBOL]
    findings = tuple(kept + remaining)
    return dataclasses.replace(verdict, findings=findings, status=status_of(findings), host=host)
