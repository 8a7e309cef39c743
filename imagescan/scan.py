"""The pipeline, one direction: reference -> image -> RootFS -> analysis -> Report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from imagescan.analyze import Analysis, analyze
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.sources import open_image
from imagescan.linkgraph import link_graph
from imagescan.report import ImageInfo, Report
from imagescan.rootfs.cache import LayerCache
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs


@dataclass(frozen=True)
class ScanOptions:
    """What a scan may be told beyond the reference."""

    source: SourceOptions = field(default_factory=SourceOptions)
    cpu_level: str | None = None
    plugin_hosts: tuple[tuple[str, str], ...] = ()  # (plugin glob, host program)
    cache_dir: Path | None = None  # layer facts cached by diff_id (opt-in)


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
) -> tuple[OpenedImage, RootFS]:
    """Open and read an image into its virtual root filesystem (without ELF symbol tables
    when `symbols` is False: listing files needs none)."""
    cache = LayerCache(options.cache_dir) if options.cache_dir is not None else None
    image = open_image(reference, options.source)
    try:
        return image, read_rootfs(image, progress=progress, symbols=symbols, cache=cache)
    finally:
        image.close()
        if cache is not None:
            cache.close()


def scan(
    reference: str, options: ScanOptions, progress: Callable[[str], None] | None = None
) -> Scanned:
    """Read an image and judge every ELF file in it."""
    image, rootfs = read_image(reference, options, progress)
    if progress is not None:
        elves = sum(1 for entry in rootfs.entries.values() if entry.elf is not None)
        progress(f"analysing {elves} ELF files as the image's loader would")
    analysis = analyze(rootfs, image.config, options.cpu_level, options.plugin_hosts)
    return Scanned(image, rootfs, analysis, make_report(image, rootfs, analysis))


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


def make_report(image: OpenedImage, rootfs: RootFS, analysis: Analysis) -> Report:
    files = tuple(analysis.verdicts[p] for p in sorted(analysis.verdicts))
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the SBOM's creation time
    links = link_graph(rootfs, analysis, created)
    return Report(
        image_info(image, rootfs),
        files,
        rootfs.skipped,
        tuple(analysis.image_findings),
        links=links,
    )
