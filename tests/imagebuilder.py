"""The tests' image builder: layers from a list of members, written as real image formats.

Writes OCI layouts (directory and archive), multi-platform OCI indexes and `docker save`
archives (legacy and Docker >= 25 OCI-shaped), deterministically: mtime 0, uid/gid as given,
members in the given order, blobs sorted by name. Paths in members are image paths ("/usr/bin/x");
the layer tar stores them without the leading "/" as docker does.

This is test code: it may write to the tmp dirs that tests give it, and it runs the host's
`ldconfig -r` to build an `/etc/ld.so.cache` (root only, as in the CI container).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass
class File:
    path: str
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass
class Dir:
    path: str
    mode: int = 0o755


@dataclass
class Symlink:
    path: str
    target: str


@dataclass
class Hardlink:
    """A tar LNKTYPE member; `target` is the path in the image of the file it links to."""

    path: str
    target: str


@dataclass
class Whiteout:
    """Hides `path` of lower layers: written as dirname/.wh.basename."""

    path: str


@dataclass
class Opaque:
    """Hides the lower layers' contents of directory `path`: written as path/.wh..wh..opq."""

    path: str


@dataclass
class RawMember:
    """A member written exactly as given (hostile names such as "../../etc/passwd")."""

    tarinfo: tarfile.TarInfo
    data: bytes = b""


Member = File | Dir | Symlink | Hardlink | Whiteout | Opaque | RawMember


@dataclass
class ImageSpec:
    """One image: its layers (bottom first) and the config fields the scanner reads."""

    layers: list[list[Member]]
    env: list[str] = field(default_factory=lambda: [DEFAULT_PATH])
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str | None = None
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    compression: str = "gzip"  # "gzip" | "zstd" | "none"
    base: list[Path] = field(default_factory=list)  # compressed layer blobs BELOW `layers`
    working_dir: str | None = None
    history: list[dict[str, Any]] | None = None  # the config's history as given (issue 11)


# ---------------------------------------------------------------- layers


def _name(path: str) -> str:
    return path.lstrip("/")


