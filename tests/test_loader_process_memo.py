"""imagescan.loader.process: the memo of searches by the requester's key (CLibrary.search_key)
and the interned resolutions give the processes built without them, on every corpus image."""

from __future__ import annotations

import pytest

from imagescan.analyze import elf_files
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.loader import setup
from imagescan.loader.libc_glibc import Glibc
from imagescan.loader.model import Process
from imagescan.loader.session import LoaderSession
from imagescan.rootfs.model import RootFS
from imagescan.rootfs.reader import read_rootfs
from tests.conftest import CORPUS, CORPUS_IMAGES


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
