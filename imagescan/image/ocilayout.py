"""OCI image layouts (oci-dir, oci-archive, Docker >= 25 `docker save`) over a blob store.

index.json -> the descriptor named by tag or digest (or the only one) -> nested indexes chosen
by platform -> manifest -> config and layers. Small documents are verified against their
digests when read; layer blobs are verified while they stream (DigestVerifyingReader).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imagescan.errors import ImageReadError, PlatformError, ReferenceError_
from imagescan.image.blobstore import (
    BlobStore,
    DirStore,
    TarStore,
    blob_path,
    parse_json,
    read_small,
)
from imagescan.image.compression import DigestVerifyingReader, parse_digest
from imagescan.image.configjson import (
    CONTAINERD_NAME,
    REF_NAME,
    Descriptor,
    is_index_document,
    layer_descriptors,
    parse_image_config,
    parse_index,
    parse_manifest,
)
from imagescan.image.model import (
    ImageConfig,
    LayerDescriptor,
    OpenedImage,
    Platform,
    RandomAccessLayers,
    SourceKind,
    SourceOptions,
)
from imagescan.image.pathref import split_local_reference
from imagescan.image.platform import Candidate, choose, host_platform, matches

MAX_INDEX_DEPTH = 8


@dataclass(frozen=True)
class Selector:
    """What names one image in a layout: a tag (ref.name or full image name) or a digest."""

    tag: str | None = None
    digest: str | None = None


def read_verified_json(store: BlobStore, descriptor: Descriptor, what: str) -> object:
    """A small blob (manifest, index, config) parsed, after checking its size and digest."""
    path = blob_path(descriptor.digest, what)
    data = read_small(store, path, f"{what} ({descriptor.digest})")
    if len(data) != descriptor.size:
        raise ImageReadError(
            f"{what} {descriptor.digest} in {store.where} is {len(data)} bytes,"
            f" its descriptor says {descriptor.size}"
        )
    algorithm, expected = parse_digest(descriptor.digest, what)
    if hashlib.new(algorithm, data).hexdigest() != expected:
        raise ImageReadError(f"{what} {descriptor.digest} in {store.where}: digest mismatch")
    return parse_json(data, f"{what} {descriptor.digest}")


def docker_name(name: str) -> str:
    """A docker image name in full: "app" -> "docker.io/library/app:latest"."""
    name = name.split("@", 1)[0]
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if slash >= 0 else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[1]
    return name if ":" in last else f"{name}:latest"


def tag_matches(descriptor: Descriptor, tag: str) -> bool:
    """Whether `tag` names this index.json entry: its ref.name, or its containerd image name
    (written in full or in docker's short form, "app:1" for docker.io/library/app:1)."""
    ref_name = descriptor.annotations.get(REF_NAME)
    full_name = descriptor.annotations.get(CONTAINERD_NAME)
    if tag in (ref_name, full_name):
        return True
    return full_name is not None and docker_name(tag) == docker_name(full_name)


def _tag_list(descriptors: Sequence[Descriptor]) -> str:
    names = sorted({d.annotations[REF_NAME] for d in descriptors if REF_NAME in d.annotations})
    return ", ".join(names) if names else "none"


def _by_platform(descriptors: Sequence[Descriptor], wanted: Platform, where: str) -> Descriptor:
    return choose(wanted, [Candidate(d.platform, d) for d in descriptors], where)


def _find_digest(
    store: BlobStore,
    entries: Sequence[Descriptor],
    digest: str,
    depth: int,
    visited: dict[str, int] | None = None,
) -> Descriptor | None:
    """The descriptor with `digest` among `entries` or inside the indexes they name.

    `visited` maps each index already searched to the shallowest depth it was searched
    at: in an index DAG (8 levels of 10 entries that all name the next level) every path
    was walked again, exponentially (issue 15). An index is searched again only from a
    shallower depth, where the depth bound leaves it more to see.
    """
    seen = visited if visited is not None else {}
    for entry in entries:
        if entry.digest == digest:
            return entry
    if depth >= MAX_INDEX_DEPTH:
        return None
    for entry in entries:
        if entry.is_index and seen.get(entry.digest, MAX_INDEX_DEPTH + 1) > depth + 1:
            seen[entry.digest] = depth + 1
            inner = parse_index(read_verified_json(store, entry, "image index"), "image index")
            found = _find_digest(store, inner, digest, depth + 1, seen)
            if found is not None:
                return found
    return None


def select_entry(
    store: BlobStore, entries: Sequence[Descriptor], selector: Selector, wanted: Platform
) -> Descriptor:
    """The index.json entry the reference names; ReferenceError_ listing tags when unclear."""
    where = store.where
    if selector.digest is not None:
        found = _find_digest(store, entries, selector.digest, 0)
        if found is None:
            raise ReferenceError_(f"{where} has no manifest {selector.digest}")
        return found
    if selector.tag is not None:
        hits = [d for d in entries if tag_matches(d, selector.tag)]
        if not hits:
            raise ReferenceError_(
                f"{where} has no image tagged {selector.tag!r} (tags: {_tag_list(entries)})"
            )
        return hits[0] if len(hits) == 1 else _by_platform(hits, wanted, where)
    if len(entries) == 1:
        return entries[0]
    if entries and all(d.platform is not None and REF_NAME not in d.annotations for d in entries):
        return _by_platform(entries, wanted, where)  # an untagged multi-platform layout
    raise ReferenceError_(
        f"{where} holds {len(entries)} images; name one with :TAG or @DIGEST"
        f" (tags: {_tag_list(entries)})"
    )


@dataclass(frozen=True)
class ResolvedManifest:
    """The manifest an entry leads to, and whether an index chose it by platform."""

    descriptor: Descriptor
    document: object
    chosen_by_platform: bool


def resolve_manifest(
    store: BlobStore, entry: Descriptor, wanted: Platform, depth: int = 0
) -> ResolvedManifest:
    """Follows (nested) indexes from `entry`, by platform, down to an image manifest."""
    if depth > MAX_INDEX_DEPTH:
        raise ImageReadError(f"{store.where}: image indexes nested deeper than {MAX_INDEX_DEPTH}")
    kind = "image index" if entry.is_index else "manifest"
    document = read_verified_json(store, entry, kind)
    if not is_index_document(document):
        return ResolvedManifest(entry, document, depth > 0)
    inner = _present(store, parse_index(document, f"image index {entry.digest}"))
    where = f"{store.where} (index {entry.digest})"
    return resolve_manifest(store, _by_platform(inner, wanted, where), wanted, depth + 1)


def _present(store: BlobStore, entries: list[Descriptor]) -> list[Descriptor]:
    """The entries whose blob the store holds. `docker save` (containerd image store) keeps the
    whole index but only the platforms that were pulled; offer those. None held: all of them,
    so that the missing blob is what gets reported."""
    held = [d for d in entries if store.size_of(blob_path(d.digest, "index entry")) is not None]
    return held or entries


def check_platform(config: ImageConfig, wanted: Platform, where: str) -> None:
    image = Platform(config.os, config.architecture, config.variant)
    if not matches(wanted, image):
        raise PlatformError(f"{where} is an image for {image}, not for the requested {wanted}")


class LayoutLayers(RandomAccessLayers):
    """Layer blobs of a blob store, each verified against its digest while it streams."""

    def __init__(
        self, store: BlobStore, layers: tuple[LayerDescriptor, ...], paths: tuple[str, ...]
    ) -> None:
        self.store, self.layers, self.paths = store, layers, paths
        # A compressed archive is read in one pass, in its own order (`iter_layers`).
        self.random_access = not (isinstance(store, TarStore) and store.compressed)
        # Both stores open the blob's file anew for each layer (blobstore: DirStore.open,
        # TarStore.open); the one-pass order shares one stream.
        self.forkable = self.random_access

    def layer_count(self) -> int:
        return len(self.layers)

    def describe(self, index: int) -> str:
        layer = self.layers[index]
        return f"layer {index + 1}/{len(self.layers)} ({layer.digest}) of {self.store.where}"

    def open_layer(self, index: int) -> BinaryIO:
        return self.verified(index, self.store.open(self.paths[index]))

    def verified(self, index: int, stream: BinaryIO) -> BinaryIO:
        """Layer `index`'s stored stream, checked against its digest as it is read."""
        layer = self.layers[index]
        return DigestVerifyingReader(stream, layer.digest, self.describe(index), layer.size)

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]:
        if self.random_access or not isinstance(self.store, TarStore):
            yield from super().iter_layers()
            return
        for index, stream in self.store.open_in_order(self.paths):
            yield index, self.verified(index, stream)

    def close(self) -> None:
        self.store.close()


