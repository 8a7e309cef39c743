"""Values the loader emulation produces: search steps, resolutions, the process it builds."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from imagescan.elf.model import ElfFacts, LdsoDefaults
from imagescan.loader.access import Creds
from imagescan.loader.ldcache import LegacyHwcap


class LibC(enum.StrEnum):
    """The C library whose loader builds a process (one `CLibrary` implementation each)."""

    GLIBC = "glibc"
    MUSL = "musl"


@dataclass(frozen=True)
class Target:
    """The CPU the verdict is for: machine, class, byte order, glibc-hwcaps preference."""

    machine: int
    elf_class: int
    little_endian: bool = True
    hwcaps: tuple[str, ...] = ()  # glibc-hwcaps subdirectory names, best first
    platform: str | None = "x86_64"
    legacy_hwcaps: tuple[str, ...] = ("x86_64",)  # HWCAP_IMPORTANT names, glibc <= 2.36
    cpu: str = "x86-64"  # the CPU model's name (machines.CPU_MODELS)


class Rule(enum.StrEnum):
    """Why a directory was searched, in LD_DEBUG's words where it has them."""

    SLASH = "NEEDED with '/'"
    RPATH = "RPATH"
    LD_LIBRARY_PATH = "LD_LIBRARY_PATH"
    RUNPATH = "RUNPATH"
    CACHE = "ld.so.cache"
    DEFAULT = "system search path"
    MUSL_PATH = "musl path file"
    MUSL_DEFAULT = "musl default path"
    MUSL_LIBC = "musl libc alias"
    LOADED = "already loaded"
    PRELOAD = "LD_PRELOAD"
    PRELOAD_FILE = "/etc/ld.so.preload"


class Outcome(enum.StrEnum):
    """What happened when the loader tried one candidate path."""

    ABSENT = "absent"
    DENIED = "cannot open"  # the file is there but open() fails: EACCES (go on), ELOOP
    SKIPPED = "skipped"  # wrong class or machine: the search goes on (open_verify)
    FATAL = "fatal"  # a candidate the loader cannot use and stops at
    FOUND = "found"


@dataclass(frozen=True, slots=True)
class SearchStep:
    """One candidate path tried, why it was tried, and what came of it."""

    path: str
    rule: Rule
    outcome: Outcome
    owner: str | None = None  # whose RPATH/RUNPATH put the directory there
    detail: str | None = None  # the loader's message for SKIPPED/FATAL


@dataclass(frozen=True, slots=True)
class LoadedObject:
    """An object in the process. `path` is spelled as ld.so prints it (the search dir plus the
    name, not symlink-resolved: `_dl_new_object` realname); `file` is the rootfs path of the
    regular file it reads. `loader` is the index of the object that loaded it (l_loader)."""

    path: str
    file: str
    facts: ElfFacts
    names: tuple[str, ...]
    loader: int | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one NEEDED (or preload) name of one object was resolved, or why not."""

    requester: int
    name: str
    steps: tuple[SearchStep, ...]
    found: int | None  # index in Process.objects
    reused: bool = False  # matched an object already loaded (by name, SONAME or same file)
    fatal: str | None = None  # the loader's error when a candidate was fatal
    preload: bool = False
    fragile: bool = False  # reused, but the requester's own search would not find it
    # Not finding it is no error: a DT_AUXILIARY filtee, or a preload's dependency in the
    # trace of a library without DT_NEEDED (LoadRules.needless_trace_hides_deps)
    auxiliary: bool = False

    @property
    def missing(self) -> bool:
        return self.found is None


@dataclass(frozen=True)
class Process:
    """The process the loader would build for one main object.

    `objects` are in load order (main, preloads, then breadth-first): the global scope.
    """

    objects: tuple[LoadedObject, ...]
    resolutions: tuple[Resolution, ...]
    libc: LibC = LibC.GLIBC
    secure: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def main(self) -> LoadedObject:
        return self.objects[0]


@dataclass(frozen=True, slots=True)
class LoadRules:
    """What a C library's loader maps besides DT_NEEDED, and its own place in the scope.
    glibc maps DT_FILTER/DT_AUXILIARY filtees (dl-deps.c) and leaves an unneeded ld.so out
    of the symbol scope (rtld.c dl_main); musl ignores filters (decode_dyn) and, being
    libc itself, is always in the global scope. glibc knows a loaded object by its names
    and its DT_SONAME (`_dl_lookup_map`); musl only by its shortname, the basename of the
    path a search found it as (load_library), and answers a second libc (a file defining
    __libc_start_main and stdin) with itself."""

    filtees: bool = True
    ldso_always_global: bool = False
    by_soname: bool = True
    second_libc_is_ldso: bool = False
    # glibc's trace of an object without DT_NEEDED prints "statically linked" instead of
    # its list (rtld.c dl_main), so no missing dependency of its preloads is reported.
    needless_trace_hides_deps: bool = True


GLIBC_LOAD = LoadRules()
MUSL_LOAD = LoadRules(
    filtees=False,
    ldso_always_global=True,
    by_soname=False,
    second_libc_is_ldso=True,
    needless_trace_hides_deps=False,
)


@dataclass(frozen=True)
class ProcessParams:
    """Per-process inputs: the ld.so's compiled-in defaults and secure mode (AT_SECURE)."""

    ldso: LdsoDefaults
    secure: bool = False
    libc: LibC = LibC.GLIBC
    interpreter: str | None = None
    # glibc <= 2.36 only: the tls/, x86_64/, haswell/ ... subdirectories and which legacy
    # hwcap cache entries it accepts (2.37 removed both).
    legacy_subdirs: tuple[str, ...] = ()
    legacy_hwcap: LegacyHwcap | None = None
    # The CPU and ABI the process runs as, when not the image's (an i386 program in an
    # amd64 image); None: the image's target.
    target: Target | None = None
    load: LoadRules = GLIBC_LOAD
    # The effective ids the loader opens files with (a set-user-ID program's owner);
    # None: the image User's.
    creds: Creds | None = None
    # glibc's __RTLD_SECURE search of a preload in secure mode: no ld.so.cache, and only
    # set-user-ID files are used (dl-load.c open_path)
    setuid_only: bool = False


@dataclass(frozen=True)
class SearchResult:
    """The candidates tried; `path` is the realname of the file found, `fatal` the error."""

    steps: tuple[SearchStep, ...]
    path: str | None = None
    fatal: str | None = None


@dataclass(frozen=True, slots=True)
class SearchSegment:
    """Directories searched for one reason, in order (`owner`: whose RPATH/RUNPATH).

    A segment with rule CACHE and no directories stands for the ld.so.cache lookup."""

    rule: Rule
    owner: str | None
    dirs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """Everything one search for `name` depends on, as the walk of the loader's rules found
    it (DSTs expanded): the memo key of the search, so the walk is made once per search."""

    name: str
    segments: tuple[SearchSegment, ...]
    nodeflib: bool = False
