"""A cache of layer indexes keyed by diff_id (DESIGN.md "Performance rules").

Images share base layers, and a layer's facts depend only on its content: a nightly audit
of many images, or a second scan of one, reads each layer once. Opt-in (`--cache DIR`,
IMAGESCAN_CACHE_DIR). The cache holds facts imagescan derived, never files of the image.
Entries are pickles written by imagescan itself; the directory is created private (0700)
and refused when others may write to it, because a planted pickle would run code.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
from pathlib import Path

from imagescan import __version__
from imagescan.errors import UsageError
from imagescan.rootfs.model import LayerIndex

# Bump when what a LayerIndex holds changes (ElfFacts, Entry, kept files): old entries
# then stop matching instead of being read as something else.
FACTS_SCHEMA = 3  # 2: package databases kept (issue 11); 3: ElfFacts.sha256/sha1 (issue 13)
VERSION = f"{__version__}/facts-{FACTS_SCHEMA}"


class LayerCache:
    """diff_id -> the complete LayerIndex of that layer (read with symbols, no hiding)."""

    def __init__(self, directory: Path) -> None:
        _private_dir(directory)
        self.path = directory / "layers.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS layers ("
            "diff_id TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (diff_id, version))"
        )
        self.hits = 0

    def get(self, diff_id: str) -> LayerIndex | None:
        """The cached index, or None (also for an entry that no longer loads)."""
        row = self._db.execute(
            "SELECT data FROM layers WHERE diff_id = ? AND version = ?", (diff_id, VERSION)
        ).fetchone()
        if row is None:
            return None
        try:
            layer = pickle.loads(row[0])
        except Exception:  # a damaged entry is a miss, and goes
            self._forget(diff_id)
            return None
        if not isinstance(layer, LayerIndex) or layer.diff_id != diff_id:
            self._forget(diff_id)
            return None
        self.hits += 1
        return layer

    def put(self, layer: LayerIndex) -> None:
        """Keep a complete index (callers pass only those read in full, with symbols)."""
        if layer.diff_id is None:
            return
        data = pickle.dumps(layer, protocol=pickle.HIGHEST_PROTOCOL)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO layers (diff_id, version, data) VALUES (?, ?, ?)",
                (layer.diff_id, VERSION, data),
            )

    def close(self) -> None:
        self._db.close()

    def _forget(self, diff_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM layers WHERE diff_id = ?", (diff_id,))


def _private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError as err:
        raise UsageError(f"cache directory {directory}: {err.strerror}") from err
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or info.st_uid != os.geteuid():
        raise UsageError(
            f"cache directory {directory} is writable by others or not yours: refusing it"
        )