def check_layer_blobs(store: BlobStore, layers: Sequence[Descriptor], paths: Sequence[str]) -> None:
    """Every layer blob is present with its declared size; names foreign layers when absent."""
    for n, (layer, path) in enumerate(zip(layers, paths, strict=True), 1):
        size = store.size_of(path)
        what = f"layer {n}/{len(layers)} ({layer.digest})"
        if size is None and layer.non_distributable:
            urls = f"; it is published at {', '.join(layer.urls)}" if layer.urls else ""
            raise ImageReadError(
                f"{what} is a non-distributable (foreign) layer whose blob is not in"
                f" {store.where}{urls}"
            )
        if size is None:
            raise ImageReadError(f"{what}: blob missing from {store.where}")
        if size != layer.size:
            raise ImageReadError(
                f"{what} in {store.where} is {size} bytes, the manifest says {layer.size}"
            )


def open_layout(
    store: BlobStore, selector: Selector, options: SourceOptions, reference: str, kind: SourceKind
) -> OpenedImage:
    """Opens the image of an OCI layout that `selector` names. The store is closed on error."""
    try:
        return _open_layout(store, selector, options, reference, kind)
    except BaseException:
        store.close()
        raise


def _open_layout(
    store: BlobStore, selector: Selector, options: SourceOptions, reference: str, kind: SourceKind
) -> OpenedImage:
    wanted = options.platform or host_platform()
    index_doc = parse_json(
        read_small(store, "index.json", "index.json"), f"index.json of {store.where}"
    )
    entries = parse_index(index_doc, f"index.json of {store.where}")
    entry = select_entry(store, entries, selector, wanted)
    resolved = resolve_manifest(store, entry, wanted)
    manifest = parse_manifest(resolved.document, f"manifest {resolved.descriptor.digest}")
    config_doc = read_verified_json(store, manifest.config, "image config")
    config = parse_image_config(config_doc, f"image config {manifest.config.digest}")
    if options.platform is not None and not resolved.chosen_by_platform:
        check_platform(config, options.platform, f"{kind}:{reference}")
    layers = layer_descriptors(manifest.layers, config, f"manifest {resolved.descriptor.digest}")
    paths = tuple(blob_path(d.digest, "layer") for d in manifest.layers)
    check_layer_blobs(store, manifest.layers, paths)
    return OpenedImage(
        reference=f"{kind}:{reference}",
        kind=kind,
        config=config,
        layers=layers,
        access=LayoutLayers(store, layers, paths),
        manifest_digest=resolved.descriptor.digest,
    )


