"""The SBOMs' link edges are the processes `imagescan why` shows: for every corpus image, the
edges read back from the SPDX document (parsed by the SPDX project's own parser) and from the
CycloneDX BOM equal the edges taken from `why`'s lines for every process (each node of its
tree, found for its parent), plus each program's PT_INTERP and each plugin's
host as `why` names it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from spdx_tools.spdx.model import RelationshipType
from spdx_tools.spdx.parser.parse_anything import parse_file

from imagescan.linkgraph import FileDigest, Link, LinkGraph, LinkKind, process_links
from imagescan.loader.model import LoadedObject, Process, Resolution
from imagescan.render.cyclonedx import render_cyclonedx
from imagescan.render.spdx import LINK_COMMENT, render_spdx
from imagescan.render.why import explain
from imagescan.rootfs.layer import read_content
from imagescan.scan import Scanned, ScanOptions, scan
from tests.conftest import CORPUS, CORPUS_IMAGES
from tests.render_support import require_corpus
from tests.test_render_cyclonedx import file_components

_HOST = re.compile(r"^(?P<path>/.*): \S+ \(judged inside (?P<host>.*)\)$")


@cache
def scanned(name: str) -> Scanned:
    require_corpus()
    return scan(f"oci-dir:{CORPUS / 'oci'}:{name}", ScanOptions())


def why_links(image: Scanned) -> set[Link]:
    """The edges `why FILE` prints, for every file, resolved to the files they name."""
    analysis = image.analysis

    def file(path: str) -> str:
        return analysis.ctx.resolve(path) or path

    links: set[Link] = set()
    for path, verdict in analysis.verdicts.items():
        process = analysis.processes.get(path)
        lines = list(explain(verdict, process, None))
        links.update(_searches(lines, file, path))
        host = _HOST.match(lines[0])
        if host is not None:
            links.add(Link(path, file(host["host"]), LinkKind.PLUGIN_HOST))
        if process is not None and verdict.interpreter is not None:
            links.add(Link(path, file(verdict.interpreter), LinkKind.INTERPRETER))
    return {link for link in links if link.source != link.target}


_NODE = re.compile(r"^(?P<indent>[│├└─ ]*)\S+ => (?P<path>/\S+)  \[(?P<rule>[^\]]+)\]")
_PRELOAD_RULES = ("LD_PRELOAD", "/etc/ld.so.preload")


def _searches(lines: list[str], resolve: Callable[[str], str], main: str) -> Iterator[Link]:
    """The edges of why's tree: each node is loaded for its parent (the main file at the
    top), found by the rule in brackets."""
    parents = [resolve(main)]
    for line in lines:
        node = _NODE.match(line)
        if node is None:
            continue
        depth = len(node["indent"]) // 4  # 1 for what the main file needs
        del parents[depth:]
        kind = LinkKind.PRELOAD if node["rule"] in _PRELOAD_RULES else LinkKind.NEEDED
        target = resolve(node["path"])
        yield Link(parents[-1], target, kind)
        parents.append(target)


def spdx_links(image: Scanned, tmp_path: Path) -> set[Link]:
    """The link relationships of the SPDX document, as the SPDX parser reads them."""
    document_file = tmp_path / "image.spdx.json"
    document_file.write_text(render_spdx(image.report), encoding="utf-8")
    document = parse_file(str(document_file))
    names = {f.spdx_id: f.name[1:] for f in document.files}  # "./usr/bin/x" -> "/usr/bin/x"
    kinds = {comment: kind for kind, comment in LINK_COMMENT.items()}
    wanted = (RelationshipType.DYNAMIC_LINK, RelationshipType.DEPENDS_ON)
    return {
        Link(names[r.spdx_element_id], names[str(r.related_spdx_element_id)], kinds[r.comment])
        for r in document.relationships
        if r.relationship_type in wanted and r.comment is not None
    }


def cyclonedx_edges(image: Scanned) -> set[tuple[str, str]]:
    bom = json.loads(render_cyclonedx(image.report))
    names = {c["bom-ref"]: c["name"] for c in file_components(bom)}
    return {
        (names[d["ref"]], names[target])
        for d in bom["dependencies"]
        if d["ref"] in names
        for target in d["dependsOn"]
    }


@pytest.mark.parametrize("name", CORPUS_IMAGES)
def test_sbom_edges_are_the_processes_why_shows(name: str, tmp_path: Path) -> None:
    image = scanned(name)
    expected = why_links(image)
    assert any(link.kind is LinkKind.INTERPRETER for link in expected)
    assert len(expected) > 1000  # the base image's programs and libraries, not a sample
    assert spdx_links(image, tmp_path) == expected
    assert cyclonedx_edges(image) == {(link.source, link.target) for link in expected}


def test_cgo_programs_the_images_environment_and_perl_modules_give_their_edges() -> None:
    """Spot checks that the walk above cannot pass by missing a kind on both sides."""
    go = scanned("go").report.links
    assert go is not None
    assert any(link.kind is LinkKind.NEEDED and "cgo" in link.source for link in go.links)
    assert (
        Link(
            "/usr/lib/x86_64-linux-gnu/perl-base/auto/POSIX/POSIX.so",
            "/usr/bin/perl",
            LinkKind.PLUGIN_HOST,
        )
        in go.links
    )
    env = scanned("env-ld-library-path").report.links
    assert env is not None
    assert any(link.target.startswith("/opt/x/lib/") for link in env.links)


def test_a_preload_is_a_preload_edge_and_the_interpreter_its_own_edge() -> None:
    facts = scanned("deb12-base").rootfs.entries["/usr/bin/ls"].elf
    assert facts is not None and facts.interpreter is not None
    main = LoadedObject("/usr/bin/ls", "/usr/bin/ls", facts, ("/usr/bin/ls",), None)
    rtld = LoadedObject(facts.interpreter, "/usr/lib/ld.so", facts, ("ld.so",), None)
    pre = LoadedObject("/opt/pre.so", "/opt/pre.so", facts, ("/opt/pre.so",), 0)
    process = Process(
        (main, pre, rtld),
        (Resolution(0, "/opt/pre.so", (), 1, preload=True), Resolution(1, "ld.so", (), 2)),
    )
    assert set(process_links(process)) == {
        Link("/usr/bin/ls", "/opt/pre.so", LinkKind.PRELOAD),
        Link("/opt/pre.so", "/usr/lib/ld.so", LinkKind.NEEDED),
        Link("/usr/bin/ls", "/usr/lib/ld.so", LinkKind.INTERPRETER),
    }


def test_links_among_keeps_edges_between_kept_files_only() -> None:
    graph = LinkGraph((Link("/a", "/b", LinkKind.NEEDED), Link("/a", "/c", LinkKind.NEEDED)))
    assert graph.among({"/a", "/b"}) == (Link("/a", "/b", LinkKind.NEEDED),)


def test_digests_are_the_files_bytes() -> None:
    """The reader's SHA-256 and SHA-1 of an ELF file are those of its content."""
    data = Path("/bin/true").read_bytes()
    offset = 0

    def read(n: int) -> bytes:
        nonlocal offset
        chunk = data[offset : offset + n]
        offset += len(chunk)
        return chunk

    facts = read_content("/bin/true", len(data), read).elf
    assert facts is not None
    expected = FileDigest(hashlib.sha256(data).hexdigest(), hashlib.sha1(data).hexdigest())
    assert FileDigest(str(facts.sha256), str(facts.sha1)) == expected
    links = scanned("deb12-base").report.links
    assert links is not None and len(links.digests) == len(scanned("deb12-base").report.files)
