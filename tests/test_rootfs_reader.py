"""Images -> RootFS: top-down reads, one-pass streams placed by diff_id, dir:, the corpus."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from imagescan import parallel
from imagescan.elf.reader import parse_elf
from imagescan.errors import ImageReadError, MalformedElf
from imagescan.image.dirsource import DirSource
from imagescan.image.dockerarchive import DockerArchiveSource
from imagescan.image.engine import DockerEngineSource
from imagescan.image.model import (
    ImageConfig,
    LayerAccess,
    LayerDescriptor,
    OpenedImage,
    RandomAccessLayers,
    SourceKind,
    SourceOptions,
)
from imagescan.image.ocilayout import OciArchiveSource, OciDirSource
from imagescan.rootfs import reader
from imagescan.rootfs.dirwalk import index_directory
from imagescan.rootfs.model import EntryType, RootFS
from imagescan.rootfs.paths import lookup
from imagescan.rootfs.reader import read_rootfs
from tests import services
from tests.conftest import CORPUS_IMAGES
from tests.fresh import in_fresh_process
from tests.imagebuilder import (
    Dir,
    File,
    Hardlink,
    ImageSpec,
    Member,
    Opaque,
    Symlink,
    Whiteout,
    layer_tar,
    unparseable_elf,
    write_docker_archive,
    write_oci_archive,
    write_oci_dir,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rootfs"
docker_engine = services.docker_engine  # the private dockerd of tests/services.py


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("hello") / "hello"
    subprocess.run(["gcc", "-O1", "-o", out, FIXTURES / "hello.c"], check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def broken(hello: bytes) -> bytes:
    """An ELF file that parse_elf refuses (PT_INTERP's p_filesz past the end; a truncated
    file is facts with the loader's mapping message now): read, it is a Skipped entry."""
    data = unparseable_elf(hello)
    with pytest.raises(MalformedElf):
        parse_elf(data, "/x")
    return data


def open_oci(tmp_path: Path, *layers: list[Member]) -> OpenedImage:
    layout = write_oci_dir(tmp_path / "layout", ImageSpec(layers=list(layers)))
    return OciDirSource().open(f"{layout}:latest", SourceOptions())


class OnePass:
    """A one-pass source: layers in a given order, placed only by diff_id (as an engine
    export delivers them)."""

    random_access = False

    def __init__(self, inner: LayerAccess, order: list[int], known: bool = False) -> None:
        self.inner, self.order, self.known = inner, order, known

    def open_layer(self, index: int) -> BinaryIO:
        raise AssertionError("a one-pass source cannot open a layer by index")

    def iter_layers(self) -> Iterator[tuple[int | None, BinaryIO]]:
        for index in self.order:
            yield (index if self.known else None), self.inner.open_layer(index)

    def close(self) -> None:
        self.inner.close()


def one_pass(image: OpenedImage, order: list[int], known: bool = False) -> OpenedImage:
    assert image.access is not None
    return replace(image, access=OnePass(image.access, order, known))


def test_hidden_files_are_never_parsed(tmp_path: Path, broken: bytes, hello: bytes) -> None:
    lower: list[Member] = [Dir("/usr"), File("/usr/replaced", broken), File("/usr/gone", broken)]
    upper: list[Member] = [File("/usr/replaced", hello), Whiteout("/usr/gone")]
    image = open_oci(tmp_path, lower, upper)
    fs = read_rootfs(image)
    assert fs.skipped == ()
    assert fs.entries["/usr/replaced"].elf is not None
    assert "/usr/gone" not in fs.entries
    # The same layers read bottom-up (nothing known to be hidden) parse the broken files,
    # and the squash drops what they said.
    streamed = read_rootfs(one_pass(image, [0, 1], known=True))
    assert streamed.skipped == ()
    assert streamed.entries == fs.entries


def test_hardlink_of_a_layer_to_its_own_hidden_file(tmp_path: Path, hello: bytes) -> None:
    image = open_oci(tmp_path, [File("/a", hello), Hardlink("/b", "/a")], [Whiteout("/a")])
    fs = read_rootfs(image)
    assert set(fs.entries) == {"/b"}
    assert fs.entries["/b"].elf is not None


def test_hardlink_to_a_lower_file_that_an_upper_layer_deletes(tmp_path: Path, hello: bytes) -> None:
    image = open_oci(tmp_path, [File("/a", hello)], [Hardlink("/b", "/a")], [Whiteout("/a")])
    fs = read_rootfs(image)
    assert fs.entries["/b"].elf is not None
    assert fs.entries["/b"].layer == 1


def test_one_pass_stream_is_placed_by_diff_id(tmp_path: Path) -> None:
    layers: list[list[Member]] = [
        [Dir("/usr"), Dir("/usr/lib"), Symlink("/lib", "usr/lib"), File("/f", b"0")],
        [File("/lib/x", b"1"), File("/f", b"11")],
        [Whiteout("/f")],
    ]
    image = open_oci(tmp_path, *layers)
    expected = read_rootfs(image)
    streamed = read_rootfs(one_pass(image, [2, 0, 1]))
    assert streamed.entries == expected.entries
    assert streamed.layer_ids == image.config.diff_ids
    assert streamed.entries["/usr/lib/x"].layer == 1
    assert "/f" not in streamed.entries


def test_same_layer_twice_fills_both_positions(tmp_path: Path) -> None:
    image = open_oci(tmp_path, [File("/a", b"1")], [File("/b", b"2")], [File("/a", b"1")])
    assert image.config.diff_ids[0] == image.config.diff_ids[2]
    fs = read_rootfs(one_pass(image, [1, 0]))
    assert fs.entries["/a"].layer == 2
    assert fs.entries["/b"].layer == 1


def test_layer_not_in_the_config_is_an_error(tmp_path: Path) -> None:
    image = open_oci(tmp_path, [File("/a")], [File("/b")])
    wrong = replace(image, config=replace(image.config, diff_ids=("sha256:" + "0" * 64,) * 2))
    with pytest.raises(ImageReadError, match="which the image config does not list"):
        read_rootfs(one_pass(wrong, [0, 1]))


def test_layer_missing_from_the_stream_is_an_error(tmp_path: Path) -> None:
    image = open_oci(tmp_path, [File("/a")], [File("/b")])
    with pytest.raises(ImageReadError, match="layer 1 is missing"):
        read_rootfs(one_pass(image, [0]))


def test_oci_archive_and_progress(tmp_path: Path) -> None:
    archive = write_oci_archive(tmp_path / "a.tar", ImageSpec(layers=[[File("/a")], [File("/b")]]))
    image = OciArchiveSource().open(str(archive), SourceOptions())
    messages: list[str] = []
    try:
        fs = read_rootfs(image, progress=messages.append)
    finally:
        image.close()
    assert set(fs.entries) == {"/a", "/b"}
    assert messages == ["reading layer 1/2", "reading layer 2/2"]


def test_image_without_layers_or_directory_is_an_error(tmp_path: Path) -> None:
    image = open_oci(tmp_path, [File("/a")])
    with pytest.raises(ImageReadError, match="no layers"):
        read_rootfs(replace(image, access=None))


def make_root(root: Path, hello: bytes) -> None:
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/bin").mkdir()
    (root / "etc").mkdir()
    (root / "usr/bin/hello").write_bytes(hello)
    os.link(root / "usr/bin/hello", root / "usr/bin/hello-again")
    (root / "usr/bin/su").write_text("#!/bin/sh\n" * 10)
    os.chmod(root / "usr/bin/su", 0o4755)
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    os.symlink("usr/lib", root / "lib")
    os.symlink("/etc", root / "host-etc")  # absolute: means the image's /etc
    os.symlink("../../../../../../", root / "up")
    os.mkfifo(root / "fifo")


def test_dir_source_is_walked_without_leaving_the_root(tmp_path: Path, hello: bytes) -> None:
    make_root(tmp_path / "root", hello)
    fs = read_rootfs(DirSource().open(str(tmp_path / "root"), SourceOptions()))
    program, again = fs.entries["/usr/bin/hello"], fs.entries["/usr/bin/hello-again"]
    assert program.elf is not None
    assert (again.type, again.file_id, again.elf) == (EntryType.FILE, program.file_id, program.elf)
    assert fs.entries["/usr/bin/su"].setid
    assert fs.entries["/fifo"].type is EntryType.FIFO
    assert fs.kept == {"/etc/ld.so.conf": b"include /etc/ld.so.conf.d/*.conf\n"}
    assert lookup(fs, "/host-etc/ld.so.conf") == fs.entries["/etc/ld.so.conf"]
    assert lookup(fs, "/up/etc/ld.so.conf") == fs.entries["/etc/ld.so.conf"]
    assert lookup(fs, "/host-etc/passwd") is None  # the host's /etc is never looked at
    assert all(not path.startswith(("/host-etc/", "/up/")) for path in fs.entries)


def elf_kinds(fs: RootFS) -> dict[str, str]:
    """Regular ELF files (parsed, or at least with the ELF magic) and their kinds."""
    kinds = {}
    for path, entry in fs.entries.items():
        if entry.type is EntryType.FILE and (entry.elf is not None or entry.verify is None):
            kinds[path] = entry.elf.kind.value if entry.elf is not None else "unparsed"
    return kinds


@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_corpus_elf_files_and_kinds_match_the_oracle(corpus_dir: Path, name: str) -> None:
    verdicts = json.loads((corpus_dir / "verdicts" / f"{name}.json").read_text())
    image = OciDirSource().open(f"{corpus_dir / 'oci'}:{name}", SourceOptions())
    try:
        fs = read_rootfs(image)
    finally:
        image.close()
    expected = {path: elf["kind"] for path, elf in verdicts["elves"].items()}
    assert elf_kinds(fs) == expected
    assert fs.skipped == ()
    assert fs.layer_ids == image.config.diff_ids


def inflated_by_a_child(layout: str, name: str) -> None:
    """Run in a fresh process (tests.fresh): every layer of the image, whatever its size,
    inflated by a forked child (image.inflater) reads as inflated here."""
    forks: list[int] = []
    real = os.fork
    parallel.os.fork = lambda: forks.append(1) or real()  # type: ignore[assignment]
    reader.FORK_MIN_SIZE = 0

    def read(jobs: int) -> RootFS:
        image = OciDirSource().open(f"{layout}:{name}", SourceOptions())
        try:
            return read_rootfs(image, jobs=jobs)
        finally:
            image.close()

    alone = read(1)
    assert not forks
    assert read(2) == alone
    assert len(forks) >= len(alone.layer_ids)  # a hard link's second read forks again


@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_layers_inflated_by_a_child_read_the_same(corpus_dir: Path, name: str) -> None:
    # issue 14: with jobs > 1 a large local layer is inflated by a forked child.
    layout = str(corpus_dir / "oci")
    in_fresh_process("tests.test_rootfs_reader", f"inflated_by_a_child({layout!r}, {name!r})")


def test_dir_walk_does_not_enter_other_filesystems(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "mnt").mkdir(parents=True)
    (root / "here").write_text("x")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "none", root / "mnt"], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (root / "mnt" / "elsewhere").write_text("y")
        fs = read_rootfs(DirSource().open(str(root), SourceOptions()))
    finally:
        subprocess.run(["umount", root / "mnt"], check=True)
    assert set(fs.entries) == {"/mnt", "/here"}


