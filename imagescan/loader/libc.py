"""What varies by C library (issue 8): one `CLibrary` interface, one implementation each.

A `CLibrary` answers what its loader does differently: the process parameters it takes
from the image and the file, where it finds a name for a requester, what it preloads, how
it binds symbols, and which checks its loader makes. Nothing outside the implementations
asks which C library it is dealing with; adding one (bionic, say) is one module and one
entry in `C_LIBRARIES`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from imagescan.loader.context import LoaderContext, SearchKey
from imagescan.loader.model import (
    LibC,
    LoadedObject,
    ProcessParams,
    Rule,
    SearchResult,
    Target,
)
from imagescan.machines import Machine


class LoaderCheck(enum.StrEnum):
    """Checks a loader makes beyond finding libraries and binding symbols."""

    VERSIONS = "versions"  # glibc dl-version.c: every Verneed at start
    DT_RELR = "dt-relr"  # glibc >= 2.36: DT_RELR needs GLIBC_ABI_DT_RELR
    LD_CACHE = "ld-cache"  # the image's ld.so.cache is what the loader reads
    NSS = "nss"  # libc loads NSS modules named in /etc/nsswitch.conf
    OWN_HEADER = "own-header"  # open_verify and the mapping checks of the object itself
    PROTECTED = "protected"  # copy relocations against protected data (dl-lookup.c)


@dataclass(frozen=True, slots=True)
class BindingRules:
    """How a loader binds symbols. glibc: version names decide (check_match) and PLT slots
    bind on first call unless BIND_NOW; musl: version names are ignored (find_sym2 only
    skips hidden definitions) and every relocation is processed at start."""

    versions: bool
    lazy: bool


class CLibrary(Protocol):
    """One C library's loader rules (LOADER.md 3 for glibc, 3.9 for musl)."""

    libc: LibC
    binding: BindingRules
    checks: frozenset[LoaderCheck]

    def owns(self, interpreter: str) -> bool:
        """Whether a PT_INTERP names this C library's loader."""
        ...

    def default_loaders(self, machine: Machine) -> tuple[str, ...]:
        """Where the image keeps this loader for `machine`, most usual first."""
        ...

    def params(
        self, ctx: LoaderContext, interpreter: str, secure: bool, target: Target | None = None
    ) -> ProcessParams:
        """The process parameters of a program started by `interpreter`, running as
        `target` (default: the image's CPU and ABI)."""
        ...

    def preloads(self, ctx: LoaderContext, params: ProcessParams) -> tuple[tuple[str, Rule], ...]:
        """What the loader loads before the program's dependencies, and why."""
        ...

    def search(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
        name: str,
    ) -> SearchResult:
        """Where the loader finds `name` when object `requester` needs it."""
        ...

    def search_key(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
    ) -> SearchKey | None:
        """A key under which `search` finds a name (without '/') alike for every requester
        with that key, in whatever process (the memo `ctx.plain_searches`), or None when
        the requester's own place in its process counts."""
        ...
