"""Fix hints on the corpus images, and each fix applied: the image rebuilt with the fix by
the tests' image builder is judged ok by imagescan (and by the real loader, oracle marker).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from imagescan.checks.model import FindingKind, Status
from imagescan.hints.make import with_hints
from imagescan.policy.apply import apply_policy
from imagescan.policy.load import load_policy
from imagescan.report import Report
from imagescan.scan import ScanOptions, scan
from tests.conftest import CORPUS, REPO
from tests.imagebuilder import DEFAULT_PATH, Dir, File, ImageSpec, Member, Symlink, write_oci_dir

FIXTURES = REPO / "tests" / "fixtures" / "hints"
ORACLE = CORPUS / "oracle.py"


def judged(reference: str) -> Report:
    """As `imagescan REF` judges it: the default policy applied, then the hints."""
    scanned = scan(reference, ScanOptions())
    report = apply_policy(
        scanned.report, load_policy("default"), today=date.today(), rootfs=scanned.rootfs
    )
    return with_hints(report, scanned.rootfs, scanned.image.config)


def corpus(name: str) -> str:
    return f"oci-dir:{CORPUS / 'oci'}:{name}"


def causes(report: Report, path: str) -> dict[str, list[str]]:
    """cause -> steps of every fix of one file's findings (consequences left out)."""
    assert report.hints is not None
    verdict = next(v for v in report.files if v.path == path)
    found: dict[str, list[str]] = {}
    for finding in verdict.findings:
        fix = report.hints.fix_for(path, finding)
        assert fix is not None, f"{path}: {finding.kind} has no fix"
        if fix.cause != "follows-from":
            found[fix.cause] = list(fix.steps)
    return found


def status(report: Report, path: str) -> Status:
    return next(v.status for v in report.files if v.path == path)


# ---------------------------------------------------------------- rebuilding corpus images


def _manifest(name: str) -> dict[str, Any]:
    layout = CORPUS / "oci"
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == name
    ]
    manifest: dict[str, Any] = json.loads(_blob(entry["digest"]).read_bytes())
    return manifest


def _blob(digest: str) -> Path:
    return CORPUS / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")


def layer_blobs(name: str) -> list[Path]:
    """The compressed layer blobs of a corpus image, bottom first."""
    return [_blob(layer["digest"]) for layer in _manifest(name)["layers"]]


def top_file(name: str, path: str) -> bytes:
    """One file of a corpus image's top layer."""
    with tarfile.open(layer_blobs(name)[-1]) as archive:
        member = archive.extractfile(path.lstrip("/"))
        assert member is not None
        return member.read()


@dataclass
class Rebuilt:
    """A corpus image rebuilt with a fix: the lower layers as they are, then `layers`."""

    base: str
    keep: int  # how many of the base image's layers to keep
    layers: list[list[Member]] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: [DEFAULT_PATH])

    def write(self, dest: Path) -> str:
        spec = ImageSpec(layers=self.layers, base=layer_blobs(self.base)[: self.keep], env=self.env)
        write_oci_dir(dest, {"fixed": spec})
        return f"oci-dir:{dest}:fixed"


def _patchelf(tmp: Path, data: bytes, *args: str) -> bytes:
    target = tmp / "patched"
    target.write_bytes(data)
    subprocess.run(["patchelf", *args, str(target)], check=True, capture_output=True)
    return target.read_bytes()


def _dirs(*paths: str) -> list[Member]:
    return [Dir(path) for path in paths]


# Each fix as the hint says it, applied to the image: (corpus image, files the hint is
# about, the cause it must name, a step it must give, how to build the fixed image).
def fix_glibc_too_new(tmp: Path) -> Rebuilt:
    # "move the runtime base up to one that ships glibc 2.36: Debian 12"
    programs = [
        File(p, top_file("glibc-too-new", p), 0o755)
        for p in ("/usr/local/bin/hello-bookworm", "/usr/local/bin/newglibc")
    ]
    return Rebuilt("deb12-base", 1, [_dirs("/usr", "/usr/local", "/usr/local/bin") + programs])


def fix_runpath(tmp: Path) -> Rebuilt:
    # "RUN patchelf --set-rpath '$ORIGIN' /opt/app/lib/liba.so"
    data = _patchelf(
        tmp, top_file("runpath-vs-rpath", "/opt/app/lib/liba.so"), "--set-rpath", "$ORIGIN"
    )
    layer = [*_dirs("/opt", "/opt/app", "/opt/app/lib"), File("/opt/app/lib/liba.so", data, 493)]
    return Rebuilt("runpath-vs-rpath", 2, [layer])


def fix_missing_symbol(tmp: Path) -> Rebuilt:
    # "ship the build of that library the program was linked against"
    out = tmp / "libsym.so.1"
    source = str(FIXTURES / "libsym_new.c")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-Wl,-soname,libsym.so.1", "-o", str(out), source], check=True
    )
    layer = _dirs("/usr", "/usr/local", "/usr/local/lib")
    layer.append(File("/usr/local/lib/libsym.so.1", out.read_bytes(), 0o755))
    return Rebuilt("missing-symbol", 2, [layer])


