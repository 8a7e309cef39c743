"""Values the loader emulation produces: search steps, resolutions, the process it builds."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from imagescan.elf.model import ElfFacts


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
    auxiliary: bool = False  # a DT_AUXILIARY filtee: not finding it is no error

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
    musl: bool = False
    secure: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def main(self) -> LoadedObject:
        return self.objects[0]
