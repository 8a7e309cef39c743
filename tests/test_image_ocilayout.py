"""OCI image layouts: oci-dir and oci-archive, selection, nested indexes, verification, errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagescan.errors import ImageReadError, PlatformError, ReferenceError_
from imagescan.image.compression import open_decompressed
from imagescan.image.model import OpenedImage, SourceKind, SourceOptions
from imagescan.image.ocilayout import OciArchiveSource, OciDirSource
from imagescan.image.platform import parse_platform
from tests.conftest import CORPUS_IMAGES
from tests.hostile import bytes_read, index_dag
from tests.image_support import member_names, read_all_layers
from tests.imagebuilder import (
    Dir,
    File,
    ImageSpec,
    Member,
    compress,
    layer_tar,
    sha256,
    write_multiplatform_oci_dir,
    write_oci_archive,
    write_oci_dir,
)

OPTIONS = SourceOptions()


def spec(marker: str = "one", **kwargs: Any) -> ImageSpec:
    layers: list[list[Member]] = [
        [Dir("/etc"), File("/etc/marker", marker.encode())],
        [Dir("/usr"), Dir("/usr/bin"), File("/usr/bin/tool", b"#!/bin/sh\n", 0o755)],
    ]
    return ImageSpec(layers=layers, **kwargs)


def open_dir(reference: str, options: SourceOptions = OPTIONS) -> OpenedImage:
    return OciDirSource().open(reference, options)


# ------------------------------------------------------------ layout surgery for bad inputs


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":")[1]


def load(layout: Path, digest: str) -> Any:
    return json.loads(blob(layout, digest).read_bytes())


def store_json(layout: Path, doc: Any) -> dict[str, Any]:
    data = json.dumps(doc).encode()
    digest = sha256(data)
    blob(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def rewrite_manifest(layout: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Applies `change` to the first image's manifest and re-links it from index.json."""
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    manifest = load(layout, entry["digest"])
    change(manifest)
    entry.update(store_json(layout, manifest))
    (layout / "index.json").write_text(json.dumps(index))


def first_manifest(layout: Path) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    return load(layout, index["manifests"][0]["digest"])  # type: ignore[no-any-return]


# ------------------------------------------------------------ oci-dir


def test_opens_a_single_image_with_its_config(tmp_path: Path) -> None:
    env = ["PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/opt/lib"]
    layout = write_oci_dir(
        tmp_path / "layout",
        spec(env=env, entrypoint=["/usr/bin/tool"], cmd=["-v"], user="1000:1000"),
    )
    image = open_dir(str(layout))
    assert image.kind is SourceKind.OCI_DIR
    assert image.reference == f"oci-dir:{layout}"
    assert image.config.env == tuple(env)
    assert image.config.env_value("LD_LIBRARY_PATH") == "/opt/lib"
    assert image.config.entrypoint == ("/usr/bin/tool",)
    assert image.config.cmd == ("-v",)
    assert image.config.user == "1000:1000"
    assert (image.config.os, image.config.architecture) == ("linux", "amd64")
    index = json.loads((layout / "index.json").read_text())
    assert image.manifest_digest == index["manifests"][0]["digest"]
    image.close()


def test_layers_are_bottom_first_with_diff_ids(tmp_path: Path) -> None:
    image_spec = spec()
    image = open_dir(str(write_oci_dir(tmp_path / "l", image_spec)))
    assert [layer.diff_id for layer in image.layers] == [
        sha256(layer_tar(members)) for members in image_spec.layers
    ]
    assert image.config.diff_ids == tuple(layer.diff_id for layer in image.layers)
    assert read_all_layers(image) == [["etc", "etc/marker"], ["usr", "usr/bin", "usr/bin/tool"]]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_reads(tmp_path: Path, compression: str) -> None:
    layout = write_oci_dir(tmp_path / "l", spec(compression=compression))
    image = open_dir(str(layout))
    assert image.layers[0].media_type.endswith(
        {"gzip": "+gzip", "zstd": "+zstd", "none": "tar"}[compression]
    )
    assert read_all_layers(image)[0] == ["etc", "etc/marker"]


