"""RootFS -> PackageDb: every package database the image carries, read from kept files."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from imagescan.packages.apk import read_apk
from imagescan.packages.dpkg import read_dpkg
from imagescan.packages.found import PackageFacts
from imagescan.packages.model import Package, PackageDb
from imagescan.packages.osrelease import read_os_release
from imagescan.packages.rpm import read_rpm
from imagescan.rootfs.layer import is_dpkg_list
from imagescan.rootfs.model import Entry, RootFS
from imagescan.rootfs.paths import resolve


def read_packages(rootfs: RootFS, seen: set[str] | None = None) -> PackageDb:
    """The packages of `rootfs` (dpkg, apk and rpm databases, all that are present) and
    the files they own, keyed by resolved path so that any name of a file finds it.
    `seen`, when given, gathers the entries the owners' directory walks looked at (the
    rest comes from the kept files and the database paths: checks.reuse)."""
    release = read_os_release(rootfs.kept)
    facts = PackageFacts(release.namespace, release.distro) if release else PackageFacts()
    listed = {path for path in rootfs.entries if is_dpkg_list(path)}
    founds = (
        read_dpkg(rootfs.kept, listed, facts),
        read_apk(rootfs.kept, facts),
        read_rpm(rootfs.kept, rootfs.entries, facts),
    )
    return PackageDb(
        packages=tuple(p for found in founds for p in found.packages),
        problems=tuple(problem for found in founds for problem in found.problems),
        owners=_owners(rootfs.entries, (pair for found in founds for pair in found.files), seen),
        entries=rootfs.entries,
    )


def _owners(
    entries: Mapping[str, Entry],
    files: Iterable[tuple[str, Package]],
    seen: set[str] | None = None,
) -> dict[str, Package]:
    """Resolved path -> owner. The directory part is resolved once per directory (merged
    /usr: dpkg lists /lib/x86_64-linux-gnu/libc.so.6, the file is under /usr/lib); the last
    name is kept as is, so a symlink listed by one package and its target by another each
    keep their owner. The first package to list a path owns it (directories are shared)."""
    directories: dict[str, str | None] = {}
    owners: dict[str, Package] = {}
    walked: list[str] | None = [] if seen is not None else None
    for path, package in files:
        parent, _, name = path.rpartition("/")
        if parent not in directories:
            directory = posixpath.normpath(parent or "/")
            directories[parent] = resolve(entries, directory, seen=walked).path
        real_parent = directories[parent]
        if real_parent is None or name in ("", ".", ".."):
            continue
        path = f"{real_parent.rstrip('/')}/{name}"
        entry = entries.get(path)  # the entry's own string: 48,000 copies were 6 MiB (issue 14)
        owners.setdefault(entry.path if entry is not None else path, package)
    if seen is not None and walked is not None:
        seen.update(walked)
    return owners
