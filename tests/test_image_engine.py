"""DockerEngineSource against a private dockerd, and the one-pass export reader on both shapes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagescan.errors import EngineError, ImageReadError, PlatformError
from imagescan.image.compression import open_decompressed
from imagescan.image.engine import (
    DockerEngineSource,
    config_from_inspect,
    iter_export_layers,
    repo_digest_for,
)
from imagescan.image.model import OpenedImage, Platform, SourceKind, SourceOptions
from tests import services
from tests.imagebuilder import (
    File,
    ImageSpec,
    Symlink,
    write_docker_archive,
    write_oci_archive,
)
from tests.services import DockerEngine

# The service fixture lives in tests/services.py (session scope: one dockerd per run).
docker_engine = services.docker_engine
podman_engine = services.podman_engine

SPEC = ImageSpec(
    layers=[
        [File("/etc/one.txt", b"1")],
        [File("/usr/bin/two", b"\x7fELF" + b"2" * 3000)],
        [Symlink("/usr/bin/three", "two")],
    ],
    env=["PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/lib"],
    entrypoint=["/usr/bin/two"],
    cmd=["-v"],
    user="nobody",
    working_dir="/srv",
)
SHA = "sha256:" + "e" * 64


def _diff_id(stream: io.BufferedIOBase | object) -> tuple[str, list[str]]:
    """sha256 of the uncompressed layer tar, and its member names (what the reader does)."""
    data = open_decompressed(stream).read()  # type: ignore[arg-type]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    return "sha256:" + hashlib.sha256(data).hexdigest(), names


def _config_of(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config: dict[str, object] = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    return config


def _diff_ids(archive: Path) -> list[str]:
    rootfs = _config_of(archive)["rootfs"]
    assert isinstance(rootfs, dict)
    return list(rootfs["diff_ids"])


def _layers(stream: io.BufferedIOBase, diff_ids: list[str]) -> list[tuple[int | None, str]]:
    return [
        (index, _diff_id(layer)[0]) for index, layer in iter_export_layers(stream, diff_ids, "img")
    ]  # type: ignore[arg-type]


# ------------------------------------------------------------------ pure parts


def test_config_from_inspect() -> None:
    attrs = {
        "Architecture": "arm64",
        "Os": "linux",
        "Variant": "v8",
        "Config": {
            "Env": ["A=1"],
            "Entrypoint": None,
            "Cmd": ["sh"],
            "User": "",
            "WorkingDir": "/w",
        },
        "RootFS": {"Type": "layers", "Layers": [SHA]},
    }
    config = config_from_inspect(attrs)
    assert (config.architecture, config.variant, config.env) == ("arm64", "v8", ("A=1",))
    assert (config.entrypoint, config.cmd, config.user) == (None, ("sh",), None)
    assert (config.working_dir, config.diff_ids) == ("/w", (SHA,))
    assert config_from_inspect({"Config": None}).env == ()


def test_repo_digest_matches_the_normalised_repository() -> None:
    digests = [f"other/app@{SHA}", f"docker.io/library/ubuntu@sha256:{'1' * 64}"]
    assert repo_digest_for("ubuntu:22.04", digests) == f"sha256:{'1' * 64}"
    assert repo_digest_for("other/app", digests) == SHA
    assert repo_digest_for("third", digests) is None
    assert repo_digest_for("sha256:abc", digests) is None


# ------------------------------------------------------------------ export shapes


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    return {
        "legacy": write_docker_archive(root / "legacy.tar", SPEC, "t/x:1", shape="legacy"),
        "oci": write_docker_archive(root / "oci.tar", SPEC, "t/x:1", shape="oci"),
        "containerd": write_docker_archive(
            root / "ctrd.tar", SPEC, "t/x:1", shape="oci", compressed=True
        ),
    }


def test_legacy_export_layers_are_placed_by_diff_id_only(archives: dict[str, Path]) -> None:
    diff_ids = _diff_ids(archives["legacy"])
    with archives["legacy"].open("rb") as stream:
        layers = _layers(stream, diff_ids)  # type: ignore[arg-type]
    assert [index for index, _ in layers] == [None, None, None]
    assert sorted(digest for _, digest in layers) == sorted(diff_ids)


def test_oci_export_layers_get_their_index(archives: dict[str, Path]) -> None:
    diff_ids = _diff_ids(archives["oci"])
    with archives["oci"].open("rb") as stream:
        layers = _layers(stream, diff_ids)  # type: ignore[arg-type]
    assert sorted(layers, key=lambda item: item[0] or 0) == [
        (index, diff_id) for index, diff_id in enumerate(diff_ids)
    ]


def test_containerd_store_export_yields_compressed_blobs_unplaced(
    archives: dict[str, Path],
) -> None:
    diff_ids = _diff_ids(archives["containerd"])
    with archives["containerd"].open("rb") as stream:
        layers = _layers(stream, diff_ids)  # type: ignore[arg-type]
    # Configs and manifests (JSON) are not layers; the gzip blobs are, placed by diff_id.
    assert [index for index, _ in layers] == [None, None, None]
    assert sorted(digest for _, digest in layers) == sorted(diff_ids)


def test_an_oci_archive_stream_is_read_too(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "o.tar", {"v": SPEC})
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))  # type: ignore[arg-type]
        config = json.load(tar.extractfile("blobs/sha256/" + manifest["config"]["digest"][7:]))  # type: ignore[arg-type]
    with archive.open("rb") as stream:
        layers = _layers(stream, config["rootfs"]["diff_ids"])  # type: ignore[arg-type]
    assert len(layers) == 3


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_podman_shaped_export_layers_get_their_index() -> None:
    # containers/image's docker-archive: <diff_id hex>.tar, and <id>/layer.tar symlinks to it.
    layers = [_tar_bytes({"a": b"1"}), _tar_bytes({"b": b"2"})]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for diff_id, layer in zip(reversed(diff_ids), reversed(layers), strict=True):
            info = tarfile.TarInfo(f"{diff_id[7:]}.tar")
            info.size = len(layer)
            tar.addfile(info, io.BytesIO(layer))
            link = tarfile.TarInfo(f"{'0' * 64}/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, f"../{diff_id[7:]}.tar"
            tar.addfile(link)
    got = _layers(io.BytesIO(out.getvalue()), diff_ids)  # type: ignore[arg-type]
    assert got == [(1, diff_ids[1]), (0, diff_ids[0])]


def test_a_layer_at_two_positions_is_left_to_its_diff_id() -> None:
    # The same layer twice (e.g. two identical RUN steps): the export holds its blob once.
    same, other = _tar_bytes({"a": b"1"}), _tar_bytes({"b": b"2"})
    digests = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in (same, other)]
    export = _tar_bytes(
        {f"blobs/sha256/{d[7:]}": b for d, b in zip(digests, (same, other), strict=True)}
    )
    diff_ids = [digests[0], digests[1], digests[0]]
    assert _layers(io.BytesIO(export), diff_ids) == [(None, digests[0]), (1, digests[1])]  # type: ignore[arg-type]


def test_a_tampered_blob_fails_its_digest_check() -> None:
    layer = _tar_bytes({"a": b"real"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    forged = _tar_bytes({"a": b"fake"})
    export = _tar_bytes({f"blobs/sha256/{diff_id[7:]}": forged})
    items = iter_export_layers(io.BytesIO(export), [diff_id], "img")  # type: ignore[arg-type]
    index, stream = next(items)
    assert index == 0
    with pytest.raises(ImageReadError, match="digest mismatch"):
        stream.read()


def test_missing_layers_are_reported(archives: dict[str, Path]) -> None:
    diff_ids = [*_diff_ids(archives["oci"]), SHA]
    with archives["oci"].open("rb") as stream, pytest.raises(ImageReadError) as info:
        _layers(stream, diff_ids)  # type: ignore[arg-type]
    assert info.value.message == "the engine's export of img holds 3 layers, its config names 4"


def test_a_truncated_export_is_an_image_read_error(archives: dict[str, Path]) -> None:
    data = archives["legacy"].read_bytes()[:5000]
    with pytest.raises(ImageReadError, match=r"in the engine's export of img is cut short"):
        _layers(io.BytesIO(data), _diff_ids(archives["legacy"]))  # type: ignore[arg-type]


# ------------------------------------------------------------------ a real engine


@pytest.fixture(scope="module")
def loaded(docker_engine: DockerEngine, archives: dict[str, Path]) -> str:
    docker_engine.load(archives["legacy"])
    return "t/x:1"


@pytest.fixture
def engine_env(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> DockerEngine:
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    return docker_engine


def _read_engine_image(image: OpenedImage) -> Iterator[tuple[int | None, str, list[str]]]:
    assert image.access is not None
    for index, stream in image.access.iter_layers():
        yield (index, *_diff_id(stream))


@pytest.mark.engine
def test_engine_image_config_and_layers(
    engine_env: DockerEngine, loaded: str, archives: dict[str, Path]
) -> None:
    image = DockerEngineSource().open(loaded, SourceOptions())
    try:
        assert image.kind is SourceKind.DOCKER
        assert image.config.env == ("PATH=/usr/bin", "LD_LIBRARY_PATH=/opt/lib")
        assert image.config.entrypoint == ("/usr/bin/two",)
        assert (image.config.cmd, image.config.user) == (("-v",), "nobody")
        assert image.config.working_dir == "/srv"
        diff_ids = _diff_ids(archives["legacy"])
        assert list(image.config.diff_ids) == diff_ids
        assert [layer.diff_id for layer in image.layers] == diff_ids
        assert image.access is not None and not image.access.random_access
        seen = {digest: names for _, digest, names in _read_engine_image(image)}
        assert set(seen) == set(diff_ids)  # docker 20.10 exports the legacy shape
        assert seen[diff_ids[1]] == ["usr/bin/two"]
    finally:
        image.close()


@pytest.mark.engine
def test_engine_image_by_id_and_export_twice(engine_env: DockerEngine, loaded: str) -> None:
    image_id = engine_env.docker("image", "inspect", "--format", "{{.Id}}", loaded).strip()
    image = DockerEngineSource().open(image_id, SourceOptions())
    try:
        first = sorted(digest for _, digest, _ in _read_engine_image(image))
        second = sorted(digest for _, digest, _ in _read_engine_image(image))
        assert first == second == sorted(image.config.diff_ids)
        assert image.manifest_digest is None  # loaded, never pulled: no repo digest
    finally:
        image.close()


@pytest.mark.engine
def test_engine_layers_cannot_be_opened_by_index(engine_env: DockerEngine, loaded: str) -> None:
    image = DockerEngineSource().open(loaded, SourceOptions())
    try:
        assert image.access is not None
        with pytest.raises(ImageReadError, match="one pass"):
            image.access.open_layer(0)
    finally:
        image.close()


@pytest.mark.engine
def test_engine_image_not_found(engine_env: DockerEngine) -> None:
    with pytest.raises(EngineError) as info:
        DockerEngineSource().open("no/such:image", SourceOptions())
    assert info.value.message == (
        f"image no/such:image is not in the Docker engine at {engine_env.host} "
        "(pull it first, or use registry:no/such:image)"
    )


@pytest.mark.engine
def test_engine_platform_mismatch(engine_env: DockerEngine, loaded: str) -> None:
    options = SourceOptions(platform=Platform("linux", "arm64"))
    with pytest.raises(PlatformError, match="is an image for linux/amd64"):
        DockerEngineSource().open(loaded, options)


def _context_store(config_dir: Path, name: str, host: str, current: bool) -> None:
    """The docker CLI's context store: DOCKER_CONFIG/contexts/meta/<sha256(name)>/meta.json."""
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}})
    )
    config = {"currentContext": name} if current else {}
    (config_dir / "config.json").write_text(json.dumps(config))


