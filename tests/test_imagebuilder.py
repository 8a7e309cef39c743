"""The tests' image builder writes real, deterministic image formats that real tools accept."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.imagebuilder import (
    Dir,
    File,
    Hardlink,
    ImageSpec,
    Opaque,
    RawMember,
    Symlink,
    Whiteout,
    compress,
    glibc_base,
    host_files,
    layer_tar,
    write_docker_archive,
    write_multiplatform_oci_dir,
    write_oci_archive,
    write_oci_dir,
)


def members_of(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_layer_tar_spells_each_member_as_docker_does() -> None:
    evil = tarfile.TarInfo("../../etc/passwd")
    members = members_of(
        layer_tar(
            [
                Dir("/opt", 0o700),
                File("/opt/a", b"abc", 0o4755, uid=1000, gid=50),
                Symlink("/opt/b", "/opt/a"),
                Hardlink("/opt/c", "/opt/a"),
                Whiteout("/opt/gone"),
                Whiteout("/top"),
                Opaque("/var/cache"),
                RawMember(evil, b"root::0:0::/:/bin/sh\n"),
            ]
        )
    )
    assert [(m.name, m.type) for m in members] == [
        ("opt", tarfile.DIRTYPE),
        ("opt/a", tarfile.REGTYPE),
        ("opt/b", tarfile.SYMTYPE),
        ("opt/c", tarfile.LNKTYPE),
        ("opt/.wh.gone", tarfile.REGTYPE),
        (".wh.top", tarfile.REGTYPE),
        ("var/cache/.wh..wh..opq", tarfile.REGTYPE),
        ("../../etc/passwd", tarfile.REGTYPE),
    ]
    assert (members[0].mode, members[1].mode, members[1].uid, members[1].gid) == (
        0o700,
        0o4755,
        1000,
        50,
    )
    assert (members[2].linkname, members[3].linkname) == ("/opt/a", "opt/a")
    assert members[7].size == len(b"root::0:0::/:/bin/sh\n")
    assert all(m.mtime == 0 for m in members)


def test_output_is_deterministic(tmp_path: Path) -> None:
    spec = ImageSpec(layers=[[File("/a", b"1")], [File("/b", b"2")]], entrypoint=["/a"])
    for name in ("one", "two"):
        write_oci_archive(tmp_path / f"{name}.tar", spec)
        write_docker_archive(tmp_path / f"{name}-docker.tar", spec)
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert (tmp_path / "one-docker.tar").read_bytes() == (tmp_path / "two-docker.tar").read_bytes()


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_oci_dir_blobs_are_content_addressed(tmp_path: Path, compression: str) -> None:
    layout = write_oci_dir(
        tmp_path / "l", ImageSpec(layers=[[File("/a")]], compression=compression)
    )
    blobs = list((layout / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3  # config, layer, manifest
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_base_blobs_go_below_the_spec_layers(tmp_path: Path) -> None:
    base = tmp_path / "base.tar.gz"
    base.write_bytes(compress(layer_tar([File("/base")]), "gzip"))
    layout = write_oci_dir(tmp_path / "l", ImageSpec(layers=[[File("/top")]], base=[base]))
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(
        (layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    assert (
        manifest["layers"][0]["digest"] == "sha256:" + hashlib.sha256(base.read_bytes()).hexdigest()
    )
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    assert (
        config["rootfs"]["diff_ids"][0]
        == "sha256:" + hashlib.sha256(layer_tar([File("/base")])).hexdigest()
    )


def test_multiplatform_layout_nests_an_index(tmp_path: Path) -> None:
    layout = write_multiplatform_oci_dir(
        tmp_path / "mp",
        {
            "a": ImageSpec(layers=[[File("/a")]]),
            "b": ImageSpec(layers=[[File("/b")]], architecture="arm64", variant="v8"),
        },
        tag="multi",
    )
    top = json.loads((layout / "index.json").read_text())["manifests"]
    assert [(m["mediaType"], m["annotations"]) for m in top] == [
        ("application/vnd.oci.image.index.v1+json", {"org.opencontainers.image.ref.name": "multi"})
    ]
    inner = json.loads((layout / "blobs/sha256" / top[0]["digest"][7:]).read_text())
    assert [m["platform"] for m in inner["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]


def test_host_files_copies_with_parent_dirs() -> None:
    members = host_files(["/etc/os-release", "/etc/hostname"], follow=True)
    assert isinstance(members[0], Dir) and members[0].path == "/etc"
    release = members[1]
    assert isinstance(release, File)
    assert release.data == Path("/etc/os-release").read_bytes()
    paths = [m.path for m in members if not isinstance(m, RawMember)]
    assert paths == ["/etc", "/etc/os-release", "/etc/hostname"]


def test_host_files_can_keep_symlinks() -> None:
    link = host_files(["/etc/os-release"], follow=False)[1]
    if os.path.islink("/etc/os-release"):
        assert link == Symlink("/etc/os-release", os.readlink("/etc/os-release"))


def test_glibc_base_is_a_working_root(tmp_path: Path) -> None:
    """Unpacked, the base runs a host program in a chroot: loader, libc and cache all work."""
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        pytest.skip("needs root and chroot")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(layer_tar(glibc_base()))) as tar:
        tar.extractall(root, filter="tar")
    shutil.copy("/usr/bin/true", root / "usr/bin/true")
    subprocess.run(["chroot", str(root), "/usr/bin/true"], check=True)
    listing = subprocess.run(
        ["ldconfig", "-r", str(root), "-p"], check=True, capture_output=True, text=True
    )
    assert "libc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6" in listing.stdout


def test_glibc_base_is_debian_12_shaped() -> None:
    by_path = {m.path: m for m in glibc_base() if not isinstance(m, RawMember)}
    assert by_path["/lib64"] == Symlink("/lib64", "usr/lib64")
    assert by_path["/lib"] == Symlink("/lib", "usr/lib")
    assert isinstance(by_path["/usr/lib/x86_64-linux-gnu/libc.so.6"], File)
    assert isinstance(by_path["/etc/ld.so.cache"], File)
    assert by_path["/etc/ld.so.conf"] == File(
        "/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n\n"
    )


def test_images_load_into_skopeo(tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    spec = ImageSpec(layers=[[File("/a", b"x")]], compression="zstd", user="u")
    layout = write_oci_dir(tmp_path / "l", {"t": spec})
    archive = write_docker_archive(tmp_path / "d.tar", spec, tag="x/y:z", shape="legacy")
    for ref in (f"oci:{layout}:t", f"docker-archive:{archive}"):
        done = subprocess.run(
            ["skopeo", "inspect", "--config", ref], check=True, capture_output=True
        )
        assert json.loads(done.stdout)["config"]["User"] == "u"
