"""Judged scan reports kept whole by result key (issue 14: a warm rescan in under 1 s).

A report is a pure function of the image (its layers' diff_ids and the parts of its config
the analysis reads: `ImageConfig`), the analysis version, and the judging asked for
(options, policy, --fail-on, the package indexes its hints were made from, and the day
when a waiver can expire). A rescan with the same key reads one store entry instead of
every layer's facts and the analysis, the way an audit reuses a summary
(`audit.result_key`). The entry is plain JSON checked field by field on the way back
(store.codec: no pickle); one that does not decode is ignored, noted, and the image
scanned again. An image without diff_ids (`dir:`) is never reused. The key needs no
manifest digest: an image the engine built and never pushed has none, and the same layers
and config saved as an archive or pushed judge the same.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date
from functools import cache

from imagescan.image.model import ImageConfig, OpenedImage
from imagescan.policy.rules import Policy
from imagescan.report import Report
from imagescan.scan import ScanOptions
from imagescan.store.codec import EntryError, TypedCodec
from imagescan.store.model import Store

REPORT_FORMAT = "imagescan-scan-report"


@dataclass(frozen=True)
class Judging:
    """What besides the image's bytes a judged report depends on."""

    options: ScanOptions
    policy: Policy
    fail_on: str
    policy_name: str | None = None  # as the report's header names them
    config_file: str | None = None
    today: date | None = None  # only when a waiver has an expiry date
    indexes: tuple[tuple[str, int, int], ...] = ()  # package indexes: (name, size, mtime_ns)


@cache
def report_codec(facts_version: str) -> TypedCodec:
    """The codec of reports made by this analysis version."""
    return TypedCodec(Report, REPORT_FORMAT, f"{facts_version}/report", ("key", "report"))


def report_key(config: ImageConfig, judging: Judging, facts_version: str) -> str | None:
    """The hash of everything the report depends on; None for an image without diff_ids."""
    if not config.diff_ids:
        return None
    # How many processes judge it changes nothing (the parallel path's results are the
    # sequential one's, tests/test_parallel.py); where the facts are cached neither.
    options = replace(judging.options, cache_dir=None, jobs=1)
    judged_as = repr(replace(judging, options=options))
    parts = [facts_version, repr(config), judged_as]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def recorded_report(store: Store, key: str) -> Report | None:
    """The report kept for `key`, None when there is none or it cannot be used (noted)."""
    codec = report_codec(store.facts_version)
    data = store.recorded_report(key, codec.version)
    if data is None:
        return None
    try:
        report = codec.loads(data, key)
    except EntryError as err:
        store.stats.notes.append(f"stored scan report ignored ({err}); the image is scanned again")
        return None
    assert isinstance(report, Report)
    return report


def record_report(store: Store, key: str, report: Report) -> None:
    """Keep a judged report under its key."""
    codec = report_codec(store.facts_version)
    store.record_report(key, codec.version, codec.dumps(report, key))


def as_rescanned(report: Report, image: OpenedImage, created: str) -> Report:
    """A kept report as this rescan's: the image named as now (one image has many names
    and sources), and the SBOMs' creation time now."""
    info = replace(
        report.image,
        reference=image.reference,
        source=str(image.kind),
        manifest_digest=image.manifest_digest,
    )
    links = replace(report.links, created=created) if report.links is not None else None
    return replace(report, image=info, links=links)
