"""glibc's loader as a `CLibrary`: ld.so's compiled-in defaults, ld.so.cache, glibc-hwcaps,
LD_PRELOAD and /etc/ld.so.preload, symbol versions and lazy binding (LOADER.md 3.1-3.8)."""

from __future__ import annotations

from collections.abc import Sequence

from imagescan.loader import setup
from imagescan.loader.context import LoaderContext, SearchKey
from imagescan.loader.libc import BindingRules, LoaderCheck
from imagescan.loader.model import (
    LibC,
    LoadedObject,
    ProcessParams,
    Rule,
    SearchResult,
    Target,
)
from imagescan.loader.search import search, search_key
from imagescan.machines import Machine


class Glibc:
    """The GNU C library's ld.so (elf/rtld.c, dl-load.c, dl-version.c, dl-lookup.c)."""

    libc = LibC.GLIBC
    binding = BindingRules(versions=True, lazy=True)
    checks = frozenset(LoaderCheck)

    def owns(self, interpreter: str) -> bool:
        """glibc is the loader of every interpreter no other C library claims."""
        return True

    def default_loaders(self, machine: Machine) -> tuple[str, ...]:
        return machine.glibc_loaders

    def params(
        self, ctx: LoaderContext, interpreter: str, secure: bool, target: Target | None = None
    ) -> ProcessParams:
        ldso = setup.ldso_defaults(ctx, ctx.facts(interpreter), target)
        legacy, legacy_hwcap = setup.legacy_hwcaps(ctx, ldso, target)
        return ProcessParams(
            ldso, secure, LibC.GLIBC, interpreter, legacy, legacy_hwcap, target=target
        )

    def preloads(self, ctx: LoaderContext, params: ProcessParams) -> tuple[tuple[str, Rule], ...]:
        """rtld.c: LD_PRELOAD (slash-free entries only in secure mode), then the
        /etc/ld.so.preload file."""
        env = setup.env_preloads(ctx.env.get("LD_PRELOAD"), params.secure)
        listed = [(p, Rule.PRELOAD) for p in env]
        return (*listed, *((p, Rule.PRELOAD_FILE) for p in ctx.preload_file))

    def search(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
        name: str,
    ) -> SearchResult:
        return search(ctx, params, objects, requester, name)

    def search_key(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
    ) -> SearchKey | None:
        return search_key(ctx, params, objects, requester)


GLIBC = Glibc()
