"""The layer cache (the store, as the reader sees it): the same RootFS from the cache as
from the layers, shared layers read once, a cached layer placed at another position,
damaged entries and unsafe directories."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from imagescan.errors import UsageError
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.cache import LayerCache
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs
from imagescan.store import open_store
from tests.imagebuilder import File, ImageSpec, Whiteout, write_oci_dir

BASE = [File("/etc/os-release", b"ID=test\n"), File("/usr/bin/tool", b"#!/bin/sh\n", 0o755)]
TOP = [File("/opt/app/data", b"x" * 100), Whiteout("/usr/bin/tool")]


def layout(tmp: Path) -> Path:
    """Two images sharing BASE: `a` has it at the bottom, `b` above another layer."""
    other = [File("/var/other", b"other")]
    return write_oci_dir(
        tmp / "oci",
        {"a": ImageSpec([BASE, TOP]), "b": ImageSpec([other, BASE])},
    )


class Counting:
    """Wraps an image's layer access and counts the blobs it opens."""

    def __init__(self, image: OpenedImage) -> None:
        assert image.access is not None
        self.inner = image.access
        self.random_access = image.access.random_access
        self.opened: list[int] = []

    def open_layer(self, index: int):  # type: ignore[no-untyped-def]
        self.opened.append(index)
        return self.inner.open_layer(index)

    def iter_layers(self):  # type: ignore[no-untyped-def]
        return self.inner.iter_layers()

    def close(self) -> None:
        self.inner.close()


def read(ref: str, cache: LayerCache | None) -> tuple[RootFS, list[int]]:
    image = open_image(ref, SourceOptions())
    counting = Counting(image)
    image.access = counting  # type: ignore[assignment]
    try:
        return read_rootfs(image, cache=cache), counting.opened
    finally:
        image.close()


def test_a_second_read_comes_from_the_cache_and_equals_the_first(tmp_path: Path) -> None:
    ref = f"oci-dir:{layout(tmp_path)}:a"
    plain, _ = read(ref, None)
    cache = open_store(tmp_path / "cache")
    first, opened_first = read(ref, cache)
    second, opened_second = read(ref, cache)
    assert opened_first == [0, 1] and opened_second == []  # no blob opened the second time
    assert cache.stats.hits == 2
    assert first.entries == plain.entries == second.entries
    assert "/usr/bin/tool" not in second.entries and "/opt/app/data" in second.entries


def test_a_shared_layer_is_read_once_and_placed_where_it_stands(tmp_path: Path) -> None:
    oci = layout(tmp_path)
    cache = open_store(tmp_path / "cache")
    read(f"oci-dir:{oci}:a", cache)
    rootfs, opened = read(f"oci-dir:{oci}:b", cache)
    assert opened == [0]  # only b's own bottom layer; BASE came from the cache, at index 1
    assert rootfs.entries["/etc/os-release"].layer == 1
    assert rootfs.entries["/var/other"].layer == 0
    assert rootfs.entries == read(f"oci-dir:{oci}:b", None)[0].entries


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    ref = f"oci-dir:{layout(tmp_path)}:a"
    cache = open_store(tmp_path / "cache")
    read(ref, cache)
    cache.close()
    with sqlite3.connect(cache.location) as db:
        db.execute("UPDATE layer_facts SET data = ?", (b"not an entry",))
    cache = open_store(tmp_path / "cache")
    rootfs, opened = read(ref, cache)
    assert opened == [0, 1] and "/opt/app/data" in rootfs.entries
    assert len(cache.stats.notes) == 2 and "ignored" in cache.stats.notes[0]


def test_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(UsageError, match="writable by others"):
        open_store(shared)


class Untouchable:
    """A one-pass source whose stream must not be read (every layer is cached)."""

    random_access = False

    def open_layer(self, index: int):  # type: ignore[no-untyped-def]
        raise AssertionError("a one-pass source cannot open a layer by index")

    def iter_layers(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the export was read although every layer is cached")

    def close(self) -> None:
        return None


def test_an_engine_export_is_skipped_when_every_layer_is_cached(tmp_path: Path) -> None:
    """A one-pass source (the engine's export) fills the cache as it streams; the next scan
    of the same image reads no export at all."""
    from dataclasses import replace

    from tests.test_rootfs_reader import one_pass

    image = open_image(f"oci-dir:{layout(tmp_path)}:a", SourceOptions())
    cache = open_store(tmp_path / "cache")
    streamed = read_rootfs(one_pass(image, [1, 0]), cache=cache)
    again = read_rootfs(replace(image, access=Untouchable()), cache=cache)
    image.close()
    assert cache.stats.hits == 2
    assert again.entries == streamed.entries