def fix_missing_interpreter(tmp: Path) -> Rebuilt:
    # "RUN patchelf --set-interpreter /lib64/ld-linux-x86-64.so.2 ..." and "install musl"
    program = top_file("missing-interpreter", "/usr/local/bin/hello-badinterp")
    patched = _patchelf(tmp, program, "--set-interpreter", "/lib64/ld-linux-x86-64.so.2")
    musl = Path("/usr/lib/x86_64-linux-musl/libc.so").read_bytes()  # Debian's musl package
    layer = _dirs("/usr", "/usr/local", "/usr/local/bin", "/usr/lib", "/usr/lib/x86_64-linux-musl")
    layer += [
        File("/usr/local/bin/hello-badinterp", patched, 0o755),
        File("/usr/lib/x86_64-linux-musl/libc.so", musl, 0o755),
        Symlink("/usr/lib/ld-musl-x86_64.so.1", "x86_64-linux-musl/libc.so"),
    ]
    return Rebuilt("missing-interpreter", 2, [layer])


def fix_env(tmp: Path) -> Rebuilt:
    # "ENV LD_LIBRARY_PATH=/opt/x/lib"
    return Rebuilt("env-ld-library-path-unset", 2, env=[DEFAULT_PATH, "LD_LIBRARY_PATH=/opt/x/lib"])


@dataclass(frozen=True)
class Case:
    image: str
    files: tuple[str, ...]
    cause: str
    step: str
    fix: Callable[[Path], Rebuilt]


CASES = (
    Case(
        "glibc-too-new",
        ("/usr/local/bin/hello-bookworm", "/usr/local/bin/newglibc"),
        "built-against-newer-glibc",
        "Debian 12 (bookworm) (debian:12)",
        fix_glibc_too_new,
    ),
    Case(
        "runpath-vs-rpath",
        ("/opt/app/bin/app-runpath",),
        "runpath-not-inherited",
        "RUN patchelf --set-rpath '$ORIGIN' /opt/app/lib/liba.so",
        fix_runpath,
    ),
    Case(
        "missing-symbol",
        ("/usr/local/bin/sym-now", "/usr/local/bin/sym-data", "/usr/local/bin/sym-lazy"),
        "symbol-from-newer-build",
        "ship the build of that library the program was linked against",
        fix_missing_symbol,
    ),
    Case(
        "missing-interpreter",
        ("/usr/local/bin/hello-badinterp",),
        "interpreter-path-wrong",
        "RUN patchelf --set-interpreter /lib64/ld-linux-x86-64.so.2 /usr/local/bin/hello-badinterp",
        fix_missing_interpreter,
    ),
    Case(
        "missing-interpreter",
        ("/usr/local/bin/hello-musl",),
        "musl-program-on-glibc",
        "install musl (Debian: apt-get install musl)",
        fix_missing_interpreter,
    ),
    Case(
        "env-ld-library-path-unset",
        ("/usr/local/bin/envdep-user",),
        "not-in-search-path",
        "ENV LD_LIBRARY_PATH=/opt/x/lib",
        fix_env,
    ),
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.image}:{c.cause}")
def test_the_hint_names_the_cause_and_its_fix_makes_the_image_ok(
    corpus_dir: Path, tmp_path: Path, case: Case
) -> None:
    before = judged(corpus(case.image))
    recorded = json.loads((CORPUS / "verdicts" / f"{case.image}.json").read_text())["elves"]
    for path in case.files:
        assert recorded[path]["status"] != "ok"  # the real loader, before the fix
        assert status(before, path) is not Status.OK
        found = causes(before, path)
        assert case.cause in found, f"{path}: {found}"
        assert any(case.step in step for step in found[case.cause]), found[case.cause]
    after = judged(case.fix(tmp_path).write(tmp_path / "fixed"))
    assert {path: status(after, path) for path in case.files} == dict.fromkeys(
        case.files, Status.OK
    )
    assert not after.broken()


def test_go_image_has_nothing_to_fix(corpus_dir: Path) -> None:
    report = judged(corpus("go"))
    assert not report.broken()
    assert report.hints is not None and report.hints.image.libc is not None
    go = report.hints.files["/usr/local/bin/go-plugin-host"]
    assert go.package is None and go.layer == 1 and go.created_by == "mkimage layer go"


def test_every_finding_kind_has_a_fix_function() -> None:
    from imagescan.hints.fixes import FIXERS

    assert set(FIXERS) == set(FindingKind)


def test_provenance_names_layer_step_and_package(corpus_dir: Path) -> None:
    report = judged(corpus("glibc-too-new"))
    assert report.hints is not None
    libc = report.hints.image.libc
    assert libc is not None and (libc.name, libc.version) == ("glibc", "2.31")
    assert report.hints.image.distro_id == "debian" and report.hints.image.distro_version == "11"
    program = report.hints.files["/usr/local/bin/hello-bookworm"]
    assert program.summary == "added by layer 1: mkimage layer glibc-too-new, not from a package"
    assert program.diff_id is not None and len(program.diff_id) == len("sha256:") + 12
    bash = report.hints.files["/bin/bash"]
    assert bash.package is not None and bash.package.name == "bash" and bash.layer == 0


# ---------------------------------------------------------------- the real loader


def _oracle(reference: str, out: Path, paths: tuple[str, ...]) -> dict[str, Any]:
    layout, _, tag = reference.removeprefix("oci-dir:").rpartition(":")
    command = [sys.executable, str(ORACLE), layout, "--ref", tag, "-o", str(out)]
    command += ["--jobs", "2", "--no-python-dlopen"]
    command += [arg for path in paths for arg in ("--only", path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.image}:{c.cause}")
def test_the_real_loader_agrees_the_fixed_image_is_ok(
    corpus_dir: Path, tmp_path: Path, case: Case
) -> None:
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        pytest.skip("the oracle needs root and chroot")
    reference = case.fix(tmp_path).write(tmp_path / "fixed")
    elves = _oracle(reference, tmp_path / "oracle.json", case.files)["elves"]
    assert {path: elves[path]["status"] for path in case.files} == dict.fromkeys(case.files, "ok")