class MemoryLayers(RandomAccessLayers):
    """Layer blobs held in memory (a random-access source)."""

    def __init__(self, blobs: list[bytes]) -> None:
        self.blobs = blobs

    def layer_count(self) -> int:
        return len(self.blobs)

    def open_layer(self, index: int) -> BinaryIO:
        return io.BytesIO(self.blobs[index])


def random_layer(rng: random.Random, contents: list[bytes]) -> list[Member]:
    names = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/l/x", "/l/z", "/a/d/x"]
    members: list[Member] = []
    for _ in range(rng.randint(1, 6)):
        path, roll = rng.choice(names), rng.random()
        if roll < 0.4:
            members.append(File(path, rng.choice(contents)))
        elif roll < 0.5:
            members.append(Dir(path))
        elif roll < 0.6:
            members.append(Symlink(path, rng.choice(["a", "/b", "../a", "x"])))
        elif roll < 0.75:
            members.append(Whiteout(path))
        elif roll < 0.85:
            members.append(Opaque(path))
        else:
            members.append(Hardlink(path, rng.choice(names)))
    if rng.random() < 0.3:
        members.append(Symlink("/l", rng.choice(["a", "/b"])))
    return members


def test_top_down_read_equals_a_full_read(hello: bytes, broken: bytes) -> None:
    """Hiding files from the parser never changes what the image holds (random stacks)."""
    rng = random.Random(6)
    for _ in range(150):
        layers = [layer_tar(random_layer(rng, [hello, broken, b"text"])) for _ in range(3)]
        image = OpenedImage(
            reference="memory",
            kind=SourceKind.OCI_DIR,
            config=ImageConfig(),
            layers=tuple(LayerDescriptor(f"sha256:{i:064x}") for i in range(3)),
            access=MemoryLayers(layers),
        )
        top_down = read_rootfs(image)
        full = read_rootfs(one_pass(image, [0, 1, 2], known=True))
        assert top_down.entries == full.entries, layers
        assert top_down.skipped == full.skipped


