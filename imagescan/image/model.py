"""What a source hands to the rest of the pipeline: the config and a way to stream layers."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol


class SourceKind(enum.StrEnum):
    """Reference prefixes, as syft spells them."""

    DOCKER = "docker"
    DOCKER_ARCHIVE = "docker-archive"
    OCI_DIR = "oci-dir"
    OCI_ARCHIVE = "oci-archive"
    REGISTRY = "registry"
    DIR = "dir"


@dataclass(frozen=True)
class Platform:
    """An OCI platform: os/architecture[/variant]."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True)
class ImageConfig:
    """The parts of the image config (OCI / docker) that the loader emulation needs."""

    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str | None = None
    working_dir: str | None = None
    diff_ids: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()  # issue 11: the build step of each layer

    def env_value(self, name: str) -> str | None:
        """The last `NAME=value` in Env, as the runtime would set it; None when absent."""
        value: str | None = None
        for item in self.env:
            key, sep, val = item.partition("=")
            if sep and key == name:
                value = val
        return value


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One entry of the image config's `history`: the build step, and whether it made no
    layer (`empty_layer`: ENV, CMD, LABEL, ...)."""

    created_by: str | None = None
    empty_layer: bool = False


@dataclass(frozen=True)
class LayerDescriptor:
    """One layer as the manifest names it. `digest` is of the blob as stored (maybe compressed)."""

    digest: str
    diff_id: str | None = None
    media_type: str = ""
    size: int | None = None


@dataclass(frozen=True)
class SourceOptions:
    """Options every source may look at."""

    platform: Platform | None = None
    plain_http: bool = False
    insecure_skip_tls_verify: bool = False
    docker_config: str | None = None
    # Seconds a registry may take for one image, all requests together (issue 15).
    timeout: float = 300.0


class LayerAccess(Protocol):
    """How a source hands over its layer blobs.

    `open_layer(i)` returns the stored blob stream of layer i (compressed or not; the reader
    recognises the compression by magic bytes). Sources that know the digest verify it inside
    the stream and raise ImageReadError at EOF on mismatch. `iter_layers()` yields
    (index, stream) in the order the source has them: bottom first for random-access sources,
    stream order for one-pass ones (the engine export), where `random_access` is False and the
    index is None when only the diff_id (sha256 of the uncompressed tar) can place the layer;
    """

    random_access: bool
    # Each open_layer stream reads a file of this machine through a descriptor of its own,
    # and reading it changes nothing else: a forked child may read it (image.inflater).
    forkable: bool

    def open_layer(self, index: int) -> BinaryIO: ...

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]: ...

    def close(self) -> None: ...


class RandomAccessLayers:
    """Base for sources that can open any layer by index."""

    random_access = True
    forkable = False

    def open_layer(self, index: int) -> BinaryIO:
        raise NotImplementedError

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]:
        for index in range(self.layer_count()):
            yield index, self.open_layer(index)

    def layer_count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        return None


class DirectoryLayers(RandomAccessLayers):
    """Layers that are directories on this machine, unpacked (`dir:`): the reader walks
    `directory(i)` in place instead of a blob, which this access has none of."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots

    def directory(self, index: int) -> str:
        return self.roots[index]

    def layer_count(self) -> int:
        return len(self.roots)

    def open_layer(self, index: int) -> BinaryIO:
        raise TypeError(f"layer {index} is the directory {self.roots[index]}, not a blob")


@dataclass
class OpenedImage:
    """An image ready to read. `layers` are bottom first, as the manifest lists them.

    `image_id` names the image for messages and reports (the reference as the user wrote it).
    """

    reference: str
    kind: SourceKind
    config: ImageConfig
    layers: tuple[LayerDescriptor, ...]
    access: LayerAccess | None = None
    manifest_digest: str | None = None

    def close(self) -> None:
        if self.access is not None:
            self.access.close()


class Source(Protocol):
    """One image source: parses its own reference form and opens the image."""

    kind: SourceKind

    def open(self, reference: str, options: SourceOptions) -> OpenedImage: ...
