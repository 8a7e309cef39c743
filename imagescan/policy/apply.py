"""Applying a policy to a report: a pure function from (Report, Policy, today) to a new Report.

Order, per judged file: files outside `include` or inside `exclude` leave the report; a
missing library the host provides is not a problem (nor are the symbols that library would
bring); the policy's own findings are added (version ceilings, RPATH/RUNPATH hygiene); every
finding gets the policy's level (`off` drops it); waivers apply; the status is recomputed
from what remains.

A waiver changes the judgement, not the facts (issue 10 item 13). Waived findings stay in
the report, so that a waiver is visible where it is used: severity `note`, `waiver` set, a
message that starts with "waived" and gives the reason, and the loader's `fatal_at` kept, so
the file's status stays what the loader would do. The policy's outcome is each file's `gate`:
"fail" when a finding reaches `fail_on`, else "pass". With `--fail-on note` waived findings
count like any other note. An expired waiver waives nothing: the finding keeps its level and
its message says since when.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
from collections.abc import Iterable
from datetime import date

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity, Status, status_of
from imagescan.checks.reuse import ByIdentity
from imagescan.elf.model import ElfFacts
from imagescan.globs import path_matches
from imagescan.policy import rpath
from imagescan.policy.ceilings import ceiling_findings
from imagescan.policy.rpath import rpath_findings
from imagescan.policy.rules import OFF, Policy, Waiver
from imagescan.report import Report, severity_at_least
from imagescan.rootfs import paths
from imagescan.rootfs.model import RootFS

_RECOMPUTED = (Status.OK, Status.BROKEN, Status.BROKEN_LAZY)


def apply_policy(
    report: Report,
    policy: Policy,
    *,
    today: date,
    rootfs: RootFS | None = None,
    fail_on: Severity = Severity.ERROR,
    memo: PolicyMemo | None = None,
) -> Report:
    """The report as `policy` judges it on `today`, each file's gate decided at `fail_on`.

    `rootfs` (the scanned image's) gives the ELF facts and directory modes that ceilings,
    RPATH/RUNPATH hygiene and host-provided symbols need; without it those are not checked.
    `memo` (an audit's, for one policy, day and `fail_on`) gives a verdict back as judged
    for the previous image of the same base when the analysis handed on that very verdict
    and the file's facts are the very same (checks.reuse); never for a file whose RPATH or
    RUNPATH the hygiene rules look at, since they look at directories nothing watches.
    """
    judge = _Judge(policy, today, rootfs, fail_on)
    file = judge.file if memo is None else functools.partial(_remembered, memo, judge)
    files = tuple(file(v) for v in report.files if selected(v.path, policy))
    skipped = tuple(s for s in report.skipped if selected(s.path, policy))
    image_findings = judge.settle_all(report.image_findings, None)
    return dataclasses.replace(report, files=files, skipped=skipped, image_findings=image_findings)


# path -> (verdict, its file's facts) -> the verdict as the policy judged it
PolicyMemo = ByIdentity[FileVerdict, tuple[ElfFacts | None, FileVerdict]]


def _remembered(memo: PolicyMemo, judge: _Judge, verdict: FileVerdict) -> FileVerdict:
    """judge.file(verdict), from `memo` when it holds (the same verdict and facts): a
    tenth to a fifth of each audited image of a Debian base (benchmarks/audit.py)."""
    facts = judge.facts(verdict.path)
    if facts is not None and judge.policy.rpath.checked() and any(rpath.elements(facts)):
        return judge.file(verdict)  # rpath_findings looks at the image's directories
    then, judged = memo.get(verdict.path, verdict, lambda v: (facts, judge.file(v)))
    return judged if then is facts else judge.file(verdict)


def selected(path: str, policy: Policy) -> bool:
    """True when the policy judges the file at `path` (include, then exclude)."""
    if policy.include and not path_matches(path, policy.include):
        return False
    return not path_matches(path, policy.exclude)


@dataclasses.dataclass(frozen=True)
class _Judge:
    policy: Policy
    today: date
    rootfs: RootFS | None
    fail_on: Severity = Severity.ERROR

    def facts(self, path: str | None) -> ElfFacts | None:
        if self.rootfs is None or path is None:
            return None
        entry = self.rootfs.entries.get(path) or paths.lookup(self.rootfs, path)
        return entry.elf if entry is not None else None

    def file(self, verdict: FileVerdict) -> FileVerdict:
        """One verdict under the policy, its status recomputed."""
        findings = self.without_host_provided(verdict.findings)
        findings += self.policy_findings(verdict.path)
        settled = self.settle_all(findings, verdict.path)
        status = recomputed(verdict.status, settled)
        fails = any(severity_at_least(f.severity, self.fail_on) for f in settled)
        gate = "fail" if fails else "pass"
        return dataclasses.replace(verdict, findings=settled, status=status, gate=gate)

    def policy_findings(self, path: str) -> list[Finding]:
        facts = self.facts(path)
        if facts is None:
            return []
        found = ceiling_findings(path, facts, self.policy.max_versions, Severity.ERROR)
        if self.policy.rpath.checked():
            found += rpath_findings(path, facts, self.policy.rpath, self.rootfs)
        return found

    def without_host_provided(self, findings: Iterable[Finding]) -> list[Finding]:
        """Drop missing libraries the host provides, and the undefined symbols of objects
        that need one of them (the host's library is where ld.so would find them), unless
        the symbol's version names another library."""
        provided = self.policy.host_provided
        if not provided:
            return list(findings)
        findings = list(findings)
        absent = {f.subject for f in findings if _is_provided_missing(f, provided)}
        return [f for f in findings if not self.host_covers(f, provided, absent)]

    def host_covers(self, finding: Finding, provided: tuple[str, ...], absent: set[str]) -> bool:
        if finding.kind == FindingKind.MISSING_LIBRARY:
            return finding.subject in absent
        if finding.kind != FindingKind.UNDEFINED_SYMBOL:
            return False
        facts = self.facts(finding.required_by)
        if facts is None or not absent.intersection(facts.needed):
            return False
        files = {u.version_file for u in facts.undefined if u.name == finding.subject}
        return any(f is None or f in absent for f in files)

    def settle_all(self, findings: Iterable[Finding], path: str | None) -> tuple[Finding, ...]:
        settled = (self.settle(f, path) for f in findings)
        return tuple(f for f in settled if f is not None)

    def settle(self, finding: Finding, path: str | None) -> Finding | None:
        """The finding at the policy's level and waived if a waiver says so; None when off."""
        level = self.policy.level_for(finding)
        if level == OFF:
            return None
        if level is not None:
            finding = dataclasses.replace(finding, severity=Severity(level))
        return waive(finding, matching_waivers(finding, path, self.policy.waivers), self.today)


def _is_provided_missing(finding: Finding, provided: tuple[str, ...]) -> bool:
    return finding.kind == FindingKind.MISSING_LIBRARY and any(
        fnmatch.fnmatchcase(finding.subject, pattern) for pattern in provided
    )


def matching_waivers(finding: Finding, path: str | None, waivers: Iterable[Waiver]) -> list[Waiver]:
    """The waivers that name this finding: its kind, its subject, and the judged file or
    the object whose need it is."""
    where = [p for p in (path, finding.required_by) if p is not None]
    return [
        w
        for w in waivers
        if (w.kind is None or w.kind == finding.kind)
        and (w.subject is None or fnmatch.fnmatchcase(finding.subject, w.subject))
        and any(path_matches(p, (w.path,)) for p in where)
    ]


def waive(finding: Finding, waivers: list[Waiver], today: date) -> Finding:
    """Waived by the first waiver still in force; else the finding says which expired."""
    active = next((w for w in waivers if not w.expired(today)), None)
    if active is not None:
        until = f", until {active.expires.isoformat()}" if active.expires else ""
        return dataclasses.replace(
            finding,
            severity=Severity.NOTE,
            message=f"waived ({active.reason}{until}): {finding.message}",
            waiver=active.reason,
        )
    if not waivers:
        return finding
    notes = "; ".join(f"waiver expired on {w.expires}: {w.reason}" for w in waivers)
    return dataclasses.replace(finding, message=f"{finding.message} ({notes})")


def recomputed(status: Status, findings: tuple[Finding, ...]) -> Status:
    """The status from the findings that remain; statuses that findings do not decide
    (static, foreign-arch, skipped) stay, as does a missing interpreter still reported."""
    if status in _RECOMPUTED:
        return status_of(findings)
    if status == Status.INTERPRETER_MISSING:
        still = any(f.kind == FindingKind.MISSING_INTERPRETER and f.fatal_at for f in findings)
        return status if still else status_of(findings)
    return status