@pytest.mark.engine
@pytest.mark.parametrize("how", ["currentContext", "DOCKER_CONTEXT"])
def test_engine_from_a_docker_context(
    docker_engine: DockerEngine,
    loaded: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    _context_store(tmp_path, "private", docker_engine.host, current=how == "currentContext")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    if how == "DOCKER_CONTEXT":
        monkeypatch.setenv("DOCKER_CONTEXT", "private")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    image = DockerEngineSource().open(loaded, SourceOptions())
    image.close()
    assert image.config.entrypoint == ("/usr/bin/two",)


@pytest.mark.engine
def test_docker_host_wins_over_the_context(
    engine_env: DockerEngine, loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context_store(tmp_path, "broken", f"unix://{tmp_path}/none.sock", current=True)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    image = DockerEngineSource().open(loaded, SourceOptions())
    image.close()
    assert image.config.entrypoint == ("/usr/bin/two",)


def test_a_context_naming_a_dead_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _context_store(tmp_path, "broken", f"unix://{tmp_path}/none.sock", current=True)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(EngineError) as info:
        DockerEngineSource().open("ubuntu", SourceOptions())
    assert info.value.message == (
        f"cannot reach the Docker engine at unix://{tmp_path}/none.sock: no socket there "
        "(use registry:REF or docker-archive:FILE)"
    )


@pytest.mark.engine
def test_podman_docker_compatible_socket(
    podman_engine: DockerEngine, archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    podman_engine.load(archives["legacy"])
    monkeypatch.setenv("DOCKER_HOST", podman_engine.host)
    # Podman names loaded images localhost/NAME; its export has <diff_id>.tar members.
    image = DockerEngineSource().open("localhost/t/x:1", SourceOptions())
    try:
        diff_ids = _diff_ids(archives["legacy"])
        assert list(image.config.diff_ids) == diff_ids
        assert image.config.entrypoint == ("/usr/bin/two",)
        layers = sorted((index, digest) for index, digest, _ in _read_engine_image(image))  # type: ignore[type-var]
        assert layers == list(enumerate(diff_ids))
        assert image.manifest_digest is not None  # podman records a repo digest on load
    finally:
        image.close()


def test_engine_not_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(EngineError) as info:
        DockerEngineSource().open("ubuntu", SourceOptions())
    assert info.value.message == (
        f"cannot reach the Docker engine at {host}: no socket there "
        "(use registry:REF or docker-archive:FILE)"
    )


def test_the_environment_passed_is_the_one_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process environment names another (dead) socket: only the one passed counts.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/process.sock")
    host = f"unix://{tmp_path}/passed.sock"
    with pytest.raises(EngineError) as info:
        DockerEngineSource({"DOCKER_HOST": host}).open("ubuntu", SourceOptions())
    assert info.value.message.startswith(f"cannot reach the Docker engine at {host}: ")


def test_unknown_docker_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(EngineError, match="nowhere"):
        DockerEngineSource().open("ubuntu", SourceOptions())


@pytest.mark.engine
def test_the_rootfs_reader_sees_the_same_image_as_from_the_archive(
    engine_env: DockerEngine, loaded: str, archives: dict[str, Path]
) -> None:
    from imagescan.image.dockerarchive import DockerArchiveSource
    from imagescan.rootfs.reader import read_rootfs

    local = DockerArchiveSource().open(str(archives["legacy"]), SourceOptions())
    remote = DockerEngineSource().open(loaded, SourceOptions())
    try:
        expected, got = read_rootfs(local), read_rootfs(remote)
    finally:
        local.close()
        remote.close()
    assert "/usr/bin/two" in got.entries
    assert got.entries == expected.entries
    assert got.layer_ids == expected.layer_ids
