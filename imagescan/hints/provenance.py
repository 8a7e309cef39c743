"""Where each judged file came from: its layer, that layer's build step, its package."""

from __future__ import annotations

from collections.abc import Iterable

from imagescan.hints.history import layer_steps
from imagescan.hints.model import SHORT_DIGEST, CLibrary, ImageProvenance, Provenance
from imagescan.image.model import ImageConfig
from imagescan.packages.model import PackageDb
from imagescan.packages.osrelease import read_os_release
from imagescan.rootfs.model import RootFS


def short_diff_id(diff_id: str | None) -> str | None:
    """ "sha256:" and the first 12 hex digits, as `docker history` shortens ids."""
    if not diff_id:
        return None
    algorithm, _, digest = diff_id.partition(":")
    return f"{algorithm}:{digest[:SHORT_DIGEST]}" if digest else diff_id[:SHORT_DIGEST]


def file_provenance(
    paths: Iterable[tuple[str, int | None]], rootfs: RootFS, config: ImageConfig, db: PackageDb
) -> dict[str, Provenance]:
    """(path, layer) of each judged file -> its Provenance."""
    steps = layer_steps(config.history, len(rootfs.layer_ids))
    return {path: provenance_of(path, layer, rootfs, steps, db) for path, layer in paths}


def provenance_of(
    path: str,
    layer: int | None,
    rootfs: RootFS,
    steps: tuple[str | None, ...],
    db: PackageDb,
) -> Provenance:
    """One file's Provenance; `steps` is each layer's build step (history.layer_steps)."""
    if layer is None or not 0 <= layer < len(rootfs.layer_ids):
        return Provenance(layer, None, None, db.owner(path))
    step = steps[layer] if layer < len(steps) else None
    return Provenance(layer, short_diff_id(rootfs.layer_ids[layer]), step, db.owner(path))


def image_provenance(rootfs: RootFS, db: PackageDb, libc: CLibrary | None) -> ImageProvenance:
    """The image-wide facts: the C library (found by the caller), distribution, packages."""
    release = read_os_release(rootfs.kept)
    return ImageProvenance(
        libc=libc,
        distro_id=release.id if release else None,
        distro_version=release.version_id if release else None,
        distro_name=release.pretty_name if release else None,
        package_managers=tuple(sorted({p.manager for p in db.packages})),
        packages=len(db.packages),
        package_problems=db.problems,
    )
