"""`imagescan audit`: many images, one summary (DESIGN.md "A nightly audit"; issue 12).

Each image is scanned and judged on its own; an image that cannot be read is reported with
its one-line error and the audit goes on. With a store, layer facts are shared between
images and runs, every run is recorded (history), and an image whose manifest digest and
judging did not change since a recorded run takes that run's result instead of a scan.
The engines (here one process; `imagescan.cluster` on Dask) all call `audit_image`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from imagescan.checks.model import Severity
from imagescan.checks.reuse import Carry
from imagescan.errors import ImagescanError, UsageError
from imagescan.heap import release_free_memory
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.parallel import map_isolated
from imagescan.policy.rules import Policy
from imagescan.report import Report, severity_at_least
from imagescan.scan import ScanOptions
from imagescan.store import open_store
from imagescan.store.model import ImageSummary, Outcome, PackedFiles, Run, Store

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AuditSettings:
    """Everything an image's audit depends on besides its reference (sent to workers)."""

    options: ScanOptions
    policy: Policy
    today: date
    store: str | None = None  # a store location (directory or postgresql:// URL)
    reuse: bool = True  # take a recorded result when nothing it depends on changed


@dataclass(frozen=True)
class ImageResult:
    """One audited image: its summary, or why it could not be read."""

    reference: str
    summary: ImageSummary | None = None
    error: str | None = None
    position: int = 0
    attempts: int = 1  # > 1: run again after a worker died or failed (Dask)
    reused: bool = False  # the summary of a recorded run with the same result key
    result_key: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def broken(self) -> tuple[str, ...]:
        """Files that fail at start."""
        return self.summary.broken if self.summary is not None else ()

    @property
    def lazy(self) -> tuple[str, ...]:
        return self.summary.lazy if self.summary is not None else ()

    def outcome(self) -> Outcome:
        return Outcome(
            self.reference,
            self.position,
            self.summary,
            self.error,
            self.attempts,
            self.result_key if self.summary is not None else None,
        )


def summarise(report: Report) -> ImageSummary:
    """What the audit keeps of a judged report."""
    files = PackedFiles({v.path: v.status for v in report.files})
    return ImageSummary(report.image.manifest_digest, files, report.max_severity())


def judge(
    reference: str, settings: AuditSettings, store: Store | None, carry: Carry | None = None
) -> tuple[Report, str | None]:
    """Scan and judge one image (the policy's view of it); also its result key."""
    from imagescan.checks.reuse import keep_memo, taken_memo
    from imagescan.policy.apply import PolicyMemo, apply_policy
    from imagescan.scan import scan

    # A summary is kept, never an SBOM: no link graph (9 ms of each image of a Debian
    # base in benchmarks/audit.py), whatever entry point made the settings.
    scanned = scan(reference, replace(settings.options, links=False), store=store, carry=carry)
    memo: PolicyMemo = taken_memo(carry, "policy")
    report = apply_policy(
        scanned.report, settings.policy, today=settings.today, rootfs=scanned.rootfs, memo=memo
    )
    keep_memo(carry, "policy", memo)
    if store is None:
        return report, None  # nothing records or reuses it
    digest, diff_ids = scanned.image.manifest_digest, scanned.image.config.diff_ids
    return report, result_key(digest, diff_ids, settings, store.facts_version)


