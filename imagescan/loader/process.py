"""The process a loader builds for one main object: a breadth-first worklist.

glibc: elf/dl-deps.c `_dl_map_object_deps` walks the list in order and appends what each
object newly needs, so a name is resolved in the context of the FIRST object in BFS order
that needs it (LOADER.md 3.1, edge case 3). Names already loaded are matched by the name
they were loaded under, their SONAME, or the same file (`_dl_lookup_map`,
`_dl_file_id_match_p`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from imagescan.elf.model import ElfFacts, FileKind
from imagescan.loader.candidates import replayed
from imagescan.loader.context import LoaderContext, SearchKey
from imagescan.loader.model import (
    LibC,
    LoadedObject,
    Outcome,
    Process,
    ProcessParams,
    Resolution,
    Rule,
    SearchResult,
    SearchStep,
)
from imagescan.loader.search import search

Searcher = Callable[[LoaderContext, ProcessParams, Sequence[LoadedObject], int, str], SearchResult]
KeyOf = Callable[[LoaderContext, ProcessParams, Sequence[LoadedObject], int], SearchKey | None]


def no_key(
    ctx: LoaderContext, params: ProcessParams, objects: Sequence[LoadedObject], requester: int
) -> SearchKey | None:
    """A C library's search_key when none of its searches is memoised by requester."""
    return None


@dataclass(frozen=True)
class MainObject:
    """What the process starts from: the main file, its interpreter and preloads."""

    path: str
    facts: ElfFacts
    interpreter: LoadedObject | None = None  # ld.so itself, matched by name when needed
    preloads: tuple[tuple[str, Rule], ...] = ()


