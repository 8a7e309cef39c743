"""The embedded back-end: one SQLite file in a private directory, WAL mode (one host,
several processes: the CLI and the Dask workers on it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imagescan.errors import UsageError
from imagescan.store.safety import check_existing, private_directory, private_file
from imagescan.store.sql import SqlStore

FILE_NAME = "layers.sqlite"  # the name the pickle cache had: its old table is dropped unread
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another (workers write one layer at a time)


class SqliteDatabase:
    """`Database` over sqlite3, autocommit with explicit BEGIN IMMEDIATE for writes."""

    blob = "BLOB"
    real = "REAL"
    lock = "SELECT 1"  # BEGIN IMMEDIATE has the database's write lock already

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # No statement cache: a cached INSERT keeps its parameters bound, and a layer's
            # entry (13 MiB for the XL image) stayed in memory through the analysis after
            # it was written (issue 14). A store runs a few statements per layer.
            self._conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=0,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as err:
            raise UsageError(f"store {path}: {err}") from err

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as err:
            raise UsageError(f"store {self.path}: {err}") from err

    @contextmanager
    def write(self) -> Iterator[None]:
        self.rows("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        self.rows("COMMIT")

    def vacuum(self) -> None:
        self.rows("VACUUM")

    def close(self) -> None:
        self._conn.close()


def open_sqlite(directory: Path) -> SqlStore:
    """The store in `directory` (created private), after the safety checks of issue 15."""
    real = private_directory(directory)
    path = real / FILE_NAME
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        check_existing(path.with_name(path.name + suffix))
    db = SqliteDatabase(path)
    return SqlStore(db, str(path), db.vacuum)
