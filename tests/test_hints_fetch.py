"""The package index lookup over real HTTP: indexes served on 127.0.0.1 from slices of the
real indexes (Debian's Contents, kept in tests/fixtures/hints with the script that cut
them) or written in the real formats (APKINDEX, rpm repodata), found through the sources
the image itself configures, cached, and never fetched unless asked."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from imagescan.cli import main
from imagescan.hints.fetch import IndexFetchError, fetch_index
from imagescan.hints.index import apkindex_text, contents_lines, primary_xml
from imagescan.hints.sources import index_sources
from imagescan.packages.osrelease import parse_os_release
from tests.conftest import CORPUS, REPO
from tests.imagebuilder import Dir, File, ImageSpec, write_oci_dir
from tests.test_hints_make import layer_blobs, top_file

SLICE = REPO / "tests" / "fixtures" / "hints" / "bookworm-main-Contents-amd64.slice"


@contextmanager
def serving(root: Path) -> Iterator[tuple[str, list[str]]]:
    """A static HTTP server on 127.0.0.1 for `root`: its base URL and the paths asked for."""
    asked: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def debian_mirror(root: Path) -> Path:
    """A mirror tree with the slice as bookworm main's Contents-amd64.gz."""
    target = root / "debian" / "dists" / "bookworm" / "main" / "Contents-amd64.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(SLICE.read_bytes()))
    return root


def test_contents_slice_parses_to_the_packages_that_ship_each_library() -> None:
    found = contents_lines(SLICE.read_text().splitlines(keepends=True))
    assert "abpoa" not in found  # programs are left out
    assert found["libssl.so.3"] == [("/usr/lib/x86_64-linux-gnu/libssl.so.3", "libssl3")]
    assert ("/usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6", "libstdc++6-12-dbg") in found[
        "libstdc++.so.6"
    ]
    assert found["ld-musl-x86_64.so.1"] == [("/lib/ld-musl-x86_64.so.1", "musl")]


def test_apt_sources_one_line_and_deb822() -> None:
    kept = {
        "/etc/apt/sources.list": b"deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian"
        b" bookworm main contrib\n# deb http://old.example/debian buster main\n"
        b"deb-src http://m.example/debian bookworm main\n",
        "/etc/apt/sources.list.d/debian.sources": b"Types: deb\nURIs: http://d.example/debian\n"
        b"Suites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nEnabled: no\n"
        b"URIs: http://off.example/\nSuites: x\nComponents: main\n",
    }
    urls = [s.urls[0] for s in index_sources(kept, None, "amd64")]
    assert urls == [
        "http://m.example/debian/dists/bookworm/main/Contents-amd64.gz",
        "http://d.example/debian/dists/bookworm/main/Contents-amd64.gz",
        "http://d.example/debian/dists/bookworm-updates/main/Contents-amd64.gz",
    ]


def _libssl_image(tmp_path: Path, mirror: str) -> str:
    """Debian 12 with a program that needs libssl.so.3 (added by patchelf --add-needed to a
    program of the corpus) and the image's apt sources pointing at `mirror`."""
    program = tmp_path / "needs-ssl"
    program.write_bytes(top_file("glibc-too-new", "/usr/local/bin/hello-bookworm"))
    subprocess.run(["patchelf", "--add-needed", "libssl.so.3", str(program)], check=True)
    sources = f"Types: deb\nURIs: {mirror}/debian\nSuites: bookworm\nComponents: main\n"
    layer = [
        Dir("/etc"),
        Dir("/etc/apt"),
        File("/etc/apt/sources.list", b"# moved to sources.list.d\n"),
        Dir("/etc/apt/sources.list.d"),
        File("/etc/apt/sources.list.d/debian.sources", sources.encode()),
        Dir("/usr"),
        Dir("/usr/local"),
        Dir("/usr/local/bin"),
        File("/usr/local/bin/needs-ssl", program.read_bytes(), 0o755),
    ]
    spec = ImageSpec(layers=[layer], base=layer_blobs("deb12-base"))
    write_oci_dir(tmp_path / "image", {"ssl": spec})
    return f"oci-dir:{tmp_path / 'image'}:ssl"


def _fix_of(report: dict[str, object], path: str) -> dict[str, object]:
    files = report["files"]
    assert isinstance(files, list)
    (verdict,) = [f for f in files if f["path"] == path]
    (finding,) = [f for f in verdict["findings"] if f["kind"] == "missing-library"]
    fix: dict[str, object] = finding["fix"]
    return fix


