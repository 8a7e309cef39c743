"""What breaks and what is fixed between two images (`imagescan diff OLD NEW`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagescan.checks.model import FileVerdict, Finding, Status
from imagescan.report import Report

_BAD = (Status.BROKEN, Status.BROKEN_LAZY, Status.INTERPRETER_MISSING)
_RANK = {Status.BROKEN: 3, Status.INTERPRETER_MISSING: 3, Status.BROKEN_LAZY: 2}


@dataclass(frozen=True)
class Change:
    """One file whose verdict differs; `old`/`new` None when the file is absent there."""

    path: str
    old: FileVerdict | None
    new: FileVerdict | None
    added: tuple[Finding, ...] = ()
    removed: tuple[Finding, ...] = ()

    @property
    def worse(self) -> bool:
        return _rank(self.new) > _rank(self.old)

    @property
    def better(self) -> bool:
        return _rank(self.new) < _rank(self.old)


@dataclass(frozen=True)
class ImageDiff:
    """Changes ordered: newly broken first, then fixed, then the rest."""

    broken: tuple[Change, ...]
    fixed: tuple[Change, ...]
    changed: tuple[Change, ...]


def _rank(verdict: FileVerdict | None) -> int:
    return 0 if verdict is None else _RANK.get(verdict.status, 0)


def _key(finding: Finding) -> tuple[str, str, str | None, str | None]:
    return (str(finding.kind), finding.subject, finding.required_by, finding.version)


def _change(path: str, old: FileVerdict | None, new: FileVerdict | None) -> Change | None:
    before = {_key(f): f for f in (old.findings if old else ())}
    after = {_key(f): f for f in (new.findings if new else ())}
    added = tuple(f for k, f in after.items() if k not in before)
    removed = tuple(f for k, f in before.items() if k not in after)
    same_status = (old.status if old else None) == (new.status if new else None)
    if same_status and not added and not removed:
        return None
    if old is None and new is not None and new.status not in _BAD and not added:
        return None  # a new file that is fine is not news
    return Change(path, old, new, added, removed)


def diff_reports(old: Report, new: Report) -> ImageDiff:
    """Compare two reports file by file (by path inside the image)."""
    before = {v.path: v for v in old.files}
    after = {v.path: v for v in new.files}
    changes = [
        c
        for p in sorted(before.keys() | after.keys())
        if (c := _change(p, before.get(p), after.get(p))) is not None
    ]
    return ImageDiff(
        tuple(c for c in changes if c.worse),
        tuple(c for c in changes if c.better),
        tuple(c for c in changes if not c.worse and not c.better),
    )


def diff_lines(result: ImageDiff) -> list[str]:
    """The human form: one line per file, its new findings indented below."""
    lines: list[str] = []
    for title, changes in (
        ("newly broken", result.broken),
        ("fixed", result.fixed),
        ("changed", result.changed),
    ):
        for change in changes:
            old = change.old.status if change.old else "absent"
            new = change.new.status if change.new else "absent"
            lines.append(f"{title}: {change.path}  {old} -> {new}")
            lines += [f"  + {f.message}" for f in change.added]
            lines += [f"  - {f.message}" for f in change.removed if title != "changed"]
    lines.append(
        f"{len(result.broken)} newly broken, {len(result.fixed)} fixed, "
        f"{len(result.changed)} otherwise changed"
    )
    return lines


def diff_dict(result: ImageDiff) -> dict[str, Any]:
    """`diff -o json`: each change with both statuses and the findings added or removed."""

    def change(c: Change) -> dict[str, Any]:
        return {
            "path": c.path,
            "old": str(c.old.status) if c.old else None,
            "new": str(c.new.status) if c.new else None,
            "added": [f.message for f in c.added],
            "removed": [f.message for f in c.removed],
        }

    return {
        "schema_version": 1,
        "newly_broken": [change(c) for c in result.broken],
        "fixed": [change(c) for c in result.fixed],
        "changed": [change(c) for c in result.changed],
    }
