"""Reading the JSON documents of images: descriptors, indexes, manifests and image configs.

Pure functions from parsed JSON to model values. Anything malformed is one ImageReadError that
names the document; registry and local sources share these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagescan.errors import ImageReadError
from imagescan.image.compression import parse_digest
from imagescan.image.model import HistoryEntry, ImageConfig, LayerDescriptor, Platform

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})
MANIFEST_MEDIA_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
MAX_BLOB_SIZE = 1 << 40  # 1 TiB: a declared size beyond this is not a real layer


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (the fields imagescan uses)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def non_distributable(self) -> bool:
        """A foreign layer (Windows base layers): its blob may legitimately be absent."""
        return "nondistributable" in self.media_type or "foreign" in self.media_type


def expect_object(doc: object, what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ImageReadError(f"{what} is not a JSON object")
    return doc


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ImageReadError(f"{what} is not a JSON list")
    return value


def _strings(value: object, what: str) -> tuple[str, ...] | None:
    """A list of strings, or None for null/absent; ImageReadError for anything else."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ImageReadError(f"{what} is not a list of strings")
    return tuple(value)


def _optional_str(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ImageReadError(f"{what} is not a string")


def parse_platform_field(value: object, what: str) -> Platform | None:
    if value is None:
        return None
    doc = expect_object(value, what)
    os_name, arch = doc.get("os"), doc.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        raise ImageReadError(f"{what} lacks os/architecture")
    return Platform(os_name, arch, _optional_str(doc.get("variant"), f"{what} variant"))


def parse_descriptor(value: object, what: str) -> Descriptor:
    """One descriptor; checks digest syntax and that the size is sane."""
    doc = expect_object(value, what)
    digest, size = doc.get("digest"), doc.get("size")
    if not isinstance(digest, str):
        raise ImageReadError(f"{what} has no digest")
    parse_digest(digest, what)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_BLOB_SIZE:
        raise ImageReadError(f"{what} declares an absurd size {str(size)[:40]!r}")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ImageReadError(f"{what} annotations are not an object")
    return Descriptor(
        media_type=_optional_str(doc.get("mediaType"), f"{what} mediaType") or "",
        digest=digest,
        size=size,
        platform=parse_platform_field(doc.get("platform"), f"{what} platform"),
        annotations={str(k): str(v) for k, v in annotations.items()},
        urls=_strings(doc.get("urls"), f"{what} urls") or (),
    )


def parse_index(doc: object, what: str) -> list[Descriptor]:
    """The `manifests` of an image index (OCI index or docker manifest list)."""
    manifests = _list(expect_object(doc, what).get("manifests"), f"{what} manifests")
    return [parse_descriptor(item, f"{what} entry {n}") for n, item in enumerate(manifests, 1)]


@dataclass(frozen=True)
class Manifest:
    """An image manifest: its config and layers, bottom first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


def parse_manifest(doc: object, what: str) -> Manifest:
    obj = expect_object(doc, what)
    if obj.get("schemaVersion") == 1:
        raise ImageReadError(f"{what} is a docker schema 1 manifest, which is not supported")
    layers = _list(obj.get("layers"), f"{what} layers")
    return Manifest(
        config=parse_descriptor(obj.get("config"), f"{what} config"),
        layers=tuple(parse_descriptor(x, f"{what} layer {n}") for n, x in enumerate(layers, 1)),
    )


def is_index_document(doc: object) -> bool:
    """Whether a parsed document is an index (for descriptors without a media type)."""
    return isinstance(doc, dict) and (
        doc.get("mediaType") in INDEX_MEDIA_TYPES or ("manifests" in doc and "layers" not in doc)
    )


def _or_empty(value: object) -> object:
    """JSON null (docker writes "config": null for scratch images) reads as an empty object."""
    return {} if value is None else value


def _diff_ids(doc: dict[str, Any], what: str) -> tuple[str, ...]:
    rootfs = expect_object(_or_empty(doc.get("rootfs")), f"{what} rootfs")
    diff_ids = _strings(rootfs.get("diff_ids"), f"{what} rootfs.diff_ids") or ()
    for diff_id in diff_ids:
        parse_digest(diff_id, f"{what} diff_id")
    return diff_ids


def parse_image_config(doc: object, what: str) -> ImageConfig:
    """ImageConfig from an OCI / docker image config document."""
    obj = expect_object(doc, what)
    run = expect_object(_or_empty(obj.get("config")), f"{what} config")
    return ImageConfig(
        architecture=_optional_str(obj.get("architecture"), f"{what} architecture") or "amd64",
        os=_optional_str(obj.get("os"), f"{what} os") or "linux",
        variant=_optional_str(obj.get("variant"), f"{what} variant"),
        env=_strings(run.get("Env"), f"{what} Env") or (),
        entrypoint=_strings(run.get("Entrypoint"), f"{what} Entrypoint"),
        cmd=_strings(run.get("Cmd"), f"{what} Cmd"),
        user=_optional_str(run.get("User"), f"{what} User"),
        working_dir=_optional_str(run.get("WorkingDir"), f"{what} WorkingDir"),
        diff_ids=_diff_ids(obj, what),
        history=_history(obj.get("history")),
    )


def _history(value: object) -> tuple[HistoryEntry, ...]:
    """The config's history; a malformed one reads as none (it only names build steps, and
    an image whose history is odd still runs)."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return ()
    return tuple(
        HistoryEntry(
            created_by=item["created_by"] if isinstance(item.get("created_by"), str) else None,
            empty_layer=item.get("empty_layer") is True,
        )
        for item in value
    )


def layer_descriptors(
    layers: Sequence[Descriptor], config: ImageConfig, what: str
) -> tuple[LayerDescriptor, ...]:
    """The model's layer list, each with its diff_id; ImageReadError when the counts differ."""
    if len(config.diff_ids) != len(layers):
        raise ImageReadError(
            f"{what}: the manifest lists {len(layers)} layers, the config {len(config.diff_ids)}"
        )
    return tuple(
        LayerDescriptor(digest=d.digest, diff_id=diff_id, media_type=d.media_type, size=d.size)
        for d, diff_id in zip(layers, config.diff_ids, strict=True)
    )
