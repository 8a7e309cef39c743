"""One file's verdict: the process the loader builds for it (loader.session), judged by the
checks its C library's loader makes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from imagescan.checks.budget import NOT_JUDGED_NOTE
from imagescan.checks.libraries import fragile_findings, library_findings, own_header_findings
from imagescan.checks.model import (
    FatalAt,
    FileVerdict,
    Finding,
    FindingKind,
    HostTrial,
    Severity,
    Status,
    status_of,
)
from imagescan.checks.protected import protected_findings
from imagescan.checks.symbols import BindingMemo, SymbolChecker, undefined_symbol_findings
from imagescan.checks.versions import DefinedVersions, dt_relr_findings, version_findings
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.loader.context import LoaderContext
from imagescan.loader.libc import LoaderCheck
from imagescan.loader.model import LibC, Process
from imagescan.loader.registry import c_library
from imagescan.loader.session import LoaderSession
from imagescan.rootfs.model import Entry

# Whether a process's undefined symbols need not be found: its verdict is replaced by one
# that drops them all (checks.plugins.hosted_whole).
Spared = Callable[[Process], bool]

_NOT_LOADABLE = (FileKind.RELOCATABLE, FileKind.DEBUGINFO, FileKind.CORE, FileKind.OTHER)

# The process-wide checks a loader may make, by the name its CLibrary declares them with
# (OWN_HEADER, the object's own refusal, comes before its libraries' findings); each is
# given the judge's memo of the providers' versions.
_PROCESS_CHECKS: Mapping[LoaderCheck, Callable[[Process, DefinedVersions], list[Finding]]] = {
    LoaderCheck.VERSIONS: version_findings,
    LoaderCheck.DT_RELR: lambda process, _: dt_relr_findings(process),
    LoaderCheck.PROTECTED: lambda process, _: protected_findings(process),
}


@dataclass(frozen=True)
class Learned:
    """What a judge memoised that is dear to compute again: the symbol checkers' bindings,
    the plugins' trials inside their natural hosts (checks.plugins), and the files whose
    undefined symbols were spared."""

    bindings: dict[LibC, BindingMemo]
    trials: dict[tuple[str, str], HostTrial | None]
    spared: set[str]


@dataclass
class Judge:
    """Verdicts for one image's files, built on its `LoaderSession`. The symbol checkers
    memoise bindings across the image's processes and live as long as the judge."""

    session: LoaderSession
    checkers: dict[LibC, SymbolChecker] = field(default_factory=dict)
    # Objects this judge's processes may still load (checks.budget); None: no bound.
    loads_left: int | None = None
    versions: DefinedVersions = field(default_factory=dict)  # checks.versions' memo
    # (host, plugin) -> the plugin's trial inside that host (checks.plugins), made while
    # judging, where forked children can make them too (issue 14)
    trials: dict[tuple[str, str], HostTrial | None] = field(default_factory=dict)
    # the main files whose undefined symbols were not found (Judge.findings' `spared`)
    spared: set[str] = field(default_factory=set)

    @property
    def ctx(self) -> LoaderContext:
        return self.session.ctx

    def file(
        self, path: str, entry: Entry, facts: ElfFacts, spared: Spared | None = None
    ) -> tuple[FileVerdict, Process | None]:
        """The verdict for one file as the main object (what `ldd -r` in the image says);
        without its undefined symbols when `spared` says so of its process."""
        base = FileVerdict(
            path,
            str(facts.kind),
            Status.OK,
            entry.layer,
            facts.interpreter,
            facts.needed,
            go_version=facts.go.go_version if facts.go else None,
        )
        early = self._early_status(facts)
        if early is not None:
            return dataclasses.replace(base, status=early), None
        loader_path = self.session.loader_of(facts)
        if facts.interpreter and self.ctx.regular_file(facts.interpreter) is None:
            missing = (_interp_missing(path, facts.interpreter),)
            return _replace(base, status=Status.INTERPRETER_MISSING, findings=missing), None
        if loader_path is None:
            return _replace(
                base, status=Status.SKIPPED, note="no dynamic loader in the image"
            ), None
        if self.loads_left is not None and self.loads_left <= 0:
            return _replace(base, status=Status.SKIPPED, note=NOT_JUDGED_NOTE), None
        process = self.session.process(path, entry, facts, loader_path)
        if self.loads_left is not None:
            self.loads_left -= len(process.objects)
        findings = self.findings(process, spared)
        return _verdict(base, process, findings), process

    def _early_status(self, facts: ElfFacts) -> Status | None:
        if facts.kind in _NOT_LOADABLE:
            return Status.SKIPPED
        if self.session.target_for(facts) is None:
            return Status.FOREIGN_ARCH
        if facts.is_static:
            return Status.STATIC
        return None

    def findings(self, process: Process, spared: Spared | None = None) -> list[Finding]:
        """Every finding of one process (its undefined symbols last), those when `spared`
        says their verdict is replaced (checks.plugins.hosted_whole). A main object without
        DT_NEEDED is checked too: ld.so's "statically linked" only replaces the dependency
        list in trace mode, and relocation still binds its symbols (issue 9)."""
        made = c_library(process.libc).checks
        found = own_header_findings(process) if LoaderCheck.OWN_HEADER in made else []
        found += library_findings(process) + fragile_findings(process)
        for check, run in _PROCESS_CHECKS.items():
            if check in made:
                found += run(process, self.versions)
        if spared is not None and spared(process):
            self.spared.add(process.objects[0].path)
        else:
            found += undefined_symbol_findings(process, self.checker(process.libc))
        return found

    def unspared(self, verdict: FileVerdict, process: Process) -> FileVerdict:
        """`verdict` of `process` with the undefined symbols `spared` left unfound: the
        verdict its file gets alone (they come last: findings())."""
        missing = undefined_symbol_findings(process, self.checker(process.libc))
        findings = (*verdict.findings, *missing)
        return _replace(verdict, status=status_of(findings), findings=findings)

    def learned(self) -> Learned:
        """What judging memoised that is dear to compute again (imagescan.parallel's
        Learner: a forked child sends it back, and the parent's plugin judging uses it)."""
        bindings = {libc: checker.learned() for libc, checker in self.checkers.items()}
        return Learned(bindings, self.trials, self.spared)

    def learn(self, learned: object) -> None:
        """Take in what another judge of the same image memoised (`learned()`)."""
        assert isinstance(learned, Learned)
        for libc, memo in learned.bindings.items():
            self.checker(libc).learn(memo)
        for key, trial in learned.trials.items():
            self.trials.setdefault(key, trial)
        self.spared.update(learned.spared)

    def checker(self, libc: LibC) -> SymbolChecker:
        """The symbol checker of processes that `libc`'s loader builds."""
        if libc not in self.checkers:
            rules = c_library(libc).binding
            self.checkers[libc] = SymbolChecker(self.session.bind_now_env, rules)
        return self.checkers[libc]


def _interp_missing(path: str, interpreter: str) -> Finding:
    return Finding(
        FindingKind.MISSING_INTERPRETER,
        Severity.ERROR,
        interpreter,
        f"{path}: cannot execute: required file not found (interpreter {interpreter} "
        "is not in the image)",
        fatal_at=FatalAt.STARTUP,
        required_by=path,
    )


def _verdict(base: FileVerdict, process: Process, findings: list[Finding]) -> FileVerdict:
    resolved: dict[str, str | None] = {}
    for res in process.resolutions:
        # A dependency cycle back to the main object is no library of its own (ldd lists
        # none for it either).
        if res.preload or res.found == 0:
            continue
        path = process.objects[res.found].path if res.found is not None else None
        if resolved.get(res.name) is None:
            resolved[res.name] = path
    return _replace(base, status=status_of(findings), resolved=resolved, findings=tuple(findings))


def _replace(verdict: FileVerdict, **changes: object) -> FileVerdict:
    return dataclasses.replace(verdict, **changes)  # type: ignore[arg-type]
