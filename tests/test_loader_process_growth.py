"""imagescan.loader.process build_process on hostile dependency graphs (issue 15): the work
of building one process grows with the objects it loads, not with their square."""

from __future__ import annotations

import time
from collections.abc import Sequence

from imagescan.elf.model import LdsoDefaults
from imagescan.elf.reader import parse_elf
from imagescan.loader.context import LoaderContext, Target
from imagescan.loader.model import LoadedObject, Outcome, Rule, SearchStep
from imagescan.loader.process import MainObject, build_process
from imagescan.loader.search import ProcessParams, SearchResult
from imagescan.rootfs.model import Entry, EntryType, RootFS
from tests.hostile import dependency_chain

PARAMS = ProcessParams(LdsoDefaults(("/usr/lib",), "lib"))


def in_usr_lib(
    ctx: LoaderContext,
    params: ProcessParams,
    objects: Sequence[LoadedObject],
    requester: int,
    name: str,
) -> SearchResult:
    """The default-directory rule alone (one directory, no RPATH chain to walk)."""
    path = f"/usr/lib/{name}"
    found = ctx.regular_file(path) is not None
    step = SearchStep(path, Rule.DEFAULT, Outcome.FOUND if found else Outcome.ABSENT)
    return SearchResult((step,), path if found else None)


def chain_context(n: int) -> tuple[LoaderContext, MainObject]:
    entries = {
        d: Entry(d, EntryType.DIR, 0, mode=0o755) for d in ("/", "/usr", "/usr/lib", "/usr/bin")
    }
    for number, (path, data) in enumerate(dependency_chain(n), start=1):
        facts = parse_elf(data, path)
        entries[path] = Entry(path, EntryType.FILE, 0, len(data), 0o755, file_id=number, elf=facts)
    ctx = LoaderContext(RootFS(entries, {}), Target(62, 64), {})
    program = entries["/usr/bin/chain"]
    assert program.elf is not None
    return ctx, MainObject(program.path, program.elf)


def build_seconds(n: int) -> float:
    ctx, main = chain_context(n)
    start = time.perf_counter()
    process = build_process(ctx, PARAMS, main, in_usr_lib)
    elapsed = time.perf_counter() - start
    assert len(process.objects) == n + 1
    return elapsed


def test_a_dependency_chain_loads_in_time_linear_in_its_length() -> None:
    """A chain of 500/1,000/2,000 libraries once cost n^2 per process in loaded_match (a
    scan of every loaded object per name). Four times the chain: about four times the work."""
    build_seconds(200)  # warm up
    small = min(build_seconds(1000) for _ in range(3))
    large = min(build_seconds(4000) for _ in range(3))
    assert large < 8 * small, (small, large)


def test_names_already_loaded_match_the_first_object_known_by_them() -> None:
    """_dl_lookup_map: a name that two DT_NEEDED entries share resolves once, to the object
    the first one loaded; its SONAME matches too."""
    ctx, main = chain_context(3)
    process = build_process(ctx, PARAMS, main, in_usr_lib)
    assert [obj.path for obj in process.objects] == [
        "/usr/bin/chain",
        "/usr/lib/libchain0.so",
        "/usr/lib/libchain1.so",
        "/usr/lib/libchain2.so",
    ]
    assert all(r.found is not None for r in process.resolutions)
