"""Build the wild-binaries image (issue 9): prebuilt ELF files nobody here compiled.

Usage: python tests/wild/make_wild_image.py OUT_DIR [--work DIR]

- Debian 12 (`mmdebstrap --variant=apt bookworm`) with pinned packages: PostgreSQL 15 and its
  modules, nginx with dynamic modules, GDAL, ImageMagick, Perl XS modules, python3;
- pinned manylinux and musllinux wheels (`pip download`), unpacked into the image's
  dist-packages (musllinux ones under /opt/musl-wheels: they need a musl host);
- pinned npm packages with native binaries (`npm pack`), unpacked under /opt/node/node_modules.

Writes OUT_DIR as a one-layer gzip OCI layout, tag `wild`, and OUT_DIR/versions.json (what
was installed). Needs root (mmdebstrap), Debian's mirror, PyPI and the npm registry: minutes,
so it is run by benchmarks/wild_agreement.py or by hand, never by the always-run suite.
Nothing from the image is executed here (mmdebstrap runs maintainer scripts in its chroot).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from make_debian_image import write_layout

# Debian 12 and its security archive as of 2026-12 (apt-cache madison); a newer point release
# or security update replaces them on the mirror, so a failing install names the package to
# re-pin. The security suite is given explicitly: most pins live there, not in bookworm.
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
DEBIAN = {
    "python3.11": "3.11.2-6+deb12u9",
    "postgresql-15": "15.20-0+deb12u1",
    "nginx": "1.22.1-9+deb12u11",
    "libnginx-mod-http-image-filter": "1.22.1-9+deb12u11",
    "libnginx-mod-http-xslt-filter": "1.22.1-9+deb12u11",
    "libnginx-mod-stream": "1.22.1-9+deb12u11",
    "gdal-bin": "3.6.2+dfsg-1+b2",
    "imagemagick": "8:6.9.11.60+dfsg-1.6+deb12u16",
    "libdbi-perl": "1.643-4+deb12u4",
    "nodejs": "18.20.4+dfsg-1~deb12u3",
}
DEBIAN_UNPINNED = ("python3", "libjson-xs-perl", "libxml-libxml-perl")
PY = ("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3")
MANYLINUX = (
    "numpy==1.26.4",
    "scipy==1.11.4",
    "pyarrow==14.0.2",
    "onnxruntime==1.16.3",
    "opencv-python-headless==4.9.0.80",
    "pillow==10.2.0",
    "lxml==5.1.0",
    "cryptography==42.0.5",
    "grpcio==1.62.0",
    "psycopg2-binary==2.9.9",
    "orjson==3.9.15",
    "shapely==2.0.3",
    "h5py==3.10.0",
    "regex==2023.12.25",
    "pydantic-core==2.16.3",
)
MUSLLINUX = ("numpy==1.26.4", "orjson==3.9.15", "regex==2023.12.25")
NPM = (
    "@esbuild/linux-x64@0.20.2",
    "@swc/core-linux-x64-gnu@1.4.8",
    "@img/sharp-linux-x64@0.33.2",
    "@img/sharp-libvips-linux-x64@1.0.2",
    "@rollup/rollup-linux-x64-gnu@4.13.0",
    "lightningcss-linux-x64-gnu@1.24.1",
)
SITE = "usr/lib/python3/dist-packages"


def bootstrap(root: Path) -> None:
    include = [f"{name}={version}" for name, version in DEBIAN.items()] + list(DEBIAN_UNPINNED)
    cmd = ["mmdebstrap", "--variant=apt", f"--include={','.join(include)}", "bookworm", str(root)]
    subprocess.run([*cmd, *MIRRORS], check=True, stdin=subprocess.DEVNULL)


def wheels(root: Path, work: Path) -> list[str]:
    """Download the pinned wheels (binary only, for this interpreter) and unpack them."""
    got: list[str] = []
    for platform, specs, target in (
        (("manylinux_2_28_x86_64", "manylinux2014_x86_64"), MANYLINUX, root / SITE),
        (("musllinux_1_2_x86_64", "musllinux_1_1_x86_64"), MUSLLINUX, root / "opt/musl-wheels"),
    ):
        dest = work / platform[-1]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += [arg for tag in platform for arg in ("--platform", tag)]
        cmd += [*PY, "-d", str(dest), *specs]
        subprocess.run(cmd, check=True)
        target.mkdir(parents=True, exist_ok=True)
        for wheel in sorted(dest.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target)
            got.append(wheel.name)
    return got


def npm_packages(root: Path, work: Path) -> list[str]:
    """`npm pack` each pinned package and unpack it as node_modules/<name>."""
    got: list[str] = []
    dest = work / "npm"
    dest.mkdir(exist_ok=True)
    for spec in NPM:
        done = subprocess.run(
            ["npm", "pack", spec, "--pack-destination", str(dest)],
            capture_output=True,
            text=True,
            check=True,
        )
        tgz = dest / done.stdout.strip().splitlines()[-1]
        name = spec.rsplit("@", 1)[0]
        target = root / "opt/node/node_modules" / name
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as archive:
            for member in archive.getmembers():
                member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
                if member.name and (member.isfile() or member.isdir()):
                    archive.extract(member, target, filter="data")
        got.append(spec)
    return got


def _retag(layout: Path, tag: str) -> None:
    """write_layout names its one image `bench`; this one is `wild`."""
    index_file = layout / "index.json"
    index = json.loads(index_file.read_text())
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = tag
    index_file.write_text(json.dumps(index))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="wild-"))
    root = work / "rootfs"
    bootstrap(root)
    versions = {"debian": DEBIAN, "wheels": wheels(root, work), "npm": npm_packages(root, work)}
    rootfs_tar = work / "rootfs.tar"
    subprocess.run(
        ["tar", "-C", str(root), "--numeric-owner", "-cf", str(rootfs_tar), "."], check=True
    )
    write_layout(rootfs_tar, args.out)
    _retag(args.out, "wild")
    (args.out / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
