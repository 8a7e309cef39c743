#!/usr/bin/env python3
"""Builds sample-images/sample.tar: a small OCI archive with a host-glibc base and two programs.

/usr/local/bin/hello        needs greet@GREET_1 from libgreet.so.1: starts.
/usr/local/bin/needs-newer  was linked against a newer libgreet.so.1 and needs
                            greet_loudly@GREET_2; the image ships the old library (GREET_1
                            only): "version `GREET_2' not found".

Run from anywhere as root (the ld.so.cache is made by the host's `ldconfig -r`):
    python3 sample-images/make_sample.py [OUTPUT]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.imagebuilder import (  # noqa: E402  (after the path setup)
    Dir,
    File,
    ImageSpec,
    Member,
    glibc_base,
    ld_so_cache,
    write_oci_archive,
)

SRC = HERE / "src"
CFLAGS = ["-O2", "-s", "-Wl,--hash-style=gnu"]


def gcc(*args: str | Path) -> None:
    subprocess.run(["gcc", *CFLAGS, *map(str, args)], check=True)


def build_library(out: Path, release: str) -> Path:
    """libgreet.so.1 of one release (v1: GREET_1; v2: GREET_1 and GREET_2)."""
    out.mkdir(parents=True, exist_ok=True)
    library = out / "libgreet.so.1"
    gcc(
        "-shared",
        "-fPIC",
        f"-Wl,--version-script={SRC / f'greet_{release}.map'}",
        "-Wl,-soname,libgreet.so.1",
        "-o",
        library,
        SRC / f"greet_{release}.c",
    )
    return library


def build_program(source: str, out: Path, against: Path) -> Path:
    gcc("-o", out, SRC / source, f"-L{against.parent}", "-l:libgreet.so.1")
    return out


def app_layer(work: Path) -> list[Member]:
    old = build_library(work / "v1", "v1")
    new = build_library(work / "v2", "v2")
    hello = build_program("hello.c", work / "hello", old)
    needs_newer = build_program("needs_newer.c", work / "needs-newer", new)
    return [
        Dir("/usr/local/lib"),
        File("/usr/local/lib/libgreet.so.1", old.read_bytes(), 0o755),
        Dir("/usr/local/bin"),
        File("/usr/local/bin/hello", hello.read_bytes(), 0o755),
        File("/usr/local/bin/needs-newer", needs_newer.read_bytes(), 0o755),
    ]


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "sample.tar"
    with tempfile.TemporaryDirectory(prefix="make-sample-") as tmp:
        base = glibc_base()
        app = app_layer(Path(tmp))
        # As `RUN ldconfig` in a Dockerfile: the top layer carries the refreshed cache.
        app += [Dir("/etc"), ld_so_cache(base + app)]
        spec = ImageSpec(layers=[base, app], entrypoint=["/usr/local/bin/hello"])
        write_oci_archive(output, {"latest": spec})
    print(f"wrote {output} ({output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
