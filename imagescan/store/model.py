"""What the store keeps besides layer facts: each audited image's outcome, per run.

An outcome is small (per-file status, the worst severity, the manifest digest): enough for
the audit's summary, for history ("broken since", "fixed since") and for reusing the result
of an image whose bytes and judging did not change. It is written as JSON and checked on
the way back like the layer facts.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from imagescan.checks.model import Severity, Status
from imagescan.rootfs.model import LayerIndex
from imagescan.store.codec import EntryError

BAD = (Status.BROKEN, Status.INTERPRETER_MISSING)


class PackedFiles(Mapping[str, Status]):
    """Path -> status, kept compressed: an audit holds one per image until its end, and
    750 paths as a dict cost 75 KB, so 180 images grew the audit by 14 MiB (issue 8)."""

    __slots__ = ("_count", "_data")

    def __init__(self, files: Mapping[str, Status]) -> None:
        # JSON: a path from an image may hold any character but NUL, newlines included.
        pairs = [[path, status.value] for path, status in files.items()]
        self._data = zlib.compress(json.dumps(pairs).encode(), 1)
        self._count = len(files)

    def _items(self) -> Iterator[tuple[str, Status]]:
        for path, status in json.loads(zlib.decompress(self._data)):
            yield path, Status(status)

    def __getitem__(self, path: str) -> Status:
        """One lookup decodes the whole: callers iterate `items()` instead."""
        for known, status in self._items():
            if known == path:
                return status
        raise KeyError(path)

    def __iter__(self) -> Iterator[str]:
        return (path for path, _ in self._items())

    def __len__(self) -> int:
        return self._count

    def items(self) -> Iterator[tuple[str, Status]]:  # type: ignore[override]
        return self._items()

    def values(self) -> Iterator[Status]:  # type: ignore[override]
        return (status for _, status in self._items())


@dataclass(frozen=True)
class ImageSummary:
    """One image as judged: `files` maps each ELF path to its status; `worst` is the most
    severe finding's severity (None: no finding)."""

    manifest_digest: str | None
    files: Mapping[str, Status]
    worst: Severity | None = None

    @property
    def broken(self) -> tuple[str, ...]:
        """Files that fail at start, sorted."""
        return tuple(sorted(p for p, s in self.files.items() if s in BAD))

    @property
    def lazy(self) -> tuple[str, ...]:
        return tuple(sorted(p for p, s in self.files.items() if s == Status.BROKEN_LAZY))

    def status_counts(self) -> dict[str, int]:
        counts = {str(s): 0 for s in Status}
        for status in self.files.values():
            counts[str(status)] += 1
        return counts

    def to_json(self) -> str:
        # items(), not dict(files): a dict of a mapping looks each key up one at a time
        doc = {"manifest_digest": self.manifest_digest, "files": dict(self.files.items())}
        return json.dumps({**doc, "worst": self.worst}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageSummary:
        """The summary back; EntryError when the text is not one."""
        try:
            doc = json.loads(text)
            files = {str(p): Status(s) for p, s in _object(doc["files"]).items()}
            worst = None if doc["worst"] is None else Severity(doc["worst"])
            digest = doc["manifest_digest"]
        except (ValueError, KeyError, TypeError) as err:
            raise EntryError("not an image summary") from err
        if digest is not None and not isinstance(digest, str):
            raise EntryError("not an image summary")
        return cls(digest, files, worst)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


@dataclass(frozen=True)
class Outcome:
    """What one run said of one image: its summary, or the error that stopped it."""

    reference: str
    position: int  # in the run's image list: merge and history keep the user's order
    summary: ImageSummary | None = None
    error: str | None = None
    attempts: int = 1  # > 1: a worker died or failed and Dask ran the image again
    result_key: str | None = None  # what the result depends on; None: never reused


@dataclass(frozen=True)
class Run:
    """One audit run, as recorded."""

    run_id: str
    started: float  # seconds since the epoch, UTC
    outcomes: tuple[Outcome, ...] = ()


@dataclass(frozen=True)
class PastOutcome:
    """An image's outcome in a past run, for history."""

    run_id: str
    started: float
    outcome: Outcome


@dataclass(frozen=True)
class Pruned:
    layers: int
    bytes: int
    reports: int = 0  # whole scan reports (issue 14)


@dataclass
class StoreStats:
    """What a store did during one session (hits, and notes on entries it ignored)."""

    hits: int = 0
    notes: list[str] = field(default_factory=list)


class Store(Protocol):
    """Layer facts and audit results, one interface for SQLite and PostgreSQL."""

    stats: StoreStats
    location: str
    facts_version: str  # the version layer facts are keyed by (imagescan.store.codec)

    def get(self, diff_id: str) -> LayerIndex | None: ...

    def put(self, layer: LayerIndex) -> None: ...

    def retain(self, diff_ids: Sequence[str]) -> None: ...

    def record(self, run: Run) -> None: ...

    def reusable(self, result_key: str) -> ImageSummary | None: ...

    def recorded_report(self, result_key: str, version: str) -> bytes | None: ...

    def record_report(self, result_key: str, version: str, data: bytes | bytearray) -> None: ...

    def history(self, references: Sequence[str], limit: int) -> list[PastOutcome]: ...

    def prune(self, older_than: float | None, max_bytes: int | None) -> Pruned: ...

    def close(self) -> None: ...
