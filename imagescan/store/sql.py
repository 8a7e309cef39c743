"""The store over SQL: one schema and one set of queries for SQLite and PostgreSQL.

The schema is versioned (`meta.schema_version`) and migrated on open, under a lock so that
several workers opening one store at once migrate it once. Layer facts are keyed by
diff_id + the facts version (`Codec.version`); an entry that does not decode is ignored,
noted, and overwritten when the layer has been read again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from imagescan.errors import UsageError
from imagescan.heap import trim_heap
from imagescan.rootfs.model import LayerIndex
from imagescan.store.codec import Codec, EntryError
from imagescan.store.model import (
    ImageSummary,
    Outcome,
    PastOutcome,
    Pruned,
    Run,
    StoreStats,
)

# Version 1 replaced the pickle cache of imagescan <= 0.1 (a `layers` table): its entries
# are dropped unread, so that a planted pickle can never be loaded (issue 15).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "DROP TABLE IF EXISTS layers",
        "CREATE TABLE layer_facts (diff_id TEXT NOT NULL, version TEXT NOT NULL, "
        "data {blob} NOT NULL, size BIGINT NOT NULL, created {real} NOT NULL, "
        "used {real} NOT NULL, PRIMARY KEY (diff_id, version))",
        "CREATE TABLE audit_runs (run_id TEXT PRIMARY KEY, started {real} NOT NULL)",
        "CREATE TABLE audit_images (run_id TEXT NOT NULL, reference TEXT NOT NULL, "
        "position INTEGER NOT NULL, summary TEXT, error TEXT, attempts INTEGER NOT NULL, "
        "result_key TEXT, PRIMARY KEY (run_id, reference))",
        "CREATE INDEX audit_images_reference ON audit_images (reference)",
        "CREATE INDEX audit_images_result_key ON audit_images (result_key)",
    ),
    # Version 2: whole scan reports by result key (issue 14: a rescan of the same bytes
    # with the same settings reads one entry, not every layer's facts and the analysis).
    (
        "CREATE TABLE scan_reports (result_key TEXT NOT NULL, version TEXT NOT NULL, "
        "data {blob} NOT NULL, size BIGINT NOT NULL, created {real} NOT NULL, "
        "used {real} NOT NULL, PRIMARY KEY (result_key, version))",
    ),
)
# The tables of entries that pruning drops by age and size, and their key columns.
ENTRY_TABLES = (("layer_facts", "diff_id"), ("scan_reports", "result_key"))
SCHEMA_VERSION = len(MIGRATIONS)
RECENT_LAYERS = 4  # decoded layers kept per session: images of one group share a base
TOUCH_AFTER = 3600.0  # `used` is rewritten at most hourly per entry (pruning needs no more)


class Database(Protocol):
    """A connection in autocommit mode; `?` placeholders, whatever the driver wants."""

    blob: str
    real: str
    lock: str  # a statement that serialises migrations across clients (inside write())

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def write(self) -> AbstractContextManager[None]:
        """A transaction that writes (SQLite: BEGIN IMMEDIATE), serialised across clients."""
        ...

    def close(self) -> None: ...


class SqlStore:
    """The `Store` on any `Database`."""

    def __init__(self, db: Database, location: str, vacuum: Callable[[], None]) -> None:
        self.db = db
        self.location = location
        self.codec = Codec()
        self.facts_version = self.codec.version
        self.stats = StoreStats()
        self._vacuum = vacuum
        self._recent: OrderedDict[str, LayerIndex] = OrderedDict()
        migrate(db, location)

    def get(self, diff_id: str) -> LayerIndex | None:
        """The layer's facts, or None: absent, or present but unusable (then noted)."""
        layer = self._recent.get(diff_id) or self._load(diff_id)
        if layer is not None:
            self.stats.hits += 1
            self._remember(layer, diff_id)
        return layer

    def _load(self, diff_id: str) -> LayerIndex | None:
        rows = self.db.rows(
            "SELECT data, used FROM layer_facts WHERE diff_id = ? AND version = ?",
            (diff_id, self.codec.version),
        )
        if not rows:
            return None
        data, used = rows[0]
        del rows  # the entry's bytes are let go once inflated, not held through the decoding
        try:
            layer = self.codec.loads(bytes(data), diff_id)
        except EntryError as err:
            self.stats.notes.append(
                f"store entry for layer {diff_id} ignored ({err}); the layer is read again"
            )
            return None
        finally:
            del data
            # Decoding frees a tree of JSON per ELF file between the objects it keeps: the
            # heap's free pages stayed resident, and an XL layer read back sat 40 MiB above
            # one read from its blob through the whole analysis (issue 14: 270 MiB).
            trim_heap()
        if time.time() - float(used) > TOUCH_AFTER:
            with self.db.write():
                self.db.rows(
                    "UPDATE layer_facts SET used = ? WHERE diff_id = ? AND version = ?",
                    (time.time(), diff_id, self.codec.version),
                )
        return layer

    def retain(self, diff_ids: Sequence[str]) -> None:
        """Decoded layers the next image does not share are dropped: kept, a previous
        image's layers made an audit of two images 1.4x one scan's peak (issue 8)."""
        wanted = set(diff_ids)
        for diff_id in [d for d in self._recent if d not in wanted]:
            del self._recent[diff_id]

    def _remember(self, layer: LayerIndex, diff_id: str) -> None:
        self._recent[diff_id] = layer
        self._recent.move_to_end(diff_id)
        while len(self._recent) > RECENT_LAYERS:
            self._recent.popitem(last=False)

    def put(self, layer: LayerIndex) -> None:
        """Keep a complete layer index (the reader passes only those read in full)."""
        if layer.diff_id is None:
            return
        data = self.codec.dumps(layer)
        now = time.time()
        with self.db.write():
            self.db.rows(
                "INSERT INTO layer_facts (diff_id, version, data, size, created, used) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (diff_id, version) DO UPDATE SET "
                "data = excluded.data, size = excluded.size, used = excluded.used",
                (layer.diff_id, self.codec.version, data, len(data), now, now),
            )
        del data
        # As after decoding, for the encoder's trees: 6 MiB of an XL layer's (most of what a
        # put left was SQLite's bound statement, not the heap: store.sqlite).
        trim_heap()
        self._remember(layer, layer.diff_id)

    def recorded_report(self, result_key: str, version: str) -> bytes | None:
        """The entry of the report kept for exactly this key and version, if any."""
        rows = self.db.rows(
            "SELECT data, used FROM scan_reports WHERE result_key = ? AND version = ?",
            (result_key, version),
        )
        if not rows:
            return None
        if time.time() - float(rows[0][1]) > TOUCH_AFTER:
            with self.db.write():
                self.db.rows(
                    "UPDATE scan_reports SET used = ? WHERE result_key = ? AND version = ?",
                    (time.time(), result_key, version),
                )
        return bytes(rows[0][0])

    def record_report(self, result_key: str, version: str, data: bytes | bytearray) -> None:
        """Keep a judged report's entry under its result key (the last one written wins)."""
        now = time.time()
        with self.db.write():
            self.db.rows(
                "INSERT INTO scan_reports (result_key, version, data, size, created, used) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (result_key, version) DO UPDATE SET "
                "data = excluded.data, size = excluded.size, used = excluded.used",
                (result_key, version, data, len(data), now, now),
            )

    def record(self, run: Run) -> None:
        """Keep one audit run and every image's outcome."""
        with self.db.write():
            self.db.rows(
                "INSERT INTO audit_runs (run_id, started) VALUES (?, ?)",
                (run.run_id, run.started),
            )
            for o in run.outcomes:
                summary = o.summary.to_json() if o.summary is not None else None
                self.db.rows(
                    "INSERT INTO audit_images (run_id, reference, position, summary, error, "
                    "attempts, result_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        o.reference,
                        o.position,
                        summary,
                        o.error,
                        o.attempts,
                        o.result_key,
                    ),
                )

    def reusable(self, result_key: str) -> ImageSummary | None:
        """The summary a past run found for exactly this key (same bytes, same judging)."""
        rows = self.db.rows(
            "SELECT i.summary FROM audit_images i JOIN audit_runs r ON r.run_id = i.run_id "
            "WHERE i.result_key = ? AND i.summary IS NOT NULL ORDER BY r.started DESC LIMIT 1",
            (result_key,),
        )
        if not rows:
            return None
        try:
            return ImageSummary.from_json(str(rows[0][0]))
        except EntryError as err:
            self.stats.notes.append(f"stored audit result ignored ({err}); image scanned again")
            return None

    def history(self, references: Sequence[str], limit: int) -> list[PastOutcome]:
        """The last `limit` outcomes of each reference, oldest first."""
        past: list[PastOutcome] = []
        for reference in references:
            rows = self.db.rows(
                "SELECT r.run_id, r.started, i.position, i.summary, i.error, i.attempts, "
                "i.result_key FROM audit_images i JOIN audit_runs r ON r.run_id = i.run_id "
                "WHERE i.reference = ? ORDER BY r.started DESC, r.run_id DESC LIMIT ?",
                (reference, limit),
            )
            past += [_past(reference, row, self.stats) for row in reversed(rows)]
        return past

    def prune(self, older_than: float | None, max_bytes: int | None) -> Pruned:
        """Drop layer facts and reports unused for `older_than` seconds, then the least
        recently used until the rest takes at most `max_bytes`; layer facts of other
        versions always go (a report's version is its analysis': it goes by age or size)."""
        before = self._totals()
        with self.db.write():
            self.db.rows("DELETE FROM layer_facts WHERE version <> ?", (self.codec.version,))
            if older_than is not None:
                cutoff = time.time() - older_than
                for table, _ in ENTRY_TABLES:
                    self.db.rows(f"DELETE FROM {table} WHERE used < ?", (cutoff,))
            if max_bytes is not None:
                self._prune_to(max_bytes)
        after = self._totals()
        self._vacuum()
        return Pruned(
            before.layers - after.layers, before.bytes - after.bytes, before.reports - after.reports
        )

    def _prune_to(self, max_bytes: int) -> None:
        union = " UNION ALL ".join(
            f"SELECT '{table}', {key}, version, size, used FROM {table}"
            for table, key in ENTRY_TABLES
        )
        kept = 0
        for table, key, version, size, _ in self.db.rows(union + " ORDER BY 5 DESC"):
            kept += int(size)
            if kept > max_bytes:
                column = dict(ENTRY_TABLES)[table]
                self.db.rows(
                    f"DELETE FROM {table} WHERE {column} = ? AND version = ?", (key, version)
                )

    def _totals(self) -> Pruned:
        count, size = self.db.rows("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM layer_facts")[0]
        reports, more = self.db.rows("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM scan_reports")[0]
        return Pruned(int(count), int(size) + int(more), int(reports))

    def close(self) -> None:
        self._recent.clear()
        self.db.close()


