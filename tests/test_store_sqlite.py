"""The SQLite store: private files, refused when unsafe (issue 15), old and planted
entries never loaded, a versioned schema, pruning."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from imagescan.errors import UsageError
from imagescan.image.model import SourceOptions
from imagescan.scan import read_image
from imagescan.store import open_store
from imagescan.store.sql import SCHEMA_VERSION
from imagescan.store.sqlite import FILE_NAME
from imagescan.store.units import parse_age, parse_size
from tests.imagebuilder import File, ImageSpec, write_oci_dir

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def image(tmp: Path) -> str:
    layers = [[File("/etc/os-release", b"ID=test\n")], [File("/opt/a", b"a" * 4000)]]
    return f"oci-dir:{write_oci_dir(tmp / 'oci', ImageSpec(layers))}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_files_are_created_private(tmp_path: Path) -> None:
    os.umask(0o022)
    store = open_store(tmp_path / "a" / "store")
    read_image(image(tmp_path), _options(), store=store)
    store.close()
    assert mode(tmp_path / "a" / "store") == 0o700
    db = tmp_path / "a" / "store" / FILE_NAME
    assert mode(db) == 0o600
    assert all(mode(p) == 0o600 for p in db.parent.iterdir())  # -wal, -shm too


def _options() -> Any:
    from imagescan.scan import ScanOptions

    return ScanOptions(source=SourceOptions())


def test_a_symlinked_store_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UsageError, match="symbolic link"):
        open_store(tmp_path / "link")


def test_a_symlinked_database_file_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.sqlite"
    target.touch(mode=0o600)
    (store / FILE_NAME).symlink_to(target)
    with pytest.raises(UsageError, match="symbolic link"):
        open_store(store)


def test_a_directory_or_file_others_can_read_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o755)
    store.chmod(0o755)
    with pytest.raises(UsageError, match=r"readable by others.*chmod 700"):
        open_store(store)
    store.chmod(0o700)
    open_store(store).close()
    (store / FILE_NAME).chmod(0o644)
    with pytest.raises(UsageError, match=r"readable by others.*chmod 600"):
        open_store(store)


def test_a_parent_others_can_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="writable by others"):
        open_store(shared / "store")
    shared.chmod(0o1777)  # like /tmp: others cannot rename our directory away
    open_store(shared / "store").close()


@needs_root
def test_a_store_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UsageError, match="belongs to another user"):
        open_store(theirs)
    mine = tmp_path / "mine"
    open_store(mine).close()
    os.chown(mine / FILE_NAME, NOBODY, NOBODY)
    with pytest.raises(UsageError, match="belongs to another user"):
        open_store(mine)
    below = tmp_path / "below"
    below.mkdir(mode=0o755)
    os.chown(below, NOBODY, NOBODY)
    with pytest.raises(UsageError, match=r"above the store.*another user"):
        open_store(below / "store")


class Planted:
    """A pickle that, if ever loaded, leaves a file behind (stands for any command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def diff_ids(ref: str) -> list[str]:
    from imagescan.image.sources import open_image

    opened = open_image(ref, SourceOptions())
    opened.close()
    return list(opened.config.diff_ids)


def test_an_old_pickle_cache_is_dropped_unread(tmp_path: Path) -> None:
    """The file imagescan <= 0.1 wrote, holding a planted pickle for a layer of the image."""
    ref, marker = image(tmp_path), tmp_path / "ran"
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    from imagescan import __version__

    with sqlite3.connect(store / FILE_NAME) as db:
        db.execute("CREATE TABLE layers (diff_id TEXT, version TEXT, data BLOB)")
        for diff_id in diff_ids(ref):
            db.execute(
                "INSERT INTO layers VALUES (?, ?, ?)",
                (diff_id, f"{__version__}/facts-1", pickle.dumps(Planted(marker))),
            )
    (store / FILE_NAME).chmod(0o600)
    opened = open_store(store)
    _, rootfs = read_image(ref, _options(), store=opened)
    opened.close()
    assert not marker.exists() and "/opt/a" in rootfs.entries
    with sqlite3.connect(store / FILE_NAME) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "layers" not in tables and "layer_facts" in tables


def test_a_planted_entry_is_ignored_with_a_note_and_replaced(tmp_path: Path) -> None:
    ref, marker = image(tmp_path), tmp_path / "ran"
    store = open_store(tmp_path / "store")
    read_image(ref, _options(), store=store)
    store.close()
    with sqlite3.connect(tmp_path / "store" / FILE_NAME) as db:
        db.execute("UPDATE layer_facts SET data = ?", (pickle.dumps(Planted(marker)),))
    store = open_store(tmp_path / "store")
    _, rootfs = read_image(ref, _options(), store=store)
    assert not marker.exists() and "/opt/a" in rootfs.entries
    assert len(store.stats.notes) == 2 and "is read again" in store.stats.notes[0]
    store.close()
    store = open_store(tmp_path / "store")  # the entries were written again, whole
    read_image(ref, _options(), store=store)
    assert store.stats.hits == 2 and not store.stats.notes
    store.close()


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path / "store").close()
    with sqlite3.connect(tmp_path / "store" / FILE_NAME) as db:
        db.execute("UPDATE meta SET value = ?", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(UsageError, match="newer than this imagescan"):
        open_store(tmp_path / "store")


def age(tmp: Path, diff_id: str, days: float) -> dict[str, int]:
    """Make one layer's entry look unused for `days`; the size of every entry."""
    with sqlite3.connect(tmp / "store" / FILE_NAME) as db:
        db.execute(
            "UPDATE layer_facts SET used = ? WHERE diff_id = ?",
            (time.time() - days * 86400, diff_id),
        )
        return dict(db.execute("SELECT diff_id, size FROM layer_facts").fetchall())


def test_prune_by_age_and_by_size_least_recently_used_first(tmp_path: Path) -> None:
    ref = image(tmp_path)
    old, recent = diff_ids(ref)
    store = open_store(tmp_path / "store")
    read_image(ref, _options(), store=store)
    assert store.prune(None, None).layers == 0
    sizes = age(tmp_path, old, 40)
    pruned = store.prune(None, sizes[recent])
    assert (pruned.layers, pruned.bytes) == (1, sizes[old])
    assert set(age(tmp_path, recent, 0)) == {recent}
    store.close()
    store = open_store(tmp_path / "store")
    read_image(ref, _options(), store=store)
    age(tmp_path, old, 31)
    assert store.prune(parse_age("30d"), None).layers == 1
    assert set(age(tmp_path, recent, 29)) == {recent}
    assert store.prune(parse_age("30d"), None).layers == 0
    store.close()


def test_units() -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("90m") == 5400
    assert parse_size("5G") == 5 << 30 and parse_size("500MiB") == 500 << 20
    with pytest.raises(UsageError, match="--max-size"):
        parse_size("lots")


def test_decoded_layers_are_kept_only_for_the_image_being_read(tmp_path: Path) -> None:
    """An audit reads image after image through one store: a layer decoded for one image
    is reused while the next shares it and let go when it does not (issue 8)."""
    first = image(tmp_path / "one")
    second = f"oci-dir:{write_oci_dir(tmp_path / 'two', ImageSpec([[File('/b', b'b')]]))}"
    store = open_store(tmp_path / "store")
    opened, _ = read_image(first, _options(), store=store)
    base, top = opened.config.diff_ids
    assert store.get(base) is store.get(base)  # decoded once while this image is read
    read_image(first, _options(), store=store)
    kept = store.get(top)
    read_image(second, _options(), store=store)  # shares nothing: the first's layers go
    again = store.get(top)
    assert again is not kept and again == kept
    store.close()


def test_an_image_summary_keeps_its_files_packed_and_whole() -> None:
    from imagescan.checks.model import Status
    from imagescan.store.model import ImageSummary, PackedFiles

    files = {f"/usr/lib/l{i}.so": Status.OK for i in range(750)}
    files |= {"/bin/a\nb\r": Status.BROKEN, "/bin/c": Status.BROKEN_LAZY}
    packed = PackedFiles(files)
    assert dict(packed) == files and len(packed) == 752 and packed["/bin/c"] == files["/bin/c"]
    assert len(pickle.dumps(packed)) < len(pickle.dumps(files)) / 5
    summary = ImageSummary("sha256:x", packed)
    assert summary.broken == ("/bin/a\nb\r",) and summary.lazy == ("/bin/c",)
    assert ImageSummary.from_json(summary.to_json()) == ImageSummary("sha256:x", files)
