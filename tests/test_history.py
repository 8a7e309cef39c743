"""History: broken since (with the digest that brought the problem), fixed since, flapping;
runs where the image could not be scanned neither end nor start anything."""

from __future__ import annotations

from imagescan.checks.model import Status
from imagescan.history import history_dict, history_line, image_history
from imagescan.store.model import ImageSummary, Outcome, PastOutcome

REF = "registry:example.org/app:1"


def run(n: int, broken: tuple[str, ...] = (), digest: str | None = None) -> PastOutcome:
    files = {"/bin/ok": Status.OK, **{p: Status.BROKEN for p in broken}}
    summary = ImageSummary(digest or f"sha256:{n}", files)
    return PastOutcome(f"run{n}", 1_700_000_000.0 + n * 86400, Outcome(REF, 0, summary))


def failed(n: int) -> PastOutcome:
    return PastOutcome(f"run{n}", 1_700_000_000.0 + n * 86400, Outcome(REF, 0, error="404"))


def test_broken_since_the_run_and_digest_that_brought_each_problem() -> None:
    past = [run(1), run(2, ("/a",)), run(3, ("/a", "/b")), failed(4), run(5, ("/a", "/b"))]
    item = image_history(REF, past)
    assert item.state == "broken"
    assert item.broken_since is not None and item.broken_since.run_id == "run2"
    assert item.broken_since.manifest_digest == "sha256:2"
    assert {p: s.run_id for p, s in item.files_since.items()} == {"/a": "run2", "/b": "run3"}
    assert not item.flapping
    assert "broken since 2023-11-16T22:13:20+00:00 (run run2, sha256:2), 2 files" in (
        history_line(history_dict(item))
    )


def test_fixed_since_the_first_clean_run() -> None:
    item = image_history(REF, [run(1, ("/a",)), run(2, ("/a",)), run(3), failed(4), run(5)])
    assert item.state == "ok" and item.broken_since is None
    assert item.fixed_since is not None and item.fixed_since.run_id == "run3"
    doc = history_dict(item)
    assert doc["fixed_since"]["manifest_digest"] == "sha256:3" and doc["files"] == {}


def test_flapping_after_three_changes_in_the_window() -> None:
    steady = image_history(REF, [run(1), run(2, ("/a",)), run(3)])
    assert not steady.flapping and steady.changes == 2
    flapping = image_history(REF, [run(1), run(2, ("/a",)), run(3), run(4, ("/a",))])
    assert flapping.flapping and flapping.state == "broken"
    assert "flapping (3 changes" in history_line(history_dict(flapping))


def test_never_scanned_and_never_audited_are_no_verdict() -> None:
    assert image_history(REF, [failed(1)]).state == "not-scanned"
    assert image_history(REF, []).state == "unknown"
    clean = image_history(REF, [run(1), run(2)])
    assert clean.state == "ok" and clean.fixed_since is None
    assert history_line(history_dict(clean)).endswith("never broken in 2 recorded runs")
