"""The report of one scan: image facts, one verdict per ELF file, skipped files, summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from imagescan import __version__
from imagescan.checks.model import FileVerdict, Finding, Severity, Status
from imagescan.hints.model import Hints
from imagescan.linkgraph import LinkGraph
from imagescan.rootfs.model import Skipped

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ImageInfo:
    """What was scanned."""

    reference: str
    source: str
    manifest_digest: str | None
    architecture: str
    os: str
    layers: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Report:
    """Everything the renderers need; nothing they must compute again."""

    image: ImageInfo
    files: tuple[FileVerdict, ...]
    skipped: tuple[Skipped, ...] = ()
    image_findings: tuple[Finding, ...] = ()
    tool_version: str = __version__
    policy: str | None = None  # the policy applied (a built-in name or a file), if any
    config_file: str | None = None  # the .imagescan.yaml whose defaults were used, if any
    links: LinkGraph | None = None  # the loader's link graph, for SBOMs (None: not built)
    hints: Hints | None = None  # provenance and fix hints (issue 11), None when not made

    def status_counts(self) -> dict[str, int]:
        counts = Counter(str(v.status) for v in self.files)
        return {str(s): counts.get(str(s), 0) for s in Status}

    def max_severity(self) -> Severity | None:
        """The worst severity of any finding, None when there is none."""
        order = [Severity.ERROR, Severity.WARNING, Severity.NOTE]
        present = {f.severity for v in self.files for f in v.findings}
        present |= {f.severity for f in self.image_findings}
        return next((s for s in order if s in present), None)

    def not_judged(self) -> tuple[tuple[str, str], ...]:
        """(path, reason) of every file not judged: files that could not be read, and ELF
        files the loader emulation did not judge (status skipped). "Skipped" means these."""
        items = [(s.path, s.reason) for s in self.skipped]
        items += [
            (v.path, v.note or "not judged") for v in self.files if v.status == Status.SKIPPED
        ]
        return tuple(items)

    def broken(self) -> tuple[FileVerdict, ...]:
        """Files the loader fails (a waived one keeps the loader's status, issue 10)."""
        bad = (Status.BROKEN, Status.BROKEN_LAZY, Status.INTERPRETER_MISSING)
        return tuple(v for v in self.files if v.status in bad)

    def failing(self) -> tuple[FileVerdict, ...]:
        """The broken files the policy does not pass (its gate: waivers, --fail-on)."""
        return tuple(v for v in self.broken() if v.gate != "pass")


def severity_at_least(severity: Severity, threshold: Severity) -> bool:
    rank = {Severity.NOTE: 0, Severity.WARNING: 1, Severity.ERROR: 2}
    return rank[severity] >= rank[threshold]


# What one file may contribute to a report (issue 15: one 1.1 MB file made 4.19 GB of text,
# 2,000 DT_NEEDED entries sharing one 1 MiB string). Far above any real program's count.
MAX_FINDINGS_PER_FILE = 200
MAX_SYMBOLS_PER_FINDING = 50
MAX_NAMES_PER_FILE = 500  # DT_NEEDED and resolved entries of one file
MAX_STRING = 1024  # characters of one string taken from the image


def cut_string(text: str) -> str:
    """`text` itself, or its first MAX_STRING characters and how many more there were."""
    if len(text) <= MAX_STRING:
        return text
    return f"{text[:MAX_STRING]}... ({len(text) - MAX_STRING} more characters)"


def _cut_optional(text: str | None) -> str | None:
    return None if text is None else cut_string(text)


def bounded_finding(finding: Finding) -> Finding:
    """The finding with its strings and its symbol list within bounds; `symbols_cut` counts
    the symbols left out. A finding already within them is itself (a report shares the
    analysis' values instead of copying every one: issue 12)."""
    if _finding_within(finding):
        return finding
    symbols = finding.symbols[:MAX_SYMBOLS_PER_FINDING]
    return replace(
        finding,
        subject=cut_string(finding.subject),
        message=cut_string(finding.message),
        required_by=_cut_optional(finding.required_by),
        provider=_cut_optional(finding.provider),
        symbols=tuple(cut_string(s) for s in symbols),
        symbols_cut=finding.symbols_cut + len(finding.symbols) - len(symbols),
        tried=tuple((cut_string(p), r) for p, r in finding.tried[:MAX_NAMES_PER_FILE]),
    )


def _finding_within(finding: Finding) -> bool:
    if len(finding.symbols) > MAX_SYMBOLS_PER_FINDING or len(finding.tried) > MAX_NAMES_PER_FILE:
        return False
    texts = (finding.subject, finding.message, finding.required_by, finding.provider)
    return _short(texts) and _short(finding.symbols) and _short(p for p, _ in finding.tried)


def _short(texts: Iterable[str | None]) -> bool:
    return all(text is None or len(text) <= MAX_STRING for text in texts)


def _verdict_within(verdict: FileVerdict) -> bool:
    counts = len(verdict.findings), len(verdict.needed), len(verdict.resolved)
    if counts[0] > MAX_FINDINGS_PER_FILE or max(counts[1:]) > MAX_NAMES_PER_FILE:
        return False
    texts = (verdict.path, verdict.interpreter, *verdict.needed, *verdict.resolved)
    return (
        _short(texts)
        and _short(verdict.resolved.values())
        and all(_finding_within(f) for f in verdict.findings)
    )


def bounded_verdict(verdict: FileVerdict) -> FileVerdict:
    """What one file contributes, within bounds: root causes are kept before their fallout,
    `findings_cut` counts the findings left out. A verdict already within them is itself."""
    if _verdict_within(verdict):
        return verdict
    order = sorted(
        range(len(verdict.findings)), key=lambda i: verdict.findings[i].caused_by is not None
    )
    kept = sorted(order[:MAX_FINDINGS_PER_FILE])
    needed = verdict.needed[:MAX_NAMES_PER_FILE]
    resolved = dict(list(verdict.resolved.items())[:MAX_NAMES_PER_FILE])
    return replace(
        verdict,
        path=cut_string(verdict.path),
        interpreter=_cut_optional(verdict.interpreter),
        needed=tuple(cut_string(n) for n in needed),
        resolved={cut_string(k): _cut_optional(v) for k, v in resolved.items()},
        findings=tuple(bounded_finding(verdict.findings[i]) for i in kept),
        findings_cut=verdict.findings_cut + len(verdict.findings) - len(kept),
    )
