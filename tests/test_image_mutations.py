"""Damaged archives only ever give ImagescanError: every local source, many seeded mutations."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from imagescan.errors import ImagescanError
from imagescan.image.compression import open_decompressed
from imagescan.image.dockerarchive import DockerArchiveSource
from imagescan.image.model import Source, SourceOptions
from imagescan.image.ocilayout import OciArchiveSource
from tests.imagebuilder import Dir, File, ImageSpec, write_docker_archive, write_oci_archive

SPEC = ImageSpec(
    layers=[[Dir("/etc"), File("/etc/a", b"alpha" * 50)], [File("/b", b"beta" * 50)]],
    entrypoint=["/b"],
)


def read_everything(source: Source, archive: Path) -> None:
    image = source.open(str(archive), SourceOptions())
    assert image.access is not None
    for _, blob in image.access.iter_layers():
        stream = open_decompressed(blob)
        stream.read()
        stream.drain()
    image.close()


def mutate(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    how = rng.choice(["flip", "cut", "zero"])
    at = rng.randrange(len(damaged))
    if how == "cut":
        return bytes(damaged[:at])
    for position in range(at, min(len(damaged), at + rng.randint(1, 16))):
        damaged[position] = 0 if how == "zero" else damaged[position] ^ rng.randint(1, 255)
    return bytes(damaged)


@pytest.mark.parametrize(
    ("name", "source", "writer"),
    [
        ("oci-archive", OciArchiveSource(), lambda p: write_oci_archive(p, SPEC)),
        ("docker-legacy", DockerArchiveSource(), lambda p: write_docker_archive(p, SPEC)),
        ("docker-oci", DockerArchiveSource(), lambda p: write_docker_archive(p, SPEC, shape="oci")),
    ],
)
def test_mutated_archives_fail_only_with_imagescan_errors(
    tmp_path: Path, name: str, source: Source, writer: object
) -> None:
    original = writer(tmp_path / "good.tar")  # type: ignore[operator]
    good = original.read_bytes()
    read_everything(source, original)
    rng = random.Random(f"h1-{name}")
    damaged = tmp_path / "damaged.tar"
    failures = 0
    for _ in range(150):
        damaged.write_bytes(mutate(good, rng))
        try:
            read_everything(source, damaged)
        except ImagescanError as exc:
            failures += 1
            assert "\n" not in exc.message
    assert failures > 0  # the mutations do reach the checks
