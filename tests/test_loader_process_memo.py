"""imagescan.loader.process: the memo of searches by the requester's key (CLibrary.search_key)
and the interned resolutions and loaded objects give the processes built without them, on
every corpus image."""

from __future__ import annotations

import pytest

from imagescan.analyze import elf_files
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.loader import setup
from imagescan.loader.libc_glibc import Glibc
from imagescan.loader.model import Process
from imagescan.loader.search import search_key as glibc_key
from imagescan.loader.session import LoaderSession
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs
from tests.conftest import CORPUS, CORPUS_IMAGES
from tests.loader_factories import (
    config,
    context,
    glibc_params,
    glibc_tree,
    library,
    load_order,
    program,
    resolved,
)
from tests.loader_factories import process as process_of


def processes(rootfs: RootFS, config: object) -> dict[str, Process]:
    """Every dynamic ELF file's process, in one session (its memos shared by all)."""
    session = LoaderSession(setup.make_context(rootfs, config, None))  # type: ignore[arg-type]
    built = {}
    for path, entry, facts in elf_files(rootfs):
        loader = session.loader_of(facts)
        if facts.is_static or loader is None or session.target_for(facts) is None:
            continue
        if session.ctx.regular_file(loader) is not None:
            built[path] = session.process(path, entry, facts, loader)
    return built


@pytest.mark.usefixtures("corpus_dir")  # skipped where no corpus is beside the checkout
@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_processes_are_those_built_without_the_memo(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = open_image(f"oci-dir:{CORPUS / 'oci'}:{name}", SourceOptions())
    try:
        rootfs = read_rootfs(image)
    finally:
        image.close()
    memoised = processes(rootfs, image.config)
    monkeypatch.setattr(Glibc, "search_key", lambda *_: None)
    assert processes(rootfs, image.config) == memoised
    assert memoised  # every corpus image has dynamic programs
    # one Resolution per value (its steps by identity: they come from the memos); those a
    # trace of a library without DT_NEEDED marks auxiliary are copies (process._reported)
    interned: dict[tuple[object, ...], int] = {}
    for process in memoised.values():
        for r in (r for r in process.resolutions if not r.auxiliary):
            key = (r.requester, r.name, id(r.steps), r.found, r.reused, r.fatal, r.fragile)
            assert interned.setdefault((*key, r.preload, r.auxiliary), id(r)) == id(r), r
    # one LoadedObject per (path, file, name, loader) found by a search (process.found)
    objects: dict[tuple[object, ...], int] = {}
    for process in memoised.values():
        for obj in (o for o in process.objects[1:] if len(o.names) == 1):
            key = (obj.path, obj.file, obj.names, obj.loader, id(obj.facts))
            assert objects.setdefault(key, id(obj)) == id(obj), obj


def origin_tree() -> RootFS:
    """libX.so has DT_RUNPATH $ORIGIN/../deps, and one file under two directories:
    /opt/b/lib/libX.so is a symlink to /opt/a/lib/libX.so, and only /opt/a/deps holds
    libY.so."""
    tree = glibc_tree()
    tree.file("/opt/a/bin/app", program(["libX.so"], runpath="/opt/a/lib"))
    tree.file("/opt/b/bin/app", program(["libX.so"], runpath="/opt/b/lib"))
    tree.file("/opt/a/lib/libX.so", library("libX.so", ["libY.so"], runpath="$ORIGIN/../deps"))
    tree.file("/opt/a/deps/libY.so", library("libY.so"))
    tree.link("/opt/b/lib/libX.so", "/opt/a/lib/libX.so")
    return tree.dir("/opt/b/deps").rootfs()


def test_a_runpath_requesters_searches_are_keyed_by_the_path_it_was_found_at() -> None:
    """$ORIGIN is the directory an object was found in, symlinks not resolved (LOADER.md
    case E): the same file found as /opt/b/lib/libX.so does not find what it finds as
    /opt/a/lib/libX.so, whichever process searched first (issue 14: such a requester's
    searches are memoised by its key)."""
    ctx = context(origin_tree())
    built = processes(ctx.rootfs, config())  # one session: its memos shared by all
    first, second = built["/opt/a/bin/app"], built["/opt/b/bin/app"]
    assert resolved(first)["libY.so"] == "/opt/a/lib/../deps/libY.so"
    assert resolved(second)["libX.so"] == "/opt/b/lib/libX.so"
    assert resolved(second)["libY.so"] is None
    assert process_of(context(origin_tree()), "/opt/b/bin/app") == second  # as built alone
    params, objects = glibc_params(ctx), list(second.objects)
    keys = {glibc_key(ctx, params, list(p.objects), 1) for p in (first, second)}
    assert all(len(k or ()) == 5 for k in keys)
    assert len(keys) == 2 and None not in keys
    # the main program and the same object as a library: their $ORIGIN and secure-mode
    # limits differ (search._origin, _secure), so their keys do too
    assert glibc_key(ctx, params, objects, 0) != glibc_key(ctx, params, objects[:1] * 2, 1)


def test_processes_of_one_session_share_the_objects_they_load_alike() -> None:
    """Two programs that load libX.so (and, through it, libY.so) by the same names from
    the same requesters hold the same objects; each process is the one built alone."""
    tree = glibc_tree()
    tree.file("/usr/bin/a", program(["libX.so"]))
    tree.file("/usr/bin/b", program(["libX.so"]))
    tree.file("/usr/bin/c", program(["libc.so.6", "libX.so"]))
    tree.file("/usr/lib/libX.so", library("libX.so", ["libY.so"]))
    tree.file("/usr/lib/libY.so", library("libY.so"))
    built = processes(context(tree.rootfs()).rootfs, config())
    a, b, c = (built[f"/usr/bin/{name}"] for name in "abc")
    assert load_order(a)[1:3] == ["/usr/lib/libX.so", "/usr/lib/libY.so"]
    assert all(x is y for x, y in zip(a.objects[1:], b.objects[1:], strict=True))
    # libX.so is the second object c loads: another requester index, another object
    libx = next(o for o in c.objects if o.file == "/usr/lib/libX.so")
    assert libx.loader == 0 and libx == a.objects[1] and libx is a.objects[1]
    liby = next(o for o in c.objects if o.file == "/usr/lib/libY.so")
    assert liby.loader != a.objects[2].loader and liby != a.objects[2]
    for name, proc in (("a", a), ("b", b), ("c", c)):
        assert process_of(context(tree.rootfs()), f"/usr/bin/{name}") == proc


def test_no_runpath_requester_is_keyed_under_ld_library_path() -> None:
    """LD_LIBRARY_PATH comes before DT_RUNPATH and has $ORIGIN of the main program."""
    ctx = context(origin_tree(), config("LD_LIBRARY_PATH=/opt/a/deps"))
    objects = list(process_of(ctx, "/opt/a/bin/app").objects)
    assert glibc_key(ctx, glibc_params(ctx), objects, 1) is None
