"""`docker-archive:FILE[:name:tag|@digest]`: `docker save` output, read in place.

Two shapes: since Docker 25 the archive is an OCI image layout (index.json, blobs/) that also
carries the legacy manifest.json; before, manifest.json names `<config>.json` and
`<v1 id>/layer.tar` files (uncompressed tars whose sha256 is the layer's diff_id).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imagescan.errors import ImageReadError, ReferenceError_
from imagescan.image.blobstore import TarStore, clean_path, parse_json, read_small
from imagescan.image.compression import GZIP_MAGIC, ZSTD_MAGIC, DigestVerifyingReader
from imagescan.image.configjson import expect_object, parse_image_config
from imagescan.image.model import (
    ImageConfig,
    LayerDescriptor,
    OpenedImage,
    SourceKind,
    SourceOptions,
)
from imagescan.image.ocilayout import (
    LayoutLayers,
    Selector,
    check_platform,
    docker_name,
    open_layout,
)
from imagescan.image.pathref import LocalReference, split_local_reference

LEGACY_LAYER_MEDIA_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
# A file named by its content digest: blobs/sha256/<hex> (Docker 25), <hex>.json, <hex>.tar
# (skopeo's docker-archive), so it can be verified by that name.
_DIGEST_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json|\.tar)?$")


@dataclass(frozen=True)
class LegacyEntry:
    """One image of a legacy manifest.json."""

    config_path: str
    repo_tags: tuple[str, ...]
    layer_paths: tuple[str, ...]


def _legacy_entry(value: object, what: str, where: str) -> LegacyEntry:
    doc = expect_object(value, what)
    config, tags, layers = doc.get("Config"), doc.get("RepoTags") or [], doc.get("Layers")
    if not isinstance(config, str) or not isinstance(layers, list):
        raise ImageReadError(f"{what} lacks Config or Layers")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ImageReadError(f"{what} RepoTags is not a list of strings")
    if not all(isinstance(p, str) for p in layers):
        raise ImageReadError(f"{what} Layers is not a list of strings")
    paths = tuple(clean_path(p, where) for p in layers)
    return LegacyEntry(clean_path(config, where), tuple(tags), paths)


def parse_legacy_manifest(doc: object, where: str) -> list[LegacyEntry]:
    """The entries of a legacy `docker save` manifest.json."""
    if not isinstance(doc, list):
        raise ImageReadError(f"manifest.json of {where} is not a JSON list")
    return [
        _legacy_entry(v, f"manifest.json entry {n} of {where}", where) for n, v in enumerate(doc, 1)
    ]


def _tags_of(entries: list[LegacyEntry]) -> str:
    tags = sorted({t for e in entries for t in e.repo_tags})
    return ", ".join(tags) if tags else "none"


def _config_digest(store: TarStore, entry: LegacyEntry) -> str:
    data = read_small(store, entry.config_path, f"image config {entry.config_path}")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def select_legacy(store: TarStore, entries: list[LegacyEntry], ref: LocalReference) -> LegacyEntry:
    """The entry named by tag ("app:1", full names too) or image id (@sha256:…), or the only one."""
    where = store.where
    if ref.tag is not None:
        wanted = docker_name(ref.tag)
        hits = [e for e in entries if any(docker_name(t) == wanted for t in e.repo_tags)]
        if not hits:
            raise ReferenceError_(
                f"{where} has no image tagged {ref.tag!r} (tags: {_tags_of(entries)})"
            )
        return hits[0]
    if ref.digest is not None:
        hits = [e for e in entries if _config_digest(store, e) == ref.digest]
        if not hits:
            raise ReferenceError_(f"{where} has no image with id {ref.digest}")
        return hits[0]
    if len(entries) != 1:
        raise ReferenceError_(
            f"{where} holds {len(entries)} images; name one with :NAME:TAG"
            f" (tags: {_tags_of(entries)})"
        )
    return entries[0]


def _read_config(store: TarStore, entry: LegacyEntry) -> ImageConfig:
    what = f"image config {entry.config_path} of {store.where}"
    data = read_small(store, entry.config_path, what)
    named = _DIGEST_NAME.search(entry.config_path)
    if named and hashlib.sha256(data).hexdigest() != named.group(1):
        raise ImageReadError(f"{what}: digest mismatch (the image id is the config's sha256)")
    return parse_image_config(parse_json(data, what), what)


def _stored_digest(path: str, diff_id: str) -> tuple[str, bool]:
    """(digest of the stored blob, whether that digest is only the diff_id).

    Legacy layer.tar files are stored uncompressed, so their sha256 is the diff_id.
    """
    named = _DIGEST_NAME.search(path)
    if named and not path.endswith("/layer.tar"):
        return f"sha256:{named.group(1)}", False
    return diff_id, True


class DockerArchiveLayers(LayoutLayers):
    """Legacy layers, verified by name digest, or by diff_id when stored uncompressed."""

    def __init__(
        self,
        store: TarStore,
        layers: tuple[LayerDescriptor, ...],
        paths: tuple[str, ...],
        by_diff_id: tuple[bool, ...],
    ) -> None:
        super().__init__(store, layers, paths)
        self.by_diff_id = by_diff_id

    def verified(self, index: int, stream: BinaryIO) -> BinaryIO:
        if not self.by_diff_id[index]:
            return super().verified(index, stream)
        head = bytes(getattr(stream, "peek", lambda n: b"")(4))[:4]
        if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
            return stream  # compressed: the diff_id is of the tar inside, checked by no one here
        layer = self.layers[index]
        return DigestVerifyingReader(stream, layer.digest, self.describe(index), layer.size)


def _legacy_layers(
    store: TarStore, entry: LegacyEntry, config: ImageConfig
) -> tuple[tuple[LayerDescriptor, ...], tuple[bool, ...]]:
    if len(config.diff_ids) != len(entry.layer_paths):
        raise ImageReadError(
            f"{store.where}: manifest.json lists {len(entry.layer_paths)} layers,"
            f" the config {len(config.diff_ids)}"
        )
    layers: list[LayerDescriptor] = []
    by_diff_id: list[bool] = []
    for n, (path, diff_id) in enumerate(zip(entry.layer_paths, config.diff_ids, strict=True), 1):
        size = store.size_of(path)
        if size is None:
            raise ImageReadError(
                f"layer {n}/{len(config.diff_ids)} ({path}) is missing from {store.where}"
            )
        digest, only_diff_id = _stored_digest(path, diff_id)
        layers.append(LayerDescriptor(digest, diff_id, LEGACY_LAYER_MEDIA_TYPE, size))
        by_diff_id.append(only_diff_id)
    return tuple(layers), tuple(by_diff_id)


def _open_legacy(
    store: TarStore, ref: LocalReference, options: SourceOptions, reference: str
) -> OpenedImage:
    kind = SourceKind.DOCKER_ARCHIVE
    manifest = parse_json(
        read_small(store, "manifest.json", "manifest.json"), f"manifest.json of {store.where}"
    )
    entry = select_legacy(store, parse_legacy_manifest(manifest, store.where), ref)
    config = _read_config(store, entry)
    if options.platform is not None:
        check_platform(config, options.platform, f"{kind}:{reference}")
    layers, by_diff_id = _legacy_layers(store, entry, config)
    return OpenedImage(
        reference=f"{kind}:{reference}",
        kind=kind,
        config=config,
        layers=layers,
        access=DockerArchiveLayers(store, layers, entry.layer_paths, by_diff_id),
        manifest_digest=None,
    )


def _index_lists_images(store: TarStore) -> bool:
    """Whether index.json names any image. Docker 25.0 saved images named by digest with
    `"manifests": null` (moby#47210); its manifest.json is still right, so use that."""
    if store.size_of("manifest.json") is None:
        return True  # nothing to fall back on: let the layout reader report what is wrong
    try:
        index = parse_json(read_small(store, "index.json", "index.json"), "index.json")
    except ImageReadError:
        return False
    return isinstance(index, dict) and bool(index.get("manifests"))


def _is_oci_shaped(store: TarStore) -> bool:
    """Docker >= 25 (or any OCI layout in a tar) rather than the legacy shape."""
    has_layout = store.size_of("index.json") is not None and store.size_of("oci-layout") is not None
    return has_layout and _index_lists_images(store)


class DockerArchiveSource:
    """`docker-archive:FILE[:name:tag|@digest]` (legacy and Docker >= 25 shapes)."""

    kind = SourceKind.DOCKER_ARCHIVE

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        ref = split_local_reference(reference, self.kind)
        if not Path(ref.path).is_file():
            raise ReferenceError_(f"{self.kind}:{ref.path} is not a file")
        store = TarStore(Path(ref.path), f"{self.kind} {ref.path}")
        if _is_oci_shaped(store):
            return open_layout(store, Selector(ref.tag, ref.digest), options, reference, self.kind)
        try:
            if store.size_of("manifest.json") is None:
                raise ImageReadError(
                    f"{self.kind}:{ref.path} is not a `docker save` archive (no manifest.json)"
                )
            return _open_legacy(store, ref, options, reference)
        except BaseException:
            store.close()
            raise
