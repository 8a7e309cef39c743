"""The SQLite store's directory and files: private to their owner, never through a link.

The store holds facts from scanned images (their /etc/passwd, dpkg status, ELF facts) and
is read back by imagescan, often as root (issue 15): a directory another user can write, a
symlinked path or a database file someone else owns would let them plant entries or read
the facts. Checked like OpenSSH's StrictModes: every directory from / down to the store is
owned by root or by us and writable by nobody else (a sticky /tmp excepted); the store's own
directory and files are ours, not a link, and closed to group and others.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imagescan.errors import UsageError

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_directory(directory: Path) -> Path:
    """`directory`, created 0700 when missing, after every check; UsageError when unsafe."""
    if directory.is_symlink():
        raise UsageError(f"store directory {directory} is a symbolic link: refusing it")
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        real = directory.resolve(strict=True)
        for component in _components(directory.absolute()) + _components(real):
            _check_parent(component)
        _check_own(real, stat.S_ISDIR, "directory")
    except OSError as err:
        raise UsageError(f"store directory {directory}: {err.strerror}") from err
    return real


def private_file(path: Path) -> None:
    """Create `path` 0600 (never following a link), or check the one that is there."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        _check_own(path, stat.S_ISREG, "file")
        return
    except OSError as err:
        raise UsageError(f"store file {path}: {err.strerror}") from err
    os.close(fd)


def check_existing(path: Path) -> None:
    """A file SQLite made next to the database (-wal, -shm), when there."""
    if os.path.lexists(path):
        _check_own(path, stat.S_ISREG, "file")


def _components(path: Path) -> list[Path]:
    """`path`'s parents, / first (the path itself is checked more strictly)."""
    return list(reversed(path.parents))


def _check_parent(component: Path) -> None:
    info = os.lstat(component)
    if stat.S_ISLNK(info.st_mode):
        return  # where it leads is checked on the resolved path
    if info.st_uid not in (0, os.geteuid()):
        raise UsageError(f"{component} (above the store) belongs to another user: refusing it")
    sticky = info.st_mode & stat.S_ISVTX
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
        raise UsageError(
            f"{component} (above the store) is writable by others: refusing it "
            "(others could swap the store for their own)"
        )


def _check_own(path: Path, is_kind: object, what: str) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(f"store {what} {path} is a symbolic link: refusing it")
    if not callable(is_kind) or not is_kind(info.st_mode):
        raise UsageError(f"store {what} {path} is not a {what}: refusing it")
    if info.st_uid != os.geteuid():
        raise UsageError(f"store {what} {path} belongs to another user: refusing it")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(f"store {what} {path} is writable by others: refusing it")
    if info.st_mode & 0o077:
        raise UsageError(
            f"store {what} {path} is readable by others (it holds files of scanned images): "
            f"chmod {'700' if what == 'directory' else '600'} {path}"
        )
