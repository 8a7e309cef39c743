"""apk's database: /lib/apk/db/installed (apk-tools' "installed" format).

One block of `X:value` lines per package, blocks separated by a blank line: P name,
V version, A arch, L license, o origin (the source package), F a directory (relative to
the root), R a file in the directory named by the last F line.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagescan.packages.found import Found, PackageFacts
from imagescan.packages.model import Manager

INSTALLED = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")


def read_apk(kept: Mapping[str, bytes], facts: PackageFacts) -> Found:
    """The packages of the first installed database the image has."""
    found = Found()
    for path in INSTALLED:
        if path in kept:
            for block in kept[path].decode("utf-8", "replace").split("\n\n"):
                _block(found, block, facts)
            break
    return found


def _block(found: Found, block: str, facts: PackageFacts) -> None:
    fields: dict[str, str] = {}
    files: list[str] = []
    directory = ""
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            directory = value.strip("/")
        elif key == "R":
            files.append(f"/{directory}/{value}" if directory else f"/{value}")
        else:
            fields.setdefault(key, value)
    if not fields.get("P") or not fields.get("V"):
        return
    package = facts.package(
        name=fields["P"],
        version=fields["V"],
        arch=fields.get("A", ""),
        manager=Manager.APK,
        source=fields.get("o") or None,
        license=fields.get("L") or None,
    )
    found.packages.append(package)
    found.add_files(package, files)
