"""Report (+ the image it came from) -> Hints: provenance of every judged file and a fix
for every finding. Pure: the package index, when asked for, is read before."""

from __future__ import annotations

from dataclasses import replace

from imagescan.analyze import elf_files
from imagescan.hints.context import HintContext
from imagescan.hints.fixes import fix_for
from imagescan.hints.history import layer_steps
from imagescan.hints.index import PackageIndex
from imagescan.hints.libc import find_libc
from imagescan.hints.model import FindingKey, Fix, Hints, finding_key
from imagescan.hints.provenance import file_provenance, image_provenance
from imagescan.hints.sources import IndexSource, index_sources
from imagescan.image.model import ImageConfig
from imagescan.packages.model import PackageDb
from imagescan.packages.osrelease import read_os_release
from imagescan.packages.read import read_packages
from imagescan.report import Report
from imagescan.rootfs.model import RootFS


def make_hints(
    report: Report,
    rootfs: RootFS,
    config: ImageConfig,
    index: PackageIndex | None = None,
    packages: PackageDb | None = None,
) -> Hints:
    """Where every judged file came from, and how to fix every finding of `report`."""
    db = packages if packages is not None else read_packages(rootfs)
    libc = find_libc(((p, f) for p, _, f in elf_files(rootfs)), db)
    image = image_provenance(rootfs, db, libc)
    provenance = file_provenance(((v.path, v.layer) for v in report.files), rootfs, config, db)
    verdicts = {verdict.path: verdict for verdict in report.files}
    steps = layer_steps(config.history, len(rootfs.layer_ids))
    ctx = HintContext(rootfs, config, db, image, provenance, verdicts, index, steps)
    fixes: dict[FindingKey, Fix] = {}
    for verdict in report.files:
        for finding in verdict.findings:
            fix = fix_for(finding, ctx, verdict)
            if fix is not None:
                fixes[finding_key(verdict.path, finding)] = fix
    for finding in report.image_findings:
        fix = fix_for(finding, ctx, None)
        if fix is not None:
            fixes[finding_key("", finding)] = fix
    return Hints(image, provenance, fixes)


def with_hints(
    report: Report,
    rootfs: RootFS,
    config: ImageConfig,
    index: PackageIndex | None = None,
    packages: PackageDb | None = None,
) -> Report:
    """`report` with its hints (`packages`: the image's databases, when already read)."""
    return replace(report, hints=make_hints(report, rootfs, config, index, packages))


def image_index_key(rootfs: RootFS, config: ImageConfig) -> tuple[str, list[IndexSource]]:
    """The image's distribution release ("debian-12") and the indexes it configures."""
    release = read_os_release(rootfs.kept)
    distro = release.distro if release else "unknown"
    return distro, index_sources(rootfs.kept, release, config.architecture)
