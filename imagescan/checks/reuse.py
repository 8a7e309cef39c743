"""Verdicts carried from one image to the next that shares its base layers (issue 12).

A fleet's images differ in a small top layer over a few shared bases, and judging each
base's files again for every image was 60% of an audit's time. A verdict depends on the
loader's inputs (the image's Env, user, working directory, kept configuration, CPU) and on
the entries its judging looked at (`LoaderContext.consulted`: every candidate path, every
symlink on the way, present or absent). When the next image has the same inputs and none
of those entries differs, the verdict and its process are the same: they are carried over
instead of recomputed. Anything else is judged again, so the result is the one a fresh
scan gives (a test compares them).

The same holds for the other per-image work on those files (issue 12): a plugin's trial
inside a host (`Memo`, by the entries it looked at), what a plugin lacks on its own and
each process's link-graph edges (`ByIdentity`: functions of one carried process), the
package databases, the tree of the lower layers (rootfs.squash.LowerTree). Each is looked
up by what it rests on; anything else is computed afresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from imagescan.checks.cpu import cpu_sensitive, sensitive_entry
from imagescan.checks.model import FileVerdict
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import Process
from imagescan.packages.model import PackageDb
from imagescan.packages.rpm import RPM_DIRS
from imagescan.rootfs.layer import is_kept, is_musl_path_file
from imagescan.rootfs.model import Entry, RootFS
from imagescan.rootfs.squash import LowerTree

Judging = tuple[FileVerdict, Process | None, frozenset[str]]  # verdict, process, consulted
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
A = TypeVar("A")


@dataclass(frozen=True)
class Judged:
    """One image's judging, kept for the next image: its root filesystem, its loader
    inputs, and per file the verdict, the process and the entries it looked at."""

    rootfs: RootFS
    inputs: tuple[object, ...]
    files: Mapping[str, Judging]
    setup: frozenset[str]  # entries looked at before any file (the default loader, ...)


def loader_inputs(ctx: LoaderContext, cpu_level: str | None) -> tuple[object, ...]:
    """What every verdict of an image depends on besides its entries."""
    env = tuple(sorted(ctx.env.items()))
    kept = tuple(sorted((p, d) for p, d in ctx.rootfs.kept.items() if _loader_reads(p)))
    ids = ctx.run_ids, ctx.run_groups
    return ctx.target, env, ids, ctx.working_dir, ctx.preload_file, cpu_level, kept


@dataclass(frozen=True)
class Delta:
    """How this image differs from the previous one of its base: `changed` are the paths
    whose entry differs; None when the loader's inputs or the entries its set-up looked at
    differ, and then nothing computed there holds here."""

    changed: frozenset[str] | None = None

    def holds(self, consulted: frozenset[str]) -> bool:
        """Whether a result that looked at the entries `consulted` (and at nothing else of
        the image but the loader's inputs) is the same here."""
        return self.changed is not None and self.changed.isdisjoint(consulted)


@dataclass
class Carry:
    """What an audit hands from one image to the next: the tree of its lower layers, its
    judging, and what was made from it (plugin trials, package databases, link-graph
    edges)."""

    judged: Judged | None = None
    lower: LowerTree = field(default_factory=LowerTree)
    packages: ReadPackages | None = None  # the package databases of `judged`'s image
    # by name, each one stage's `made` (Memo, ByIdentity): typed where it is made and used
    memos: dict[str, Mapping[Any, Any]] = field(default_factory=dict)

    def forget(self) -> None:
        """Drop the last image's work (an image of another base follows)."""
        self.judged = None
        self.memos = {}
        self.lower = LowerTree()
        self.packages = None

    def take(self) -> Earlier:
        """The last image's judging and what rests on its entries (plugin trials, package
        databases), taken out at once: each is checked against the changes since that
        very image, never since another one (an image whose analysis stopped half-way
        must not leave an older image's trials beside its judging)."""
        earlier = Earlier(self.judged, self.memos.pop("trials", {}), self.packages)
        self.judged, self.packages = None, None
        return earlier

    def shares_base(self, diff_ids: Sequence[str | None]) -> bool:
        """Whether an image of these layers starts with the last image's bottom layer."""
        if self.judged is None:
            return False
        earlier = self.judged.rootfs.layer_ids
        return (
            bool(earlier)
            and bool(diff_ids)
            and earlier[0] is not None
            and earlier[0] == diff_ids[0]
        )


@dataclass
class Earlier:
    """What `Carry.take` took out: the last image's judging, trials and packages."""

    judged: Judged | None = None
    trials: Mapping[Any, Any] = field(default_factory=dict)
    packages: ReadPackages | None = None


def delta(
    earlier: Judged | None,
    rootfs: RootFS,
    inputs: tuple[object, ...],
    setup: frozenset[str],
) -> Delta:
    """How `rootfs` differs from `earlier`'s. `setup` are the entries this image's set-up
    looked at (its default loader): changed, nothing holds."""
    if earlier is None or earlier.inputs != inputs:
        return Delta()
    changed = changed_paths(earlier.rootfs, rootfs)
    if (earlier.setup | setup) & changed:
        return Delta()
    return Delta(changed)


def cpu_sensitive_since(rootfs: RootFS, change: Delta) -> bool:
    """checks.cpu.cpu_sensitive, from the changed entries alone when the previous image's
    judging holds (`change.changed` set): that image was not CPU-sensitive (no judging of
    one is kept), and it is a test of each entry on its own."""
    if change.changed is None:
        return cpu_sensitive(rootfs)
    entries = rootfs.entries
    return any(sensitive_entry(p, entries[p]) for p in change.changed if p in entries)


def carried(earlier: Judged | None, change: Delta) -> dict[str, Judging]:
    """The judgings of `earlier` that hold in this image as they are."""
    if earlier is None or change.changed is None:
        return {}
    changed = change.changed
    return {
        path: judging
        for path, judging in earlier.files.items()
        if path not in changed and change.holds(judging[2])
    }


@dataclass(frozen=True)
class ReadPackages:
    """An image's package databases, the kept files they were read from, and the entries
    the owners' directory walks looked at (packages.read)."""

    db: PackageDb
    kept: Mapping[str, bytes]
    seen: frozenset[str]


def carried_packages(
    earlier: ReadPackages | None, rootfs: RootFS, change: Delta
) -> ReadPackages | None:
    """The previous image's package databases, when reading them here gives the same: the
    same kept files (every database and os-release is one), no changed entry that is a
    kept file or under an rpm directory (which paths exist decides what is read), none
    that a directory walk looked at. Their `entries` are this image's (owner() walks)."""
    if earlier is None or change.changed is None or not change.holds(earlier.seen):
        return None
    if any(is_kept(path) or path.startswith(RPM_DIRS) for path in change.changed):
        return None
    if earlier.kept != rootfs.kept:
        return None
    return ReadPackages(
        dataclasses.replace(earlier.db, entries=rootfs.entries), rootfs.kept, earlier.seen
    )


@dataclass
class Memo(Generic[K, V]):
    """Results of one computation on the image, each with the entries it looked at: the
    previous image's holds where none of those entries changed (`Delta.holds`), else it is
    computed here with `ctx` recording. `made` is this image's, for the next image."""

    earlier: Mapping[K, tuple[V, frozenset[str]]]
    change: Delta
    made: dict[K, tuple[V, frozenset[str]]] = field(default_factory=dict)

    def get(self, ctx: LoaderContext, key: K, compute: Callable[[], V]) -> V:
        found = self.earlier.get(key)
        if found is None or not self.change.holds(found[1]):
            recording, ctx.consulted = ctx.consulted, {"/"}  # the root: every walk's start
            try:
                found = (compute(), frozenset(ctx.consulted))
            finally:
                ctx.consulted = recording
        self.made[key] = found
        return found[0]


@dataclass
class ByIdentity(Generic[A, V]):
    """f(argument) per path, where the argument is an immutable value that images of one
    base share as one object (a carried process): a result made here or in the previous
    image holds where the argument is that very object."""

    earlier: Mapping[str, tuple[A, V]] = field(default_factory=dict)
    made: dict[str, tuple[A, V]] = field(default_factory=dict)

    def get(self, path: str, argument: A, compute: Callable[[A], V]) -> V:
        for memo in (self.made, self.earlier):
            found = memo.get(path)
            if found is not None and found[0] is argument:
                break
        else:
            found = (argument, compute(argument))
        self.made[path] = found
        return found[1]


def taken_memo(carry: Carry | None, name: str) -> ByIdentity[Any, Any]:
    """The ByIdentity memo `name` that the previous image left in `carry`, taken out (an
    empty one without a carry)."""
    return ByIdentity(carry.memos.pop(name, {}) if carry is not None else {})


def keep_memo(carry: Carry | None, name: str, memo: ByIdentity[Any, Any]) -> None:
    """What `memo` made, left in `carry` for the next image, when the carry holds this
    image's judging (the results rest on it)."""
    if carry is not None and carry.judged is not None:
        carry.memos[name] = memo.made


def changed_paths(before: RootFS, after: RootFS) -> frozenset[str]:
    """Paths whose entry is not the same in both (added, removed or replaced)."""
    old, new = before.entries, after.entries
    changed = {p for p, entry in new.items() if not _same(old.get(p), entry)}
    changed.update(p for p in old if p not in new)
    return frozenset(changed)


# The kept files a file's judging reads (loader.setup, musl_search); the others (package
# databases, os-release, ld.so.conf) feed only the image-wide checks, made afresh.
_LOADER_KEPT = frozenset({"/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/passwd", "/etc/group"})


def _loader_reads(path: str) -> bool:
    return path in _LOADER_KEPT or is_musl_path_file(path)


def _same(old: Entry | None, new: Entry) -> bool:
    # The same object when both images decoded the layer once (a store's memo); else
    # compared field by field, the ELF facts too (still far cheaper than judging again).
    if old is new:
        return True
    if old is None or (old.elf is not new.elf and old.elf != new.elf):
        return False
    return all(getattr(old, name) == getattr(new, name) for name in _SHALLOW)


_SHALLOW = tuple(f.name for f in dataclasses.fields(Entry) if f.name != "elf")
