"""Version hints on real images: a build stage copied in (COPY --from in the history), and
libstdc++ / OpenSSL version nodes the image's libraries lack."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.hints.make import make_hints
from imagescan.scan import ScanOptions, read_image, scan
from tests.conftest import CORPUS
from tests.imagebuilder import Dir, File, ImageSpec, write_oci_dir
from tests.test_hints_make import layer_blobs, top_file

PROGRAM = "/usr/local/bin/hello-bookworm"


def test_a_file_copied_from_a_build_stage_names_the_stage(corpus_dir: Path, tmp_path: Path) -> None:
    layer = [Dir("/usr"), Dir("/usr/local"), Dir("/usr/local/bin")]
    layer.append(File(PROGRAM, top_file("glibc-too-new", PROGRAM), 0o755))
    history = [
        {"created_by": "mkimage layer deb11-base"},
        {"created_by": 'ENTRYPOINT ["/usr/local/bin/hello-bookworm"]', "empty_layer": True},
        {"created_by": "COPY --from=builder /out/hello /usr/local/bin/hello-bookworm # buildkit"},
    ]
    spec = ImageSpec(layers=[layer], base=layer_blobs("deb11")[:1], history=history)
    write_oci_dir(tmp_path / "image", {"staged": spec})
    scanned = scan(f"oci-dir:{tmp_path / 'image'}:staged", ScanOptions())
    hints = make_hints(scanned.report, scanned.rootfs, scanned.image.config)
    verdict = next(v for v in scanned.report.files if v.path == PROGRAM)
    finding = next(f for f in verdict.findings if f.kind is FindingKind.MISSING_SYMBOL_VERSION)
    fix = hints.fix_for(PROGRAM, finding)
    assert fix is not None and fix.cause == "built-against-newer-glibc"
    assert "copied from build stage builder" in fix.why
    assert hints.files[PROGRAM].created_by == history[2]["created_by"]
    assert hints.files[PROGRAM].layer == 1


def _needing(node: str, provider: str) -> tuple[Finding, FileVerdict]:
    finding = Finding(
        FindingKind.MISSING_SYMBOL_VERSION,
        Severity.ERROR,
        node,
        f"{provider}: version `{node}' not found (required by /usr/bin/apt)",
        FatalAt.STARTUP,
        required_by="/usr/bin/apt",
        provider=provider,
        version=node,
    )
    return finding, FileVerdict("/usr/bin/apt", "pie-exec", Status.BROKEN, 0, findings=(finding,))


def test_libstdcxx_and_openssl_nodes_on_the_real_debian_11(corpus_dir: Path) -> None:
    image, rootfs = read_image(f"oci-dir:{CORPUS / 'oci'}:deb11", ScanOptions())
    report = scan(f"oci-dir:{CORPUS / 'oci'}:deb11", ScanOptions()).report
    libstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    cases = (
        ("GLIBCXX_3.4.30", libstdcxx, "Debian 12", "GLIBCXX_3.4.28"),
        ("CXXABI_1.3.13", libstdcxx, "Ubuntu 22.04", "CXXABI_1.3.12"),
        (
            "OPENSSL_3.0.0",
            "/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
            "RHEL/UBI/Rocky 9",
            "OPENSSL_1_1_1a",
        ),
    )
    for node, provider, base, image_has in cases:
        finding, verdict = _needing(node, provider)
        hints = make_hints(dataclasses.replace(report, files=(verdict,)), rootfs, image.config)
        fix = hints.fix_for("/usr/bin/apt", finding)
        assert fix is not None, node
        assert fix.cause.startswith("built-against-newer-"), fix.cause
        assert any(base in step for step in fix.steps), (node, fix.steps)
        facts = dict(fix.facts)
        assert facts["image_has"] == image_has  # the newest node of that library it has
        assert facts["required_by_from"] == "package apt 2.2.4 (layer 0: mkimage layer deb11-base)"
    stdcxx = dict(fix_facts("GLIBCXX_3.4.30", libstdcxx, report, rootfs, image.config))
    assert (
        stdcxx["provider_from"] == "package libstdc++6 10.2.1-6 (layer 0: mkimage layer deb11-base)"
    )


def fix_facts(node: str, provider: str, report, rootfs, config):  # type: ignore[no-untyped-def]
    finding, verdict = _needing(node, provider)
    hints = make_hints(dataclasses.replace(report, files=(verdict,)), rootfs, config)
    fix = hints.fix_for("/usr/bin/apt", finding)
    assert fix is not None
    return fix.facts
