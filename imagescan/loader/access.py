"""Whether the process may open a path: the kernel's path walk with its permission checks
(fs/namei.c `link_path_walk`, `may_lookup`; fs/open.c), over rootfs entries only.

The loaders go on past some open() errors and stop at others (glibc `open_path`, musl
`path_open`), so the errno matters, not only whether the file is there: ENOENT, ENOTDIR,
EACCES (a directory without search permission, a file without read permission for the
process's effective ids) or ELOOP (more than 40 symlinks in one lookup).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from imagescan.rootfs.model import Entry, EntryType
from imagescan.rootfs.paths import MAX_SYMLINK_HOPS, components, join

ENOENT = "No such file or directory"
ENOTDIR = "Not a directory"
EACCES = "Permission denied"
ELOOP = "Too many levels of symbolic links"
# The errors both loaders pass over and try the next directory (glibc open_path also
# ENOENT for a file open_verify skipped; musl path_open also ENAMETOOLONG).
GO_ON = frozenset({ENOENT, ENOTDIR, EACCES})

_SEARCH, _READ = 0o1, 0o4


@dataclass(frozen=True, slots=True)
class Creds:
    """The ids the kernel checks permissions with (fsuid = euid, fsgid = egid, and the
    supplementary groups). uid 0 has CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()


ROOT = Creds(0, 0)


def open_errno(entries: Mapping[str, Entry], path: str, creds: Creds) -> str | None:
    """The errno open(path, O_RDONLY) fails with, or None when it opens (a directory
    opens too: reading it fails later, which open_verify reports)."""
    error, entry = _walk(entries, path, creds)
    if error is not None:
        return error
    if entry is None or entry.type is EntryType.DIR:
        return None
    return None if _may(entry, creds, _READ) else EACCES


def stat_is_dir(entries: Mapping[str, Entry], path: str, creds: Creds) -> bool:
    """Whether stat(path) succeeds on a directory (search permission is needed on the
    directories above it, not on the directory itself)."""
    error, entry = _walk(entries, path, creds)
    return error is None and (entry is None or entry.type is EntryType.DIR)


def _walk(entries: Mapping[str, Entry], path: str, creds: Creds) -> tuple[str | None, Entry | None]:
    """(errno, the entry reached); entry None with no errno is the root directory."""
    parts = components(path)
    parts.reverse()  # a stack: pop() takes the next component
    current, hops = "/", 0
    while parts:
        if not _may(entries.get(current), creds, _SEARCH):
            return EACCES, None  # may_lookup: search permission on every directory walked
        name = parts.pop()
        if name == "..":
            current = posixpath.dirname(current)
            continue
        candidate = join(current, name)
        entry = entries.get(candidate)
        if entry is None or (entry.type is EntryType.SYMLINK and not entry.link_target):
            return ENOENT, None
        if entry.type is EntryType.SYMLINK:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return ELOOP, None
            target = entry.link_target or ""
            current = "/" if target.startswith("/") else current
            parts.extend(reversed(components(target)))
            continue
        if parts and entry.type is not EntryType.DIR:
            return ENOTDIR, None
        current = candidate
    return None, entries.get(current) if current != "/" else None


def _may(entry: Entry | None, creds: Creds, bit: int) -> bool:
    """generic_permission: the owner's bits for the owner, else the group's for a member
    of the file's group, else the others'. Root may do both reads and searches."""
    if entry is None or creds.uid == 0:
        return True  # the image root (no entry) is searchable: runtimes make it 0755
    if entry.uid == creds.uid:
        return bool(entry.mode >> 6 & bit)
    if entry.gid == creds.gid or entry.gid in creds.groups:
        return bool(entry.mode >> 3 & bit)
    return bool(entry.mode & bit)
