"""dir: an unpacked root filesystem, handed over as one layer that is a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagescan.errors import ReferenceError_
from imagescan.image.dirsource import DirSource
from imagescan.image.model import DirectoryLayers, SourceKind, SourceOptions
from imagescan.image.platform import host_platform, parse_platform


def test_directory_becomes_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    image = DirSource().open(str(tmp_path), SourceOptions())
    assert image.kind is SourceKind.DIR
    assert image.reference == f"dir:{tmp_path}"
    assert isinstance(image.access, DirectoryLayers)
    assert image.access.directory(0) == str(tmp_path.resolve())
    assert image.access.layer_count() == len(image.layers) == 1
    assert image.layers[0].diff_id is None
    with pytest.raises(TypeError, match="not a blob"):
        image.access.open_layer(0)
    assert image.config.env == ()
    assert image.config.architecture == host_platform().architecture
    image.close()


def test_requested_platform_is_the_config_platform(tmp_path: Path) -> None:
    options = SourceOptions(platform=parse_platform("linux/arm64/v8"))
    config = DirSource().open(str(tmp_path), options).config
    assert (config.architecture, config.variant) == ("arm64", "v8")


@pytest.mark.parametrize("name", ["absent", "a-file"])
def test_not_a_directory(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ReferenceError_, match="is not a directory"):
        DirSource().open(str(tmp_path / name), SourceOptions())


def test_empty_reference(tmp_path: Path) -> None:
    with pytest.raises(ReferenceError_):
        DirSource().open("", SourceOptions())
