"""Verdicts that depend on the CPU (issue 9): glibc-hwcaps subdirectories, `$PLATFORM` and
the legacy hwcaps subdirectories make the loader pick different files on different CPUs.

When no CPU is named, each file is judged on the baseline and on every other CPU model of
the architecture; a file whose outcome differs gets one `cpu-dependent` finding saying where
it starts and where it fails, and the worst outcome decides its status (a gate must not
pass what fails on some CPU)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.elf.model import ElfFacts
from imagescan.rootfs.model import Entry, RootFS

# Path components that only a CPU-dependent search looks into (glibc-hwcaps and the legacy
# hwcaps subdirectories of dl-hwcaps.c); without them, and without $PLATFORM in a path,
# every CPU gives the same verdict and the extra judgements are skipped.
_CPU_DIRS = ("glibc-hwcaps", "tls", "haswell", "xeon_phi", "avx512_1", "x86_64", "i686")
# One of them as a directory of a path (between two slashes).
_CPU_DIR = re.compile("/(?:" + "|".join(map(re.escape, _CPU_DIRS)) + ")/")
_RANK = {Status.OK: 0, Status.BROKEN_LAZY: 1, Status.BROKEN: 2}

Outcome = tuple[str, frozenset[tuple[str, str]]]  # status, fatal (kind, subject) pairs


def cpu_sensitive(rootfs: RootFS) -> bool:
    """Whether any search of this image can depend on the CPU (sensitive_entry of any
    entry)."""
    # The paths searched as one text: a call per entry of the XL image's 59,000 cost 0.05 s
    # of every analysis (issue 14). No directory name spans the newline between two paths.
    if _CPU_DIR.search("\n".join(rootfs.entries)):
        return True
    return any(_sensitive_facts(e.elf) for e in rootfs.entries.values() if e.elf is not None)


def sensitive_entry(path: str, entry: Entry) -> bool:
    """Whether this one entry makes the image's searches depend on the CPU (a function of
    the path and the entry alone: checks.reuse looks only at the changed ones)."""
    return bool(_CPU_DIR.search(path)) or (entry.elf is not None and _sensitive_facts(entry.elf))


def _sensitive_facts(facts: ElfFacts) -> bool:
    """$PLATFORM in the file's RPATH, RUNPATH or a DT_NEEDED name."""
    paths = (facts.rpath or "") + (facts.runpath or "")
    return "PLATFORM" in paths or any("PLATFORM" in n for n in facts.needed)


def outcome(verdict: FileVerdict) -> Outcome:
    """What decides whether two CPUs agree on a file."""
    fatal = frozenset((str(f.kind), f.subject) for f in verdict.findings if f.fatal_at)
    return str(verdict.status), fatal


def with_cpu_findings(
    baseline: str,
    verdicts: Mapping[str, FileVerdict],
    others: Sequence[tuple[str, Mapping[str, FileVerdict]]],
) -> dict[str, FileVerdict]:
    """The baseline's verdicts, each file that another CPU judges differently given a
    `cpu-dependent` finding (and the worst status among the CPUs)."""
    updated = dict(verdicts)
    for path, verdict in verdicts.items():
        per_cpu = [(baseline, verdict)] + [(n, v[path]) for n, v in others if path in v]
        if len({outcome(v) for _, v in per_cpu}) > 1:
            updated[path] = _combined(verdict, per_cpu)
    return updated


def _combined(verdict: FileVerdict, per_cpu: Sequence[tuple[str, FileVerdict]]) -> FileVerdict:
    worst_cpu, worst = max(per_cpu, key=lambda item: _RANK.get(item[1].status, -1))
    starts = [name for name, v in per_cpu if v.status == Status.OK]
    fails = [(name, v) for name, v in per_cpu if v.status != Status.OK]
    why = next((f.message for f in worst.findings if f.fatal_at), str(worst.status))
    message = (
        f"{verdict.path}: the verdict depends on the CPU: starts on "
        f"{', '.join(starts) or 'no CPU model'}; fails on {', '.join(n for n, _ in fails)}"
        f" ({worst_cpu}: {why})"
    )
    # Fatal only where the baseline verdict does not already carry the failure.
    adds_failure = _RANK.get(worst.status, -1) > _RANK.get(verdict.status, -1)
    fatal = _fatal_at(worst) if adds_failure else None
    finding = Finding(
        FindingKind.CPU_DEPENDENT,
        Severity.ERROR if fatal == FatalAt.STARTUP else Severity.WARNING,
        verdict.path,
        message,
        fatal_at=fatal,
        required_by=verdict.path,
    )
    status = worst.status if adds_failure else verdict.status
    return dataclasses.replace(verdict, status=status, findings=(*verdict.findings, finding))


def _fatal_at(verdict: FileVerdict) -> FatalAt | None:
    whens = {f.fatal_at for f in verdict.findings if f.fatal_at}
    return FatalAt.STARTUP if FatalAt.STARTUP in whens else next(iter(whens), None)
