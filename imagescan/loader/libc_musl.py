"""musl's loader as a `CLibrary`: its path file, LD_LIBRARY_PATH first, RPATH and RUNPATH
alike and inherited, no cache, no version checks, every relocation at start (LOADER.md 3.9)."""

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
from imagescan.loader.musl import is_musl_interpreter
from imagescan.loader.musl_search import musl_params, musl_search
from imagescan.machines import Machine


class Musl:
    """musl libc's dynamic linker (ldso/dynlink.c)."""

    libc = LibC.MUSL
    binding = BindingRules(versions=False, lazy=False)
    checks: frozenset[LoaderCheck] = frozenset()

    def owns(self, interpreter: str) -> bool:
        return is_musl_interpreter(interpreter)

    def default_loaders(self, machine: Machine) -> tuple[str, ...]:
        return (f"/lib/ld-musl-{machine.musl_arch}.so.1",) if machine.musl_arch else ()

    def params(
        self, ctx: LoaderContext, interpreter: str, secure: bool, target: Target | None = None
    ) -> ProcessParams:
        return musl_params(ctx, interpreter, secure, target)

    def preloads(self, ctx: LoaderContext, params: ProcessParams) -> tuple[tuple[str, Rule], ...]:
        """__dls3 reads LD_PRELOAD, not at all in secure mode, and no ld.so.preload."""
        if params.secure:
            return ()
        return tuple(
            (p, Rule.PRELOAD) for p in setup.env_preloads(ctx.env.get("LD_PRELOAD"), False)
        )

    def search(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
        name: str,
    ) -> SearchResult:
        return musl_search(ctx, params, objects, requester, name)

    def search_key(
        self,
        ctx: LoaderContext,
        params: ProcessParams,
        objects: Sequence[LoadedObject],
        requester: int,
    ) -> SearchKey | None:
        """None: musl's searches are memoised by their plan (run_plan), not here."""
        return None


MUSL = Musl()
