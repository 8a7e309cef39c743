"""Seed corpora for the fuzz targets, built from the test fixtures and builders: the
synthetic and hostile files of tests/hostile.py, the fixture C sources compiled by gcc
(when it is there), the ld.so.cache layouts of the ldcache tests, layers and manifests of
tests/imagebuilder.py, and reference strings as the tests spell them."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tests import hostile
from tests.imagebuilder import (
    Dir,
    File,
    Hardlink,
    ImageSpec,
    Symlink,
    Whiteout,
    compress,
    layer_tar,
    write_oci_dir,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def elf_seeds() -> Iterator[bytes]:
    yield hostile.same_name_symbols(20)
    yield hostile.needed_one_long_string(3, 200)
    yield hostile.fake_ldso(400)
    yield from (data for _, data in hostile.dependency_chain(2))
    yield from _compiled(FIXTURES / "elf" / "hello.c", FIXTURES / "ldcache" / "lib.c")


def _compiled(*sources: Path) -> Iterator[bytes]:
    gcc = shutil.which("gcc")
    if gcc is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            out = Path(tmp) / source.stem
            flags = ["-shared", "-fPIC"] if source.stem == "lib" else []
            done = subprocess.run([gcc, "-O1", *flags, "-o", str(out), str(source)], check=False)
            if done.returncode == 0:
                yield out.read_bytes()


def ldcache_seeds() -> Iterator[bytes]:
    from tests.test_loader_ldcache import write_compat, write_new, write_old

    rows = [("libc.so.6", "/lib/libc.so.6", 0x303, 0), ("libm.so.6", "/lib/libm.so.6", 0x303, 0)]
    yield write_new(rows)
    yield write_new(rows, hwcaps=("x86-64-v3",))
    yield write_old(rows)
    yield write_compat(rows)
    host = Path("/etc/ld.so.cache")
    if host.is_file():
        yield host.read_bytes()


def layer_seeds() -> Iterator[bytes]:
    members = [
        Dir("/etc"),
        File("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        File("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
        Symlink("/lib64", "usr/lib64"),
        Hardlink("/etc/passwd-", "/etc/passwd"),
        Whiteout("/var/old"),
        File("/usr/lib/" + "d" * 120 + "/libx.so", hostile.same_name_symbols(3)),
    ]
    tar = layer_tar(members)
    yield tar
    yield compress(tar, "gzip")
    yield compress(tar, "zstd")
    yield hostile.pax_loop_layer()
    yield gzip.decompress(hostile.declared_huge_elf_layer(1 << 20))[:4096]


def ldconf_seeds() -> Iterator[bytes]:
    yield b"include /etc/ld.so.conf.d/*.conf\n/usr/local/lib\n"
    yield b"# comment\n/opt/a/ # x\nhwcap 0 nosegneg\n"
    yield b"include\tsub/*.conf other.conf\n/opt/c=libc6\n"
    yield from hostile.ld_so_conf_doubling(3).values()


def reference_seeds() -> Iterator[bytes]:
    for text in (
        "debian:12",
        "docker.io/library/alpine@sha256:" + "a" * 64,
        "localhost:5000/team/app:v1",
        "ghcr.io/o/r:tag@sha256:" + "b" * 64,
        "/tmp/layout:v1",
        "./img.tar:app:1",
        "linux/arm64/v8",
    ):
        yield text.encode()


def manifest_seeds() -> Iterator[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        layout = write_oci_dir(Path(tmp) / "l", ImageSpec(layers=[[File("/a", b"x")]], user="1"))
        yield (layout / "index.json").read_bytes()
        for blob in sorted((layout / "blobs" / "sha256").iterdir()):
            data = blob.read_bytes()
            if data.startswith(b"{"):
                yield data
    yield json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:" + "0" * 64}]}).encode()


SEEDS: dict[str, Callable[[], Iterator[bytes]]] = {
    "elf": elf_seeds,
    "ldcache": ldcache_seeds,
    "layer": layer_seeds,
    "ldconf": ldconf_seeds,
    "reference": reference_seeds,
    "manifest": manifest_seeds,
}


def write_corpus(target: str, directory: Path) -> int:
    """Writes `target`'s seeds into `directory` (named by content); how many there are."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for data in SEEDS[target]():
        (directory / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
        count += 1
    return count