def _past(reference: str, row: tuple[Any, ...], stats: StoreStats) -> PastOutcome:
    run_id, started, position, summary_text, error, attempts, key = row
    summary = None
    if summary_text is not None:
        try:
            summary = ImageSummary.from_json(str(summary_text))
        except EntryError as err:
            stats.notes.append(f"run {run_id}: result of {reference} ignored ({err})")
            error = error or "stored result unreadable"
    outcome = Outcome(reference, int(position), summary, error, int(attempts), key)
    return PastOutcome(str(run_id), float(started), outcome)


def migrate(db: Database, location: str) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a store written by a newer imagescan."""
    with db.write():
        db.rows(db.lock)
        db.rows("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        rows = db.rows("SELECT value FROM meta WHERE key = 'schema_version'")
        current = int(rows[0][0]) if rows else 0
        if current > SCHEMA_VERSION:
            raise UsageError(
                f"store {location} has schema {current}, newer than this imagescan's "
                f"({SCHEMA_VERSION}): upgrade imagescan or use another store"
            )
        for steps in MIGRATIONS[current:]:
            for step in steps:
                db.rows(step.format(blob=db.blob, real=db.real))
        if current != SCHEMA_VERSION:
            db.rows("DELETE FROM meta WHERE key = 'schema_version'")
            db.rows(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
