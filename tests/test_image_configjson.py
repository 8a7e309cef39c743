"""Image JSON documents: descriptors, indexes, manifests, configs; malformed ones are one error."""

from __future__ import annotations

from typing import Any

import pytest

from imagescan.errors import ImageReadError
from imagescan.image.configjson import (
    is_index_document,
    layer_descriptors,
    parse_descriptor,
    parse_image_config,
    parse_index,
    parse_manifest,
)
from imagescan.image.model import ImageConfig, Platform
from imagescan.image.ocilayout import docker_name

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def descriptor(**extra: Any) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": D1,
        "size": 7,
        **extra,
    }


def test_descriptor_with_platform_and_annotations() -> None:
    parsed = parse_descriptor(
        descriptor(
            platform={"os": "linux", "architecture": "arm", "variant": "v7"},
            annotations={"org.opencontainers.image.ref.name": "v1"},
        ),
        "entry",
    )
    assert parsed.platform == Platform("linux", "arm", "v7")
    assert parsed.annotations == {"org.opencontainers.image.ref.name": "v1"}
    assert not parsed.is_index


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("text", "entry is not a JSON object"),
        ({"size": 1}, "has no digest"),
        (descriptor(size=-1), "absurd size"),
        (descriptor(size=True), "absurd size"),
        (descriptor(size="7"), "absurd size"),
        (descriptor(size=2**62), "absurd size"),
        (descriptor(digest="sha256:short"), "malformed digest"),
        (descriptor(platform={"os": "linux"}), "lacks os/architecture"),
        (descriptor(annotations=[1]), "annotations are not an object"),
        (descriptor(urls="http://x"), "urls is not a list of strings"),
    ],
)
def test_malformed_descriptors(doc: object, message: str) -> None:
    with pytest.raises(ImageReadError, match=message):
        parse_descriptor(doc, "entry")


def test_foreign_layers_are_recognised() -> None:
    foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    assert parse_descriptor(descriptor(mediaType=foreign), "layer").non_distributable
    assert not parse_descriptor(descriptor(), "layer").non_distributable


def test_index_and_manifest() -> None:
    entries = parse_index({"manifests": [descriptor(), descriptor(digest=D2)]}, "index")
    assert [e.digest for e in entries] == [D1, D2]
    manifest = parse_manifest(
        {"schemaVersion": 2, "config": descriptor(), "layers": [descriptor(digest=D2)]}, "m"
    )
    assert (manifest.config.digest, [x.digest for x in manifest.layers]) == (D1, [D2])


def test_documents_are_told_apart_without_media_type() -> None:
    assert is_index_document({"manifests": []})
    assert is_index_document(
        {"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json"}
    )
    assert not is_index_document({"config": {}, "layers": []})
    assert not is_index_document([])


def test_image_config_fields() -> None:
    config = parse_image_config(
        {
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
            "config": {
                "Env": ["A=1", "LD_PRELOAD=/x.so"],
                "Entrypoint": ["/bin/app"],
                "Cmd": None,
                "User": "",
                "WorkingDir": "/srv",
            },
            "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
        },
        "config",
    )
    assert config == ImageConfig(
        architecture="arm64",
        os="linux",
        variant="v8",
        env=("A=1", "LD_PRELOAD=/x.so"),
        entrypoint=("/bin/app",),
        cmd=None,
        user=None,
        working_dir="/srv",
        diff_ids=(D1, D2),
    )


def test_image_config_without_a_config_section() -> None:
    assert parse_image_config({"rootfs": {"diff_ids": []}}, "c") == ImageConfig()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "is not a JSON object"),
        ({"config": {"Env": "PATH=/bin"}}, "Env is not a list of strings"),
        ({"config": {"Entrypoint": [1]}}, "Entrypoint is not a list of strings"),
        ({"config": {"User": 0}}, "User is not a string"),
        ({"config": []}, "config is not a JSON object"),
        ({"rootfs": {"diff_ids": ["nope"]}}, "malformed digest"),
    ],
)
def test_malformed_image_configs(doc: object, message: str) -> None:
    with pytest.raises(ImageReadError, match=message):
        parse_image_config(doc, "image config")


def test_layer_descriptors_pair_layers_with_diff_ids() -> None:
    layers = parse_manifest(
        {"config": descriptor(), "layers": [descriptor(), descriptor(digest=D2)]}, "m"
    ).layers
    paired = layer_descriptors(layers, ImageConfig(diff_ids=(D2, D1)), "m")
    assert [(x.digest, x.diff_id, x.size) for x in paired] == [(D1, D2, 7), (D2, D1, 7)]
    with pytest.raises(ImageReadError, match="lists 2 layers, the config 1"):
        layer_descriptors(layers, ImageConfig(diff_ids=(D1,)), "m")


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("app", "docker.io/library/app:latest"),
        ("app:1", "docker.io/library/app:1"),
        ("team/app:1", "docker.io/team/app:1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("registry.example.com/a/b:2", "registry.example.com/a/b:2"),
        ("docker.io/library/app:1", "docker.io/library/app:1"),
    ],
)
def test_docker_names_in_full(short: str, full: str) -> None:
    assert docker_name(short) == full