@dataclass
class _Builder:
    ctx: LoaderContext
    params: ProcessParams
    searcher: Searcher
    key_of: KeyOf = no_key
    objects: list[LoadedObject] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pending_rtld: LoadedObject | None = None
    rtld_index: int | None = None
    by_file_id: dict[int, int] = field(default_factory=dict)
    # Name, path or SONAME -> the first loaded object known by it: a scan of `objects` per
    # load made a chain of n libraries cost n^2 per process (issue 15).
    by_name: dict[str, int] = field(default_factory=dict)

    def loaded_match(self, name: str) -> int | None:
        """`_dl_lookup_map`: a loaded object known by this name or SONAME."""
        index = self.by_name.get(name)
        if index is not None:
            return index
        rtld = self.pending_rtld
        if rtld is not None and (name in rtld.names or name == rtld.facts.soname):
            return self.add_rtld()
        return None

    def add_rtld(self) -> int:
        assert self.pending_rtld is not None
        index = self.append(self.pending_rtld)
        self.pending_rtld = None
        self.rtld_index = index
        return index

    def ldso_itself(self) -> int | None:
        """musl load_library("libc.so"): the loader, joined to the process if not yet."""
        return self.add_rtld() if self.pending_rtld is not None else self.rtld_index

    def append(self, obj: LoadedObject) -> int:
        """Add an object to the load order, indexed by its file's identity."""
        self.objects.append(obj)
        self._know(obj, len(self.objects) - 1)
        entry = self.ctx.regular_file(obj.file)
        if entry is not None:
            self.by_file_id.setdefault(entry.file_id, len(self.objects) - 1)
        return len(self.objects) - 1

    def _know(self, obj: LoadedObject, index: int) -> None:
        for known_as in self._known_as(obj, index):
            if known_as is not None:
                self.by_name.setdefault(known_as, index)

    def _known_as(self, obj: LoadedObject, index: int) -> tuple[str | None, ...]:
        if self.params.load.by_soname:
            return (*obj.names, obj.path, obj.facts.soname)
        # musl load_library: only an object found by a search (a name without '/') has a
        # shortname, the basename of the path found; the main program has none (head->next)
        if index == 0 or all("/" in name for name in obj.names):
            return ()
        return (posixpath.basename(obj.path),)

    def same_file(self, file: str) -> int | None:
        """`_dl_file_id_match_p`: the same file under another name (st_dev/st_ino)."""
        entry = self.ctx.regular_file(file)
        if entry is not None and entry.file_id in self.by_file_id:
            return self.by_file_id[entry.file_id]
        rtld = self.pending_rtld
        if rtld is not None and entry is not None:
            other = self.ctx.regular_file(rtld.file)
            if other is not None and other.file_id == entry.file_id:
                return self.add_rtld()
        return None

    def loaded_step(self, path: str) -> tuple[SearchStep]:
        """The search of a name matched by the object loaded from `path` (one per image)."""
        steps = self.ctx.loaded_steps.get(path)
        if steps is None:
            steps = self.ctx.loaded_steps[path] = (SearchStep(path, Rule.LOADED, Outcome.FOUND),)
        return steps

    def load(
        self,
        requester: int,
        name: str,
        preload: Rule | None = None,
        *,
        auxiliary: bool = False,
        key: SearchKey | None = None,
    ) -> None:
        """Resolve `name` for object `requester` (its search key: `key`); append the
        object when it is new."""
        known = self.loaded_match(name)
        if known is not None:
            steps = self.loaded_step(self.objects[known].path)
            fragile = self.fragile(requester, name, known, key)
            self.resolve(requester, name, steps, known, True, None, preload is not None, fragile)
            return
        params = self.preload_params() if preload is not None else self.params
        result = self.search(params, requester, name, key if preload is None else None)
        found, reused = self.place(result, requester, name)
        if auxiliary and found is None:
            # dl-deps.c: the error of an auxiliary filtee is dropped, fatal candidate or not
            self.resolve(requester, name, result.steps, None, auxiliary=True)
            return
        self.add_resolution(
            requester, name, result.steps, found, preload, fatal=result.fatal, reused=reused
        )

    def preload_params(self) -> ProcessParams:
        """glibc do_preload maps with __RTLD_SECURE: in secure mode a slash-free preload is
        searched without the cache, and open_path passes over every file without the
        set-user-ID bit (ENOENT: the search goes on)."""
        if not self.params.secure or self.params.libc != LibC.GLIBC:
            return self.params
        return replace(self.params, setuid_only=True)

    def load_dependencies(self, index: int) -> None:
        """DT_NEEDED, then (glibc only) the DT_FILTER and DT_AUXILIARY filtees, which
        `_dl_map_object_deps` maps in the same loop. Filtees go before their filter in the
        real search list; here they are appended, which changes only which of two
        definitions wins, not whether a symbol is found."""
        facts = self.objects[index].facts
        key = self.key_of(self.ctx, self.params, self.objects, index)
        for name in facts.needed:
            self.load(index, name, key=key)
        if not self.params.load.filtees:
            return  # musl's decode_dyn ignores both tags
        for name in facts.filters:
            self.load(index, name, key=key)
        for name in facts.auxiliary:
            self.load(index, name, auxiliary=True, key=key)

    def fragile(self, requester: int, name: str, known: int, key: SearchKey | None) -> bool:
        """Found only because another object loaded it first (LOADER.md edge case 3)."""
        if known in (0, requester) or self.objects[known].loader == requester:
            return False
        own = self.search(self.params, requester, name, key)
        return own.path is None and own.fatal is None

    def search(
        self, params: ProcessParams, requester: int, name: str, key: SearchKey | None
    ) -> SearchResult:
        """The searcher's result, from its memo when the requester's key has one: the
        C library's search would compute the key again for each of the process's 60 names
        on average (issue 14)."""
        known = self.ctx.plain_searches.get((key, name)) if key is not None else None
        if known is not None and known[0] is params:
            return replayed(self.ctx, known[1])
        return self.searcher(self.ctx, params, self.objects, requester, name)

    def place(self, result: SearchResult, requester: int, name: str) -> tuple[int | None, bool]:
        """Index of the object the found file becomes, and whether it was loaded already."""
        if result.path is None:
            return None, False
        file = self.ctx.resolve(_abs(self.ctx, result.path)) or result.path
        same = self.same_file(file)
        if same is not None:
            self.objects[same] = _with_name(self.objects[same], name)
            self._know(self.objects[same], same)
            return same, True
        facts = self.ctx.facts(file)
        if facts is None:
            return None, False
        if self.params.load.second_libc_is_ldso and _is_libc(facts):
            # musl load_library: "Avoid the danger of getting two versions of libc mapped"
            itself = self.ldso_itself()
            return itself, itself is not None
        return self.append(self.found(result.path, file, facts, name, requester)), False

    def found(
        self, path: str, file: str, facts: ElfFacts, name: str, requester: int
    ) -> LoadedObject:
        """The image's one LoadedObject of a file found as `path` for `name` (immutable, so
        every process that loads it so holds the same one)."""
        key = (path, file, name, requester)
        obj = self.ctx.loaded.get(key)
        if obj is None:
            obj = self.ctx.loaded[key] = LoadedObject(path, file, facts, (name,), requester)
        return obj

    def add_resolution(
        self,
        requester: int,
        name: str,
        steps: tuple[SearchStep, ...],
        found: int | None,
        preload: Rule | None,
        *,
        fatal: str | None = None,
        reused: bool = False,
    ) -> None:
        self.resolve(requester, name, steps, found, reused, fatal, preload is not None)

    def resolve(
        self,
        requester: int,
        name: str,
        steps: tuple[SearchStep, ...],
        found: int | None,
        reused: bool = False,
        fatal: str | None = None,
        preload: bool = False,
        fragile: bool = False,
        *,
        auxiliary: bool = False,
    ) -> None:
        """Append the Resolution of these fields: the image's one such (ctx.resolutions).
        The steps count by identity: the Resolution kept holds them, so no other tuple can
        have their id while the key is there."""
        key = (requester, name, id(steps), found, reused, fatal, preload, fragile, auxiliary)
        known = self.ctx.resolutions.get(key)
        if known is None:
            known = self.ctx.resolutions[key] = Resolution(
                requester, name, steps, found, reused, fatal, preload, fragile, auxiliary
            )
        self.resolutions.append(known)