class OciDirSource:
    """`oci-dir:DIR[:tag|@digest]`: an OCI image layout directory."""

    kind = SourceKind.OCI_DIR

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        ref = split_local_reference(reference, self.kind)
        root = Path(ref.path)
        if not root.is_dir():
            raise ReferenceError_(f"{self.kind}:{ref.path} is not a directory")
        if not (root / "index.json").is_file():
            raise ReferenceError_(
                f"{self.kind}:{ref.path} is not an OCI image layout (no index.json)"
            )
        store = DirStore(root, f"{self.kind} {ref.path}")
        return open_layout(store, Selector(ref.tag, ref.digest), options, reference, self.kind)


class OciArchiveSource:
    """`oci-archive:FILE[:tag|@digest]`: an OCI image layout in a tar file, read in place."""

    kind = SourceKind.OCI_ARCHIVE

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        ref = split_local_reference(reference, self.kind)
        if not Path(ref.path).is_file():
            raise ReferenceError_(f"{self.kind}:{ref.path} is not a file")
        store = TarStore(Path(ref.path), f"{self.kind} {ref.path}")
        if store.size_of("index.json") is None:
            store.close()
            raise ImageReadError(
                f"{self.kind}:{ref.path} is not an OCI archive (no index.json);"
                " for `docker save` output use docker-archive:"
            )
        return open_layout(store, Selector(ref.tag, ref.digest), options, reference, self.kind)
