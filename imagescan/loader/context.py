"""What the loader emulation knows about one image, gathered once: the search defaults of
its own ld.so, its ld.so.cache, its Env, preloads, and memoised path queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from imagescan.elf.model import ElfFacts
from imagescan.loader.access import Creds, open_errno
from imagescan.loader.ldcache import LdCache, LegacyHwcap
from imagescan.loader.model import (
    LoadedObject,
    ProcessParams,
    Resolution,
    SearchPlan,
    SearchResult,
    SearchStep,
    Target,
)
from imagescan.rootfs.model import Entry, EntryType, RootFS
from imagescan.rootfs.paths import resolve

# What a requester's searches depend on when they do not depend on the process it is in
# (CLibrary.search_key): glibc's (id of the parameters, DF_1_NODEFLIB), and for a requester
# with DT_RUNPATH also (the path it was found at, its file, whether it is the main program)
SearchKey = tuple[int, bool] | tuple[int, bool, str, str, bool]


@dataclass
class LoaderContext:
    """Image-wide inputs of every search. Path queries are memoised (the image is fixed).
    `target` is the image's CPU and ABI; a process may run as another (`target_of`)."""

    rootfs: RootFS
    target: Target
    env: dict[str, str]
    run_ids: tuple[int, int] = (0, 0)
    run_groups: frozenset[int] = frozenset()  # supplementary groups of the image's User
    working_dir: str = "/"
    cache: LdCache | None = None
    preload_file: tuple[str, ...] = ()
    # path -> (where it leads, the entries its walk looked at)
    _resolved: dict[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)
    # Paths whose entries the queries since `consulted` was set looked at (None: nobody
    # asks); what a verdict depends on, for reusing it in an image that shares the base.
    consulted: set[str] | None = None
    # Memos: the image is fixed, so a search (by its plan) or a cache lookup is too. They
    # live as long as this context, which is one scan's.
    searches: dict[tuple[ProcessParams, SearchPlan], SearchResult] = field(default_factory=dict)
    # (a requester's search key, name) -> (the parameters, the result) of searches that
    # are the same for every requester with that key (CLibrary.search_key)
    plain_searches: dict[tuple[SearchKey, str], tuple[ProcessParams, SearchResult]] = field(
        default_factory=dict
    )
    # (name, legacy hwcap filter, e_machine, class) -> the cache's answer
    cache_hits: dict[tuple[str, LegacyHwcap | None, int, int], str | None] = field(
        default_factory=dict
    )

    opens: dict[tuple[str, Creds], str | None] = field(default_factory=dict)
    # path -> the one-step search of a name already loaded from it: every process that
    # loads libc twice over says so, 75,000 times on a 2,380-ELF image (issue 14).
    loaded_steps: dict[str, tuple[SearchStep]] = field(default_factory=dict)
    # A resolution's fields (its steps by identity: they come from the memos above) -> the
    # one Resolution with them: 102,000 resolutions of a 2,380-ELF image's processes are
    # 35,000 values, and a forked child's pickle sends each once (issue 14).
    resolutions: dict[tuple[object, ...], Resolution] = field(default_factory=dict)
    # (path, file, name, loader index) -> the one LoadedObject found so: the XL image's
    # processes hold 31,000 objects and 10,700 distinct ones, and a forked child's pickle
    # then sends each once (issue 14).
    loaded: dict[tuple[str, str, str, int], LoadedObject] = field(default_factory=dict)

    def open_errno(self, path: str, creds: Creds) -> str | None:
        """The errno open(path) fails with for `creds`, or None when it opens."""
        if self.consulted is not None:
            # The permission walk looks at the entries a resolve of `path` looks at, and
            # at the root's (recorded for every judging); a denial resolves nothing else.
            self.resolve(path)
        key = (path, creds)
        if key not in self.opens:
            self.opens[key] = open_errno(self.rootfs.entries, path, creds)
        return self.opens[key]

    def resolve(self, path: str) -> str | None:
        """The rootfs path of what `path` names after symlinks, or None when absent."""
        known = self._resolved.get(path)
        if known is None:
            seen: list[str] = []
            known = self._resolved[path] = (
                resolve(self.rootfs.entries, path, seen=seen).path,
                tuple(seen),
            )
        if self.consulted is not None:
            self.consulted.update(known[1])
        return known[0]

    def entry(self, path: str) -> Entry | None:
        """The entry `path` leads to (symlinks followed), or None."""
        real = self.resolve(path)
        return self.rootfs.entries.get(real) if real is not None else None

    def regular_file(self, path: str) -> Entry | None:
        found = self.entry(path)
        return found if found is not None and found.type == EntryType.FILE else None

    def facts(self, path: str) -> ElfFacts | None:
        found = self.regular_file(path)
        return found.elf if found is not None else None


def creds_of(ctx: LoaderContext, params: ProcessParams) -> Creds:
    """The ids a process opens files with: its own (set-id bits), else the image User's."""
    return params.creds if params.creds is not None else creds_of_image(ctx)


def creds_of_image(ctx: LoaderContext) -> Creds:
    """The image User's ids and supplementary groups."""
    return Creds(*ctx.run_ids, ctx.run_groups)


def target_of(ctx: LoaderContext, params: ProcessParams) -> Target:
    """The CPU and ABI a process runs as: its own, else the image's."""
    return params.target or ctx.target
