"""`dir:PATH`: an unpacked root filesystem read as one layer, never following symlinks.

Symlinks are recorded with their text and resolved later inside the virtual root, so a link
that points outside PATH ("/etc -> /host/etc") never leads the walk out of it; nor does the
walk enter other filesystems mounted below PATH (like find -xdev). Files with several links
on one inode become HARDLINK entries to the first path seen, as in a tar.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace

from imagescan.errors import ImageReadError
from imagescan.rootfs.layer import DpkgListBudget, KeptBudget, file_id, read_content
from imagescan.rootfs.model import Entry, EntryType, LayerIndex, Skipped
from imagescan.rootfs.paths import join

_TYPES = {
    stat.S_IFDIR: EntryType.DIR,
    stat.S_IFLNK: EntryType.SYMLINK,
    stat.S_IFCHR: EntryType.CHAR,
    stat.S_IFBLK: EntryType.BLOCK,
    stat.S_IFIFO: EntryType.FIFO,
}


@dataclass
class _Walk:
    layer: int
    device: int  # the root's filesystem: mounts below it (/proc of "dir:/") are not entered
    entries: list[Entry] = field(default_factory=list)
    kept: dict[str, bytes] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    inodes: dict[tuple[int, int], str] = field(default_factory=dict)
    files: int = 0
    symbols: bool = True
    digests: bool = True
    budget: KeptBudget = field(default_factory=KeptBudget)  # issue 15: kept bytes bounded
    list_budget: DpkgListBudget = field(default_factory=DpkgListBudget)  # issue 11


def index_directory(
    root: str, layer: int = 0, *, symbols: bool = True, digests: bool = True
) -> LayerIndex:
    """The facts of every file under `root`, as one layer (paths relative to `root`);
    `symbols` and `digests` as in rootfs.layer.read_content."""
    if not os.path.isdir(root):
        raise ImageReadError(f"{root}: not a directory")
    walk = _Walk(layer, os.stat(root).st_dev, symbols=symbols, digests=digests)
    pending = [("/", root)]
    while pending:
        image_dir, host_dir = pending.pop()
        pending.extend(reversed(_scan(walk, image_dir, host_dir)))
    return LayerIndex(
        index=layer,
        diff_id=None,
        entries=tuple(walk.entries),
        kept=walk.kept,
        skipped=tuple(walk.skipped),
    )


def _scan(walk: _Walk, image_dir: str, host_dir: str) -> list[tuple[str, str]]:
    """Record the entries of one directory; its subdirectories, to walk next."""
    try:
        with os.scandir(host_dir) as listing:
            found = sorted(listing, key=lambda item: item.name)
    except OSError as exc:
        walk.skipped.append(Skipped(image_dir, f"cannot list: {exc.strerror}", walk.layer))
        return []
    subdirs = []
    for item in found:
        path = join(image_dir, item.name)
        try:
            st = item.stat(follow_symlinks=False)
            if _record(walk, path, item.path, st) and st.st_dev == walk.device:
                subdirs.append((path, item.path))
        except OSError as exc:
            walk.skipped.append(Skipped(path, f"cannot read: {exc.strerror}", walk.layer))
    return subdirs


def _record(walk: _Walk, path: str, host_path: str, st: os.stat_result) -> bool:
    """Record one file; True when it is a directory to descend into."""
    base = Entry(
        path=path,
        type=EntryType.FILE,
        layer=walk.layer,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )
    if stat.S_ISREG(st.st_mode):
        _regular(walk, base, host_path, st)
        return False
    kind = _TYPES.get(stat.S_IFMT(st.st_mode))
    if kind is None:  # sockets: nothing a loader could use
        return False
    target = os.readlink(host_path) if kind is EntryType.SYMLINK else None
    walk.entries.append(replace(base, type=kind, link_target=target))
    return kind is EntryType.DIR


def _regular(walk: _Walk, base: Entry, host_path: str, st: os.stat_result) -> None:
    inode = (st.st_dev, st.st_ino)
    first = walk.inodes.get(inode) if st.st_nlink > 1 else None
    if first is not None:
        walk.entries.append(replace(base, type=EntryType.HARDLINK, link_target=first))
        return
    walk.inodes[inode] = base.path
    fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as stream:
        content = read_content(
            base.path,
            st.st_size,
            stream.read,
            symbols=walk.symbols,
            budget=walk.budget,
            digests=walk.digests,
        )
    walk.files += 1
    entry = replace(
        base,
        size=st.st_size,
        file_id=file_id(walk.layer, walk.files),
        has_caps=_has_caps(host_path),
        verify=content.verify,
        elf=content.elf,
    )
    walk.entries.append(entry)
    if content.kept is not None and walk.list_budget.admit(base.path, content.kept):
        walk.kept[base.path] = content.kept
    if content.skip_reason is not None:
        walk.skipped.append(Skipped(base.path, content.skip_reason, walk.layer))


def _has_caps(host_path: str) -> bool:
    try:
        os.getxattr(host_path, "security.capability", follow_symlinks=False)
    except OSError:
        return False
    return True
