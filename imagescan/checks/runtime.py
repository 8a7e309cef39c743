"""Image-wide checks of what programs load at run time (issue 5): NSS modules named in
/etc/nsswitch.conf, `dlopen` candidates named by string literals, Go plugins and hosts.

This module is the I/O edge of those checks: it picks the processes and files out of the
analysis and hands pure functions (checks.nss, checks.dlopen, checks.goplugin) what they
need."""

from __future__ import annotations

from collections.abc import Iterator

from imagescan.checks.analysis import Analysis
from imagescan.checks.dlopen import dlopen_findings
from imagescan.checks.goplugin import go_plugin_findings
from imagescan.checks.model import FatalAt, Finding
from imagescan.checks.nss import NSSWITCH, builtin_services, nss_findings, parse_nsswitch
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.loader.libc import LoaderCheck
from imagescan.loader.model import LibC, Process, SearchResult
from imagescan.loader.session import LoaderSession

_PROGRAMS = (FileKind.EXEC, FileKind.PIE_EXEC)
_LIBC = "libc.so.6"


def runtime_checks(session: LoaderSession, analysis: Analysis) -> list[Finding]:
    """Findings about modules loaded at run time: NSS, dlopen names, Go plugins."""
    findings = _nss(session, analysis)
    findings += dlopen_findings(_programs(analysis), session.search_from)
    findings += go_plugin_findings(_elf_facts(analysis))
    return findings


def _programs(analysis: Analysis) -> Iterator[tuple[str, Process]]:
    for path in sorted(analysis.processes):
        if analysis.verdicts[path].kind in _PROGRAMS:
            yield path, analysis.processes[path]


def _elf_facts(analysis: Analysis) -> Iterator[tuple[str, ElfFacts]]:
    for path in sorted(analysis.verdicts):
        facts = analysis.ctx.facts(path)
        if facts is not None:
            yield path, facts


def _nss(session: LoaderSession, analysis: Analysis) -> list[Finding]:
    """For C libraries that load NSS modules (glibc; musl has none); libc loads them, so
    they are searched from libc inside the first program that loads it, with the image's
    environment."""
    text = analysis.ctx.rootfs.kept.get(NSSWITCH)
    lib = session.image_c_library()
    if text is None or lib is None or LoaderCheck.NSS not in lib.checks:
        return []
    found = _libc_in_a_program(analysis, lib.libc)
    if found is None:
        return []
    program, process, libc = found

    def find(name: str) -> SearchResult | None:
        return session.search_from(program, process, libc, name)

    def problem(path: str) -> str | None:
        return _load_problem(analysis, path)

    databases = parse_nsswitch(text.decode("utf-8", "replace"))
    builtin = builtin_services(process.objects[libc].facts)
    return nss_findings(databases, builtin, find, problem)


def _load_problem(analysis: Analysis, path: str) -> str | None:
    """Why dlopen of the library at `path` fails: the first start-up finding of its own
    verdict (a missing dependency or version), else None."""
    real = analysis.ctx.resolve(path)
    verdict = analysis.verdicts.get(real) if real is not None else None
    if verdict is None:
        return None
    fatal = (f for f in verdict.findings if f.fatal_at == FatalAt.STARTUP)
    return next((f.message for f in fatal), None)


def _libc_in_a_program(analysis: Analysis, libc: LibC) -> tuple[str, Process, int] | None:
    """A program of `libc`'s loader, not in secure mode, that loads libc.so.6, and libc's
    index in it."""
    for program, process in _programs(analysis):
        if process.secure or process.libc != libc:
            continue
        for index, obj in enumerate(process.objects):
            if _LIBC in obj.names or obj.facts.soname == _LIBC:
                return program, process, index
    return None