def _info(name: str, kind: bytes, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def _tar_entry(member: Member) -> tuple[tarfile.TarInfo, bytes | None]:
    """The tar header (and data) that represents one member."""
    if isinstance(member, File):
        info = _info(_name(member.path), tarfile.REGTYPE, member.mode)
        info.uid, info.gid, info.size = member.uid, member.gid, len(member.data)
        return info, member.data
    if isinstance(member, Dir):
        return _info(_name(member.path), tarfile.DIRTYPE, member.mode), None
    if isinstance(member, Symlink):
        info = _info(_name(member.path), tarfile.SYMTYPE, 0o777)
        info.linkname = member.target
        return info, None
    if isinstance(member, Hardlink):
        info = _info(_name(member.path), tarfile.LNKTYPE)
        info.linkname = _name(member.target)
        return info, None
    if isinstance(member, Whiteout):
        head, _, tail = _name(member.path).rpartition("/")
        return _info(f"{head}/.wh.{tail}" if head else f".wh.{tail}", tarfile.REGTYPE), b""
    if isinstance(member, Opaque):
        return _info(_name(member.path).rstrip("/") + "/.wh..wh..opq", tarfile.REGTYPE), b""
    info = _copy_info(member.tarinfo)
    if member.data:
        info.size = len(member.data)
    return info, member.data


def _copy_info(original: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(original.name)
    for attr in ("type", "mode", "uid", "gid", "size", "mtime", "linkname", "uname", "gname"):
        setattr(info, attr, getattr(original, attr))
    info.devmajor, info.devminor = original.devmajor, original.devminor
    return info


def layer_tar(members: Sequence[Member]) -> bytes:
    """The uncompressed tar of one layer, members in the given order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info, data = _tar_entry(member)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    """`data` compressed deterministically ("gzip" with mtime 0, "zstd", or "none")."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


def decompress(blob: bytes) -> bytes:
    """The uncompressed bytes of a layer blob, recognised by magic bytes."""
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def compression_of(blob: bytes) -> str:
    if blob[:2] == b"\x1f\x8b":
        return "gzip"
    return "zstd" if blob[:4] == b"\x28\xb5\x2f\xfd" else "none"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- host files


def _parent_dirs(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _host_member(path: str, follow: bool) -> Member:
    st = os.stat(path) if follow else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return Symlink(path, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Dir(path, stat.S_IMODE(st.st_mode))
    return File(path, Path(path).read_bytes(), stat.S_IMODE(st.st_mode))


def host_files(paths: Iterable[str], follow: bool = True) -> list[Member]:
    """Host files copied to the same path in the image, each preceded by its parent Dirs.

    follow=True stores a host symlink as the file it points to; follow=False as a Symlink.
    Parent directories are written at the paths as given (pass canonical paths on merged-/usr).
    """
    members: list[Member] = []
    seen: set[str] = set()
    for path in paths:
        for parent in _parent_dirs(path):
            if parent not in seen:
                seen.add(parent)
                members.append(Dir(parent))
        if path not in seen:
            seen.add(path)
            members.append(_host_member(path, follow))
    return members


@dataclass(frozen=True)
class _HostGlibc:
    interpreter: str  # the PT_INTERP path, e.g. /lib64/ld-linux-x86-64.so.2
    triplet: str  # the Debian multiarch dir name


_HOST_GLIBC = {
    "x86_64": _HostGlibc("/lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu"),
    "aarch64": _HostGlibc("/lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu"),
}


def _materialize(members: Iterable[Member], root: Path) -> None:
    """Writes members under `root` (for running ldconfig over them); whiteouts are ignored."""
    for member in members:
        if isinstance(member, Whiteout | Opaque | RawMember):
            continue
        dest = root / _name(member.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(member, Dir):
            dest.mkdir(exist_ok=True)
        elif isinstance(member, File):
            dest.write_bytes(member.data)
            dest.chmod(member.mode)
        elif isinstance(member, Symlink):
            dest.symlink_to(member.target)
        else:
            shutil.copyfile(root / _name(member.target), dest)


def ld_so_cache(members: Iterable[Member]) -> File:
    """/etc/ld.so.cache for a root made of `members`, built by the host's `ldconfig -r`.

    The members must include /etc/ld.so.conf (and what it includes) for the cache to list
    anything beyond the trusted dirs. Entries point at DIR/SONAME, as ldconfig's always do;
    it runs with -X (no soname symlinks are made), so name library files by their soname or
    add the soname symlinks to the image yourself.
    """
    with tempfile.TemporaryDirectory(prefix="imagebuilder-ldconfig-") as tmp:
        root = Path(tmp)
        _materialize(members, root)
        (root / "etc").mkdir(exist_ok=True)
        (root / "var/cache/ldconfig").mkdir(parents=True, exist_ok=True)
        subprocess.run(["ldconfig", "-X", "-r", str(root)], check=True, capture_output=True)
        return File("/etc/ld.so.cache", (root / "etc/ld.so.cache").read_bytes())


def _ld_so_conf(triplet: str) -> list[Member]:
    # As Debian 12 ships them (libc-bin): libc.conf and the multiarch conf.
    return [
        Dir("/etc"),
        File("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n\n"),
        Dir("/etc/ld.so.conf.d"),
        File("/etc/ld.so.conf.d/libc.conf", b"# libc default configuration\n/usr/local/lib\n"),
        File(
            f"/etc/ld.so.conf.d/{triplet}.conf",
            f"# Multiarch support\n/usr/local/lib/{triplet}\n/lib/{triplet}\n"
            f"/usr/lib/{triplet}\n".encode(),
        ),
    ]


def _merged_usr_skeleton(host: _HostGlibc) -> list[Member]:
    # Debian 12 merged /usr: top-level dirs are symlinks into /usr.
    members: list[Member] = [Dir("/usr"), Dir("/usr/bin"), Dir("/usr/sbin"), Dir("/usr/lib")]
    members += [Dir(f"/usr/lib/{host.triplet}"), Dir("/usr/local"), Dir("/usr/local/bin")]
    members += [Dir("/usr/local/lib"), Dir("/tmp", 0o1777)]
    members += [Symlink(f"/{top}", f"usr/{top}") for top in ("bin", "sbin", "lib")]
    if host.interpreter.startswith("/lib64/"):
        members += [Dir("/usr/lib64"), Symlink("/lib64", "usr/lib64")]
    return members


@functools.lru_cache(maxsize=1)
def _glibc_base() -> tuple[Member, ...]:
    host = _HOST_GLIBC[platform.machine()]
    interp_name = host.interpreter.rsplit("/", 1)[1]
    libdir = f"/usr/lib/{host.triplet}"
    members = _merged_usr_skeleton(host)
    for name in (interp_name, "libc.so.6"):
        data = Path(os.path.realpath(f"/lib/{host.triplet}/{name}")).read_bytes()
        members.append(File(f"{libdir}/{name}", data, 0o755))
    if host.interpreter.startswith("/lib64/"):
        # Debian's /usr/lib64/ld-linux-x86-64.so.2 is an absolute symlink into the multiarch dir.
        members.append(Symlink(f"/usr{host.interpreter}", f"/lib/{host.triplet}/{interp_name}"))
    members += _ld_so_conf(host.triplet)
    members.append(ld_so_cache(members))
    return tuple(members)


def glibc_base() -> list[Member]:
    """A minimal Debian-12-shaped glibc root from this host: ld.so, libc.so.6, ld.so.conf(.d),
    ld.so.cache (from the host's ldconfig), merged-/usr symlinks. One layer's worth of members."""
    return list(_glibc_base())


# ---------------------------------------------------------------- blobs and manifests


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=None, separators=(",", ":"), sort_keys=False).encode()


class _Blobs:
    """Content-addressed blobs collected in memory before writing."""

    def __init__(self) -> None:
        self.by_digest: dict[str, bytes] = {}

    def add(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = sha256(data)
        self.by_digest[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}


@dataclass(frozen=True)
class _Layer:
    blob: bytes
    diff_id: str
    compression: str


def _layers_of(spec: ImageSpec) -> list[_Layer]:
    """Bottom first: the `base` blobs, then the spec's own layers compressed as asked."""
    layers = [_Layer(p.read_bytes(), "", "") for p in spec.base]
    layers = [_Layer(x.blob, sha256(decompress(x.blob)), compression_of(x.blob)) for x in layers]
    for members in spec.layers:
        raw = layer_tar(members)
        layers.append(_Layer(compress(raw, spec.compression), sha256(raw), spec.compression))
    return layers


def config_json(spec: ImageSpec, diff_ids: list[str]) -> dict[str, Any]:
    """The image config (OCI / docker shape) for `spec`."""
    config: dict[str, Any] = {"Env": list(spec.env)}
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd is not None:
        config["Cmd"] = list(spec.cmd)
    if spec.user is not None:
        config["User"] = spec.user
    if spec.working_dir is not None:
        config["WorkingDir"] = spec.working_dir
    doc: dict[str, Any] = {"created": "1970-01-01T00:00:00Z", "architecture": spec.architecture}
    if spec.variant:
        doc["variant"] = spec.variant
    doc |= {"os": spec.os, "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    doc["history"] = [{"created": "1970-01-01T00:00:00Z", "created_by": "imagebuilder"}] * len(
        diff_ids
    )
    if spec.history is not None:
        doc["history"] = spec.history
    return doc


def _platform_of(spec: ImageSpec) -> dict[str, str]:
    plat = {"architecture": spec.architecture, "os": spec.os}
    if spec.variant:
        plat["variant"] = spec.variant
    return plat


def _add_image(blobs: _Blobs, spec: ImageSpec, layers: list[_Layer]) -> dict[str, Any]:
    """Adds config, layers and manifest blobs; returns the manifest's descriptor."""
    config = blobs.add(_json_bytes(config_json(spec, [x.diff_id for x in layers])), MT_OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": config,
        "layers": [blobs.add(x.blob, MT_LAYER[x.compression]) for x in layers],
    }
    return blobs.add(_json_bytes(manifest), MT_OCI_MANIFEST, platform=_platform_of(spec))


def _index(descriptors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descriptors}


def _tagged(descriptor: dict[str, Any], tag: str) -> dict[str, Any]:
    return {**descriptor, "annotations": {REF_NAME: tag}}


def _layout_files(index: dict[str, Any], blobs: _Blobs) -> dict[str, bytes]:
    """The files of an OCI layout, by relative path, in a stable order."""
    files = {"oci-layout": _json_bytes({"imageLayoutVersion": "1.0.0"})}
    files["index.json"] = _json_bytes(index)
    for digest in sorted(blobs.by_digest):
        algorithm, _, hexdigest = digest.partition(":")
        files[f"blobs/{algorithm}/{hexdigest}"] = blobs.by_digest[digest]
    return files


def _single_images(images: ImageSpec | dict[str, ImageSpec]) -> tuple[dict[str, Any], _Blobs]:
    named = images if isinstance(images, dict) else {"latest": images}
    blobs = _Blobs()
    descriptors = [_tagged(_add_image(blobs, s, _layers_of(s)), t) for t, s in named.items()]
    return _index(descriptors), blobs


def _write_dir(dest: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def _write_tar(dest: Path, files: dict[str, bytes]) -> Path:
    """A tar holding `files` (and their parent dirs), deterministic."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in files.items():
            for parent in _parent_dirs(rel):
                if parent not in written:
                    written.add(parent)
                    tar.addfile(_info(_name(parent), tarfile.DIRTYPE, 0o755))
            info = _info(rel, tarfile.REGTYPE)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def write_oci_dir(dest: Path, images: ImageSpec | dict[str, ImageSpec]) -> Path:
    """An OCI image layout directory; a dict maps tag (ref.name) -> spec; one spec is "latest"."""
    index, blobs = _single_images(images)
    return _write_dir(dest, _layout_files(index, blobs))


def write_oci_archive(dest: Path, images: ImageSpec | dict[str, ImageSpec]) -> Path:
    """An OCI image layout as a tar file (the `oci-archive:` transport)."""
    index, blobs = _single_images(images)
    return _write_tar(dest, _layout_files(index, blobs))


def write_multiplatform_oci_dir(
    dest: Path, specs: dict[str, ImageSpec], tag: str = "latest"
) -> Path:
    """An OCI layout whose index.json names (by `tag`) a nested image index, one manifest per
    platform, as `skopeo copy --all` writes it. Keys are informational ("linux/arm64/v8"); the
    descriptors' platform comes from each spec's os/architecture/variant."""
    blobs = _Blobs()
    inner = _index([_add_image(blobs, s, _layers_of(s)) for s in specs.values()])
    descriptor = blobs.add(_json_bytes(inner), MT_OCI_INDEX)
    return _write_dir(dest, _layout_files(_index([_tagged(descriptor, tag)]), blobs))


# ---------------------------------------------------------------- docker save


def _docker_layers(spec: ImageSpec, compressed: bool) -> list[_Layer]:
    layers = _layers_of(spec)
    if compressed:
        return layers
    return [_Layer(decompress(x.blob), x.diff_id, "none") for x in layers]


def _repositories(tag: str, image_id: str) -> bytes:
    repo, _, version = tag.rpartition(":")
    return _json_bytes({repo: {version: image_id}})


def _legacy_files(spec: ImageSpec, tag: str, layers: list[_Layer]) -> dict[str, bytes]:
    """`docker save` before Docker 25: <v1id>/layer.tar, <id>.json, manifest.json."""
    config = _json_bytes(config_json(spec, [x.diff_id for x in layers]))
    image_hex = hashlib.sha256(config).hexdigest()
    files: dict[str, bytes] = {}
    names: list[str] = []
    parent = ""
    for layer in layers:
        # v1 ids chain the parent's id, as docker's v1 compatibility ids do.
        v1id = hashlib.sha256(f"{parent}\n{layer.diff_id}".encode()).hexdigest()
        files[f"{v1id}/VERSION"] = b"1.0"
        files[f"{v1id}/json"] = _json_bytes({"id": v1id, **({"parent": parent} if parent else {})})
        files[f"{v1id}/layer.tar"] = layer.blob
        names.append(f"{v1id}/layer.tar")
        parent = v1id
    files[f"{image_hex}.json"] = config
    manifest = [{"Config": f"{image_hex}.json", "RepoTags": [tag], "Layers": names}]
    files["manifest.json"] = _json_bytes(manifest)
    files["repositories"] = _repositories(tag, parent)
    return files


def _oci_shaped_files(spec: ImageSpec, tag: str, layers: list[_Layer]) -> dict[str, bytes]:
    """`docker save` since Docker 25: an OCI layout plus the legacy manifest.json."""
    blobs = _Blobs()
    descriptor = _add_image(blobs, spec, layers)
    descriptor.pop("platform")
    repo, _, version = tag.rpartition(":")
    full = repo if "/" in repo else f"docker.io/library/{repo}"
    annotations = {CONTAINERD_NAME: f"{full}:{version}", REF_NAME: version}
    files = _layout_files(_index([{**descriptor, "annotations": annotations}]), blobs)
    manifest = json.loads(blobs.by_digest[descriptor["digest"]])
    config_path = "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]
    layer_paths = ["blobs/sha256/" + x["digest"].split(":")[1] for x in manifest["layers"]]
    legacy = [{"Config": config_path, "RepoTags": [tag], "Layers": layer_paths}]
    files["manifest.json"] = _json_bytes(legacy)
    files["repositories"] = _repositories(tag, descriptor["digest"].split(":")[1])
    return files


def write_docker_archive(
    dest: Path,
    spec: ImageSpec,
    tag: str = "test:latest",
    shape: str = "legacy",
    compressed: bool = False,
) -> Path:
    """A `docker save` tar. shape "legacy" (before Docker 25) or "oci" (Docker >= 25).

    Layers are uncompressed as docker save writes them, unless compressed=True (then as the
    spec's compression says, as the containerd image store saves pulled blobs).
    """
    layers = _docker_layers(spec, compressed)
    if shape == "legacy":
        return _write_tar(dest, _legacy_files(spec, tag, layers))
    if shape == "oci":
        return _write_tar(dest, _oci_shaped_files(spec, tag, layers))
    raise ValueError(f"unknown docker-archive shape {shape!r}")


def unparseable_elf(elf: bytes) -> bytes:
    """A real ELF file the reader must refuse (a skipped entry): its PT_INTERP reaches past
    the end. (A file merely cut short is judged: the loader's mapping refusal, issue 9.)"""
    data = bytearray(elf)
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for at in range(phoff, phoff + phentsize * phnum, phentsize):
        if struct.unpack_from("<I", data, at)[0] == 3:  # PT_INTERP: p_filesz at +32
            struct.pack_into("<Q", data, at + 32, 1 << 40)
    return bytes(data)
