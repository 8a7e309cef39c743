"""RPATH/RUNPATH hygiene and host-provided libraries, on programs built by gcc into an image."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest

from imagescan.checks.model import FindingKind, Severity, Status
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.policy import Policy, apply_policy, load_policy
from imagescan.policy.rpath import expand_origin, problems, rpath_findings
from imagescan.policy.rules import RpathRules
from imagescan.report import Report
from imagescan.scan import Scanned, ScanOptions, scan
from tests.imagebuilder import Dir, File, ImageSpec, glibc_base, write_oci_dir

FIXTURES = Path(__file__).parent / "fixtures" / "policy"
TODAY = date(2026, 11, 26)

# program -> (extra gcc flags, the RPATH/RUNPATH it gets)
PROGRAMS = {
    "empty": ["-Wl,-rpath,/usr/lib::$ORIGIN/../lib:"],  # RUNPATH, two empty elements
    "relative": ["-Wl,--disable-new-dtags", "-Wl,-rpath,lib:/tmp/build/lib"],  # RPATH
    "clean": ["-Wl,-rpath,$ORIGIN/../lib"],
    "plugins": ["-Wl,-rpath,/opt/app/plugins"],  # a directory anyone may write to
    "home": ["-Wl,-rpath,/home/ci/build/lib"],  # a build machine's directory
}


def gcc(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["gcc", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@dataclass
class Built:
    scanned: Scanned

    @property
    def report(self) -> Report:
        return self.scanned.report

    def judged(self, policy: Policy) -> dict[str, list[tuple[str, str, str]]]:
        """program name -> [(kind, severity, message)] under `policy`."""
        result = apply_policy(self.report, policy, today=TODAY, rootfs=self.scanned.rootfs)
        return {
            v.path.rsplit("/", 1)[1]: [
                (str(f.kind), str(f.severity), f.message) for f in v.findings
            ]
            for v in result.files
            if v.path.startswith("/opt/app/bin/")
        }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("policy-rpath")
    gcc("-shared", "-fPIC", "-Wl,-soname,libgpu.so.1", "-o", "libgpu.so.1", FIXTURES / "gpu.c",
        cwd=work)  # fmt: skip
    gcc("-o", "gpuapp", FIXTURES / "gpuapp.c", "-L.", "-l:libgpu.so.1", "-Wl,-z,now", cwd=work)
    for name, flags in PROGRAMS.items():
        gcc("-o", name, FIXTURES / "hello.c", *flags, cwd=work)
    members = [Dir("/opt"), Dir("/opt/app"), Dir("/opt/app/bin"), Dir("/opt/app/lib")]
    members.append(Dir("/opt/app/plugins", 0o777))
    for name in [*PROGRAMS, "gpuapp"]:  # libgpu.so.1 stays out: the host provides it
        members.append(File(f"/opt/app/bin/{name}", (work / name).read_bytes(), 0o755))
    oci = write_oci_dir(work / "oci", {"app": ImageSpec([glibc_base(), members])})
    return Built(scan(f"oci-dir:{oci}:app", ScanOptions()))


def test_default_policy_warns_of_empty_relative_and_writable_elements(built: Built) -> None:
    judged = built.judged(load_policy("default"))
    assert judged["clean"] == []
    assert judged["empty"] == [
        ("rpath-hygiene", "warning",
         "/opt/app/bin/empty: DT_RUNPATH element '' is empty: ld.so searches the current "
         "working directory"),
    ] * 2  # fmt: skip
    assert judged["relative"] == [
        ("rpath-hygiene", "warning",
         "/opt/app/bin/relative: DT_RPATH element 'lib' is relative: ld.so opens it from the "
         "working directory"),
        ("rpath-hygiene", "note",
         "/opt/app/bin/relative: DT_RPATH element '/tmp/build/lib' (/tmp/build/lib) is outside "
         "the trusted directories"),
        ("rpath-hygiene", "warning",
         "/opt/app/bin/relative: DT_RPATH element '/tmp/build/lib' (/tmp/build/lib): /tmp is "
         "writable by anyone"),
    ]  # fmt: skip
    assert [f[1] for f in judged["plugins"]] == ["warning"]
    assert "/opt/app/plugins is writable by anyone" in judged["plugins"][0][2]
    assert [f[1] for f in judged["home"]] == ["note"]


def test_strict_policy_makes_them_errors_and_reports_missing_dirs(built: Built) -> None:
    judged = built.judged(load_policy("strict"))
    assert judged["clean"] == []
    assert [s for _, s, _ in judged["empty"]] == ["error", "error"]
    assert [(s, m.rsplit(") ", 1)[-1]) for _, s, m in judged["home"]] == [
        ("error", "is outside the trusted directories"),
        ("warning", "is not a directory in the image"),
    ]
    assert len(judged["relative"]) == 4  # relative; untrusted, missing, writable parent


def test_rpath_findings_do_not_change_statuses(built: Built) -> None:
    result = apply_policy(
        built.report, load_policy("strict"), today=TODAY, rootfs=built.scanned.rootfs
    )
    statuses = {v.path: v.status for v in result.files if v.path.startswith("/opt/app/bin/")}
    assert statuses["/opt/app/bin/empty"] == Status.OK
    assert statuses["/opt/app/bin/relative"] == Status.OK


def test_a_host_provided_library_and_its_symbols_are_not_problems(built: Built) -> None:
    gpuapp = next(v for v in built.report.files if v.path == "/opt/app/bin/gpuapp")
    kinds = {str(f.kind) for f in gpuapp.findings}
    assert gpuapp.status == Status.BROKEN
    assert kinds == {"missing-library", "undefined-symbol"}  # gpu_init, gpu_count at start
    default = load_policy("default")
    assert built.judged(default)["gpuapp"] != []
    provided = replace(default, host_provided=("libgpu.so.*",))
    result = apply_policy(built.report, provided, today=TODAY, rootfs=built.scanned.rootfs)
    judged = next(v for v in result.files if v.path == "/opt/app/bin/gpuapp")
    assert judged.findings == () and judged.status == Status.OK


def test_rules_over_plain_facts() -> None:
    rules = RpathRules(
        empty=Severity.ERROR, relative=Severity.ERROR, untrusted=Severity.NOTE, trusted=("/usr/**",)
    )
    assert expand_origin("$ORIGIN/../lib", "/opt/a/bin/x") == "/opt/a/lib"
    assert expand_origin("${ORIGIN}/lib", "/opt/a/bin/x") == "/opt/a/bin/lib"
    assert [p.rule for p in problems("$ORIGIN", "/usr/lib/x.so", rules, None)] == []
    assert [p.rule for p in problems("$ORIGIN/../..", "/usr/lib/x.so", rules, None)] == [
        "untrusted"
    ]
    assert [p.rule for p in problems("./lib", "/usr/bin/x", rules, None)] == ["relative"]
    facts = ElfFacts(64, True, 62, 0, 0, 3, FileKind.SHARED, rpath=":/usr/lib", runpath="/srv")
    found = rpath_findings("/usr/lib/x.so", facts, rules, None)
    assert [(f.kind, f.subject, f.severity) for f in found] == [
        (FindingKind.RPATH_HYGIENE, "", Severity.ERROR),
        (FindingKind.RPATH_HYGIENE, "/srv", Severity.NOTE),
    ]
    assert rpath_findings("/x", facts, RpathRules(), None) == []
