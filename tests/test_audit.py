"""`imagescan audit`: many images, one summary; an unreadable image does not stop it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagescan.audit import ImageResult, audit_dict, audit_lines
from tests.conftest import REPO
from tests.fleet_support import Fleet, build_fleet, programs
from tests.imagebuilder import File, ImageSpec, glibc_base, write_oci_dir

SAMPLE = str(REPO / "sample-images" / "sample.tar")


def run_env(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagescan", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_env("audit", *args)


def test_summary_names_broken_files_and_unreadable_images(tmp_path: Path) -> None:
    done = run(SAMPLE, str(tmp_path / "missing.tar"), "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2  # one image could not be scanned
    lines = done.stdout.splitlines()
    assert lines[0].endswith("5 ELF files, 1 broken, 0 broken-lazy")
    assert lines[1] == "  broken: /usr/local/bin/needs-newer"
    assert "missing.tar: not scanned:" in lines[2]
    assert lines[-1] == "2 images: 1 with programs that will not start, 1 not scanned"


def test_json_and_references_from_a_file(tmp_path: Path) -> None:
    refs = tmp_path / "images.txt"
    refs.write_text(f"# nightly\n{SAMPLE}\n\n{SAMPLE}\n")
    done = run("--from", str(refs), "-o", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    # listed twice, audited once (test_a_reference_listed_twice_is_audited_once)
    assert [i["broken"] for i in doc["images"]] == [["/usr/local/bin/needs-newer"]]
    assert doc["images"][0]["by_status"]["ok"] == 4


def test_no_reference_is_a_usage_error() -> None:
    done = run()
    assert done.returncode == 2 and "at least one image reference" in done.stderr


def test_lines_for_a_clean_image_and_an_error() -> None:
    lines = audit_lines(audit_dict([ImageResult("img:1", error="registry said 404")]))
    assert lines == [
        "img:1: not scanned: registry said 404",
        "1 images: 0 with programs that will not start, 1 not scanned",
    ]


# ---------------------------------------------------------------- issue 12: fleets


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return build_fleet(tmp_path_factory.mktemp("fleet"), 6, broken={1, 4})


def test_shards_merged_give_the_summary_of_one_run(fleet: Fleet, tmp_path: Path) -> None:
    whole = run("-o", "json", *fleet.references)
    assert whole.returncode == 1, whole.stderr
    files = []
    for index in range(3):
        shard = ["--shard", f"{index}/3"] if index else ["--shard", "3"]
        env = {} if index else {"JOB_COMPLETION_INDEX": "0"}  # a Kubernetes Indexed Job
        done = run_env("audit", "-o", "json", *shard, *fleet.references, env=env)
        assert done.returncode in (0, 1), done.stderr
        files.append(tmp_path / f"shard-{index}.json")
        files[-1].write_text(done.stdout)
    parts = [json.loads(f.read_text())["images"] for f in files]
    assert sorted(len(p) for p in parts) != [0, 0, 6]  # a real split
    merged = run_env("merge", "-o", "json", *map(str, files))
    assert merged.returncode == 1 and json.loads(merged.stdout) == json.loads(whole.stdout)
    text_whole = run(*fleet.references).stdout
    assert run_env("merge", *map(str, files)).stdout == text_whole
    missing = run_env("merge", *map(str, files[:2]))
    assert missing.returncode == 2 and "shards [2] of 3" in missing.stderr


def test_a_shard_is_stable_whatever_the_order_of_the_list(fleet: Fleet) -> None:
    from imagescan.audit import select_shard

    forward = {r for _, r in select_shard(fleet.references, 1, 3)}
    backward = {r for _, r in select_shard(list(reversed(fleet.references)), 1, 3)}
    assert forward == backward


def layout_with(dest: Path, broken: bool) -> None:
    """The image `app` at `dest`, rewritten: with or without a program that cannot start."""
    elves = programs(dest.parent / "build")
    top = [File("/usr/local/bin/hello", elves["hello"], 0o755)]
    if broken:
        top.append(File("/usr/local/bin/needs-libver", elves["needs-libver"], 0o755))
    shutil.rmtree(dest, ignore_errors=True)
    write_oci_dir(dest, {"app": ImageSpec([glibc_base(), top])})


def test_history_says_since_when_and_which_digest(tmp_path: Path) -> None:
    layout, store = tmp_path / "oci", str(tmp_path / "store")
    ref = f"oci-dir:{layout}:app"
    for broken in (False, True, True, False):
        layout_with(layout, broken)
        done = run("--store", store, "--history", "-o", "json", ref)
        doc = json.loads(done.stdout)
        if broken:
            digest = doc["images"][0]["manifest_digest"]
            since = doc["history"][0]["broken_since"]
            assert done.returncode == 1 and since["manifest_digest"] == digest
            assert list(doc["history"][0]["files"]) == ["/usr/local/bin/needs-libver"]
    assert doc["history"][0]["state"] == "ok"
    assert (
        doc["history"][0]["fixed_since"]["manifest_digest"] == doc["images"][0]["manifest_digest"]
    )
    text = run_env("history", "--store", store, ref)
    assert text.returncode == 0 and f"{ref}: ok, fixed since " in text.stdout


def test_an_unchanged_image_takes_its_recorded_result(fleet: Fleet, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    first = json.loads(run("--store", store, "-o", "json", *fleet.references[:2]).stdout)
    second = json.loads(run("--store", store, "-o", "json", *fleet.references[:2]).stdout)
    assert [i["reused"] for i in first["images"]] == [False, False]
    assert [i["reused"] for i in second["images"]] == [True, True]
    assert [i["broken"] for i in second["images"]] == [i["broken"] for i in first["images"]]
    rescan = json.loads(
        run("--store", store, "--rescan", "-o", "json", *fleet.references[:2]).stdout
    )
    assert [i["reused"] for i in rescan["images"]] == [False, False]
    pruned = run_env("cache", "prune", "--store", store, "--max-size", "0")
    assert pruned.returncode == 0 and pruned.stdout.startswith(
        "pruned 5 layer entries"
    )  # base, 2 flavours, 2 tops


def test_workers_run_a_local_dask_cluster(fleet: Fleet, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="needs imagescan[cluster]")
    refs = fleet.references[:4]
    local = json.loads(run("-o", "json", *refs).stdout)
    done = run("--workers", "2", "--store", str(tmp_path / "store"), "-o", "json", *refs)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout) == local


def test_a_reference_listed_twice_is_audited_once(tmp_path: Path) -> None:
    """A nightly list may repeat an image: one result for it (the store records one per
    reference and run), and a note says so."""
    refs = tmp_path / "images.txt"
    refs.write_text(f"{SAMPLE}\n{SAMPLE}\n")
    done = run("--from", str(refs), "--cache", str(tmp_path / "cache"), "-o", "json")
    assert done.returncode == 1, done.stderr
    assert len(json.loads(done.stdout)["images"]) == 1
    assert "1 repeated references audited once" in done.stderr


def test_images_of_one_base_are_audited_in_a_row_and_listed_in_order(fleet: Fleet) -> None:
    """Bases alternate in the list (img-0, img-2, img-4 share one): they are judged in a
    row, so verdicts are carried (checks.reuse), and each equals a fresh scan's."""
    from datetime import date

    from imagescan.audit import AuditSettings, audit_images, by_base
    from imagescan.policy.load import load_policy
    from imagescan.scan import ScanOptions

    settings = AuditSettings(ScanOptions(), load_policy("default"), date.today(), None)
    images = list(enumerate(fleet.references))
    assert [p for p, _ in by_base(images, settings)] == [0, 2, 4, 1, 3, 5]
    results = audit_images(images, settings)
    assert [r.position for r in results] == list(range(6))
    alone = [audit_images([image], settings)[0] for image in images]
    assert [r.summary for r in results] == [r.summary for r in alone]
    assert {r.reference for r in results if r.broken} == fleet.broken


def groups_in_children_body(references: list[str]) -> None:
    """In a process without other threads (the forks of parallel.map_isolated): each base's
    images audited in a child of its own give the results of one process."""
    import resource
    import threading
    from datetime import date

    from imagescan.audit import AuditSettings, audit_images
    from imagescan.policy.load import load_policy
    from imagescan.scan import ScanOptions

    settings = AuditSettings(ScanOptions(jobs=2), load_policy("default"), date.today(), None)
    images = list(enumerate(references))
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss == 0
    forked = audit_images(images, settings)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss > 0  # children did it
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()  # no fork while another thread runs: all in this process
    try:
        alone = audit_images(images, settings)
    finally:
        stop.set()
        other.join()
    assert forked == alone


def test_each_base_is_audited_in_a_child_of_its_own(fleet: Fleet) -> None:
    call = f"groups_in_children_body({fleet.references!r})"
    code = f"import tests.test_audit as t; t.{call}"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=300)
