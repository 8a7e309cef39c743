"""`docker:REF`: an image from the local Docker engine (or Podman's Docker-compatible socket).

The config comes from the engine's inspect (`GET /images/{name}/json`); the layers from its
export (`GET /images/{id}/get`, what `docker save` uses), read in ONE pass as a tar stream:
nothing is written to disk or buffered whole. The export has one of three shapes: the legacy
one (moby image/tarexport), `<v1-id>/layer.tar` in directory order, which says nothing about a
layer's position (the reader hashes the tar to get its diff_id); the Docker >= 25 OCI layout,
`blobs/sha256/<hex>`; and Podman's (containers/image docker-archive), `<hex>.tar`. A blob
named by a diff_id is that layer.
The docker SDK's types stay inside this module.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, cast

import docker
import docker.errors
import requests
from docker.context import ContextAPI

from imagescan.errors import EngineError, ImageReadError, ReferenceError_
from imagescan.image.compression import GZIP_MAGIC, ZSTD_MAGIC, DigestVerifyingReader
from imagescan.image.dockerref import parse_reference
from imagescan.image.model import (
    ImageConfig,
    LayerDescriptor,
    OpenedImage,
    SourceKind,
    SourceOptions,
)
from imagescan.image.ocilayout import check_platform
from imagescan.image.rawstream import buffered

# Generous: an engine may take a while to answer for big images; the export stream itself
# runs without a socket timeout (the SDK lifts it for raw streams).
ENGINE_TIMEOUT = 300
EXPORT_CHUNK = 1 << 20
UNCOMPRESSED_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DEFAULT_HOST = "unix:///var/run/docker.sock"
_HINT = "(use registry:REF or docker-archive:FILE)"
_TAR_MAGIC_OFFSET = 257  # POSIX ustar "ustar" magic, also GNU "ustar  "
# Shapes of `docker save` / compat exports that carry layer data:
#   docker < 25:          <v1-id>/layer.tar                 (position unknown)
#   docker >= 25 (OCI):   blobs/sha256/<hex>                (hex = diff_id, or compressed)
#   podman (containers/image docker-archive): <hex>.tar    (hex = diff_id)
_LEGACY_LAYER = re.compile(r"[^/]+/layer\.tar")
_NAMED_BLOB = re.compile(r"blobs/sha256/([0-9a-f]{64})|([0-9a-f]{64})\.tar")


def config_from_inspect(attrs: Mapping[str, Any]) -> ImageConfig:
    """ImageConfig from the engine's image inspect (Config may be null for imported images)."""
    runtime = _mapping(attrs.get("Config"))
    rootfs = _mapping(attrs.get("RootFS"))
    return ImageConfig(
        architecture=_text(attrs.get("Architecture")) or "amd64",
        os=_text(attrs.get("Os")) or "linux",
        variant=_text(attrs.get("Variant")),
        env=_texts(runtime.get("Env")) or (),
        entrypoint=_texts(runtime.get("Entrypoint")),
        cmd=_texts(runtime.get("Cmd")),
        user=_text(runtime.get("User")),
        working_dir=_text(runtime.get("WorkingDir")),
        diff_ids=_texts(rootfs.get("Layers")) or (),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(item for item in value if isinstance(item, str))


def repo_digest_for(reference: str, repo_digests: Sequence[str]) -> str | None:
    """The manifest digest the engine recorded for the reference's repository, if any."""
    try:
        wanted = parse_reference(reference)
    except ReferenceError_:
        return None  # an image ID or short ID: no repository to match
    for item in repo_digests:
        name, sep, digest = item.partition("@")
        if not sep:
            continue
        try:
            known = parse_reference(name)
        except ReferenceError_:
            continue
        if (known.registry, known.repository) == (wanted.registry, wanted.repository):
            return digest
    return None


def iter_export_layers(
    stream: BinaryIO, diff_ids: Sequence[str], image: str
) -> Iterator[tuple[int | None, BinaryIO]]:
    """(index or None, layer stream) for each layer of an export tar, in one pass.

    Each stream is valid until the next item is asked for (tarfile stream mode). OCI-shaped
    blobs named by a diff_id get their index and a digest check; a legacy `layer.tar`, or a
    compressed blob (containerd image store exports), gets None: its diff_id places it.
    """
    positions = _positions(diff_ids)
    found = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                layer = _layer_of(tar, member, positions, image)
                if layer is not None:
                    found += 1
                    yield layer
    except tarfile.TarError as exc:
        raise ImageReadError(f"the engine's export of {image} is not a valid tar: {exc}") from exc
    if found < len(positions):
        raise ImageReadError(
            f"the engine's export of {image} holds {found} layers, its config names "
            f"{len(positions)}"
        )


def _positions(diff_ids: Sequence[str]) -> dict[str, int | None]:
    """diff_id -> its index; None for a diff_id at several positions (an export holds its blob
    once, and only placing by diff_id fills every position)."""
    positions: dict[str, int | None] = {}
    for index, diff_id in enumerate(diff_ids):
        positions[diff_id] = None if diff_id in positions else index
    return positions


def _layer_of(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    positions: Mapping[str, int | None],
    image: str,
) -> tuple[int | None, BinaryIO] | None:
    # Docker 25 and Podman add `<id>/layer.tar` symlinks to the real blobs for old readers:
    # only regular files carry data, so no layer is yielded twice.
    if not member.isreg():
        return None
    name = member.name.removeprefix("./")
    if _LEGACY_LAYER.fullmatch(name):
        return None, _member_stream(tar, member, image)
    named = _NAMED_BLOB.fullmatch(name)
    if named is None:
        return None
    digest = f"sha256:{named.group(1) or named.group(2)}"
    what = f"layer blob {digest} in the engine's export of {image}"
    verified = DigestVerifyingReader(_member_stream(tar, member, image), digest, what, member.size)
    if digest in positions:
        return positions[digest], verified
    return (None, verified) if _looks_like_layer(verified) else None


def _member_stream(tar: tarfile.TarFile, member: tarfile.TarInfo, image: str) -> BinaryIO:
    extracted = tar.extractfile(member)
    if extracted is None:  # pragma: no cover - regular members always have data
        raise ImageReadError(f"{member.name}: no data in the export")
    what = f"{member.name} in the engine's export of {image}"
    return buffered(_member_read(cast(BinaryIO, extracted), what), size=1 << 16)


def _member_read(member: BinaryIO, what: str) -> Callable[[int], bytes]:
    """Reads one member of the export tar; a stream cut short is an ImageReadError naming it."""

    def read(size: int) -> bytes:
        try:
            return member.read(size)
        except (tarfile.TarError, EOFError) as exc:
            raise ImageReadError(f"{what} is cut short ({exc})") from exc

    return read


def _looks_like_layer(stream: DigestVerifyingReader) -> bool:
    # A blob not named by a diff_id: a compressed layer (containerd store), or a config,
    # manifest or index (JSON), which are not layers.
    head = stream.peek(_TAR_MAGIC_OFFSET + 5)[: _TAR_MAGIC_OFFSET + 5]
    if head.startswith((GZIP_MAGIC, ZSTD_MAGIC)):
        return True
    return head[_TAR_MAGIC_OFFSET:].startswith(b"ustar")


class _Chunks:
    """Reads the export's chunk iterator; transport errors become one EngineError."""

    def __init__(self, chunks: Iterator[bytes], failure: str) -> None:
        self._chunks, self._failure = chunks, failure
        self._pending = memoryview(b"")

    def read(self, size: int) -> bytes:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return b""
            except docker.errors.ImageNotFound as exc:
                raise EngineError(f"{self._failure}: the image is gone") from exc
            except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
                raise EngineError(f"{self._failure}: {_reason(exc)}") from exc
        data = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        return data

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        text = str(exc.explanation)
    for needle, reason in (
        ("FileNotFoundError", "no socket there"),
        ("No such file or directory", "no socket there"),
        ("PermissionError", "permission denied (is your user allowed to use the socket?)"),
        ("Permission denied", "permission denied (is your user allowed to use the socket?)"),
        ("Connection refused", "connection refused"),
        ("Connection aborted", "the engine closed the connection"),
        ("timed out", "no answer in time"),
    ):
        if needle in text:
            return reason
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first_line[:200]


def engine_host(environ: Mapping[str, str] = os.environ) -> tuple[str | None, Any]:
    """(base_url, tls) of the docker context in use, as the docker CLI picks it.

    (None, None) means "as docker.from_env decides": DOCKER_HOST (with DOCKER_TLS_VERIFY and
    DOCKER_CERT_PATH) when set, which wins over contexts, else the default socket.
    """
    if environ.get("DOCKER_HOST"):
        return None, None
    name = environ.get("DOCKER_CONTEXT")
    try:
        context = ContextAPI.get_context(name) if name else ContextAPI.get_current_context()
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot use Docker context {name!r}: {_reason(exc)} {_HINT}") from exc
    if context is None:
        raise EngineError(f"Docker context {name!r} does not exist {_HINT}")
    if context.Name == "default":
        return None, None
    return context.Host, context.TLSConfig


class _EngineClient:
    """One connection to the engine; the only holder of docker SDK objects."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        base_url, tls = engine_host(environ)
        self.where = base_url or environ.get("DOCKER_HOST") or DEFAULT_HOST
        try:
            if base_url is None:
                self._client = docker.from_env(
                    version="auto", timeout=ENGINE_TIMEOUT, environment=environ
                )
            else:
                self._client = docker.DockerClient(
                    base_url=base_url, tls=tls or False, version="auto", timeout=ENGINE_TIMEOUT
                )
        except docker.errors.DockerException as exc:
            raise EngineError(
                f"cannot reach the Docker engine at {self.where}: {_reason(exc)} {_HINT}"
            ) from exc

    def inspect(self, reference: str) -> Mapping[str, Any]:
        try:
            attrs = self._client.api.inspect_image(reference)
        except docker.errors.ImageNotFound as exc:
            raise EngineError(
                f"image {reference} is not in the Docker engine at {self.where} "
                f"(pull it first, or use registry:{reference})"
            ) from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(
                f"the Docker engine at {self.where} cannot inspect {reference}: {_reason(exc)}"
            ) from exc
        if not isinstance(attrs, dict):
            raise EngineError(
                f"the Docker engine at {self.where} answered no image for {reference}"
            )
        return attrs

    def export(self, image_id: str, reference: str) -> BinaryIO:
        """The export tar of `image_id` as a one-pass stream."""
        failure = f"the Docker engine at {self.where} broke off the export of {reference}"
        try:
            chunks = iter(self._client.api.get_image(image_id, chunk_size=EXPORT_CHUNK))
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(f"{failure}: {_reason(exc)}") from exc
        reader = _Chunks(chunks, failure)
        return buffered(reader.read, reader.close, EXPORT_CHUNK)

    def close(self) -> None:
        self._client.close()


class EngineExportLayers:
    """The layers of one engine image, streamed from its export in one pass."""

    random_access = False
    forkable = False

    def __init__(
        self, client: _EngineClient, image_id: str, diff_ids: Sequence[str], reference: str
    ) -> None:
        self._client, self._image_id = client, image_id
        self._diff_ids, self._reference = tuple(diff_ids), reference

    def open_layer(self, index: int) -> BinaryIO:
        raise ImageReadError(
            f"{self._reference}: the Docker engine hands out layers in one pass; "
            "read them with iter_layers()"
        )

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]:
        """Each call asks the engine for a fresh export."""
        with self._client.export(self._image_id, self._reference) as stream:
            yield from iter_export_layers(stream, self._diff_ids, self._reference)

    def close(self) -> None:
        self._client.close()


class DockerEngineSource:
    """Reads `docker:REF` from the engine DOCKER_HOST (or the current docker context) names."""

    kind = SourceKind.DOCKER

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.environ = environ  # DOCKER_HOST, DOCKER_CONTEXT, DOCKER_TLS_VERIFY, ...

    def open(self, reference: str, options: SourceOptions) -> OpenedImage:
        client = _EngineClient(self.environ)
        try:
            return _open_with(client, reference, options)
        except BaseException:
            client.close()
            raise


def _open_with(client: _EngineClient, reference: str, options: SourceOptions) -> OpenedImage:
    attrs = client.inspect(reference)
    config = config_from_inspect(attrs)
    if options.platform is not None:
        check_platform(config, options.platform, f"docker:{reference}")
    image_id = _text(attrs.get("Id"))
    if image_id is None:
        raise EngineError(f"the Docker engine gave no image ID for {reference}")
    layers = tuple(
        LayerDescriptor(digest=diff_id, diff_id=diff_id, media_type=UNCOMPRESSED_LAYER)
        for diff_id in config.diff_ids
    )
    repo_digests = _texts(attrs.get("RepoDigests")) or ()
    return OpenedImage(
        reference=reference,
        kind=SourceKind.DOCKER,
        config=config,
        layers=layers,
        access=EngineExportLayers(client, image_id, config.diff_ids, reference),
        manifest_digest=repo_digest_for(reference, repo_digests),
    )
