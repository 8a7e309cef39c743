"""The store: layer facts and audit results behind one interface (issue 12).

`open_store(LOCATION)`: a directory is the embedded SQLite store (the default, one host), a
`postgresql://` URL the shared PostgreSQL one. No pickle anywhere: entries are plain JSON,
validated on read (`imagescan.store.codec`).
"""

from __future__ import annotations

from pathlib import Path

from imagescan.store.model import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(location: str | Path) -> Store:
    """The store at `location`; UsageError when it cannot be opened or is unsafe."""
    text = str(location)
    if text.startswith(POSTGRES_SCHEMES):
        from imagescan.store.postgres import open_postgres

        return open_postgres(text)
    from imagescan.store.sqlite import open_sqlite

    return open_sqlite(Path(location))
