"""Since when is an image broken? Its recorded audit outcomes, oldest first -> a verdict
(issue 12): broken since (the run where the current problem appeared, and the manifest
digest that run saw), fixed since, flapping. Pure functions; the store gives the outcomes.

Runs where the image could not be scanned say nothing either way: they neither end a broken
streak nor count as fixed ("never a false ok").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagescan.store.model import PastOutcome

FLAP_WINDOW = 10  # scanned runs looked at for flapping
FLAP_CHANGES = 3  # broken/ok changes in the window that make an image flapping


@dataclass(frozen=True)
class Since:
    """The run something started in, and the manifest digest that run scanned."""

    run_id: str
    started: float
    manifest_digest: str | None

    def to_dict(self) -> dict[str, Any]:
        when = datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds")
        return {"run": self.run_id, "time": when, "manifest_digest": self.manifest_digest}


@dataclass(frozen=True)
class ImageHistory:
    """One image's history. `state`: broken, ok, not-scanned (last run failed and no
    earlier scan), unknown (never audited)."""

    reference: str
    state: str
    runs: int
    broken_since: Since | None = None
    files_since: dict[str, Since] = field(default_factory=dict)
    fixed_since: Since | None = None
    changes: int = 0  # broken <-> ok changes in the last FLAP_WINDOW scanned runs

    @property
    def flapping(self) -> bool:
        return self.changes >= FLAP_CHANGES


def image_history(reference: str, past: Sequence[PastOutcome]) -> ImageHistory:
    """The verdict over `past` (this reference's outcomes, oldest first)."""
    scanned = [p for p in past if p.outcome.summary is not None]
    if not scanned:
        return ImageHistory(reference, "not-scanned" if past else "unknown", len(past))
    broken = [set(_summary(p).broken) for p in scanned]
    changes = _changes([bool(b) for b in broken[-FLAP_WINDOW:]])
    if broken[-1]:
        files = {f: _since(scanned, broken, f) for f in sorted(broken[-1])}
        first = min(files.values(), key=lambda s: s.started)
        return ImageHistory(reference, "broken", len(past), first, files, None, changes)
    fixed = _fixed_since(scanned, broken)
    return ImageHistory(reference, "ok", len(past), fixed_since=fixed, changes=changes)


def _summary(p: PastOutcome) -> Any:
    assert p.outcome.summary is not None
    return p.outcome.summary


def _at(p: PastOutcome) -> Since:
    return Since(p.run_id, p.started, _summary(p).manifest_digest)


def _since(scanned: Sequence[PastOutcome], broken: Sequence[set[str]], path: str) -> Since:
    """The first run of the streak of runs, up to the last, where `path` is broken."""
    start = len(scanned) - 1
    while start > 0 and path in broken[start - 1]:
        start -= 1
    return _at(scanned[start])


def _fixed_since(scanned: Sequence[PastOutcome], broken: Sequence[set[str]]) -> Since | None:
    """The first run of the clean streak that ends the history, if something broke before."""
    start = len(scanned) - 1
    while start > 0 and not broken[start - 1]:
        start -= 1
    return _at(scanned[start]) if start > 0 else None


def _changes(states: Sequence[bool]) -> int:
    return sum(1 for a, b in itertools.pairwise(states) if a != b)


def history_dict(item: ImageHistory) -> dict[str, Any]:
    """The JSON form (`-o json`)."""
    return {
        "reference": item.reference,
        "state": item.state,
        "runs": item.runs,
        "broken_since": item.broken_since.to_dict() if item.broken_since else None,
        "files": {path: since.to_dict() for path, since in item.files_since.items()},
        "fixed_since": item.fixed_since.to_dict() if item.fixed_since else None,
        "flapping": item.flapping,
        "changes": item.changes,
    }


def history_line(doc: dict[str, Any]) -> str:
    """One line per image, from its `history_dict` (so that text and JSON say the same)."""
    ref, flap = doc["reference"], ""
    if doc["flapping"]:
        flap = f", flapping ({doc['changes']} changes in the last {FLAP_WINDOW} scans)"
    if doc["broken_since"] is not None:
        since = _text(doc["broken_since"])
        return f"{ref}: broken since {since}, {len(doc['files'])} files{flap}"
    if doc["fixed_since"] is not None:
        return f"{ref}: ok, fixed since {_text(doc['fixed_since'])}{flap}"
    if doc["state"] == "ok":
        return f"{ref}: ok, never broken in {doc['runs']} recorded runs"
    return f"{ref}: {doc['state']} ({doc['runs']} recorded runs)"


def _text(since: dict[str, Any]) -> str:
    digest = since["manifest_digest"] or "no digest"
    return f"{since['time']} (run {since['run'][:12]}, {digest})"


def history_text(docs: Sequence[dict[str, Any]]) -> list[str]:
    """The text form of `history_dict`s: a heading, one line per image."""
    if not docs:
        return []
    return ["history:", *(f"  {line}" for line in map(history_line, docs))]
