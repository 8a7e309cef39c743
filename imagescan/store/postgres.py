"""The shared back-end: PostgreSQL through psycopg 3 (`pip install 'imagescan[postgres]'`),
for stores that several hosts (Dask workers, CI shards) use at once.

Who may read and write is PostgreSQL's business (roles, pg_hba.conf); the entries are still
validated on read like SQLite's, so a row another client wrote can never run code here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from imagescan.errors import UsageError
from imagescan.store.sql import SqlStore

EXTRA = "imagescan[postgres]"
MIGRATION_LOCK = 0x1D5C12  # pg_advisory_xact_lock key: one client migrates at a time


class PostgresDatabase:
    """`Database` over a psycopg connection in autocommit mode."""

    blob = "BYTEA"
    real = "DOUBLE PRECISION"
    lock = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as err:
            raise UsageError(
                f"--store postgresql://… needs psycopg: pip install '{EXTRA}'"
            ) from err
        self._errors = psycopg.Error
        self.location = _redacted(url)
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as err:
            raise UsageError(f"store {self.location}: {_first_line(err)}") from err

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(sql.replace("?", "%s"), tuple(params))
            return cursor.fetchall() if cursor.description is not None else []
        except self._errors as err:
            raise UsageError(f"store {self.location}: {_first_line(err)}") from err

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def vacuum(self) -> None:
        return None  # autovacuum reclaims the space

    def close(self) -> None:
        self._conn.close()


def open_postgres(url: str) -> SqlStore:
    db = PostgresDatabase(url)
    return SqlStore(db, db.location, db.vacuum)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
