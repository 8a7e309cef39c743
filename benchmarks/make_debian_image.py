"""Build the benchmark image: Debian 12 with Python, numpy and a compiler toolchain.

Usage: python benchmarks/make_debian_image.py OUT_DIR [--rootfs-tar FILE] [--packages LIST]

Runs `mmdebstrap --variant=apt --include=python3,python3-numpy,gcc,g++,perl bookworm`
(Debian's package mirror is reachable here; `apt-get install mmdebstrap` first), then writes
the root filesystem tar as a one-layer gzip OCI layout at OUT_DIR, tag `bench`. Nothing
from the image is executed by this script; mmdebstrap runs maintainer scripts in its own
chroot as it always does.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGES = "python3,python3-numpy,gcc,g++,perl"
# --packages large: the ~1.2 GB, ~1,400-ELF image the read-pipeline figures use (issue 14).
LARGE = "python3,python3-numpy,python3-scipy,python3-pandas,gcc,g++,gfortran,clang,gdb,perl"
# --packages xl: the ~2,400-ELF image the analysis-rate target uses (issue 14).
XL = LARGE + (
    ",python3-sklearn,python3-matplotlib,python3-opencv,imagemagick,openmpi-bin,python3-vtk9"
)
NAMED = {"large": LARGE, "xl": XL}


def bootstrap(dest: Path, packages: str = PACKAGES) -> None:
    subprocess.run(
        ["mmdebstrap", "--variant=apt", f"--include={packages}", "bookworm", str(dest)], check=True
    )


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest(), path.stat().st_size


def _blob(out: Path, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_layout(rootfs_tar: Path, out: Path) -> None:
    """One gzip layer, a config with Debian's default Env, an index tagged `bench`."""
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    diff_id, _ = _digest(rootfs_tar)
    layer = out / "layer.tmp"
    with rootfs_tar.open("rb") as src, gzip.open(layer, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    layer_digest, layer_size = _digest(layer)
    layer.rename(out / "blobs" / "sha256" / layer_digest[7:])
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    }
    cfg = _blob(out, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
    }
    man = _blob(out, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **man,
                "annotations": {"org.opencontainers.image.ref.name": "bench"},
            }
        ],
    }
    (out / "index.json").write_text(json.dumps(index))
    (out / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rootfs-tar", type=Path, help="use this mmdebstrap output")
    parser.add_argument("--packages", default=PACKAGES, help='comma-separated, "large" or "xl"')
    args = parser.parse_args()
    if args.rootfs_tar:
        write_layout(args.rootfs_tar, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        bootstrap(tar, NAMED.get(args.packages, args.packages))
        write_layout(tar, args.out)


if __name__ == "__main__":
    main()
