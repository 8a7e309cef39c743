"""The committed sample image opens through oci-archive and holds what its README says."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from imagescan.image.compression import open_decompressed
from imagescan.image.model import OpenedImage, SourceOptions
from imagescan.image.ocilayout import OciArchiveSource

SAMPLES = Path(__file__).resolve().parent.parent / "sample-images"
APP_FILES = [
    "usr/local/lib",
    "usr/local/lib/libgreet.so.1",
    "usr/local/bin",
    "usr/local/bin/hello",
    "usr/local/bin/needs-newer",
    "etc",
    "etc/ld.so.cache",
]


def layer_names(image: OpenedImage) -> list[list[str]]:
    assert image.access is not None
    names = []
    for _, blob in image.access.iter_layers():
        stream = open_decompressed(blob)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            names.append([member.name for member in tar])
        stream.drain()
    return names


def test_sample_image_opens_with_its_programs() -> None:
    image = OciArchiveSource().open(str(SAMPLES / "sample.tar"), SourceOptions())
    assert image.config.entrypoint == ("/usr/local/bin/hello",)
    base, app = layer_names(image)
    assert "usr/lib/x86_64-linux-gnu/libc.so.6" in base
    assert app == APP_FILES
    verdict = json.loads((SAMPLES / "sample.verdict.json").read_text())
    assert [layer.digest for layer in image.layers] == [x["layer"] for x in verdict["layers"]]
    image.close()


def test_sample_verdict_says_needs_newer_lacks_greet_2() -> None:
    verdict = json.loads((SAMPLES / "sample.verdict.json").read_text())
    assert verdict["summary"]["broken_paths"] == ["/usr/local/bin/needs-newer"]
    [missing] = verdict["elves"]["/usr/local/bin/needs-newer"]["missing_versions"]
    assert (missing["version"], missing["lib"]) == ("GREET_2", "/usr/local/lib/libgreet.so.1")


def test_make_sample_rebuilds_the_same_layout(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("builds with the host's gcc and glibc")
    output = tmp_path / "sample.tar"
    subprocess.run([sys.executable, str(SAMPLES / "make_sample.py"), str(output)], check=True)
    rebuilt = OciArchiveSource().open(str(output), SourceOptions())
    committed = OciArchiveSource().open(str(SAMPLES / "sample.tar"), SourceOptions())
    assert layer_names(rebuilt) == layer_names(committed)
