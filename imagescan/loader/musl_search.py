"""musl's library search (ldso/dynlink.c `load_library`, `path_open`, `fixup_rpath`).

LD_LIBRARY_PATH comes first; DT_RUNPATH and DT_RPATH are treated alike and inherited along
the chain of who needed whom; then the path file or the built-in default. The libc names
map to the loader itself. The first file that opens is the one used (LOADER.md 3.9).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from imagescan.elf.model import LdsoDefaults
from imagescan.loader.context import MUSL_ARCH, LoaderContext
from imagescan.loader.model import LoadedObject, Outcome, Rule, SearchStep
from imagescan.loader.musl import (
    MUSL_PATH_BUF,
    NAME_MAX,
    musl_libc_alias,
    musl_path_file,
    musl_sys_path,
)
from imagescan.loader.search import ProcessParams, SearchResult, try_candidates


def musl_params(ctx: LoaderContext, loader_path: str, secure: bool) -> ProcessParams:
    """The system path from <prefix>/etc/ld-musl-ARCH.path, or musl's default."""
    arch = MUSL_ARCH.get(ctx.target.machine, "x86_64")
    path_file = musl_path_file(loader_path, arch)
    content = ctx.rootfs.kept.get(path_file)
    if content is None and ctx.regular_file(path_file) is not None:
        content = b""  # present but not kept (too large): treat as unreadable, as musl does
    dirs = musl_sys_path(content)
    return ProcessParams(LdsoDefaults(dirs, ""), secure, musl=True, interpreter=loader_path)


def musl_search(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchResult:
    """Where musl's loader finds `name` for object `requester`."""
    if musl_libc_alias(name) and params.interpreter:
        step = SearchStep(params.interpreter, Rule.MUSL_LIBC, Outcome.FOUND)
        return SearchResult((step,), path=params.interpreter)
    # musl checks no class or machine: a file that opens but cannot be mapped makes
    # map_library fail, and load_library gives up there.
    candidates = _candidates(ctx, params, objects, requester, name)
    return try_candidates(ctx, candidates, skipped_is_fatal=True)


def _candidates(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> Iterator[tuple[str, Rule, str | None]]:
    if "/" in name:
        yield name, Rule.SLASH, None
        return
    if len(name) > NAME_MAX:
        return  # load_library: a longer name is not searched at all
    llp = None if params.secure else ctx.env.get("LD_LIBRARY_PATH")
    if llp:
        yield from _in_dirs(_split(llp), name, Rule.LD_LIBRARY_PATH, None)
    index: int | None = requester
    while index is not None:
        obj = objects[index]
        dirs = _rpath_dirs(ctx, obj, index == 0, params.secure)
        yield from _in_dirs(dirs, name, Rule.RPATH, obj.path)
        index = obj.loader
    yield from _in_dirs(params.ldso.system_dirs, name, Rule.MUSL_PATH, None)


def _rpath_dirs(ctx: LoaderContext, obj: LoadedObject, is_main: bool, secure: bool) -> list[str]:
    """fixup_rpath: RUNPATH if present else RPATH; any '$' but $ORIGIN voids the whole path."""
    text = obj.facts.runpath if obj.facts.runpath is not None else obj.facts.rpath
    if not text:
        return []
    plain = text.replace("${ORIGIN}", "").replace("$ORIGIN", "")
    if "$" in plain or ("$" in text and secure):
        return []
    base = ctx.resolve(obj.file) or obj.file if is_main else obj.path
    origin = base.rsplit("/", 1)[0] or "/"
    return _split(text.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))


def _split(text: str) -> list[str]:
    return [d for d in re.split(r"[:\n]", text) if d]


def _in_dirs(
    dirs: Sequence[str], name: str, rule: Rule, owner: str | None
) -> Iterator[tuple[str, Rule, str | None]]:
    for directory in dirs:
        # path_open: snprintf(buf, 512, "%.*s/%s", dir, name) must fit, else the directory
        # is passed over (the directory as written, trailing '/' and all)
        if len(directory) + 1 + len(name) < MUSL_PATH_BUF:
            yield f"{directory.rstrip('/')}/{name}", rule, owner
