"""docker-archive: `docker save` output in its legacy and Docker >= 25 (OCI layout) shapes."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from imagescan.errors import ImageReadError, PlatformError, ReferenceError_
from imagescan.image.dockerarchive import DockerArchiveSource
from imagescan.image.model import OpenedImage, SourceKind, SourceOptions
from imagescan.image.platform import parse_platform
from tests.hostile import bytes_read, gzipped_docker_save
from tests.image_support import member_names, read_all_layers
from tests.imagebuilder import (
    Dir,
    File,
    ImageSpec,
    Member,
    Symlink,
    compress,
    layer_tar,
    sha256,
    write_docker_archive,
    write_oci_dir,
)
from tests.services import DockerEngine, docker_engine  # noqa: F401  (fixture)

OPTIONS = SourceOptions()


def spec(marker: str = "one", **kwargs: Any) -> ImageSpec:
    layers: list[list[Member]] = [
        [Dir("/etc"), File("/etc/marker", marker.encode()), Symlink("/etc/alias", "marker")],
        [Dir("/usr"), Dir("/usr/bin"), File("/usr/bin/tool", b"#!/bin/sh\n", 0o755)],
    ]
    kwargs.setdefault("user", "app")
    return ImageSpec(layers=layers, entrypoint=["/usr/bin/tool"], **kwargs)


def open_archive(reference: str, options: SourceOptions = OPTIONS) -> OpenedImage:
    return DockerArchiveSource().open(reference, options)


def archive_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def write_files(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


EXPECTED_LAYERS = [
    ["etc", "etc/marker", "etc/alias"],
    ["usr", "usr/bin", "usr/bin/tool"],
]


@pytest.mark.parametrize("shape", ["legacy", "oci"])
def test_opens_both_shapes(tmp_path: Path, shape: str) -> None:
    image_spec = spec()
    archive = write_docker_archive(tmp_path / "img.tar", image_spec, shape=shape)
    image = open_archive(str(archive))
    assert image.kind is SourceKind.DOCKER_ARCHIVE
    assert image.reference == f"docker-archive:{archive}"
    assert (image.config.entrypoint, image.config.user) == (("/usr/bin/tool",), "app")
    diff_ids = [sha256(layer_tar(members)) for members in image_spec.layers]
    assert [layer.diff_id for layer in image.layers] == diff_ids
    assert read_all_layers(image) == EXPECTED_LAYERS
    image.close()


@pytest.mark.parametrize("shape", ["legacy", "oci"])
@pytest.mark.parametrize("name", ["test:latest", "test", "docker.io/library/test:latest"])
def test_selects_by_repo_tag_in_any_spelling(tmp_path: Path, shape: str, name: str) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec(), tag="test:latest", shape=shape)
    assert open_archive(f"{archive}:{name}").config.user == "app"


@pytest.mark.parametrize("shape", ["legacy", "oci"])
def test_unknown_tag_lists_the_tags(tmp_path: Path, shape: str) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec(), tag="app:1", shape=shape)
    with pytest.raises(ReferenceError_, match="no image tagged 'other:2'"):
        open_archive(f"{archive}:other:2")


def test_legacy_archive_with_two_images(tmp_path: Path) -> None:
    first = archive_files(write_docker_archive(tmp_path / "a.tar", spec("a"), tag="a:1"))
    second = archive_files(
        write_docker_archive(tmp_path / "b.tar", spec("b", user="bee"), tag="b:2")
    )
    manifest = json.loads(first["manifest.json"]) + json.loads(second["manifest.json"])
    both = write_files(
        tmp_path / "both.tar", {**first, **second, "manifest.json": json.dumps(manifest).encode()}
    )
    assert open_archive(f"{both}:b:2").config.user == "bee"
    assert open_archive(f"{both}:a:1").config.user == "app"
    with pytest.raises(ReferenceError_, match=r"holds 2 images; .*\(tags: a:1, b:2\)"):
        open_archive(str(both))
    image_id = sha256(second[json.loads(second["manifest.json"])[0]["Config"]])
    assert open_archive(f"{both}@{image_id}").config.user == "bee"


def test_legacy_layers_are_verified_against_their_diff_ids(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec())
    archive.write_bytes(archive.read_bytes().replace(b"#!/bin/sh", b"#!/bin/xx"))
    image = open_archive(str(archive))
    assert image.access is not None
    image.access.open_layer(0).read()
    with pytest.raises(
        ImageReadError, match=r"layer 2/2 \(sha256:\w+\) of docker-archive .*digest mismatch"
    ):
        image.access.open_layer(1).read()


def test_legacy_layer_stored_as_a_symlink(tmp_path: Path) -> None:
    """docker save writes a layer that repeats an earlier one as a symlink to it."""
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec()))
    manifest = json.loads(files["manifest.json"])
    layer_path = manifest[0]["Layers"][1]
    data = files.pop(layer_path)
    files["shared/layer.tar"] = data
    linked = write_files(tmp_path / "linked.tar", files, {layer_path: "../shared/layer.tar"})
    assert read_all_layers(open_archive(str(linked))) == EXPECTED_LAYERS


def test_compressed_legacy_layers_are_read(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec(compression="zstd"), compressed=True)
    assert read_all_layers(open_archive(str(archive))) == EXPECTED_LAYERS


def test_oci_shaped_layers_compressed_as_the_containerd_store_saves_them(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec(), shape="oci", compressed=True)
    image = open_archive(str(archive))
    assert image.layers[0].media_type.endswith("+gzip")
    assert read_all_layers(image) == EXPECTED_LAYERS


def test_missing_legacy_layer(tmp_path: Path) -> None:
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec()))
    layer_path = json.loads(files["manifest.json"])[0]["Layers"][0]
    del files[layer_path]
    broken = write_files(tmp_path / "broken.tar", files)
    with pytest.raises(ImageReadError, match=rf"layer 1/2 \({layer_path}\) is missing"):
        open_archive(str(broken))


def test_legacy_config_must_hash_to_its_image_id(tmp_path: Path) -> None:
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec()))
    config_path = json.loads(files["manifest.json"])[0]["Config"]
    files[config_path] = files[config_path].replace(b'"User":"app"', b'"User":"root"')
    broken = write_files(tmp_path / "broken.tar", files)
    with pytest.raises(ImageReadError, match="digest mismatch"):
        open_archive(str(broken))


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"{", "manifest.json of docker-archive .* is not valid JSON"),
        (b"{}", "is not a JSON list"),
        (b"[{}]", "lacks Config or Layers"),
        (b'[{"Config": "c.json", "Layers": ["../../etc/passwd"]}]', "outside the image"),
        (b'[{"Config": "c.json", "Layers": [], "RepoTags": "x"}]', "RepoTags is not a list"),
    ],
)
def test_corrupt_legacy_manifest(tmp_path: Path, manifest: bytes, message: str) -> None:
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec()))
    files["manifest.json"] = manifest
    with pytest.raises(ImageReadError, match=message):
        open_archive(str(write_files(tmp_path / "broken.tar", files)))


def test_layer_count_must_match_the_config(tmp_path: Path) -> None:
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec()))
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"].pop()
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(ImageReadError, match="lists 1 layers, the config 2"):
        open_archive(str(write_files(tmp_path / "broken.tar", files)))


def test_tar_without_manifest_is_not_a_docker_archive(tmp_path: Path) -> None:
    path = write_files(tmp_path / "x.tar", {"hello.txt": b"hi"})
    with pytest.raises(ImageReadError, match="not a `docker save` archive"):
        open_archive(str(path))


def test_plain_oci_archive_without_legacy_manifest_still_opens(tmp_path: Path) -> None:
    """An OCI layout in a tar is read the same way (as docker load accepts it)."""
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec(), shape="oci"))
    del files["manifest.json"]
    assert open_archive(str(write_files(tmp_path / "oci.tar", files))).config.user == "app"


def test_missing_archive_is_a_reference_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError_, match="no such file or directory"):
        open_archive(str(tmp_path / "absent.tar"))
    with pytest.raises(ReferenceError_, match="is not a file"):
        open_archive(str(tmp_path))


def test_explicit_platform_must_match(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "img.tar", spec(architecture="arm64"))
    with pytest.raises(PlatformError, match="linux/arm64, not for the requested linux/amd64"):
        open_archive(str(archive), SourceOptions(platform=parse_platform("linux/amd64")))


def test_docker_archive_written_by_skopeo(tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    layout = write_oci_dir(tmp_path / "l", {"t": spec(user="skopeo")})
    archive = tmp_path / "skopeo.tar"
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "-q",
            f"oci:{layout}:t",
            f"docker-archive:{archive}:made/by:skopeo",
        ],
        check=True,
    )
    image = open_archive(f"{archive}:made/by:skopeo")
    assert image.config.user == "skopeo"
    assert read_all_layers(image) == EXPECTED_LAYERS


@pytest.mark.engine
def test_archive_saved_by_a_real_docker_engine(tmp_path: Path, docker_engine: DockerEngine) -> None:  # noqa: F811
    """docker load our legacy archive, docker save it back: whatever shape this engine writes."""
    docker_engine.load(
        write_docker_archive(tmp_path / "in.tar", spec(user="engine"), tag="h1/roundtrip:v1")
    )
    saved = tmp_path / "saved.tar"
    docker_engine.docker("save", "-o", str(saved), "h1/roundtrip:v1")
    image = open_archive(f"{saved}:h1/roundtrip:v1")
    assert (image.config.user, image.config.entrypoint) == ("engine", ("/usr/bin/tool",))
    assert read_all_layers(image) == EXPECTED_LAYERS


@pytest.mark.parametrize("shape", ["legacy", "oci"])
def test_gzipped_docker_save_output(tmp_path: Path, shape: str) -> None:
    """`docker save app | gzip > app.tar.gz` is read in place too."""
    archive = write_docker_archive(tmp_path / "img.tar", spec(), shape=shape)
    packed = tmp_path / "img.tar.gz"
    packed.write_bytes(compress(archive.read_bytes(), "gzip"))
    image = open_archive(f"{packed}:test:latest")
    assert image.config.user == "app"
    assert image.access is not None and not image.access.random_access  # one pass, issue 15
    by_index = {index: member_names(stream) for index, stream in image.access.iter_layers()}
    assert [by_index[i] for i in sorted(by_index)] == EXPECTED_LAYERS  # type: ignore[index]


def test_docker_25_archive_with_a_null_index_falls_back_to_manifest_json(tmp_path: Path) -> None:
    """Docker 25.0 wrote `"manifests": null` for images saved by digest (moby#47210)."""
    files = archive_files(write_docker_archive(tmp_path / "img.tar", spec(), shape="oci"))
    files["index.json"] = b'{"schemaVersion": 2, "manifests": null}'
    image = open_archive(str(write_files(tmp_path / "null-index.tar", files)))
    assert image.config.user == "app"
    assert [layer.digest for layer in image.layers] == [layer.diff_id for layer in image.layers]
    assert read_all_layers(image) == EXPECTED_LAYERS


@pytest.mark.parametrize("shape", ["legacy", "oci"])
def test_a_gzipped_archive_is_decompressed_once_for_all_its_layers(
    tmp_path: Path, shape: str
) -> None:
    """Issue 15: each layer decompressed the archive from byte 0 again (100 layers: 92 s)."""
    from imagescan.rootfs.reader import read_rootfs

    ratios = []
    for layers in (10, 40):
        packed = gzipped_docker_save(tmp_path / f"{shape}{layers}.tar.gz", layers, shape)
        image = open_archive(str(packed))
        read = bytes_read(lambda image=image: read_rootfs(image))
        ratios.append(read / packed.stat().st_size)
    # One pass for the layers (plus the index pass): about twice the file, at any count;
    # restarting per layer read about layers/2 times the file.
    assert ratios[1] < 4 and ratios[1] < 1.5 * ratios[0]