def test_hidden_file_reached_by_another_spelling_is_read_after_all(
    tmp_path: Path, hello: bytes
) -> None:
    # The upper hard link names "/lib/a"; the whiteout above it names "/usr/lib/a": the
    # top-down pass leaves the file unread, sees that, and reads every file again.
    image = open_oci(
        tmp_path,
        [Dir("/usr"), Dir("/usr/lib"), Symlink("/lib", "usr/lib"), File("/usr/lib/a", hello)],
        [Hardlink("/b", "/lib/a")],
        [Whiteout("/usr/lib/a")],
    )
    messages: list[str] = []
    fs = read_rootfs(image, progress=messages.append)
    assert fs.entries["/b"].elf is not None
    assert "/usr/lib/a" not in fs.entries
    assert "reading all layers again, every file" in messages


@pytest.mark.engine
def test_engine_export_reads_like_the_archive(
    tmp_path: Path,
    hello: bytes,
    docker_engine: services.DockerEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real one-pass source: docker's export, the same layer at two positions."""
    spec = ImageSpec(
        layers=[
            [Dir("/usr"), Dir("/usr/bin"), File("/usr/bin/hello", hello, mode=0o755)],
            [File("/usr/bin/gone", b"x"), Symlink("/usr/bin/hi", "hello")],
            [Whiteout("/usr/bin/gone")],
            [Dir("/usr"), Dir("/usr/bin"), File("/usr/bin/hello", hello, mode=0o755)],
        ]
    )
    archive = write_docker_archive(tmp_path / "img.tar", spec, tag="rootfs/reader:1")
    docker_engine.load(archive)
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    from_archive = DockerArchiveSource().open(str(archive), SourceOptions())
    from_engine = DockerEngineSource().open("rootfs/reader:1", SourceOptions())
    try:
        assert from_engine.access is not None and not from_engine.access.random_access
        expected, streamed = read_rootfs(from_archive), read_rootfs(from_engine)
    finally:
        from_archive.close()
        from_engine.close()
    assert streamed.entries == expected.entries
    assert streamed.entries["/usr/bin/hello"].layer == 3
    assert streamed.entries["/usr/bin/hello"].elf is not None
    assert "/usr/bin/gone" not in streamed.entries


def test_broken_stream_layer_is_named_by_its_place_in_the_stream() -> None:
    first = layer_tar([File("/a")])
    image = OpenedImage(
        reference="img",
        kind=SourceKind.DOCKER,
        config=ImageConfig(diff_ids=("sha256:" + hashlib.sha256(first).hexdigest(), "sha256:1")),
        layers=(),
        access=MemoryLayers([first, b"not a tar" * 100]),
    )
    with pytest.raises(ImageReadError, match="img: layer 2 of the stream cannot be read"):
        read_rootfs(one_pass(image, [0, 1]))


# VFS_CAP_REVISION_2 with CAP_NET_RAW permitted+effective (include/uapi/linux/capability.h).
NET_RAW_CAP = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def test_dir_walk_records_capabilities_skips_sockets_and_bad_elves(
    tmp_path: Path, broken: bytes
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ping").write_bytes(b"#!/bin/sh\n")
    (root / "plain").write_bytes(b"#!/bin/sh\n")
    (root / "libbad.so").write_bytes(broken)
    try:
        os.setxattr(root / "ping", "security.capability", NET_RAW_CAP)
    except OSError:
        pytest.skip("cannot set file capabilities here")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        fs = read_rootfs(DirSource().open(str(root), SourceOptions()))
    assert set(fs.entries) == {"/ping", "/plain", "/libbad.so"}
    assert (fs.entries["/ping"].has_caps, fs.entries["/plain"].has_caps) == (True, False)
    assert [(s.path, s.reason) for s in fs.skipped] == [
        ("/libbad.so", fs.entries["/libbad.so"].verify)
    ]


def test_dir_source_root_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageReadError, match="not a directory"):
        index_directory(str(tmp_path / "file"))