def result_key(
    manifest_digest: str | None,
    diff_ids: Sequence[str],
    settings: AuditSettings,
    facts_version: str,
) -> str | None:
    """What an image's result depends on, hashed: its bytes (manifest digest, diff_ids),
    the analysis version, the policy and options, and the day when a waiver can expire.
    None without a manifest digest (a `dir:` source): such a result is never reused."""
    if manifest_digest is None:
        return None
    dated = any(w.expires is not None for w in settings.policy.waivers)
    options = replace(settings.options, cache_dir=None)
    parts = [
        facts_version,
        manifest_digest,
        list(diff_ids),
        repr(settings.policy),
        repr(options),
        settings.today.isoformat() if dated else None,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def audit_image(
    reference: str,
    position: int,
    settings: AuditSettings,
    store: Store | None,
    carry: Carry | None = None,
) -> ImageResult:
    """One image's result; an image that cannot be read is an error result, never raised."""
    notes_before = len(store.stats.notes) if store is not None else 0
    try:
        result = _reused(reference, position, settings, store) or _scanned(
            reference, position, settings, store, carry
        )
    except ImagescanError as err:  # one unreadable image does not stop the audit
        result = ImageResult(reference, error=err.message, position=position)
    if store is not None and len(store.stats.notes) > notes_before:
        result = replace(result, notes=tuple(store.stats.notes[notes_before:]))
    return result


def _scanned(
    reference: str,
    position: int,
    settings: AuditSettings,
    store: Store | None,
    carry: Carry | None,
) -> ImageResult:
    report, key = judge(reference, settings, store, carry)
    return ImageResult(reference, summarise(report), position=position, result_key=key)


def _reused(
    reference: str, position: int, settings: AuditSettings, store: Store | None
) -> ImageResult | None:
    """The recorded result for the same key, read from the manifest alone (no layer)."""
    if store is None or not settings.reuse:
        return None
    image = open_image(reference, settings.options.source)
    image.close()
    key = result_key(image.manifest_digest, image.config.diff_ids, settings, store.facts_version)
    summary = store.reusable(key) if key is not None else None
    if summary is None or summary.manifest_digest != image.manifest_digest:
        return None
    return ImageResult(reference, summary, position=position, reused=True, result_key=key)


def base_groups(
    images: Sequence[tuple[int, str]], source: SourceOptions
) -> dict[tuple[str, ...], list[int]]:
    """Positions of the images by their base (every diff_id but the top layer's), read from
    the manifest and config alone. An image that cannot be opened is a group of its own (its
    task will report why)."""
    return {base: positions for base, (positions, _) in sized_base_groups(images, source).items()}


def sized_base_groups(
    images: Sequence[tuple[int, str]], source: SourceOptions
) -> dict[tuple[str, ...], tuple[list[int], int]]:
    """base_groups, each with the bytes of its base's layers as the manifest gives them
    (what the group's first image reads; 0 where unknown)."""
    groups: dict[tuple[str, ...], tuple[list[int], int]] = {}
    for position, reference in images:
        size = 0
        try:
            image = open_image(reference, source)
            image.close()
            diff_ids = image.config.diff_ids
            base = tuple(diff_ids[:-1]) or tuple(diff_ids) or (reference,)
            size = sum(layer.size or 0 for layer in image.layers[: max(len(diff_ids) - 1, 1)])
        except ImagescanError:
            base = (reference,)
        groups.setdefault(base, ([], size))[0].append(position)
    return groups


def audit_images(
    images: Sequence[tuple[int, str]],
    settings: AuditSettings,
    progress: Callable[[str], None] | None = None,
) -> list[ImageResult]:
    """The one-process engine: the images of one base in a row (their manifests read
    first), so that the verdicts that still hold are carried from one to the next
    (checks.reuse); results in list order. Each group of a base runs in a forked process
    of its own, up to `jobs` at once (parallel.map_isolated): a group's peak memory is then
    its own, whatever the groups before it left in the heap (issue 8)."""
    order = {position: i for i, (position, _) in enumerate(images)}
    count = itertools.count(1)
    runs = _sized_runs(images, settings)
    groups = [[(next(count), image) for image in run] for run, _ in runs]
    # The dearest first (the most base bytes to read), so that the last group to start is
    # a cheap one: the cold audit of benchmarks/audit.py 4.9 -> 4.6 s on 2 cores.
    groups = [g for g, _ in sorted(zip(groups, runs, strict=True), key=lambda x: -x[1][1])]

    def run(group: list[tuple[int, tuple[int, str]]]) -> list[ImageResult]:
        return _audit_group(group, len(images), settings, progress)

    jobs = max(1, settings.options.jobs)
    results = [r for done in map_isolated(run, groups, jobs) for r in done]
    return sorted(results, key=lambda r: order[r.position])


def _audit_group(
    group: list[tuple[int, tuple[int, str]]],
    total: int,
    settings: AuditSettings,
    progress: Callable[[str], None] | None,
) -> list[ImageResult]:
    """The images of one base, one after the other, sharing one open store and a carry."""
    store = open_store(settings.store) if settings.store is not None else None
    carry = Carry()  # images in a row share bases: verdicts that hold are carried (issue 12)
    try:
        results = []
        for count, (position, reference) in group:
            if progress is not None:
                progress(f"[{count}/{total}] {reference}")
            results.append(audit_image(reference, position, settings, store, carry))
            release_free_memory()  # the next image's peak starts from this one's floor
        return results
    finally:
        if store is not None:
            store.close()


def by_base(images: Sequence[tuple[int, str]], settings: AuditSettings) -> list[tuple[int, str]]:
    """The images grouped by base, each group in list order, groups by their first image."""
    return [image for run in base_runs(images, settings) for image in run]


def base_runs(
    images: Sequence[tuple[int, str]], settings: AuditSettings
) -> list[list[tuple[int, str]]]:
    """The images of each base (by_base's groups); one group of all when there are fewer
    than three (nothing to gain from reading the manifests first)."""
    return [run for run, _ in _sized_runs(images, settings)]


def _sized_runs(
    images: Sequence[tuple[int, str]], settings: AuditSettings
) -> list[tuple[list[tuple[int, str]], int]]:
    """base_runs, each with the bytes of its base's layers (sized_base_groups)."""
    if len(images) < 3:
        return [(list(images), 0)]
    reference = dict(images)
    groups = sized_base_groups(images, settings.options.source).values()
    return [([(p, reference[p]) for p in group], size) for group, size in groups]


def record_run(results: Sequence[ImageResult], location: str, started: float) -> str:
    """Keep the run in the store (history); its id."""
    run = Run(uuid.uuid4().hex, started, tuple(r.outcome() for r in results))
    store = open_store(location)
    try:
        store.record(run)
    finally:
        store.close()
    return run.run_id


def parse_shard(text: str, environ: dict[str, str]) -> tuple[int, int]:
    """`I/N` (0 <= I < N), or `N` with I from JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)."""
    index_text, sep, count_text = text.rpartition("/")
    if not sep:
        index_text = environ.get("JOB_COMPLETION_INDEX", "")
        if not index_text:
            raise UsageError(f"--shard {text}: give I/N, or set JOB_COMPLETION_INDEX")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError as err:
        raise UsageError(f"--shard {text}: expected I/N, e.g. 0/4") from err
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_of(reference: str, count: int) -> int:
    """The shard an image belongs to: a hash of its reference, so that the split does not
    depend on the list's order or on which other images are in it."""
    digest = hashlib.sha256(reference.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(references: Sequence[str], index: int, count: int) -> list[tuple[int, str]]:
    """(position in the whole list, reference) of the images of shard `index`."""
    return [(i, ref) for i, ref in enumerate(references) if shard_of(ref, count) == index]


def fails(worst: str | None, fail_on: str) -> bool:
    return worst is not None and severity_at_least(Severity(worst), Severity(fail_on))


def audit_dict(
    results: Iterable[ImageResult], shard: tuple[int, int, int] | None = None
) -> dict[str, Any]:
    """The JSON form: each image's summary and broken files (full reports: `scan -o json`).
    `shard` is (index, count, images in the whole list) for one shard's part."""
    images = [_image_dict(r) for r in sorted(results, key=lambda r: r.position)]
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "images": images}
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1], "total": shard[2]}
    return doc