def _scan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["scan", *args, "-o", "json", "--exit-zero"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_hints_update_then_an_offline_scan_names_the_package(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(tmp_path / "cache")
    with serving(debian_mirror(tmp_path / "mirror")) as (url, asked):
        reference = _libssl_image(tmp_path, url)
        offline = _fix_of(
            _scan_json(capsys, reference, "--cache", cache), "/usr/local/bin/needs-ssl"
        )
        assert asked == []  # a scan without --hints-online fetches nothing
        assert offline["cause"] == "library-absent"
        assert any("imagescan hints update" in step for step in offline["steps"])  # type: ignore[union-attr]
        assert main(["hints", "update", reference, "--cache", cache]) == 0
        assert asked == ["/debian/dists/bookworm/main/Contents-amd64.gz"]
        assert "debian-12" in capsys.readouterr().out
    # the server is gone: the cached index answers
    fix = _fix_of(_scan_json(capsys, reference, "--cache", cache), "/usr/local/bin/needs-ssl")
    assert fix["steps"] == [
        "RUN apt-get update && apt-get install -y --no-install-recommends libssl3"
    ]
    assert {
        "name": "provided_by",
        "value": "libssl3 (/usr/lib/x86_64-linux-gnu/libssl.so.3)",
    } in fix["facts"]  # type: ignore[operator]


def test_hints_online_fetches_once_and_caches(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = str(tmp_path / "cache")
    with serving(debian_mirror(tmp_path / "mirror")) as (url, asked):
        reference = _libssl_image(tmp_path, url)
        for _ in range(2):
            doc = _scan_json(capsys, reference, "--cache", cache, "--hints-online")
            assert "libssl3" in _fix_of(doc, "/usr/local/bin/needs-ssl")["why"]  # type: ignore[operator]
        assert len(asked) == 1
    assert list((tmp_path / "cache" / "hints").iterdir()) == [
        tmp_path / "cache" / "hints" / "debian-12-amd64.json"
    ]


def test_an_unreachable_mirror_is_one_error_line(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(tmp_path) as (url, _):
        reference = _libssl_image(tmp_path, url)  # serves no index at all
        assert main(["hints", "update", reference, "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imagescan: error: no package index could be fetched:")
    assert "404" in err and err.count("\n") == 1


APKINDEX = """C:Q1Ow1Fm5Z9Wj3F6R4C0m8Tn8G0cWo=
P:libssl3
V:3.1.4-r5
A:x86_64
S:346612
I:1052672
T:SSL shared libraries
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3
p:so:libssl.so.3=3
F:

C:Q1e6HxQ7dM6y5r0NvGqK0d5Yt0H7I=
P:zlib
V:1.3.1-r0
A:x86_64
L:Zlib
o:zlib
p:so:libz.so.1=1.3.1

"""

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common"
  xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>openssl-libs</name><arch>x86_64</arch>
<version epoch="1" ver="3.0.7" rel="27.el9"/>
<format><rpm:provides>
<rpm:entry name="libssl.so.3()(64bit)"/>
<rpm:entry name="libssl.so.3(OPENSSL_3.0.0)(64bit)"/>
<rpm:entry name="openssl-libs(x86-64)" flags="EQ" epoch="1" ver="3.0.7" rel="27.el9"/>
</rpm:provides></format></package>
</metadata>
"""


def test_apkindex_and_repodata_over_http(tmp_path: Path) -> None:
    apk = tmp_path / "alpine" / "v3.19" / "main" / "x86_64"
    apk.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = APKINDEX.encode()
        info = tarfile.TarInfo("APKINDEX")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (apk / "APKINDEX.tar.gz").write_bytes(buffer.getvalue())
    repo = tmp_path / "rhel9" / "x86_64" / "repodata"
    repo.mkdir(parents=True)
    (repo / "abc-primary.xml.gz").write_bytes(gzip.compress(PRIMARY))
    (repo / "repomd.xml").write_bytes(
        b'<repomd><data type="other"><location href="repodata/x-other.xml.gz"/></data>'
        b'<data type="primary"><location href="repodata/abc-primary.xml.gz"/></data></repomd>'
    )
    with serving(tmp_path) as (url, _):
        kept = {"/etc/apk/repositories": f"{url}/alpine/v3.19/main\n".encode()}
        index = fetch_index(index_sources(kept, None, "amd64"), "alpine-3.19")
        assert index.provides("libssl.so.3") == (("so:libssl.so.3", "libssl3"),)
        repo_file = f"[baseos]\nbaseurl={url}/rhel$releasever/$basearch\nenabled=1\n"
        kept = {"/etc/yum.repos.d/ubi.repo": repo_file.encode()}
        release = parse_os_release('ID="rhel"\nVERSION_ID="9.4"\n')
        index = fetch_index(index_sources(kept, release, "amd64"), "rhel-9.4")
        assert index.provides("libssl.so.3") == (("libssl.so.3()(64bit)", "openssl-libs"),)
    assert fetch_index.__name__ and apkindex_text(APKINDEX)["libz.so.1"] == [
        ("so:libz.so.1", "zlib")
    ]
    assert primary_xml(PRIMARY).keys() == {"libssl.so.3"}


def test_no_configured_sources_is_an_error() -> None:
    with pytest.raises(IndexFetchError, match="configures no package sources"):
        fetch_index([], "debian-12")


@pytest.mark.mirror
def test_the_real_debian_mirror_of_the_corpus_image(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opt-in (IMAGESCAN_MIRROR_TESTS=1): the corpus Debian 12 image's own sources.list
    points at Debian's mirror; its real Contents index names the package of libssl.so.3."""
    if os.environ.get("IMAGESCAN_MIRROR_TESTS") != "1":
        pytest.skip("set IMAGESCAN_MIRROR_TESTS=1 to fetch from the real Debian mirror")
    reference = f"oci-dir:{CORPUS / 'oci'}:deb12-base"
    assert main(["hints", "update", reference, "--cache", str(tmp_path)]) == 0
    index = json.loads((tmp_path / "hints" / "debian-12-amd64.json").read_text())
    assert ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "libssl3"] in index["providers"]["libssl.so.3"]
