"""Path resolution inside the image root, over entries only (nothing on disk is touched).

Symlinks are resolved as the kernel's path walk does inside a chroot (fs/namei.c): absolute
targets restart at the image root, `..` stops at `/`, and more than 40 links in one lookup
fail with ELOOP ("too many levels of symbolic links", MAXSYMLINKS in include/linux/namei.h).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from imagescan.rootfs.model import Entry, EntryType, RootFS

MAX_SYMLINK_HOPS = 40
ELOOP = "too many levels of symbolic links"
ENOTDIR = "not a directory"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a path leads: `path` is the resolved absolute path, None when it does not exist
    (or `error` says why the walk stopped: ELOOP, ENOTDIR). `hops` counts symlinks followed."""

    path: str | None
    error: str | None = None
    hops: int = 0


@dataclass(frozen=True, slots=True)
class Walk:
    """A walk that goes on lexically past missing components (what mkdir -p would create).

    `path` is where the name lands; `missing` is True when some component does not exist.
    """

    path: str
    missing: bool
    error: str | None = None
    hops: int = 0


def components(path: str) -> list[str]:
    """The names of a path, without empty and "." parts."""
    return [part for part in path.split("/") if part and part != "."]


def join(parent: str, name: str) -> str:
    """`parent/name` for absolute `parent` ("/" + "x" -> "/x")."""
    return f"{parent}/{name}" if parent != "/" else f"/{name}"


def walk(
    entries: Mapping[str, Entry],
    path: str,
    follow_last: bool = True,
    seen: list[str] | None = None,
) -> Walk:
    """Resolve `path` component by component, following symlinks inside the root. Every
    path looked up in `entries` is appended to `seen`: the walk's result depends on those
    entries alone (checks.reuse, issue 12)."""
    parts = components(path)
    parts.reverse()  # a stack: pop() takes the next component
    current, hops, missing = "/", 0, False
    while parts:
        name = parts.pop()
        if name == "..":
            current = posixpath.dirname(current)  # dirname("/") == "/": clamped at the root
            continue
        candidate = join(current, name)
        entry = None if missing else entries.get(candidate)
        if seen is not None and not missing:
            seen.append(candidate)
        if entry is None:
            missing = True
        elif entry.type is EntryType.SYMLINK and (parts or follow_last):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return Walk(candidate, True, ELOOP, hops)
            target = entry.link_target or ""
            if not target:  # an empty symlink leads nowhere (ENOENT in the kernel's walk)
                return Walk(candidate, True, None, hops)
            if target.startswith("/"):
                current = "/"
            parts.extend(reversed(components(target)))
            continue
        elif parts and entry.type is not EntryType.DIR:
            return Walk(candidate, True, ENOTDIR, hops)
        current = candidate
    return Walk(current, missing, None, hops)


def resolve(
    entries: Mapping[str, Entry],
    path: str,
    follow_last: bool = True,
    seen: list[str] | None = None,
) -> Resolution:
    """The existing path `path` leads to, or None (with `error` for loops and non-dirs);
    `seen` as for `walk`."""
    result = walk(entries, path, follow_last, seen)
    if result.error is not None or result.missing:
        return Resolution(None, result.error, result.hops)
    return Resolution(result.path, None, result.hops)


def lookup(rootfs: RootFS, path: str) -> Entry | None:
    """The entry `path` leads to, following symlinks (also the last one); None if absent."""
    resolved = resolve(rootfs.entries, path).path
    if resolved is None:
        return None
    return rootfs.entries.get(resolved) if resolved != "/" else _ROOT


def exists_dir(rootfs: RootFS, path: str) -> bool:
    """True when `path` leads to a directory (the root included)."""
    entry = lookup(rootfs, path)
    return entry is not None and entry.type is EntryType.DIR


def listdir(rootfs: RootFS, directory: str) -> list[str]:
    """The sorted names in `directory` (a symlink to a directory is followed); [] if none."""
    resolved = resolve(rootfs.entries, directory).path
    if resolved is None:
        return []
    return list(rootfs.children.get(resolved, ()))


_ROOT = Entry(path="/", type=EntryType.DIR, layer=0, mode=0o755)
