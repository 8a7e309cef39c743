"""rpm's database: rpmdb.sqlite (rpm >= 4.16) read with the standard sqlite3 module from
the kept bytes; the older BerkeleyDB `Packages` and SUSE's `Packages.db` are reported as
not readable (no maintained pure-Python reader is used)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from imagescan.packages.found import Found, PackageFacts
from imagescan.packages.model import Manager
from imagescan.packages.rpmheader import (
    ARCH,
    EPOCH,
    LICENSE,
    NAME,
    RELEASE,
    SOURCERPM,
    VERSION,
    BadHeader,
    Header,
    parse_header,
)
from imagescan.rootfs.model import Entry

RPM_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
SQLITE = "rpmdb.sqlite"
# Other backends: BerkeleyDB (rpm < 4.16, RHEL 8, Amazon Linux 2), ndb (SUSE).
OTHER_BACKENDS = {"Packages": "BerkeleyDB", "Packages.db": "ndb"}


def read_rpm(kept: Mapping[str, bytes], entries: Mapping[str, Entry], facts: PackageFacts) -> Found:
    """The packages of the image's rpmdb, from the first rpm directory that has one."""
    found = Found()
    for directory in RPM_DIRS:
        path = f"{directory}/{SQLITE}"
        if path in kept:
            _sqlite(found, path, kept[path], facts)
            _wal_problem(found, entries, path)
            return found
        if path in entries:
            found.problems.append(f"{path}: not kept (larger than the keep limit)")
            return found
    for directory in RPM_DIRS:
        for name, backend in OTHER_BACKENDS.items():
            if f"{directory}/{name}" in entries:
                found.problems.append(
                    f"{backend} rpm {name} database ({directory}/{name}): not readable"
                )
                return found
    return found


def _sqlite(found: Found, path: str, data: bytes, facts: PackageFacts) -> None:
    try:
        blobs = _blobs(data)
    except sqlite3.Error as exc:
        found.problems.append(f"{path}: not a readable sqlite database ({exc})")
        return
    bad = 0
    for blob in blobs:
        try:
            _add(found, parse_header(blob), facts)
        except BadHeader:
            bad += 1
    if bad:
        found.problems.append(f"{path}: {bad} package headers malformed, left out")


def _blobs(data: bytes) -> list[bytes]:
    """The header blobs of the Packages table (rpm's lib/backend/sqlite.c schema)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(_rollback_journal(data))
        rows = connection.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        connection.close()
    return [bytes(row[0]) for row in rows if isinstance(row[0], bytes)]


def _rollback_journal(data: bytes) -> bytes:
    """The database with its header saying "rollback journal" where it says "WAL" (bytes
    18 and 19 = 2, sqlite's fileformat.html): rpm opens its database in WAL mode, and a
    WAL database cannot be opened from memory. The -wal file is checked apart."""
    if data[18:20] != b"\x02\x02":
        return data
    return data[:18] + b"\x01\x01" + data[20:]


def _add(found: Found, header: Header, facts: PackageFacts) -> None:
    name, version = header.string(NAME), header.string(VERSION)
    if not name or not version or name == "gpg-pubkey":  # imported keys are headers too
        return
    release, epoch = header.string(RELEASE), header.integers(EPOCH)
    evr = f"{version}-{release}" if release else version
    package = facts.package(
        name=name,
        version=f"{epoch[0]}:{evr}" if epoch else evr,
        arch=header.string(ARCH) or "",
        manager=Manager.RPM,
        source=_source_name(header.string(SOURCERPM)),
        license=header.string(LICENSE),
    )
    found.packages.append(package)
    found.add_files(package, header.files())


def _source_name(source_rpm: str | None) -> str | None:
    """ "bash-5.1.8-6.el9.src.rpm" -> "bash" (NAME-VERSION-RELEASE.src.rpm)."""
    if not source_rpm:
        return None
    parts = source_rpm.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else None


def _wal_problem(found: Found, entries: Mapping[str, Entry], path: str) -> None:
    wal = entries.get(f"{path}-wal")
    if wal is not None and wal.size > 0:
        found.problems.append(f"{path}-wal: not empty, the newest transactions are not read")
