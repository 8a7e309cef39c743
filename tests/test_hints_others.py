"""Hints for the other causes on real images: a stale ld.so.cache (and `RUN ldconfig`
fixing it), a glibc program on a musl image, a symbol defined by a library the program
does not load, and a Go plugin built apart from its host."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imagescan.checks.model import Finding, FindingKind, Severity, Status
from imagescan.hints.make import make_hints
from imagescan.scan import ScanOptions, scan
from tests.conftest import REPO
from tests.imagebuilder import (
    DEFAULT_PATH,
    Dir,
    File,
    ImageSpec,
    Member,
    Symlink,
    ld_so_cache,
    write_oci_dir,
)
from tests.test_hints_make import causes, judged, layer_blobs, status, top_file

FIXTURES = REPO / "tests" / "fixtures" / "hints"


def _cc(out: Path, *args: str) -> bytes:
    subprocess.run(["gcc", "-o", str(out), *args], check=True, capture_output=True)
    return out.read_bytes()


def _foo_layer(tmp: Path) -> list[Member]:
    lib = _cc(
        tmp / "libfoo.so.1",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libfoo.so.1",
        str(FIXTURES / "libfoo.c"),
    )
    program = _cc(tmp / "usefoo", str(FIXTURES / "usefoo.c"), str(tmp / "libfoo.so.1"))
    return [
        Dir("/usr"),
        Dir("/usr/local"),
        Dir("/usr/local/lib"),
        File("/usr/local/lib/libfoo.so.1", lib, 0o755),
        Dir("/usr/local/bin"),
        File("/usr/local/bin/usefoo", program, 0o755),
    ]


def _write(tmp: Path, name: str, layers: list[list[Member]], base: str = "deb12-base") -> str:
    spec = ImageSpec(layers=layers, base=layer_blobs(base)[:1], env=[DEFAULT_PATH])
    write_oci_dir(tmp / name, {name: spec})
    return f"oci-dir:{tmp / name}:{name}"


def test_a_library_added_without_ldconfig_and_the_ldconfig_that_fixes_it(
    corpus_dir: Path, tmp_path: Path
) -> None:
    layer = _foo_layer(tmp_path)
    before = judged(_write(tmp_path, "stale", [layer]))
    assert status(before, "/usr/local/bin/usefoo") is Status.BROKEN
    found = causes(before, "/usr/local/bin/usefoo")
    assert found == {"ld-cache-stale": ["RUN ldconfig  (after the step that adds it)"]}
    # RUN ldconfig: the cache rebuilt over the image's ld.so.conf (Debian's libc.conf).
    conf = [Dir("/etc"), File("/etc/ld.so.conf", b"/usr/local/lib\n")]
    cache = ld_so_cache(conf + layer)
    after = judged(_write(tmp_path, "fixed", [layer, [Dir("/etc"), cache]]))
    assert status(after, "/usr/local/bin/usefoo") is Status.OK


def test_a_glibc_program_on_a_musl_image(corpus_dir: Path, tmp_path: Path) -> None:
    program = "/usr/local/bin/hello-bookworm"
    musl = Path("/usr/lib/x86_64-linux-musl/libc.so").read_bytes()  # Debian's musl package
    alpine = [
        Dir("/etc"),
        File(
            "/etc/os-release", b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
        ),
        Dir("/lib"),
        File("/lib/ld-musl-x86_64.so.1", musl, 0o755),
        Symlink("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        Dir("/usr"),
        Dir("/usr/local"),
        Dir("/usr/local/bin"),
        File(program, top_file("glibc-too-new", program), 0o755),
    ]
    spec = ImageSpec(layers=[alpine], env=[DEFAULT_PATH])
    write_oci_dir(tmp_path / "alpine", {"alpine": spec})
    report = judged(f"oci-dir:{tmp_path / 'alpine'}:alpine")
    assert report.hints is not None and report.hints.image.libc is not None
    assert report.hints.image.libc.name == "musl"
    found = causes(report, program)
    assert list(found) == ["glibc-program-on-musl"]
    assert "or run it on a glibc base (debian, ubuntu, ubi)" in found["glibc-program-on-musl"]


def test_a_symbol_defined_by_a_library_the_program_does_not_load(
    corpus_dir: Path, tmp_path: Path
) -> None:
    newer = _cc(
        tmp_path / "libsym.so.1",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libsym.so.1",
        str(FIXTURES / "libsym_new.c"),
    )
    layer: list[Member] = [Dir("/opt"), Dir("/opt/new"), File("/opt/new/libsym.so.1", newer, 0o755)]
    spec = ImageSpec(layers=[layer], base=layer_blobs("missing-symbol"), env=[DEFAULT_PATH])
    write_oci_dir(tmp_path / "image", {"two": spec})
    report = judged(f"oci-dir:{tmp_path / 'image'}:two")
    found = causes(report, "/usr/local/bin/sym-now")
    assert list(found) == ["defined-elsewhere"]
    assert report.hints is not None
    verdict = next(v for v in report.files if v.path == "/usr/local/bin/sym-now")
    fix = report.hints.fix_for(verdict.path, verdict.findings[0])
    assert fix is not None and dict(fix.facts)["defined_by"] == "/opt/new/libsym.so.1"


def test_a_go_plugin_built_apart_names_the_package_and_both_files(corpus_dir: Path) -> None:
    scanned = scan(f"oci-dir:{corpus_dir / 'oci'}:go", ScanOptions())
    host, plugin = "/usr/local/bin/go-plugin-host", "/usr/local/lib/goplugin.so"
    finding = Finding(
        FindingKind.GO_PLUGIN_MISMATCH,
        Severity.WARNING,
        "example.com/shared",
        f'plugin.Open("{plugin}") in {host} fails: plugin was built with a different version'
        " of package example.com/shared",
        required_by=host,
        provider=plugin,
    )
    report = scanned.report
    report = type(report)(report.image, report.files, image_findings=(finding,))
    hints = make_hints(report, scanned.rootfs, scanned.image.config)
    fix = hints.fix_for("", finding)
    assert fix is not None and fix.cause == "go-plugin-built-apart"
    assert "different versions of example.com/shared" in fix.why
    assert dict(fix.facts) == {
        "plugin_from": "added by layer 1: mkimage layer go, not from a package",
        "host_from": "added by layer 1: mkimage layer go, not from a package",
    }


def test_a_symbol_of_a_missing_library_follows_from_it(corpus_dir: Path, tmp_path: Path) -> None:
    """The library is not found: its symbols' hint says so, and the only fix is the
    library's."""
    program = [m for m in _foo_layer(tmp_path) if m.path != "/usr/local/lib/libfoo.so.1"]
    report = judged(_write(tmp_path, "nolib", [program]))
    assert report.hints is not None
    verdict = next(v for v in report.files if v.path == "/usr/local/bin/usefoo")
    kinds = {f.kind for f in verdict.findings}
    assert {FindingKind.MISSING_LIBRARY, FindingKind.UNDEFINED_SYMBOL} <= kinds
    for finding in verdict.findings:
        fix = report.hints.fix_for(verdict.path, finding)
        assert fix is not None
        if finding.kind is FindingKind.UNDEFINED_SYMBOL:
            assert fix.cause == "follows-from"
            why = f"{finding.subject} is missing because libfoo.so.1 is not found; fix that first"
            assert fix.why == why
    assert list(causes(report, verdict.path)) == ["library-absent"]
