"""Findings and per-file verdicts, in DESIGN.md's words."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class FatalAt(enum.StrEnum):
    STARTUP = "startup"
    CALL = "call"


class FindingKind(enum.StrEnum):
    MISSING_INTERPRETER = "missing-interpreter"
    MISSING_LIBRARY = "missing-library"
    INCOMPATIBLE_LIBRARY = "incompatible-library"
    MISSING_SYMBOL_VERSION = "missing-symbol-version"
    UNDEFINED_SYMBOL = "undefined-symbol"
    DT_RELR_WITHOUT_VERSION = "dt-relr-without-version"
    STALE_LD_CACHE = "stale-ld-cache"
    FRAGILE_DEPENDENCY = "fragile-dependency"
    PRELOAD_MISSING = "preload-missing"
    NO_VERSION_INFORMATION = "no-version-information"
    CPU_DEPENDENT = "cpu-dependent"  # the verdict differs between CPU models (issue 9)
    PROTECTED_COPY_RELOCATION = "protected-copy-relocation"
    # run-time loading (issue 5): plugins, NSS modules, dlopen names, Go plugins
    PLUGIN_HOST_MISSING = "plugin-host-missing"
    NSS_MODULE_MISSING = "nss-module-missing"
    DLOPEN_CANDIDATE_MISSING = "dlopen-candidate-missing"
    GO_PLUGIN_MISMATCH = "go-plugin-mismatch"
    # policy findings (imagescan.policy): not the loader's verdict, the policy's
    VERSION_CEILING = "version-ceiling"
    RPATH_HYGIENE = "rpath-hygiene"
    # hostile images (issue 15): a file the checks read was not kept (size budget)
    CONFIG_NOT_READ = "config-not-read"
    NOT_JUDGED = "not-judged"  # the bound on one image's loader work left files out


class Status(enum.StrEnum):
    OK = "ok"
    BROKEN = "broken"
    BROKEN_LAZY = "broken-lazy"
    INTERPRETER_MISSING = "interpreter-missing"
    STATIC = "static"
    FOREIGN_ARCH = "foreign-arch"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, about one subject (a soname, a version, a symbol, an interpreter path).

    `required_by` is the object (as ld.so spells its path) whose need it is; `provider` the
    object that should have satisfied it. `fatal_at` is None for findings that never stop
    the program (warnings such as a weak version need).
    """

    kind: FindingKind
    severity: Severity
    subject: str
    message: str
    fatal_at: FatalAt | None = None
    required_by: str | None = None
    provider: str | None = None
    version: str | None = None
    symbols: tuple[str, ...] = ()
    tried: tuple[tuple[str, str], ...] = ()  # (path, rule) for missing libraries
    waiver: str | None = None  # the reason of the policy waiver that waived it
    caused_by: str | None = None  # `kind:subject` of the root cause (checks.causes, issue 10)
    symbols_cut: int = 0  # symbols left out of `symbols` by the report's bound (issue 15)


@dataclass(frozen=True)
class FileVerdict:
    """What the loader would decide for one ELF file as the main object."""

    path: str
    kind: str
    status: Status
    layer: int | None = None
    interpreter: str | None = None
    needed: tuple[str, ...] = ()
    resolved: Mapping[str, str | None] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    host: str | None = None
    loaded_by: tuple[str, ...] = ()
    go_version: str | None = None
    note: str | None = None
    gate: str | None = None  # "pass" or "fail" under the policy and --fail-on (issue 10)
    findings_cut: int = 0  # findings left out by the report's bound (issue 15)


def status_of(findings: Sequence[Finding]) -> Status:
    """broken when anything fails at start, broken-lazy when only calls fail, else ok."""
    whens = {f.fatal_at for f in findings}
    if FatalAt.STARTUP in whens:
        return Status.BROKEN
    if FatalAt.CALL in whens:
        return Status.BROKEN_LAZY
    return Status.OK


@dataclass(frozen=True, slots=True)
class HostTrial:
    """A plugin judged inside `host` (checks.plugins): `remaining` are its references
    still undefined there."""

    host: str
    remaining: tuple[Finding, ...]

    @property
    def lacking(self) -> tuple[str, ...]:
        return tuple(f.subject for f in self.remaining)