def build_process(
    ctx: LoaderContext,
    params: ProcessParams,
    main: MainObject,
    searcher: Searcher = search,
    key_of: KeyOf = no_key,
) -> Process:
    """Load `main`, its preloads, then every DT_NEEDED breadth-first. `key_of` is the
    searcher's C library's search_key."""
    builder = _Builder(ctx, params, searcher, key_of, pending_rtld=main.interpreter)
    main_file = ctx.resolve(main.path) or main.path
    builder.append(LoadedObject(main.path, main_file, main.facts, (main.path,), None))
    for name, rule in main.preloads:
        builder.load(0, name, preload=rule)
    index = 0
    while index < len(builder.objects):
        builder.load_dependencies(index)
        index += 1
    if builder.pending_rtld is not None and params.load.ldso_always_global:
        builder.add_rtld()  # musl's loader is libc: its symbols are always global
    # glibc (rtld.c dl_main): ld.so is taken out of the search list unless a DT_NEEDED
    # names it, so an unneeded ld.so defines nothing (`__tls_get_addr`) for the process.
    return Process(
        tuple(builder.objects),
        _reported(params, main, builder.resolutions),
        params.libc,
        params.secure,
        tuple(builder.warnings),
    )


def _reported(
    params: ProcessParams, main: MainObject, resolutions: list[Resolution]
) -> tuple[Resolution, ...]:
    """The resolutions, a library without DT_NEEDED's preload dependencies made no error:
    ld.so's trace of it says "statically linked" (rtld.c), the loader's verdict for it."""
    hides = params.load.needless_trace_hides_deps
    if not hides or main.facts.needed or main.facts.kind != FileKind.SHARED:
        return tuple(resolutions)
    return tuple(replace(r, auxiliary=True) if _faked(r) else r for r in resolutions)


def _faked(res: Resolution) -> bool:
    """A name trace mode fakes (_dl_map_object: fd -1 under trace): not found, not fatal."""
    return res.missing and res.fatal is None and not res.preload


def _is_libc(facts: ElfFacts) -> bool:
    """musl's test for a C library (glibc's or musl's): it defines both symbols."""
    return "__libc_start_main" in facts.defined and "stdin" in facts.defined


def _with_name(obj: LoadedObject, name: str) -> LoadedObject:
    if name in obj.names:
        return obj
    return LoadedObject(obj.path, obj.file, obj.facts, (*obj.names, name), obj.loader)


def _abs(ctx: LoaderContext, path: str) -> str:
    return path if path.startswith("/") else ctx.working_dir.rstrip("/") + "/" + path
