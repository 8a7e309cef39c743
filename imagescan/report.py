"""The report of one scan: image facts, one verdict per ELF file, skipped files, summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

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

    def broken(self) -> tuple[FileVerdict, ...]:
        bad = (Status.BROKEN, Status.BROKEN_LAZY, Status.INTERPRETER_MISSING)
        return tuple(v for v in self.files if v.status in bad)


def severity_at_least(severity: Severity, threshold: Severity) -> bool:
    rank = {Severity.NOTE: 0, Severity.WARNING: 1, Severity.ERROR: 2}
    return rank[severity] >= rank[threshold]
