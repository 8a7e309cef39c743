"""musl's library search (ldso/dynlink.c `load_library`, `path_open`, `fixup_rpath`).

LD_LIBRARY_PATH comes first; DT_RUNPATH and DT_RPATH are treated alike and inherited along
the chain of who needed whom; then the path file or the built-in default. The libc names
map to the loader itself. The first file that opens is the one used (LOADER.md 3.9).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from imagescan.elf.model import LdsoDefaults
from imagescan.loader.candidates import OpenFailure, run_plan
from imagescan.loader.context import LoaderContext
from imagescan.loader.model import (
    MUSL_LOAD,
    LibC,
    LoadedObject,
    Outcome,
    ProcessParams,
    Rule,
    SearchPlan,
    SearchResult,
    SearchSegment,
    SearchStep,
    Target,
)
from imagescan.loader.musl import (
    MUSL_PATH_BUF,
    NAME_MAX,
    musl_libc_alias,
    musl_path_file,
    musl_sys_path,
)
from imagescan.machines import by_elf


def musl_params(
    ctx: LoaderContext, loader_path: str, secure: bool, target: Target | None = None
) -> ProcessParams:
    """The system path from <prefix>/etc/ld-musl-ARCH.path, or musl's default."""
    run_as = target or ctx.target
    row = by_elf(run_as.machine, run_as.elf_class, run_as.little_endian)
    arch = row.musl_arch if row is not None and row.musl_arch else "x86_64"
    path_file = musl_path_file(loader_path, arch)
    content = ctx.rootfs.kept.get(path_file)
    if content is None and ctx.regular_file(path_file) is not None:
        content = b""  # present but not kept (too large): treat as unreadable, as musl does
    dirs = musl_sys_path(content)
    ldso = LdsoDefaults(dirs, "")
    return ProcessParams(
        ldso, secure, LibC.MUSL, interpreter=loader_path, target=target, load=MUSL_LOAD
    )


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
    plan = musl_plan(ctx, params, objects, requester, name)
    # musl checks no class or machine: a file that opens but cannot be mapped makes
    # map_library fail, and load_library gives up there; an open() error other than
    # ENOENT/ENOTDIR/EACCES/ENAMETOOLONG (ELOOP) makes path_open return -2, no more search.
    return run_plan(
        ctx, params, plan, _in_dir, _no_cache, skipped_is_fatal=True,
        open_failure=OpenFailure.SEARCH,
    )  # fmt: skip


def musl_plan(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchPlan:
    """load_library's order: LD_LIBRARY_PATH, the RPATH/RUNPATH chain, the system path."""
    if "/" in name:
        return SearchPlan(name, (SearchSegment(Rule.SLASH, None, (name,)),))
    if len(name) > NAME_MAX:
        return SearchPlan(name, ())  # load_library: a longer name is not searched at all
    segments: list[SearchSegment] = []
    llp = None if params.secure else ctx.env.get("LD_LIBRARY_PATH")
    if llp:
        segments.append(SearchSegment(Rule.LD_LIBRARY_PATH, None, tuple(_split(llp))))
    index: int | None = requester
    while index is not None:
        obj = objects[index]
        dirs = _rpath_dirs(ctx, obj, index == 0, params.secure)
        segments.append(SearchSegment(Rule.RPATH, obj.path, tuple(dirs)))
        index = obj.loader
    segments.append(SearchSegment(Rule.MUSL_PATH, None, params.ldso.system_dirs))
    return SearchPlan(name, tuple(s for s in segments if s.dirs))


def _rpath_dirs(ctx: LoaderContext, obj: LoadedObject, is_main: bool, secure: bool) -> list[str]:
    """fixup_rpath: RUNPATH if present else RPATH; any '$' but $ORIGIN voids the whole path.

    In secure mode only the kernel-mapped main program's $ORIGIN path is refused ("For
    libraries, however, $ORIGIN can be processed safely"), and a relative library origin."""
    text = obj.facts.runpath if obj.facts.runpath is not None else obj.facts.rpath
    if not text:
        return []
    plain = text.replace("${ORIGIN}", "").replace("$ORIGIN", "")
    if "$" in plain or ("$" in text and secure and is_main):
        return []
    if "$" not in text:
        return _split(text)
    base = ctx.resolve(obj.file) or obj.file if is_main else obj.path
    origin = base.rsplit("/", 1)[0] if "/" in base else "."
    if secure and not base.startswith("/"):
        return []  # "Disallow non-absolute origins for suid/sgid/AT_SECURE"
    return _split(text.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))


def _split(text: str) -> list[str]:
    return [d for d in re.split(r"[:\n]", text) if d]


def _in_dir(directory: str, name: str) -> Iterator[str]:
    # path_open: snprintf(buf, 512, "%.*s/%s", dir, name) must fit, else the directory is
    # passed over (the directory as written, trailing '/' and all)
    if len(directory) + 1 + len(name) < MUSL_PATH_BUF:
        yield f"{directory.rstrip('/')}/{name}"


def _no_cache(name: str) -> Iterator[str]:
    return iter(())
