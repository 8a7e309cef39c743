"""One fix function per finding kind (a registry keyed by FindingKind, complete)."""

from __future__ import annotations

from collections.abc import Callable

from imagescan.checks.model import FileVerdict, Finding, FindingKind
from imagescan.hints import others
from imagescan.hints.context import HintContext
from imagescan.hints.libraries import library_fix
from imagescan.hints.model import Fix
from imagescan.hints.versions import relr_fix, version_fix

Fixer = Callable[[Finding, HintContext, FileVerdict | None], Fix | None]


def _ceiling(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix:
    fix = version_fix(finding, ctx)
    why = f"the policy's ceiling is below {finding.subject}: {fix.why}"
    return Fix("above-policy-ceiling", why, fix.steps, fix.facts)


def _fragile(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix:
    requester = finding.required_by or ""
    where = (finding.provider or "").rpartition("/")[0] or "/"
    why = f"{requester} finds {finding.subject} only because another object loaded it first"
    steps = (
        f"give {requester} its own search path: RUN patchelf --set-rpath {where} {requester}"
        " (or '$ORIGIN/...' relative to it)",
    )
    return Fix("fragile-load-order", why, steps)


FIXERS: dict[FindingKind, Fixer] = {
    FindingKind.MISSING_INTERPRETER: lambda f, c, v: others.interpreter_fix(f, c),
    FindingKind.MISSING_LIBRARY: library_fix,
    FindingKind.INCOMPATIBLE_LIBRARY: lambda f, c, v: others.text_fix(
        "wrong-architecture",
        f"a file named {f.subject} is there but built for another architecture or ELF class",
        "install the build of that library for the image's architecture",
    ),
    FindingKind.MISSING_SYMBOL_VERSION: lambda f, c, v: version_fix(f, c),
    FindingKind.UNDEFINED_SYMBOL: others.symbol_fix,
    FindingKind.DT_RELR_WITHOUT_VERSION: lambda f, c, v: relr_fix(f, c),
    FindingKind.STALE_LD_CACHE: lambda f, c, v: others.stale_cache_fix(f, c),
    FindingKind.FRAGILE_DEPENDENCY: _fragile,
    FindingKind.PRELOAD_MISSING: others.preload_fix,
    FindingKind.NO_VERSION_INFORMATION: lambda f, c, v: others.text_fix(
        "no-fix-needed",
        f"{f.provider} has no symbol versions; the loader accepts it (a note, not an error)",
    ),
    FindingKind.PLUGIN_HOST_MISSING: lambda f, c, v: others.plugin_host_fix(f, c),
    FindingKind.NSS_MODULE_MISSING: lambda f, c, v: others.runtime_fix(f, c),
    FindingKind.DLOPEN_CANDIDATE_MISSING: lambda f, c, v: others.runtime_fix(f, c),
    FindingKind.GO_PLUGIN_MISMATCH: lambda f, c, v: others.go_plugin_fix(f, c),
    FindingKind.CPU_DEPENDENT: lambda f, c, v: others.text_fix(
        "cpu-dependent",
        "the loader picks a different library (glibc-hwcaps subdirectory) on other CPU models",
        "ship the library for the baseline CPU level too, or judge with --cpu-level of the"
        " oldest CPU the image runs on",
    ),
    FindingKind.PROTECTED_COPY_RELOCATION: lambda f, c, v: others.text_fix(
        "protected-copy",
        f"the program copies {f.subject}, which its library marks protected and built with"
        " -mno-direct-extern-access: glibc refuses the copy relocation",
        "rebuild the program with -fPIE (or -mno-direct-extern-access too), so that it"
        " reaches the variable through the GOT instead of copying it",
    ),
    FindingKind.CONFIG_NOT_READ: lambda f, c, v: others.text_fix(
        "config-too-large",
        f"{f.subject} is larger than any real loader configuration; imagescan did not judge"
        " what depends on it",
        "shrink or remove the file in the image build",
    ),
    FindingKind.NOT_JUDGED: lambda f, c, v: others.text_fix(
        "not-judged",
        "the libraries' dependency closures together are far larger than any real image's;"
        " imagescan judged the programs and left the rest",
        "flatten the dependency chain: link each program and library against the"
        " libraries it uses directly",
    ),
    FindingKind.VERSION_CEILING: _ceiling,
    FindingKind.RPATH_HYGIENE: lambda f, c, v: others.text_fix(
        "rpath-hygiene",
        f"the policy forbids this search path element ({f.subject})",
        f"RUN patchelf --set-rpath '$ORIGIN/...' {f.required_by}  (relative to the object),"
        " or --remove-rpath when the libraries are in the system directories",
    ),
}


def fix_for(finding: Finding, ctx: HintContext, verdict: FileVerdict | None) -> Fix | None:
    """The fix of one finding (None only for a waived one: its waiver says why)."""
    if finding.waiver is not None:
        return None
    return FIXERS[finding.kind](finding, ctx, verdict)
