"""What a scan tells a progress display: each layer by its OCI index (0 at the base) with its
size, the bytes read of it, then every ELF file analysed (issue 10 item 9)."""

from __future__ import annotations

import json
import tarfile

from imagescan.image.progress import short_id
from imagescan.scan import ScanOptions, scan
from tests.conftest import REPO

SAMPLE = REPO / "sample-images" / "sample.tar"


class Recorder:
    """A ProgressSink that keeps what it heard."""

    def __init__(self) -> None:
        self.layers: list[tuple[int, int, int | None, str | None]] = []
        self.bytes: dict[int, int] = {}
        self.total: int | None = None
        self.files: list[str] = []

    def layer(self, index: int, count: int, size: int | None, diff_id: str | None) -> None:
        self.layers.append((index, count, size, diff_id))
        self.bytes[index] = 0

    def read(self, nbytes: int) -> None:
        self.bytes[self.layers[-1][0]] += nbytes

    def analysing(self, total: int) -> None:
        self.total = total

    def analysed(self, path: str) -> None:
        self.files.append(path)

    def message(self, text: str) -> None:
        return None


def _manifest_layers() -> list[dict[str, object]]:
    with tarfile.open(SAMPLE) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
    layers: list[dict[str, object]] = manifest["layers"]
    return layers


def test_every_layer_is_announced_with_its_size_and_every_byte_counted() -> None:
    sink = Recorder()
    scanned = scan(str(SAMPLE), ScanOptions(), sink=sink)
    layers = _manifest_layers()
    assert sorted(i for i, *_ in sink.layers) == list(range(len(layers)))
    for index, count, size, diff_id in sink.layers:
        assert count == len(layers) and size == layers[index]["size"]
        assert diff_id == scanned.rootfs.layer_ids[index]
        assert 0 < sink.bytes[index] <= size  # the stored blob, as the manifest sizes it
    elves = [v.path for v in scanned.report.files]
    assert sink.total == len(elves) and sorted(sink.files) == sorted(elves)


def test_layers_are_named_by_their_short_diff_id() -> None:
    assert short_id("sha256:" + "0123456789abcdef" * 4) == "0123456789ab"
    assert short_id(None) == "unknown"
