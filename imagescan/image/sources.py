"""Choosing the source for a reference: explicit prefixes as syft spells them, or auto-detect.

A bare reference that names an existing path is read as the archive or layout it is; any
other bare reference is looked up in the local engine first, then in the registry.
"""

from __future__ import annotations

import importlib
import os
import tarfile
from collections.abc import Callable

from imagescan.errors import EngineError, ImagescanError, ReferenceError_
from imagescan.image.model import OpenedImage, Source, SourceKind, SourceOptions
from imagescan.image.pathref import (
    archive_error,
    looks_like_path,
    require_rootfs_shape,
    suggest_prefix,
)

# kind -> (module, class): imported on use, so that a source's dependencies load only
# when that source is used (the docker SDK is slow to import).
SOURCES: dict[SourceKind, tuple[str, str]] = {
    SourceKind.DOCKER: ("imagescan.image.engine", "DockerEngineSource"),
    SourceKind.DOCKER_ARCHIVE: ("imagescan.image.dockerarchive", "DockerArchiveSource"),
    SourceKind.OCI_DIR: ("imagescan.image.ocilayout", "OciDirSource"),
    SourceKind.OCI_ARCHIVE: ("imagescan.image.ocilayout", "OciArchiveSource"),
    SourceKind.REGISTRY: ("imagescan.image.registry", "RegistrySource"),
    SourceKind.DIR: ("imagescan.image.dirsource", "DirSource"),
}


def source_for(kind: SourceKind) -> Source:
    """An instance of the source class registered for `kind`."""
    module_name, class_name = SOURCES[kind]
    factory: Callable[[], Source] = getattr(importlib.import_module(module_name), class_name)
    return factory()


def split_reference(reference: str) -> tuple[SourceKind | None, str]:
    """`docker-archive:x.tar` -> (DOCKER_ARCHIVE, "x.tar"); a bare reference -> (None, it)."""
    prefix, sep, rest = reference.partition(":")
    if sep:
        for kind in SourceKind:
            if prefix == kind.value:
                if not rest:
                    raise ReferenceError_(f"{reference}: nothing after '{prefix}:'")
                return kind, rest
        meant = suggest_prefix(prefix, tuple(k.value for k in SourceKind))
        if meant is not None and not rest.startswith("//"):
            raise ReferenceError_(f"unknown source '{prefix}:'; did you mean '{meant}:'?")
    return None, reference


def open_image(reference: str, options: SourceOptions) -> OpenedImage:
    """Open the image a reference names, with the source its prefix (or its shape) picks."""
    kind, rest = split_reference(reference)
    if kind is not None:
        return source_for(kind).open(rest, options)
    path_kind = _kind_of_path(reference)
    if path_kind is not None:
        return source_for(path_kind).open(reference, options)
    if looks_like_path(reference):
        raise ReferenceError_(f"{reference}: no such file or directory")
    return _engine_then_registry(reference, options)


def _kind_of_path(reference: str) -> SourceKind | None:
    if os.path.isdir(reference):
        if os.path.exists(os.path.join(reference, "index.json")):
            return SourceKind.OCI_DIR
        require_rootfs_shape(reference)
        return SourceKind.DIR
    if not os.path.isfile(reference):
        return None
    try:
        with tarfile.open(reference, "r:*") as tar:
            names = {n.lstrip("./") for n in tar.getnames()[:10000]}
    except (tarfile.TarError, OSError) as err:
        raise ReferenceError_(archive_error(reference, err)) from err
    return SourceKind.DOCKER_ARCHIVE if "manifest.json" in names else SourceKind.OCI_ARCHIVE


def _engine_then_registry(reference: str, options: SourceOptions) -> OpenedImage:
    try:
        return source_for(SourceKind.DOCKER).open(reference, options)
    except EngineError as engine_error:
        try:
            return source_for(SourceKind.REGISTRY).open(reference, options)
        except ImagescanError as registry_error:
            raise ImagescanError(
                f"{reference}: not in the local engine ({engine_error.message}) and not "
                f"readable from its registry ({registry_error.message})"
            ) from registry_error