def _image_dict(result: ImageResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"reference": result.reference, "position": result.position}
    entry["attempts"] = result.attempts
    if result.error is not None or result.summary is None:
        entry["error"] = result.error or "no result"
        return entry
    summary = result.summary
    entry["manifest_digest"] = summary.manifest_digest
    entry["by_status"] = summary.status_counts()
    entry["broken"] = list(result.broken)
    entry["broken_lazy"] = list(result.lazy)
    entry["worst"] = None if summary.worst is None else str(summary.worst)
    entry["reused"] = result.reused
    return entry


def audit_lines(doc: dict[str, Any]) -> list[str]:
    """One line per image, its broken files indented below, a closing summary line."""
    lines: list[str] = []
    images = doc["images"]
    for image in images:
        retried = f" (after {image['attempts']} attempts)" if image["attempts"] > 1 else ""
        if "error" in image:
            lines.append(f"{image['reference']}: not scanned{retried}: {image['error']}")
            continue
        lines.append(
            f"{image['reference']}: {sum(image['by_status'].values())} ELF files, "
            f"{len(image['broken'])} broken, {len(image['broken_lazy'])} broken-lazy{retried}"
        )
        lines += [f"  broken: {path}" for path in image["broken"]]
    broken = sum(1 for i in images if i.get("broken"))
    failed = sum(1 for i in images if "error" in i)
    lines.append(
        f"{len(images)} images: {broken} with programs that will not start, {failed} not scanned"
    )
    return lines


def exit_status(doc: dict[str, Any], fail_on: str) -> tuple[bool, bool]:
    """(some image not scanned, some image's findings reach `fail_on`)."""
    images = doc["images"]
    errors = any("error" in i for i in images)
    return errors, any(fails(i.get("worst"), fail_on) for i in images)


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The shards' JSON results as one run's; UsageError when a shard is missing, doubled
    or from another split (a partial merge must never pass for the whole audit)."""
    shards = [d.get("shard") for d in docs]
    if any(s is None for s in shards):
        if len(docs) > 1:
            raise UsageError("merge: every input must be one shard's result (audit --shard)")
        return {"schema_version": SCHEMA_VERSION, "images": list(docs[0]["images"])}
    counts = {(s["count"], s["total"]) for s in shards if s is not None}
    indexes = sorted(s["index"] for s in shards if s is not None)
    if len(counts) != 1:
        raise UsageError("merge: the inputs come from different splits (--shard I/N)")
    count, total = counts.pop()
    if indexes != list(range(count)):
        missing = sorted(set(range(count)) - set(indexes))
        raise UsageError(f"merge: shards {missing or 'doubled'} of {count}: need each once")
    images = sorted((i for d in docs for i in d["images"]), key=lambda i: i["position"])
    if len(images) != total:
        raise UsageError(f"merge: {len(images)} images in the shards, the list had {total}")
    return {"schema_version": SCHEMA_VERSION, "images": images}


def load_result(text: str, name: str) -> dict[str, Any]:
    """An `audit -o json` document, checked enough for merge; UsageError otherwise."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise UsageError(f"{name}: not JSON ({err})") from err
    ok = isinstance(doc, dict) and doc.get("schema_version") == SCHEMA_VERSION
    if not ok or not isinstance(doc.get("images"), list):
        raise UsageError(f"{name}: not an `imagescan audit -o json` result")
    for image in doc["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("position"), int):
            raise UsageError(f"{name}: an image entry without its position")
    return dict(doc)
