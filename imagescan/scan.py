"""The pipeline, one direction: reference -> image -> RootFS -> analysis -> Report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from imagescan.analyze import Analysis, analyze
from imagescan.checks.causes import link_causes
from imagescan.checks.model import FileVerdict
from imagescan.checks.reuse import Carry, keep_memo, taken_memo
from imagescan.heap import release_free_memory
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.progress import CountingAccess, ProgressSink
from imagescan.image.sources import open_image
from imagescan.linkgraph import LinkGraph, LinksMemo, link_graph
from imagescan.report import ImageInfo, Report, bounded_verdict
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs
from imagescan.store import open_store
from imagescan.store.model import Store


@dataclass(frozen=True)
class ScanOptions:
    """What a scan may be told beyond the reference."""

    source: SourceOptions = field(default_factory=SourceOptions)
    cpu_level: str | None = None
    plugin_hosts: tuple[tuple[str, str], ...] = ()  # (plugin glob, host program)
    cache_dir: Path | None = None  # layer facts cached by diff_id (opt-in)
    jobs: int = 1  # processes for the analysis (imagescan.parallel)
    digests: bool = True  # each ELF file's SHA-256 and SHA-1: only the SBOMs show them
    links: bool = True  # the loader's link graph: only the SBOMs and attestations show it


@dataclass
class Scanned:
    """An image read and analysed: the report plus what `why` and `inspect` look into."""

    image: OpenedImage
    rootfs: RootFS
    analysis: Analysis
    report: Report


def read_image(
    reference: str,
    options: ScanOptions,
    progress: Callable[[str], None] | None = None,
    *,
    symbols: bool = True,
    store: Store | None = None,
    sink: ProgressSink | None = None,
    carry: Carry | None = None,
) -> tuple[OpenedImage, RootFS]:
    """Open and read an image into its virtual root filesystem (without ELF symbol tables
    when `symbols` is False: listing files needs none). Layer facts come from and go to
    `store` (the caller's, left open), else the one at `options.cache_dir` if any. `sink`
    hears of each layer and of every byte read from it."""
    owned = open_store(options.cache_dir) if store is None and options.cache_dir else None
    cache = store or owned
    image = open_image(reference, options.source)
    image.reference = reference  # messages and the summary name it as the user gave it
    if (
        carry is not None
        and carry.judged is not None
        and not carry.shares_base(image.config.diff_ids)
    ):
        _forget_base(carry, cache, image.config.diff_ids)
    if sink is not None and image.access is not None:
        image.access = CountingAccess(image, image.access, sink)
        progress = progress or sink.message
    try:
        digests = options.digests
        lower = carry.lower if carry is not None else None
        rootfs = read_rootfs(
            image,
            progress=progress,
            symbols=symbols,
            cache=cache,
            digests=digests,
            lower=lower,
            jobs=options.jobs,
        )
        return image, rootfs
    finally:
        image.close()
        if owned is not None:
            owned.close()


def _forget_base(carry: Carry, cache: Store | None, diff_ids: Sequence[str]) -> None:
    """The previous image's judging and decoded layers let go, and their memory given
    back, before this image of another base is read, not after (issue 8: an audit's peak
    must be one image's)."""
    carry.forget()
    if cache is not None:
        cache.retain(diff_ids)
    release_free_memory(free_lists=True)


def scan(
    reference: str,
    options: ScanOptions,
    progress: Callable[[str], None] | None = None,
    store: Store | None = None,
    sink: ProgressSink | None = None,
    carry: Carry | None = None,
) -> Scanned:
    """Read an image and judge every ELF file in it; `carry` hands the verdicts that hold
    from the previous image to this one (checks.reuse: an audit's images share bases)."""
    image, rootfs = read_image(reference, options, progress, store=store, sink=sink, carry=carry)
    elves = sum(1 for entry in rootfs.entries.values() if entry.elf is not None)
    if progress is not None:
        progress(f"analysing {elves} ELF files as the image's loader would")
    if sink is not None:
        sink.analysing(elves)
    analysis = analyze(
        rootfs,
        image.config,
        options.cpu_level,
        options.plugin_hosts,
        jobs=options.jobs,
        on_file=sink.analysed if sink is not None else None,
        carry=carry,
    )
    report = make_report(image, rootfs, analysis, carry, links=options.links)
    return Scanned(image, rootfs, analysis, report)


def image_info(image: OpenedImage, rootfs: RootFS) -> ImageInfo:
    config = image.config
    return ImageInfo(
        image.reference,
        str(image.kind),
        image.manifest_digest,
        config.architecture,
        config.os,
        rootfs.layer_ids,
    )


def make_report(
    image: OpenedImage,
    rootfs: RootFS,
    analysis: Analysis,
    carry: Carry | None = None,
    *,
    links: bool = True,
) -> Report:
    """The report of one analysed image, with the link graph unless `links` is False;
    with `carry`, the processes' edges of the previous image are taken where they hold
    (checks.reuse)."""
    files = tuple(_reported(analysis.verdicts[p]) for p in sorted(analysis.verdicts))
    return Report(
        image_info(image, rootfs),
        files,
        rootfs.skipped,
        tuple(analysis.image_findings),
        links=_links(rootfs, analysis, carry) if links else None,
    )


def _links(rootfs: RootFS, analysis: Analysis, carry: Carry | None) -> LinkGraph:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the SBOM's creation time
    edges: LinksMemo = taken_memo(carry, "links")
    graph = link_graph(rootfs, analysis, created, edges if carry is not None else None)
    keep_memo(carry, "links", edges)
    return graph


def _reported(verdict: FileVerdict) -> FileVerdict:
    """A verdict as reported: fallout linked to its root cause, within the report's bounds
    (the verdict itself when neither changes anything: a report shares the analysis'
    values, and an audit's next image does not hold a copy of them)."""
    linked = link_causes(verdict.findings)
    if any(new is not old for new, old in zip(linked, verdict.findings, strict=True)):
        verdict = replace(verdict, findings=linked)
    return bounded_verdict(verdict)