def test_compression_is_recognised_by_bytes_not_media_type(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec(compression="zstd"))
    gzip_type = "application/vnd.oci.image.layer.v1.tar+gzip"

    def mislabel(manifest: dict[str, Any]) -> None:
        for layer in manifest["layers"]:
            layer["mediaType"] = gzip_type

    rewrite_manifest(layout, mislabel)
    assert read_all_layers(open_dir(str(layout)))[1] == ["usr", "usr/bin", "usr/bin/tool"]


def test_selects_by_tag_among_several(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", {"a": spec("A"), "b": spec("B", user="bee")})
    assert open_dir(f"{layout}:b").config.user == "bee"
    assert open_dir(f"{layout}:a").config.user is None


def test_several_images_without_a_tag_lists_the_tags(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", {"a": spec("A"), "b": spec("B")})
    with pytest.raises(ReferenceError_, match=r"holds 2 images; name one .*\(tags: a, b\)"):
        open_dir(str(layout))


def test_unknown_tag_lists_the_tags(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", {"a": spec("A"), "b": spec("B")})
    with pytest.raises(ReferenceError_, match=r"no image tagged 'c' \(tags: a, b\)"):
        open_dir(f"{layout}:c")


def test_selects_by_manifest_digest(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", {"a": spec("A"), "b": spec("B", user="bee")})
    index = json.loads((layout / "index.json").read_text())
    digest_b = index["manifests"][1]["digest"]
    image = open_dir(f"{layout}@{digest_b}")
    assert (image.config.user, image.manifest_digest) == ("bee", digest_b)
    with pytest.raises(ReferenceError_, match="has no manifest sha256:0000"):
        open_dir(f"{layout}@sha256:{'0' * 64}")


def test_malformed_digest_reference_is_a_reference_error(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    with pytest.raises(ReferenceError_, match="malformed digest"):
        open_dir(f"{layout}@sha256:nothex")


def test_a_path_containing_a_colon(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "we:ird@dir", {"t": spec(user="u")})
    assert open_dir(f"{layout}:t").config.user == "u"
    assert open_dir(str(layout)).config.user == "u"  # the only image


def test_containerd_image_names_select_too(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", {"a": spec("A"), "b": spec("B", user="bee")})
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][1]["annotations"]["io.containerd.image.name"] = "docker.io/library/app:2"
    (layout / "index.json").write_text(json.dumps(index))
    assert open_dir(f"{layout}:docker.io/library/app:2").config.user == "bee"
    assert open_dir(f"{layout}:app:2").config.user == "bee"


def test_missing_path_is_a_reference_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError_, match="no such file or directory"):
        open_dir(str(tmp_path / "nothing-here"))
    with pytest.raises(ReferenceError_, match="no such file or directory"):
        open_dir(f"{tmp_path}/nothing-here:tag")


def test_directory_that_is_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError_, match=r"not an OCI image layout \(no index.json\)"):
        open_dir(str(tmp_path))


def test_file_is_not_an_oci_dir(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "x.tar", spec())
    with pytest.raises(ReferenceError_, match="is not a directory"):
        open_dir(str(archive))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"manifests": [', "index.json of oci-dir .* is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"[1, 2]", "index.json of .* is not a JSON object"),
        (b'{"schemaVersion": 2}', "manifests is not a JSON list"),
        (b'{"manifests": [{"digest": "sha256:12"}]}', "malformed digest"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
    ],
)
def test_corrupt_index_json(tmp_path: Path, content: bytes, message: str) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    (layout / "index.json").write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        open_dir(str(layout))


def test_absurd_declared_size_is_refused(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["size"] = 10**18
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageReadError, match="absurd size"):
        open_dir(str(layout))


def test_wrong_declared_manifest_size_is_refused(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["size"] += 1
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageReadError, match="its descriptor says"):
        open_dir(str(layout))


def test_tampered_manifest_fails_its_digest(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    index = json.loads((layout / "index.json").read_text())
    path = blob(layout, index["manifests"][0]["digest"])
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with pytest.raises(ImageReadError, match=r"manifest sha256:.*: digest mismatch"):
        open_dir(str(layout))


def test_missing_layer_blob(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    digest = first_manifest(layout)["layers"][1]["digest"]
    blob(layout, digest).unlink()
    with pytest.raises(ImageReadError, match=rf"layer 2/2 \({digest}\): blob missing from oci-dir"):
        open_dir(str(layout))


def test_missing_config_blob(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    blob(layout, first_manifest(layout)["config"]["digest"]).unlink()
    with pytest.raises(ImageReadError, match=r"image config .* is missing from oci-dir"):
        open_dir(str(layout))


def test_absent_foreign_layer_is_named_as_such(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    digest = first_manifest(layout)["layers"][0]["digest"]
    blob(layout, digest).unlink()

    def make_foreign(manifest: dict[str, Any]) -> None:
        layer = manifest["layers"][0]
        layer["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        layer["urls"] = ["https://example.com/base.tar.gz"]

    rewrite_manifest(layout, make_foreign)
    with pytest.raises(
        ImageReadError,
        match=r"non-distributable \(foreign\) layer .* published at https://example.com/base",
    ):
        open_dir(str(layout))


def test_truncated_layer_blob_is_refused_at_open(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    path = blob(layout, first_manifest(layout)["layers"][0]["digest"])
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ImageReadError, match=r"layer 1/2 .* bytes, the manifest says"):
        open_dir(str(layout))


def test_layer_digest_mismatch_surfaces_while_reading(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec(compression="none"))
    digest = first_manifest(layout)["layers"][1]["digest"]
    path = blob(layout, digest)
    path.write_bytes(path.read_bytes().replace(b"#!/bin/sh", b"#!/bin/xx"))
    image = open_dir(str(layout))
    assert image.access is not None
    with pytest.raises(
        ImageReadError, match=rf"layer 2/2 \({digest}\) of oci-dir .*digest mismatch"
    ):
        image.access.open_layer(1).read()


def test_layer_count_disagreeing_with_config(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    rewrite_manifest(layout, lambda manifest: manifest["layers"].pop())
    with pytest.raises(ImageReadError, match="lists 1 layers, the config 2"):
        open_dir(str(layout))


def test_schema1_manifest_is_refused(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    rewrite_manifest(layout, lambda manifest: manifest.update(schemaVersion=1))
    with pytest.raises(ImageReadError, match="schema 1"):
        open_dir(str(layout))


def test_blob_paths_cannot_escape_the_layout(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())

    def escape(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["digest"] = "sha256:../../../../etc/passwd"

    rewrite_manifest(layout, escape)
    with pytest.raises(ImageReadError, match="malformed digest"):
        open_dir(str(layout))


def test_a_layer_that_is_not_a_tar_is_handed_over_as_is(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not a tar archive" * 40)
    layout = write_oci_dir(tmp_path / "l", ImageSpec(layers=[[File("/a")]], base=[junk]))
    image = open_dir(str(layout))
    assert image.access is not None
    assert open_decompressed(image.access.open_layer(0)).read() == junk.read_bytes()


def test_layers_can_be_read_interleaved(tmp_path: Path) -> None:
    big: list[Member] = [File(f"/data/{n}", os.urandom(200_000)) for n in range(4)]
    layout = write_oci_archive(tmp_path / "x.tar", ImageSpec(layers=[big, big[::-1]]))
    image = OciArchiveSource().open(str(layout), OPTIONS)
    assert image.access is not None
    first, second = (open_decompressed(image.access.open_layer(i)) for i in (0, 1))
    parts: list[list[bytes]] = [[], []]
    while chunk := first.read(65536):
        parts[0].append(chunk)
        parts[1].append(second.read(65536))
    parts[1].append(second.read())
    assert b"".join(parts[0]) == layer_tar(big)
    assert b"".join(parts[1]) == layer_tar(big[::-1])


# ------------------------------------------------------------ platforms and nested indexes


def multiplatform(tmp_path: Path) -> Path:
    return write_multiplatform_oci_dir(
        tmp_path / "mp",
        {
            "linux/amd64": spec("amd64"),
            "linux/arm64/v8": spec("arm64", architecture="arm64", variant="v8"),
        },
    )


def test_nested_index_picks_the_host_platform_by_default(tmp_path: Path) -> None:
    image = open_dir(f"{multiplatform(tmp_path)}:latest")
    assert image.config.architecture == "amd64"


def test_nested_index_honours_the_requested_platform(tmp_path: Path) -> None:
    options = SourceOptions(platform=parse_platform("linux/arm64"))
    image = open_dir(str(multiplatform(tmp_path)), options)
    assert (image.config.architecture, image.config.variant) == ("arm64", "v8")
    assert read_all_layers(image)[0] == ["etc", "etc/marker"]


def test_no_manifest_for_the_platform_lists_the_choices(tmp_path: Path) -> None:
    options = SourceOptions(platform=parse_platform("linux/s390x"))
    with pytest.raises(PlatformError) as caught:
        open_dir(str(multiplatform(tmp_path)), options)
    assert "no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8" in (
        caught.value.message
    )


def test_default_platform_missing_from_the_index_lists_the_choices(tmp_path: Path) -> None:
    layout = write_multiplatform_oci_dir(
        tmp_path / "mp",
        {"arm": spec(architecture="arm64", variant="v8"), "s390x": spec(architecture="s390x")},
    )
    with pytest.raises(PlatformError, match="available: linux/arm64/v8, linux/s390x"):
        open_dir(str(layout))


def test_explicit_platform_must_match_a_single_image(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec(architecture="arm64"))
    assert open_dir(str(layout)).config.architecture == "arm64"  # default: scan what is there
    options = SourceOptions(platform=parse_platform("linux/amd64"))
    with pytest.raises(PlatformError, match="is an image for linux/arm64, not for the requested"):
        open_dir(str(layout), options)


def test_digest_of_a_platform_manifest_inside_a_nested_index(tmp_path: Path) -> None:
    layout = multiplatform(tmp_path)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    inner = load(layout, top["digest"])["manifests"]
    arm = next(m for m in inner if m["platform"]["architecture"] == "arm64")
    assert open_dir(f"{layout}@{arm['digest']}").config.architecture == "arm64"


def test_indexes_nested_too_deep_are_refused(tmp_path: Path) -> None:
    layout = write_oci_dir(tmp_path / "l", spec())
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    for _ in range(12):
        inner = {
            "schemaVersion": 2,
            "manifests": [{**entry, "platform": {"os": "linux", "architecture": "amd64"}}],
        }
        entry = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            **store_json(layout, inner),
        }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    with pytest.raises(ImageReadError, match="nested deeper than 8"):
        open_dir(str(layout))


# ------------------------------------------------------------ oci-archive


def test_oci_archive_reads_in_place(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", {"v1": spec("x", user="arch")})
    image = OciArchiveSource().open(f"{archive}:v1", OPTIONS)
    assert image.kind is SourceKind.OCI_ARCHIVE
    assert image.config.user == "arch"
    assert read_all_layers(image)[0] == ["etc", "etc/marker"]
    image.close()


def test_oci_archive_written_by_skopeo(tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    layout = write_oci_dir(tmp_path / "l", {"t": spec(user="skopeo", compression="zstd")})
    archive = tmp_path / "skopeo.tar"
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "-q",
            f"oci:{layout}:t",
            f"oci-archive:{archive}:v2",
        ],
        check=True,
    )
    image = OciArchiveSource().open(f"{archive}:v2", OPTIONS)
    assert image.config.user == "skopeo"
    assert read_all_layers(image)[1] == ["usr", "usr/bin", "usr/bin/tool"]


def test_oci_archive_tampered_blob_fails_while_reading(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", spec(compression="none"))
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"#!/bin/sh", b"#!/bin/xx"))
    image = OciArchiveSource().open(str(archive), OPTIONS)
    assert image.access is not None
    with pytest.raises(ImageReadError, match="digest mismatch"):
        image.access.open_layer(1).read()


def test_truncated_oci_archive(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", spec())
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError):
        OciArchiveSource().open(str(archive), OPTIONS)


def test_file_that_is_not_a_tar(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello\n" * 200)
    with pytest.raises(ImageReadError, match="not a tar archive"):
        OciArchiveSource().open(str(path), OPTIONS)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_archive_is_read_without_unpacking(tmp_path: Path, compression: str) -> None:
    """`docker save | gzip` style: members are found by decompressing as far as needed."""
    big: list[Member] = [File(f"/data/{n}", os.urandom(300_000)) for n in range(3)]
    archive = write_oci_archive(
        tmp_path / "img.tar", {"t": spec(user="packed"), "big": ImageSpec([big])}
    )
    packed = tmp_path / f"img.tar.{compression}"
    packed.write_bytes(compress(archive.read_bytes(), compression))
    image = OciArchiveSource().open(f"{packed}:t", OPTIONS)
    assert image.config.user == "packed"
    assert image.access is not None
    second, first = image.access.open_layer(1), image.access.open_layer(0)  # backwards
    assert member_names(second) == ["usr", "usr/bin", "usr/bin/tool"]
    assert member_names(first) == ["etc", "etc/marker"]
    assert read_all_layers(OciArchiveSource().open(f"{packed}:big", OPTIONS))[0][0] == "data/0"


def test_truncated_compressed_archive(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", spec())
    packed = tmp_path / "img.tar.gz"
    data = compress(archive.read_bytes(), "gzip")
    packed.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="corrupt gzip data"):
        OciArchiveSource().open(str(packed), OPTIONS)


def test_tar_without_index_json_is_not_an_oci_archive(tmp_path: Path) -> None:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    with pytest.raises(ImageReadError, match=r"not an OCI archive.*docker-archive:"):
        OciArchiveSource().open(str(path), OPTIONS)


def test_archive_members_resolve_symlinks_inside_the_archive(tmp_path: Path) -> None:
    """Layouts in archives may hold blobs as symlinks (docker save does for repeated layers)."""
    source = write_oci_archive(tmp_path / "img.tar", spec())
    linked = tmp_path / "linked.tar"
    with tarfile.open(source) as tar, tarfile.open(linked, "w") as out:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))  # type: ignore[arg-type]
        manifest_layer = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
        for member in tar:
            if member.name == manifest_layer:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                moved = tarfile.TarInfo("elsewhere/layer.tar")
                moved.size = len(data)
                out.addfile(moved, io.BytesIO(data))
                link = tarfile.TarInfo(member.name)
                link.type, link.linkname = tarfile.SYMTYPE, "../../elsewhere/layer.tar"
                out.addfile(link)
            else:
                out.addfile(member, tar.extractfile(member) if member.isreg() else None)
    assert read_all_layers(OciArchiveSource().open(str(linked), OPTIONS))[0] == [
        "etc",
        "etc/marker",
    ]


# ------------------------------------------------------------ the shared corpus


CORPUS_TAGS = CORPUS_IMAGES


@pytest.mark.parametrize("tag", CORPUS_TAGS)
def test_corpus_images_open_with_the_config_the_oracle_saw(corpus_dir: Path, tag: str) -> None:
    verdict = json.loads((corpus_dir / "verdicts" / f"{tag}.json").read_text())
    image = open_dir(f"{corpus_dir / 'oci'}:{tag}")
    assert list(image.config.env) == verdict["env"]
    assert image.config.entrypoint == (
        tuple(verdict["entrypoint"]) if verdict["entrypoint"] else None
    )
    assert image.config.cmd == (tuple(verdict["cmd"]) if verdict["cmd"] else None)
    assert image.config.architecture == verdict["arch"]
    assert [layer.digest for layer in image.layers] == [x["layer"] for x in verdict["layers"]]
    assert [layer.size for layer in image.layers] == [
        x["compressed_size"] for x in verdict["layers"]
    ]
    image.close()


def test_corpus_layer_blobs_all_verify(corpus_dir: Path) -> None:
    """Every distinct layer blob of the corpus read once through the verifying stream."""
    seen: dict[str, int] = {}
    for tag in CORPUS_TAGS:
        image = open_dir(f"{corpus_dir / 'oci'}:{tag}")
        assert image.access is not None
        for index, layer in enumerate(image.layers):
            if layer.digest not in seen:
                stream = image.access.open_layer(index)
                digest = hashlib.sha256()
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                seen[layer.digest] = index
                assert "sha256:" + digest.hexdigest() == layer.digest
        image.close()
    verdicts = [
        json.loads((corpus_dir / "verdicts" / f"{t}.json").read_text()) for t in CORPUS_TAGS
    ]
    assert set(seen) == {layer["layer"] for v in verdicts for layer in v["layers"]}


def test_archive_cut_inside_a_blob_is_reported_truncated(tmp_path: Path) -> None:
    archive = write_oci_archive(
        tmp_path / "img.tar", ImageSpec(layers=[[File("/r", os.urandom(50_000))]])
    )
    with tarfile.open(archive) as tar:
        largest = max(tar.getmembers(), key=lambda member: member.size)
    archive.write_bytes(archive.read_bytes()[: largest.offset_data + largest.size // 2])
    with pytest.raises(ImageReadError, match=r"is truncated: blobs/sha256/\w+ ends past its end"):
        OciArchiveSource().open(str(archive), OPTIONS)


def test_platforms_whose_blobs_are_absent_are_not_offered(tmp_path: Path) -> None:
    """As `docker save` with the containerd store writes a partly pulled multi-platform image."""
    layout = multiplatform(tmp_path)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    inner = load(layout, top["digest"])["manifests"]
    amd64 = next(m for m in inner if m["platform"]["architecture"] == "amd64")
    blob(layout, amd64["digest"]).unlink()
    with pytest.raises(
        PlatformError, match=r"no image for platform linux/amd64; available: linux/arm64/v8 \("
    ):
        open_dir(str(layout))
    options = SourceOptions(platform=parse_platform("linux/arm64"))
    assert open_dir(str(layout), options).config.architecture == "arm64"


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_corrupt_compressed_layer_whose_digest_matches(tmp_path: Path, compression: str) -> None:
    """The blob is what the manifest names, but its compressed data is cut short."""
    layout = write_oci_dir(tmp_path / "l", spec(compression=compression))
    path = blob(layout, first_manifest(layout)["layers"][1]["digest"])
    cut = path.read_bytes()[:-12]
    path.unlink()

    def relink(manifest: dict[str, Any]) -> None:
        manifest["layers"][1].update(digest=sha256(cut), size=len(cut))

    blob(layout, sha256(cut)).write_bytes(cut)
    rewrite_manifest(layout, relink)
    image = open_dir(str(layout))
    assert image.access is not None
    stream = open_decompressed(image.access.open_layer(1), "layer 2")
    with pytest.raises(ImageReadError, match=f"layer 2: corrupt {compression} data"):
        stream.drain()


def test_archive_removed_after_opening_is_a_read_error(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "img.tar", spec())
    image = OciArchiveSource().open(str(archive), OPTIONS)
    archive.unlink()
    assert image.access is not None
    with pytest.raises(ImageReadError, match="cannot read blobs/sha256/"):
        image.access.open_layer(0)


def test_an_index_dag_is_searched_once_per_index(tmp_path: Path) -> None:
    """Issue 15: 8 levels of 10 entries all naming the next level took more than 120 s by
    @digest (every path walked). Each index is parsed once: the reads grow with the levels."""
    reads = []
    for levels in (4, 8):
        reference = index_dag(tmp_path / f"dag{levels}", levels, 10)
        path = reference.removeprefix("oci-dir:")

        def work(path: str = path) -> None:
            with pytest.raises(ReferenceError_, match="has no manifest"):
                open_dir(path)

        reads.append(bytes_read(work))
    assert reads[1] < 3 * reads[0]
