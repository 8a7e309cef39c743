"""Verdicts carried from one image to the next that shares its base layers (issue 12).

A fleet's images differ in a small top layer over a few shared bases, and judging each
base's files again for every image was 60% of an audit's time. A verdict depends on the
loader's inputs (the image's Env, user, working directory, kept configuration, CPU) and on
the entries its judging looked at (`LoaderContext.consulted`: every candidate path, every
symlink on the way, present or absent). When the next image has the same inputs and none
of those entries differs, the verdict and its process are the same: they are carried over
instead of recomputed. Anything else is judged again, so the result is the one a fresh
scan gives (a test compares them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from imagescan.checks.model import FileVerdict
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import Process
from imagescan.rootfs.layer import is_musl_path_file
from imagescan.rootfs.model import Entry, RootFS

Judging = tuple[FileVerdict, Process | None, frozenset[str]]  # verdict, process, consulted


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


@dataclass
class Carry:
    """What an audit hands from one image to the next: the last image's judging."""

    judged: Judged | None = None

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


def carried(
    earlier: Judged | None,
    rootfs: RootFS,
    inputs: tuple[object, ...],
    setup: frozenset[str],
) -> dict[str, Judging]:
    """The judgings of `earlier` that hold in `rootfs` as they are. `setup` are the entries
    this image's set-up looked at (its default loader): changed, nothing is carried."""
    if earlier is None or earlier.inputs != inputs:
        return {}
    changed = changed_paths(earlier.rootfs, rootfs)
    if (earlier.setup | setup) & changed:
        return {}
    return {
        path: judging
        for path, judging in earlier.files.items()
        if path not in changed and not judging[2] & changed
    }


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
