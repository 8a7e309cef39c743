"""`imagescan audit`: many images, one summary (DESIGN.md "A nightly audit").

Each image is scanned and judged on its own; an image that cannot be read is reported with
its one-line error and the audit goes on. Shared base layers are read once when a layer
cache is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imagescan.checks.model import Status
from imagescan.report import Report

_BAD = (Status.BROKEN, Status.INTERPRETER_MISSING)


@dataclass(frozen=True)
class ImageResult:
    """One audited image: its report, or why it could not be read."""

    reference: str
    report: Report | None = None
    error: str | None = None

    @property
    def broken(self) -> tuple[str, ...]:
        """Files that fail at start."""
        if self.report is None:
            return ()
        return tuple(v.path for v in self.report.files if v.status in _BAD)

    @property
    def lazy(self) -> tuple[str, ...]:
        if self.report is None:
            return ()
        return tuple(v.path for v in self.report.files if v.status == Status.BROKEN_LAZY)


def audit_lines(results: Iterable[ImageResult]) -> list[str]:
    """One line per image, its broken files indented below, a closing summary line."""
    lines: list[str] = []
    results = list(results)
    for result in results:
        if result.error is not None:
            lines.append(f"{result.reference}: not scanned: {result.error}")
            continue
        assert result.report is not None
        lines.append(
            f"{result.reference}: {len(result.report.files)} ELF files, "
            f"{len(result.broken)} broken, {len(result.lazy)} broken-lazy"
        )
        lines += [f"  broken: {path}" for path in result.broken]
    broken = sum(1 for r in results if r.broken)
    failed = sum(1 for r in results if r.error is not None)
    lines.append(
        f"{len(results)} images: {broken} with programs that will not start, {failed} not scanned"
    )
    return lines


def audit_dict(results: Iterable[ImageResult]) -> dict[str, Any]:
    """The JSON form: each image's summary and broken files (full reports: `scan -o json`)."""
    images: list[dict[str, Any]] = []
    for result in results:
        entry: dict[str, Any] = {"reference": result.reference}
        if result.error is not None:
            entry["error"] = result.error
        else:
            assert result.report is not None
            entry["manifest_digest"] = result.report.image.manifest_digest
            entry["by_status"] = result.report.status_counts()
            entry["broken"] = list(result.broken)
            entry["broken_lazy"] = list(result.lazy)
        images.append(entry)
    return {"schema_version": 1, "images": images}
