"""The audit on Dask: a real `dask scheduler` and two `dask worker` processes on 127.0.0.1.
Every image gets exactly one result, the same as in one process, even when a worker is
killed mid-image; images are placed by their base layers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from imagescan.audit import AuditSettings, ImageResult, audit_dict, audit_images, base_groups
from imagescan.cluster import place
from imagescan.image.model import SourceOptions
from imagescan.policy.load import load_policy
from imagescan.scan import ScanOptions
from tests.conftest import REPO
from tests.fleet_support import DaskCluster, Fleet, build_fleet, running_dask

distributed = pytest.importorskip("distributed", reason="needs imagescan[cluster]")


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskCluster]:
    with running_dask(workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return build_fleet(tmp_path_factory.mktemp("fleet"), 6, broken={0, 3, 4})


def settings(store: Path | None = None) -> AuditSettings:
    location = str(store) if store is not None else None
    return AuditSettings(ScanOptions(), load_policy("default"), date(2026, 12, 1), location)


def on_dask(address: str, fleet: Fleet, store: Path | None = None) -> list[ImageResult]:
    from imagescan.cluster import audit_on_dask

    with distributed.Client(address, timeout=60) as client:
        return audit_on_dask(list(enumerate(fleet.references)), settings(store), client)


def test_the_cluster_gives_what_one_process_gives(
    cluster: DaskCluster, fleet: Fleet, tmp_path: Path
) -> None:
    """The same results, image by image. `attempts` is how often the cluster started an
    image: one process always says 1, and a loaded cluster may start one again (a CI run
    saw (2, 1) and nothing else differing), so it is checked for being counted, not equal."""
    local = audit_dict(audit_images(list(enumerate(fleet.references)), settings()))
    remote = audit_dict(on_dask(cluster.address, fleet, tmp_path / "store"))
    for mine, theirs in zip(remote["images"], local["images"], strict=True):
        assert theirs["attempts"] == 1 and mine["attempts"] >= 1
        keys = (mine.keys() | theirs.keys()) - {"attempts"}
        differ = {k: (mine.get(k), theirs.get(k)) for k in keys if mine.get(k) != theirs.get(k)}
        assert not differ, differ  # which field differs, when this fails (issue 12)
    assert [i["reference"] for i in remote["images"]] == fleet.references
    assert {i["reference"] for i in remote["images"] if i["broken"]} == fleet.broken


def test_an_image_that_fails_twice_is_listed_and_the_audit_goes_on(
    cluster: DaskCluster, fleet: Fleet
) -> None:
    """Settings a worker cannot use (no policy): every task raises, is run once more
    (retries), then listed with its error; no image is lost."""
    from dataclasses import replace

    from imagescan.cluster import audit_on_dask

    broken_settings = replace(settings(), policy=None)  # type: ignore[arg-type]
    with distributed.Client(cluster.address, timeout=60) as client:
        results = audit_on_dask(list(enumerate(fleet.references[:2])), broken_settings, client)
    assert [r.position for r in results] == [0, 1]
    assert all(r.error and "failed on the cluster: AttributeError" in r.error for r in results)
    assert [r.attempts for r in results] == [2, 2]
    for result in results:  # each start says what it raised
        assert len(result.notes) == 2, result.notes
        assert all(n.startswith("a start failed: AttributeError: ") for n in result.notes)


# Corpus images (Debian 12 based, ~750 ELF files each: seconds per image, long enough to
# kill a worker inside one) and what the real loader says of them (corpus README).
CORPUS_FLEET = ("missing-symbol", "go", "runpath-vs-rpath", "env-ld-library-path")
CORPUS_BROKEN = {"missing-symbol", "runpath-vs-rpath"}


def test_a_worker_killed_mid_image_leaves_one_result_per_image(
    cluster: DaskCluster, corpus_dir: Path
) -> None:
    refs = [f"oci-dir:{corpus_dir / 'oci'}:{name}" for name in CORPUS_FLEET]
    corpus = Fleet(corpus_dir / "oci", refs, set())
    results: list[ImageResult] = []
    thread = threading.Thread(target=lambda: results.extend(on_dask(cluster.address, corpus)))
    with distributed.Client(cluster.address, timeout=60) as watcher:
        started = {p.pid for p in cluster.workers}
        thread.start()
        victim = _busy_worker(watcher)
        pid = watcher.run(os.getpid, workers=[victim])[victim]
        assert pid in started  # a process this test started, killed by its id
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=600)
    assert not thread.is_alive()
    assert sorted(r.position for r in results) == list(range(len(refs)))  # one each
    assert all(r.error is None for r in results), [r.error for r in results]
    assert [r.attempts for r in results].count(2) == 1  # the image the dead worker had
    assert {r.reference.rsplit(":", 1)[1] for r in results if r.broken} == CORPUS_BROKEN


def _busy_worker(client: Any) -> str:
    """The address of a worker while it is running an imagescan task."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any("imagescan-audit" in str(k) for k in keys):
                time.sleep(0.2)  # inside the image, not at its first line
                return str(address)
        time.sleep(0.02)
    raise AssertionError("no worker ever ran an audit task")


def test_images_are_grouped_by_base_and_groups_placed_whole(fleet: Fleet) -> None:
    groups = base_groups(list(enumerate(fleet.references)), SourceOptions())
    assert sorted(groups.values()) == [[0, 2, 4], [1, 3, 5]]
    placement = place(list(groups.values()), ["tcp://a", "tcp://b"])
    assert {placement[0], placement[2], placement[4]} != {placement[1], placement[3]}
    assert len({placement[i] for i in (0, 2, 4)}) == 1


def test_groups_are_split_while_workers_would_idle() -> None:
    placement = place([[0, 1, 2, 3], [4]], ["w1", "w2", "w3"])
    assert set(placement.values()) == {"w1", "w2", "w3"}
    assert placement[0] == placement[1] and placement[2] == placement[3]
    assert place([[0], [1], [2]], ["w1"]) == {0: "w1", 1: "w1", 2: "w1"}


def test_without_dask_the_error_names_the_extra(tmp_path: Path) -> None:
    """The import of distributed made to fail, as on an install without the extra."""
    code = (
        "import sys; sys.modules['distributed'] = None; "
        "from imagescan.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "audit", "--workers", "2", str(tmp_path / "x.tar")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "pip install 'imagescan[cluster]'" in done.stderr


def test_a_group_whose_base_costs_more_gets_a_worker_of_its_own() -> None:
    """Three groups of ten on two workers: by count two groups share a worker whichever
    they are; weighted by what reading each base costs (a 1 GB base), the costly one is
    alone and the two cheap ones share the other worker."""
    groups = [list(range(0, 10)), list(range(10, 20)), list(range(20, 30))]
    placement = place(groups, ["a", "b"], weights=[1.0, 1.5, 32.0])
    costly = {placement[i] for i in groups[2]}
    assert len(costly) == 1
    assert {placement[i] for i in groups[0] + groups[1]} == {"a", "b"} - costly
    assert place(groups, ["a", "b"]) == place(groups, ["a", "b"], [0.0, 0.0, 0.0])
