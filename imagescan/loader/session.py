"""The loader's public front end for one image (issue 8): which loader starts a file, the
process it builds for it, and what it finds when an object asks for a name at run time.

Everything that varies by C library is asked of the `CLibrary` the file's interpreter
names; `checks/` judge the processes this module builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from imagescan.elf.model import ElfFacts
from imagescan.loader.access import Creds
from imagescan.loader.context import LoaderContext
from imagescan.loader.libc import CLibrary
from imagescan.loader.model import (
    LoadedObject,
    Process,
    ProcessParams,
    Rule,
    SearchResult,
    Target,
)
from imagescan.loader.process import MainObject, build_process
from imagescan.loader.registry import C_LIBRARIES, c_library_for
from imagescan.loader.setup import compat_target, target_machine
from imagescan.rootfs.model import Entry


@dataclass
class LoaderSession:
    """One image's loaders: `default_loader` is the image's own for its architecture (glibc's
    first, then musl's), used for files without PT_INTERP (shared objects)."""

    ctx: LoaderContext
    default_loader: str | None = field(init=False)
    bind_now_env: bool = field(init=False)
    # (loader, secure mode, target, creds) -> the process parameters, made once each
    _params: dict[tuple[str, bool, Target | None, Creds], ProcessParams] = field(
        init=False, default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self.default_loader = _default_loader(self.ctx)
        self.bind_now_env = bool(self.ctx.env.get("LD_BIND_NOW"))

    def target_for(self, facts: ElfFacts) -> Target | None:
        """The CPU and ABI `facts` runs as: the image's; another architecture the platform
        runs natively when the image has its loader (i386 on x86-64, issue 9); else None
        (foreign)."""
        image = self.ctx.target
        if facts.machine == image.machine and facts.elf_class == image.elf_class:
            return image
        other = compat_target(self.ctx, facts)
        if other is None or not (facts.interpreter or _default_loader(self.ctx, other)):
            return None
        return other

    def loader_of(self, facts: ElfFacts) -> str | None:
        """The loader that would start `facts`: its PT_INTERP, else the image's default for
        the file's architecture."""
        if facts.interpreter:
            return facts.interpreter
        target = self.target_for(facts)
        if target is None or target is self.ctx.target:
            return self.default_loader
        return _default_loader(self.ctx, target)

    def c_library(self, loader_path: str) -> CLibrary:
        """The C library whose loader `loader_path` is."""
        return c_library_for(loader_path)

    def image_c_library(self) -> CLibrary | None:
        """The C library of the image's default loader (None: the image has no loader)."""
        return c_library_for(self.default_loader) if self.default_loader else None

    def params(self, entry: Entry, loader_path: str) -> ProcessParams:
        """The process parameters of `loader_path` for the main file `entry` (its set-id
        bits and capabilities decide secure mode). Made once for each value: the same
        object for every process with those parameters (the searches' memo keys)."""
        secure = is_secure(entry, self.ctx.run_ids)
        run_as = self._run_as(entry.elf)
        creds = effective_creds(entry, self.ctx.run_ids, self.ctx.run_groups)
        key = (loader_path, secure, run_as, creds)
        params = self._params.get(key)
        if params is None:
            made = self.c_library(loader_path).params(self.ctx, loader_path, secure, run_as)
            params = self._params[key] = replace(made, creds=creds)
        return params

    def _run_as(self, facts: ElfFacts | None) -> Target | None:
        """The process's own target when it is not the image's (None: the image's)."""
        target = self.target_for(facts) if facts is not None else None
        return None if target is None or target is self.ctx.target else target

    def process(
        self,
        path: str,
        entry: Entry,
        facts: ElfFacts,
        loader_path: str,
        extra_preloads: tuple[str, ...] = (),
    ) -> Process:
        """The process `loader_path` builds for `path`; `extra_preloads` are loaded first
        (a plugin inside its host, as `LD_PRELOAD=plugin host` does)."""
        lib = self.c_library(loader_path)
        params = self.params(entry, loader_path)
        preloads = ((p, Rule.PRELOAD) for p in extra_preloads)
        main = MainObject(
            path, facts, _rtld(self.ctx, loader_path), (*preloads, *lib.preloads(self.ctx, params))
        )
        return build_process(self.ctx, params, main, lib.search, lib.search_key)

    def search_from(
        self, program: str, process: Process, requester: int, name: str
    ) -> SearchResult | None:
        """Where the loader of `program`'s process finds `name` when object `requester` asks
        for it by name at run time (dlopen: the requester's RPATH/RUNPATH, LD_LIBRARY_PATH,
        the cache, the defaults). None when `program` has no usable loader."""
        entry = self.ctx.regular_file(program)
        loader_path = self.loader_of(entry.elf) if entry is not None and entry.elf else None
        if entry is None or loader_path is None:
            return None
        params = self.params(entry, loader_path)
        return self.c_library(loader_path).search(
            self.ctx, params, process.objects, requester, name
        )


def is_secure(entry: Entry, run_ids: tuple[int, int]) -> bool:
    """AT_SECURE: setuid to another user, setgid to another group, or file capabilities."""
    uid, gid = run_ids
    if entry.mode & 0o4000 and entry.uid != uid:
        return True
    if entry.mode & 0o2000 and entry.gid != gid:
        return True
    return entry.has_caps and uid != 0


def effective_creds(entry: Entry, run_ids: tuple[int, int], groups: frozenset[int]) -> Creds:
    """The ids the loader opens libraries with: execve makes a set-user-ID file's owner the
    effective uid and a set-group-ID file's group the effective gid (fs/exec.c)."""
    uid, gid = run_ids
    euid = entry.uid if entry.mode & 0o4000 else uid
    egid = entry.gid if entry.mode & 0o2000 else gid
    return Creds(euid, egid, groups)


def _default_loader(ctx: LoaderContext, target: Target | None = None) -> str | None:
    """The image's own loader for an architecture (default: the image's): glibc's first,
    then musl's."""
    machine = target_machine(ctx, target)
    for lib in C_LIBRARIES.values():
        for path in lib.default_loaders(machine):
            if ctx.regular_file(path) is not None:
                return path
    return None


def _rtld(ctx: LoaderContext, path: str) -> LoadedObject | None:
    """ld.so itself, joined to the process when something needs it by name."""
    facts = ctx.facts(path)
    if facts is None:
        return None
    names = (path,) + ((facts.soname,) if facts.soname else ())
    return LoadedObject(path, ctx.resolve(path) or path, facts, names, None)
