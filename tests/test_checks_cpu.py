"""Verdicts that depend on the CPU (issue 9, checks.cpu): judged per CPU model, combined into
one verdict with a cpu-dependent finding and the worst status."""

from __future__ import annotations

from imagescan.checks.cpu import cpu_sensitive, outcome, with_cpu_findings
from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.rootfs.model import Entry, EntryType, RootFS

APP = "/opt/HW/bin/app"
MISSING = Finding(
    FindingKind.MISSING_SYMBOL_VERSION,
    Severity.ERROR,
    "HW_2",
    "/opt/HW/lib/libhw.so.1: version `HW_2' not found (required by /opt/HW/bin/app)",
    fatal_at=FatalAt.STARTUP,
)


def verdict(status: Status, *findings: Finding) -> FileVerdict:
    return FileVerdict(APP, "pie-exec", status, findings=findings)


def cpu_findings(v: FileVerdict) -> list[Finding]:
    return [f for f in v.findings if f.kind == FindingKind.CPU_DEPENDENT]


def test_agreeing_cpus_change_nothing() -> None:
    ok = {APP: verdict(Status.OK)}
    assert with_cpu_findings("x86-64", ok, [("x86-64-v3", ok), ("haswell", ok)]) == ok


def test_fails_on_the_baseline_only_is_a_warning_beside_the_failure() -> None:
    """The baseline verdict already fails: the finding explains, it adds no failure."""
    baseline = {APP: verdict(Status.BROKEN, MISSING)}
    fine = {APP: verdict(Status.OK)}
    got = with_cpu_findings("x86-64", baseline, [("x86-64-v2", fine), ("x86-64-v3", fine)])[APP]
    assert got.status == Status.BROKEN
    (finding,) = cpu_findings(got)
    assert finding.fatal_at is None and finding.severity == Severity.WARNING
    assert "starts on x86-64-v2, x86-64-v3; fails on x86-64" in finding.message
    assert "version `HW_2' not found" in finding.message


def test_fails_on_a_better_cpu_only_makes_the_file_broken() -> None:
    """Never a false ok: the baseline starts it, a v3 CPU loads a broken copy."""
    baseline = {APP: verdict(Status.OK)}
    broken = {APP: verdict(Status.BROKEN, MISSING)}
    got = with_cpu_findings("x86-64", baseline, [("x86-64-v3", broken)])[APP]
    assert got.status == Status.BROKEN
    (finding,) = cpu_findings(got)
    assert finding.fatal_at == FatalAt.STARTUP and finding.severity == Severity.ERROR
    assert "starts on x86-64; fails on x86-64-v3" in finding.message


def test_outcome_ignores_messages_and_warnings() -> None:
    warning = Finding(FindingKind.FRAGILE_DEPENDENCY, Severity.WARNING, "libx.so", "fragile")
    assert outcome(verdict(Status.OK)) == outcome(verdict(Status.OK, warning))
    assert outcome(verdict(Status.OK)) != outcome(verdict(Status.BROKEN, MISSING))


def _rootfs(*paths: str, runpath: str | None = None) -> RootFS:
    entries = {}
    for path in paths:
        facts = None
        if runpath:
            facts = ElfFacts(64, True, 62, 0, 0, 3, FileKind.PIE_EXEC, runpath=runpath)
        entries[path] = Entry(path, EntryType.FILE, 0, elf=facts)
    return RootFS(entries, {})


def test_only_images_with_cpu_dependent_paths_are_judged_per_cpu() -> None:
    assert not cpu_sensitive(_rootfs("/usr/lib/x86_64-linux-gnu/libc.so.6"))
    assert cpu_sensitive(_rootfs("/opt/HW/lib/glibc-hwcaps/x86-64-v3/libhw.so.1"))
    assert cpu_sensitive(_rootfs("/usr/lib/tls/libfoo.so.1"))
    assert cpu_sensitive(_rootfs("/tls/libfoo.so.1"))
    # a directory's name only: not a file named so, not a longer name beginning with it
    assert not cpu_sensitive(_rootfs("/usr/lib/x86_64", "/usr/lib/x86_64-linux-gnu/libm.so.6"))
    assert not cpu_sensitive(_rootfs("/opt/mytls/lib/libfoo.so.1"))
    assert cpu_sensitive(_rootfs("/opt/app", runpath="/opt/$PLATFORM/lib"))
