"""Layers -> one RootFS, as a container runtime extracting them in order would leave it.

Each layer is applied over the ones below it as docker's pkg/archive UnpackLayer and
containerd's archive.Apply do: whiteouts and opaque markers first (OCI image-spec layer.md:
they only hide lower layers), then the members in stream order, with parent directories
resolved through the symlinks already there (containerd's fs.RootPath), the last component
taken literally, an existing path removed unless both old and new are directories, and
missing parent directories created. Nothing is written anywhere: the tree is a dict.

`HiddenPaths` is the other direction: built from the upper layers first, it tells the layer
reader which files of a lower layer nobody will ever see, so that they are not parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from imagescan.rootfs.layer import KEPT_PATHS, is_kept
from imagescan.rootfs.model import Entry, EntryType, LayerIndex, RootFS, Skipped
from imagescan.rootfs.paths import join, resolve, walk


def squash(layers: Sequence[LayerIndex], lower: LowerTree | None = None) -> RootFS:
    """The image's root filesystem: top layer wins, hidden paths gone, hard links resolved.
    `lower` keeps the tree of the layers below the top one, for the next image over the
    same lower layers (an audit's images share their bases: issue 12)."""
    ordered = sorted(layers, key=lambda layer: layer.index)
    if lower is not None and ordered:
        tree = lower.below(ordered[:-1])
        tree.apply(ordered[-1])
    else:
        tree = _Tree()
        for layer in ordered:
            tree.apply(layer)
    return RootFS(
        entries=tree.entries,
        kept=tree.visible_kept(),
        skipped=(*visible_skipped(ordered), *tree.skipped),
        layer_ids=tuple(layer.diff_id for layer in ordered),
    )


def visible_skipped(layers: Sequence[LayerIndex]) -> list[Skipped]:
    """The layers' skipped files that no upper layer hides, bottom layer first (what a
    top-down read reports, since there a hidden file is never read)."""
    if not any(layer.skipped for layer in layers):
        return []  # nothing to hide (and no layer's paths to gather)
    hidden = HiddenPaths()
    groups: list[list[Skipped]] = []
    for layer in reversed(layers):
        groups.append([skip for skip in layer.skipped if not hidden.hidden(skip.path)])
        hidden.add(layer)
    return [skip for group in reversed(groups) for skip in group]


@dataclass
class LowerTree:
    """The tree of the lower layers of the last image squashed with it. The next image whose
    lower layers are those very LayerIndex objects (frozen values; a store hands out one
    object per diff_id) starts from a copy of it: applying the same layers in the same order
    to an empty tree gives the same tree, so only its top layer is applied."""

    layers: tuple[LayerIndex, ...] = ()
    tree: _Tree | None = None

    def below(self, layers: Sequence[LayerIndex]) -> _Tree:
        """A tree of `layers` applied in order, to apply more layers over."""
        same = len(layers) == len(self.layers) and all(
            a is b for a, b in zip(layers, self.layers, strict=True)
        )
        if self.tree is None or not same:
            self.layers, self.tree = (), None  # the last base's tree goes first (memory)
            tree = _Tree()
            for layer in layers:
                tree.apply(layer)
            self.layers, self.tree = tuple(layers), tree
        return self.tree.copy()


class _Tree:
    """The squashed tree under construction. Keys are resolved paths: every ancestor of a
    key is a real directory, so a key's parent that is a DIR entry needs no resolution."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {}
        self.skipped: list[Skipped] = []
        self.kept: dict[str, tuple[int, bytes]] = {}

    def copy(self) -> _Tree:
        """A tree in the same state that shares nothing mutable with this one."""
        other = _Tree()
        other.entries = dict(self.entries)
        other.children = {parent: set(names) for parent, names in self.children.items()}
        other.skipped = list(self.skipped)
        other.kept = dict(self.kept)
        return other

    def apply(self, layer: LayerIndex) -> None:
        """Apply one layer over the tree."""
        for directory in layer.opaque_dirs:
            self._clear(directory)
        for path in layer.whiteouts:
            self._delete(path)
        for entry in layer.entries:
            placed = self._place(entry)
            if placed is not None and entry.path in layer.kept:
                self.kept[placed] = (layer.index, layer.kept[entry.path])

    def _clear(self, directory: str) -> None:
        resolved = resolve(self.entries, directory).path
        if resolved is not None and self._is_dir(resolved):
            for name in list(self.children.get(resolved, ())):
                self._remove(join(resolved, name))

    def _delete(self, path: str) -> None:
        parent, _, name = path.rpartition("/")
        resolved = resolve(self.entries, parent or "/").path
        if resolved is not None and join(resolved, name) in self.entries:
            self._remove(join(resolved, name))

    def _place(self, entry: Entry) -> str | None:
        parent = self._parent(entry)
        if parent is None:
            return None
        path = join(parent, entry.path.rpartition("/")[2])
        if entry.type is EntryType.HARDLINK:
            linked = self._linked(entry, path)
            if linked is None:
                # UnpackLayer removes what is at the path before link(2) fails.
                self._remove(path)
                return None
            entry = linked
        elif entry.path != path:
            entry = replace(entry, path=path)
        self._put(path, entry)
        return path

    def _parent(self, entry: Entry) -> str | None:
        """The resolved directory `entry` lands in (created like MkdirAll when missing)."""
        parent = entry.path.rpartition("/")[0] or "/"
        if parent == "/" or self._is_dir(parent):
            return parent
        result = walk(self.entries, parent)
        if result.error is not None:
            self.skipped.append(Skipped(entry.path, f"cannot place: {result.error}", entry.layer))
            return None
        if result.missing:
            self._make_dirs(result.path, entry.layer)
        return result.path

    def _make_dirs(self, path: str, layer: int) -> None:
        current = "/"
        for name in path.split("/")[1:]:
            current = join(current, name)
            if current not in self.entries:
                self._add(Entry(path=current, type=EntryType.DIR, layer=layer, mode=0o755))

    def _linked(self, link: Entry, path: str) -> Entry | None:
        """The hard link as its target file: same facts and file_id, the link's layer."""
        result = walk(self.entries, link.link_target or "", follow_last=False)
        target = None if result.missing or result.error else self.entries.get(result.path)
        if target is None or target.type is EntryType.DIR:
            what = "does not exist" if target is None else "is a directory"
            reason = f"hard link target {link.link_target} {what}"
            self.skipped.append(Skipped(link.path, reason, link.layer))
            return None
        return replace(target, path=path, layer=link.layer)

    def _put(self, path: str, entry: Entry) -> None:
        existing = self.entries.get(path)
        if existing is not None:
            if existing.type is EntryType.DIR and entry.type is EntryType.DIR:
                self.entries[path] = entry  # docker and containerd keep the directory
                return
            self._remove(path)
        self._add(entry)

    def _add(self, entry: Entry) -> None:
        self.entries[entry.path] = entry
        parent, _, name = entry.path.rpartition("/")
        self.children.setdefault(parent or "/", set()).add(name)

    def _remove(self, path: str) -> None:
        """Remove `path` and everything below it (RemoveAll)."""
        parent, _, name = path.rpartition("/")
        self.children.get(parent or "/", set()).discard(name)
        stack = [path]
        while stack:
            current = stack.pop()
            self.entries.pop(current, None)
            self.kept.pop(current, None)
            stack.extend(join(current, child) for child in self.children.pop(current, ()))

    def _is_dir(self, path: str) -> bool:
        if path == "/":
            return True
        entry = self.entries.get(path)
        return entry is not None and entry.type is EntryType.DIR

    def visible_kept(self) -> dict[str, bytes]:
        """Kept files still in the tree, also under the kept names that are symlinks to them
        (Debian: /etc/os-release -> ../usr/lib/os-release; update-alternatives links)."""
        kept = {path: data for path, (_, data) in self.kept.items() if path in self.entries}
        names = [p for p, e in self.entries.items() if e.type is EntryType.SYMLINK and wanted(p)]
        for name in sorted(KEPT_PATHS - kept.keys()) + names:
            resolved = resolve(self.entries, name).path
            if resolved is not None and resolved in kept:
                kept[name] = kept[resolved]
        return kept


def wanted(path: str) -> bool:
    """A name whose content the later stages may ask for (kept files, any *.conf)."""
    return is_kept(path) or path.endswith(".conf")


class HiddenPaths:
    """Which paths of lower layers the layers seen so far (the upper ones) hide.

    Built top-down with `add`, queried with `hidden`. It compares literal paths, so it
    never hides a visible file; it may fail to hide a file that an upper layer reaches
    through a symlinked parent (that file is then parsed for nothing, which is only slower).
    """

    def __init__(self) -> None:
        self._replaced: set[str] = set()
        self._removed_trees: set[str] = set()
        self._opaque: set[str] = set()
        self._link_targets: set[str] = set()

    def add(self, layer: LayerIndex) -> None:
        """Take in one more layer, lower than all those added before."""
        for entry in layer.entries:
            self._replaced.add(entry.path)
            if entry.type is not EntryType.DIR:
                self._removed_trees.add(entry.path)
            if entry.type is EntryType.HARDLINK and entry.link_target:
                self._link_targets.add(entry.link_target)
        self._removed_trees.update(layer.whiteouts)
        self._opaque.update(layer.opaque_dirs)

    def hidden(self, path: str) -> bool:
        """True when no one will see the file at `path` of a lower layer."""
        if path in self._link_targets:
            return False  # an upper hard link may still show its content
        if path in self._replaced or path in self._removed_trees:
            return True
        ancestor = path.rpartition("/")[0]
        while ancestor:
            if ancestor in self._removed_trees or ancestor in self._opaque:
                return True
            ancestor = ancestor.rpartition("/")[0]
        return "/" in self._opaque
