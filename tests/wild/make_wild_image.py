"""Build the wild-binaries image (issue 9): prebuilt ELF files nobody here compiled.

Usage: python tests/wild/make_wild_image.py OUT_DIR [--work DIR] [--set issue|unseen|trixie]

One package set per image (`--set`): `issue` holds what issue 9 names, `unseen` other hosts,
wheels and npm packages, `trixie` Debian 13 with i386 multiarch libraries. Each is

- Debian (`mmdebstrap --variant=apt SUITE`) with pinned packages, e.g. PostgreSQL and its
  modules, nginx with dynamic modules, GDAL, ImageMagick, Perl XS modules, python3, node;
- pinned manylinux and musllinux wheels (`pip download`), unpacked into the image's
  dist-packages (musllinux ones under /opt/musl-wheels: they need a musl host);
- pinned npm packages with native binaries (`npm pack`), unpacked under /opt/node/node_modules.

Writes OUT_DIR as a one-layer gzip OCI layout, tag `wild`, and OUT_DIR/versions.json (what
was asked for, and every package dpkg installed). Needs root (mmdebstrap), Debian's mirror,
PyPI and the npm registry: minutes, so it is run by benchmarks/wild_agreement.py or by hand,
never by the always-run suite.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from make_debian_image import write_layout


def mirrors(suite: str) -> tuple[str, ...]:
    """The suite, its updates and its security archive: most pins live in the last."""
    return (
        f"deb http://deb.debian.org/debian {suite} main",
        f"deb http://deb.debian.org/debian {suite}-updates main",
        f"deb http://deb.debian.org/debian-security {suite}-security main",
    )


def python_tags(version: str) -> tuple[str, ...]:
    """pip download's tags for the image's CPython `version` ("3.11")."""
    abi = "cp" + version.replace(".", "")
    return ("--python-version", version, "--implementation", "cp", "--abi", abi, "--abi", "abi3")


@dataclass(frozen=True)
class PackageSet:
    """What one wild image holds: pinned Debian packages, wheels and npm packages."""

    debian: Mapping[str, str]
    manylinux: tuple[str, ...]
    musllinux: tuple[str, ...]
    npm: tuple[str, ...]
    debian_unpinned: tuple[str, ...] = ()
    suite: str = "bookworm"
    python: str = "3.11"  # the suite's python3, for which the wheels are chosen
    foreign: tuple[str, ...] = ()  # more dpkg architectures (multiarch: "i386")


# The issue's image: the packages issue 9 names. Debian pins: bookworm and its security
# archive as of 2026-12 (apt-cache madison); a newer point release or security update
# replaces them on the mirror, so a failing install names the package to re-pin
# (versions.json "installed" lists every package the last build got).
ISSUE = PackageSet(
    debian={
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
    },
    debian_unpinned=("python3", "libjson-xs-perl", "libxml-libxml-perl"),
    manylinux=(
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
    ),
    musllinux=("numpy==1.26.4", "orjson==3.9.15", "regex==2023.12.25"),
    npm=(
        "@esbuild/linux-x64@0.20.2",
        "@swc/core-linux-x64-gnu@1.4.8",
        "@img/sharp-linux-x64@0.33.2",
        "@img/sharp-libvips-linux-x64@1.0.2",
        "@rollup/rollup-linux-x64-gnu@4.13.0",
        "lightningcss-linux-x64-gnu@1.24.1",
    ),
)

# An image the project had never seen (issue 9's "done when"): other plugin hosts (PHP,
# Apache, Ruby, Erlang, collectd, rsyslog, Lua, FreeRADIUS, PostGIS in postgres), other
# wheels, and npm packages built for musl in a glibc image.
UNSEEN = PackageSet(
    debian={
        "python3": "3.11.2-1+b1",
        "php8.2-cli": "8.2.36-1~deb12u1",
        "php8.2-gd": "8.2.36-1~deb12u1",
        "php8.2-intl": "8.2.36-1~deb12u1",
        "php8.2-pgsql": "8.2.36-1~deb12u1",
        "apache2": "2.4.71-1~deb12u1",
        "libapache2-mod-php8.2": "8.2.36-1~deb12u1",
        "ruby-nokogiri": "1.13.10+dfsg-2+b1",
        "erlang-base": "1:25.2.3+dfsg-1+deb12u4",
        "erlang-crypto": "1:25.2.3+dfsg-1+deb12u4",
        "collectd-core": "5.12.0-14",
        "rsyslog": "8.2302.0-1+deb12u2",
        "lua5.4": "5.4.4-3+deb12u1",
        "lua-cjson": "2.1.0+dfsg-2.2",
        "postgresql-15-postgis-3": "3.3.2+dfsg-1+b1",
        "freeradius": "3.2.1+dfsg-4+deb12u1",
        "libsasl2-modules": "2.1.28+dfsg-10+deb12u1",
        "tcl8.6": "8.6.13+dfsg-2",
        "python3-gi": "3.42.2-3+b1",
        "nodejs": "18.20.4+dfsg-1~deb12u3",
    },
    manylinux=(
        "pandas==2.1.4",
        "pyzmq==25.1.2",
        "psutil==5.9.8",
        "uvloop==0.19.0",
        "lz4==4.3.3",
        "zstandard==0.22.0",
        "msgpack==1.0.8",
        "bcrypt==4.1.2",
        "greenlet==3.0.3",
        "gevent==24.2.1",
        "pycryptodome==3.20.0",
        "tokenizers==0.15.2",
        "matplotlib==3.8.3",
        "scikit-learn==1.4.1.post1",
        "llvmlite==0.42.0",
        "pyyaml==6.0.1",
        "rapidfuzz==3.6.1",
        "pymongo==4.6.2",
        "cffi==1.16.0",
        "kiwisolver==1.4.5",
        "duckdb==0.10.0",
    ),
    musllinux=("msgpack==1.0.8", "pyyaml==6.0.1", "cffi==1.16.0"),
    npm=(
        "@rollup/rollup-linux-x64-musl@4.13.0",
        "lightningcss-linux-x64-musl@1.24.1",
        "@swc/core-linux-x64-musl@1.4.8",
        "@parcel/watcher-linux-x64-glibc@2.4.1",
        "@next/swc-linux-x64-gnu@14.1.3",
        "@napi-rs/canvas-linux-x64-gnu@0.1.51",
        "@biomejs/cli-linux-x64@1.6.1",
        "turbo-linux-64@1.12.5",
        "@msgpackr-extract/msgpackr-extract-linux-x64@3.0.2",
        "@node-rs/argon2-linux-x64-gnu@1.8.0",
        "@resvg/resvg-js-linux-x64-gnu@2.6.0",
    ),
)
# Debian 13 (glibc 2.41: no legacy tls/platform subdirectories), Python 3.13 wheels, and
# i386 multiarch libraries beside the amd64 ones (one ld.so.cache for both). Pins: trixie
# and its security archive as of 2026-12-02 (the first build's versions.json "installed").
TRIXIE = PackageSet(
    suite="trixie",
    python="3.13",
    foreign=("i386",),
    debian={
        "python3": "3.13.5-1",
        "postgresql-17": "17.12-0+deb13u1",
        "nginx": "1.26.3-3+deb13u11",
        "libnginx-mod-stream": "1.26.3-3+deb13u11",
        "php8.4-cli": "8.4.28-1~deb13u1",
        "php8.4-gd": "8.4.28-1~deb13u1",
        "apache2": "2.4.71-1~deb13u1",
        "rsyslog": "8.2504.0-1+deb13u2",
        "perl": "5.40.1-6+deb13u1",
        "libdbi-perl": "1.656-1~deb13u1",
        "nodejs": "20.19.2+dfsg-1+deb13u3",
        "libc6:i386": "2.41-12+deb13u5",
        "zlib1g:i386": "1:1.3.dfsg+really1.3.1-1+deb13u1",
        "libstdc++6:i386": "14.2.0-19",
        "libssl3t64:i386": "3.5.9-1~deb13u1",
    },
    manylinux=(
        "numpy==2.1.3",
        "pandas==2.2.3",
        "pyarrow==18.1.0",
        "orjson==3.10.12",
        "cryptography==44.0.0",
        "pydantic-core==2.27.1",
        "lxml==5.3.0",
        "pillow==11.0.0",
        "scipy==1.14.1",
    ),
    musllinux=(),
    npm=("@esbuild/linux-x64@0.24.0", "@rollup/rollup-linux-x64-gnu@4.28.0"),
)
SETS = {"issue": ISSUE, "unseen": UNSEEN, "trixie": TRIXIE}
SITE = "usr/lib/python3/dist-packages"
MUSL_SITE = "opt/musl-wheels"  # no musl host here: the wheels lie apart


def bootstrap(root: Path, packages: PackageSet) -> None:
    include = [f"{name}={version}" for name, version in packages.debian.items()]
    include += packages.debian_unpinned
    cmd = ["mmdebstrap", "--variant=apt", f"--include={','.join(include)}"]
    if packages.foreign:
        cmd.append(f"--architectures={','.join(('amd64', *packages.foreign))}")
    cmd += [packages.suite, str(root), *mirrors(packages.suite)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def wheels(root: Path, work: Path, packages: PackageSet) -> list[str]:
    """Download the pinned wheels (binary only, for this interpreter) and unpack them."""
    got: list[str] = []
    for platform, specs, target in (
        (("manylinux_2_28_x86_64", "manylinux2014_x86_64"), packages.manylinux, root / SITE),
        (("musllinux_1_2_x86_64", "musllinux_1_1_x86_64"), packages.musllinux, root / MUSL_SITE),
    ):
        if not specs:
            continue
        dest = work / platform[-1]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += [arg for tag in platform for arg in ("--platform", tag)]
        cmd += [*python_tags(packages.python), "-d", str(dest), *specs]
        subprocess.run(cmd, check=True)
        target.mkdir(parents=True, exist_ok=True)
        for wheel in sorted(dest.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target)
            got.append(wheel.name)
    return got


def npm_packages(root: Path, work: Path, packages: PackageSet) -> list[str]:
    """`npm pack` each pinned package and unpack it as node_modules/<name>."""
    got: list[str] = []
    dest = work / "npm"
    dest.mkdir(exist_ok=True)
    for spec in packages.npm:
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


def installed(root: Path) -> dict[str, str]:
    """Every package dpkg installed in the image, name[:arch] -> version (to re-pin)."""
    found: dict[str, str] = {}
    for block in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line[:40])
        if "Package" in fields and "Version" in fields:
            arch = fields.get("Architecture", "")
            name = fields["Package"] + (f":{arch}" if arch not in ("amd64", "all") else "")
            found[name] = fields["Version"]
    return dict(sorted(found.items()))


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
    parser.add_argument("--set", choices=sorted(SETS), default="issue", help="package set")
    args = parser.parse_args()
    packages = SETS[args.set]
    work = args.work or Path(tempfile.mkdtemp(prefix="wild-"))
    root = work / "rootfs"
    if not (root / "var/lib/dpkg/status").exists():  # a --work dir of a failed run: kept
        bootstrap(root, packages)
    versions = {
        "set": args.set,
        "debian": dict(packages.debian),
        "wheels": wheels(root, work, packages),
        "npm": npm_packages(root, work, packages),
        "installed": installed(root),
    }
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
