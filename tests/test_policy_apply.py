"""apply_policy: levels, globs, waivers and their expiry, ceilings, recomputed statuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from imagescan.checks.model import FatalAt, FileVerdict, Finding, FindingKind, Severity, Status
from imagescan.elf.model import ElfFacts, FileKind, UndefinedSymbol, VersionDef, VersionNeed
from imagescan.policy import Policy, apply_policy, hosts_for, load_policy
from imagescan.policy.ceilings import ceiling_findings, version_number
from imagescan.policy.rules import OFF, PluginHost, SeverityRule, Waiver
from imagescan.report import ImageInfo, Report, severity_at_least
from imagescan.rootfs.model import Skipped
from imagescan.scan import Scanned, ScanOptions, scan

TODAY = date(2026, 11, 26)
IMAGE = ImageInfo("dir:/x", "dir", None, "amd64", "linux")


def exit_code(report: Report, fail_on: Severity = Severity.ERROR) -> int:
    """What `imagescan scan` exits with for this report (cli.cmd_scan's rule)."""
    worst = report.max_severity()
    return 1 if worst is not None and severity_at_least(worst, fail_on) else 0


def missing_lib(name: str, by: str = "/app/bin/a") -> Finding:
    return Finding(
        FindingKind.MISSING_LIBRARY,
        Severity.ERROR,
        name,
        f"{name}: cannot open shared object file (needed by {by})",
        fatal_at=FatalAt.STARTUP,
        required_by=by,
    )


def lazy_symbol(name: str, by: str = "/app/bin/a") -> Finding:
    return Finding(
        FindingKind.UNDEFINED_SYMBOL,
        Severity.WARNING,
        name,
        f"undefined symbol: {name} ({by})",
        fatal_at=FatalAt.CALL,
        required_by=by,
        symbols=(name,),
    )


def verdict(path: str, *findings: Finding, status: Status | None = None) -> FileVerdict:
    from imagescan.checks.model import status_of

    return FileVerdict(path, "pie-exec", status or status_of(findings), findings=findings)


def report(*files: FileVerdict, skipped: tuple[Skipped, ...] = ()) -> Report:
    return Report(IMAGE, files, skipped)


def by_path(result: Report) -> dict[str, FileVerdict]:
    return {v.path: v for v in result.files}


# ------------------------------------------------------------------ levels and globs


def test_levels_by_kind_and_by_moment_and_off() -> None:
    policy = Policy(
        severity={
            "undefined-symbol": SeverityRule(startup=None, call=Severity.ERROR),
            "missing-library": SeverityRule(OFF, OFF, OFF),
        }
    )
    original = report(
        verdict("/app/bin/a", missing_lib("libx.so.1"), lazy_symbol("f")),
        verdict("/app/bin/b", missing_lib("liby.so.1")),
    )
    result = by_path(apply_policy(original, policy, today=TODAY))
    a, b = result["/app/bin/a"], result["/app/bin/b"]
    assert [(f.kind, f.severity) for f in a.findings] == [("undefined-symbol", "error")]
    assert a.status == Status.BROKEN_LAZY  # only the call-time failure remains
    assert b.findings == () and b.status == Status.OK
    assert original.files[0].status == Status.BROKEN  # the input is not changed


def test_a_kind_rule_wins_over_default_and_default_skips_policy_kinds() -> None:
    policy = Policy(
        severity={
            "default": SeverityRule(Severity.NOTE, Severity.NOTE, Severity.NOTE),
            "undefined-symbol": SeverityRule(call=Severity.ERROR),
        },
    )
    ceiling = Finding(FindingKind.VERSION_CEILING, Severity.ERROR, "GLIBC_2.34", "m")
    original = report(verdict("/a", missing_lib("libx.so.1", "/a"), lazy_symbol("f", "/a")))
    original = replace(original, image_findings=(ceiling,))
    result = apply_policy(original, policy, today=TODAY)
    assert [f.severity for f in result.files[0].findings] == ["note", "error"]
    assert result.image_findings[0].severity == "error"


def test_include_and_exclude_globs_remove_files_and_skipped_entries() -> None:
    policy = Policy(include=("/opt/app/**",), exclude=("*.debug", "/opt/app/test/**"))
    original = report(
        verdict("/usr/bin/ls"),
        verdict("/opt/app/bin/app", missing_lib("libx.so.1", "/opt/app/bin/app")),
        verdict("/opt/app/bin/app.debug"),
        verdict("/opt/app/test/t1"),
        skipped=(Skipped("/opt/app/lib/bad.so", "truncated"), Skipped("/usr/lib/x.so", "bad")),
    )
    result = apply_policy(original, policy, today=TODAY)
    assert [v.path for v in result.files] == ["/opt/app/bin/app"]
    assert [s.path for s in result.skipped] == ["/opt/app/lib/bad.so"]
    assert exit_code(result) == 1


def test_statuses_the_findings_do_not_decide_stay() -> None:
    policy = Policy(severity={"default": SeverityRule(OFF, OFF, OFF)})
    interp = Finding(
        FindingKind.MISSING_INTERPRETER,
        Severity.ERROR,
        "/lib/ld-musl-x86_64.so.1",
        "m",
        fatal_at=FatalAt.STARTUP,
    )
    original = report(
        FileVerdict("/bin/static", "static-exec", Status.STATIC),
        FileVerdict("/arm/x", "exec", Status.FOREIGN_ARCH),
        FileVerdict("/m", "exec", Status.INTERPRETER_MISSING, findings=(interp,)),
    )
    result = by_path(apply_policy(original, policy, today=TODAY))
    assert result["/bin/static"].status == Status.STATIC
    assert result["/arm/x"].status == Status.FOREIGN_ARCH
    assert result["/m"].status == Status.OK  # its only finding is off
    kept = apply_policy(original, Policy(), today=TODAY)
    assert by_path(kept)["/m"].status == Status.INTERPRETER_MISSING


def test_host_provided_sonames_are_not_missing() -> None:
    policy = Policy(host_provided=("libcuda.so.1", "libnvidia-*.so.1"))
    original = report(
        verdict(
            "/app/bin/a",
            missing_lib("libcuda.so.1"),
            missing_lib("libnvidia-ml.so.1"),
            missing_lib("libssl.so.3"),
        )
    )
    result = apply_policy(original, policy, today=TODAY)
    assert [f.subject for f in result.files[0].findings] == ["libssl.so.3"]
    assert result.files[0].status == Status.BROKEN


def test_plugin_hosts_are_data_for_the_analysis() -> None:
    policy = Policy(
        plugin_hosts=(
            PluginHost("/opt/app/plugins/*.so", "/opt/app/bin/app"),
            PluginHost("*.so", "/usr/bin/python3"),
        )
    )
    assert hosts_for(policy, "/opt/app/plugins/x.so") == ("/opt/app/bin/app", "/usr/bin/python3")
    assert hosts_for(policy, "/opt/app/plugins/sub/x.so") == ("/usr/bin/python3",)
    assert hosts_for(policy, "/opt/app/bin/app") == ()


# ------------------------------------------------------------------ waivers


def waived_policy(*waivers: Waiver) -> Policy:
    return Policy(waivers=waivers)


def test_a_waiver_in_force_waives_and_says_why() -> None:
    policy = waived_policy(
        Waiver("/app/bin/*", "vendor ships it", "missing-library", "libx.so.*", date(2026, 12, 31))
    )
    original = report(verdict("/app/bin/a", missing_lib("libx.so.1"), missing_lib("liby.so.1")))
    result = apply_policy(original, policy, today=TODAY)
    waived, other = result.files[0].findings
    # issue 10 item 13: the judgement changes (note, waiver), the loader's facts stay
    assert waived.severity == Severity.NOTE and waived.fatal_at == FatalAt.STARTUP
    assert waived.waiver == "vendor ships it"
    assert waived.message.startswith("waived (vendor ships it, until 2026-12-31): libx.so.1")
    assert other == original.files[0].findings[1]
    assert result.files[0].status == Status.BROKEN  # liby is still missing
    assert result.files[0].gate == "fail"
    only_x = report(verdict("/app/bin/a", missing_lib("libx.so.1")))
    judged = apply_policy(only_x, policy, today=TODAY)
    assert judged.files[0].status == Status.BROKEN and judged.files[0].gate == "pass"
    assert exit_code(judged) == 0
    strict_gate = apply_policy(only_x, policy, today=TODAY, fail_on=Severity.NOTE)
    assert strict_gate.files[0].gate == "fail"
    assert exit_code(apply_policy(only_x, policy, today=TODAY), Severity.NOTE) == 1


def test_an_expired_waiver_stops_waiving_and_says_so() -> None:
    policy = waived_policy(Waiver("/app/**", "until the rebuild", expires=date(2026, 11, 25)))
    original = report(verdict("/app/bin/a", missing_lib("libx.so.1")))
    on_last_day = apply_policy(original, policy, today=date(2026, 11, 25))
    assert on_last_day.files[0].status == Status.BROKEN  # the loader still fails at start
    assert on_last_day.files[0].gate == "pass"
    assert exit_code(on_last_day) == 0
    after = apply_policy(original, policy, today=TODAY)
    finding = after.files[0].findings[0]
    assert finding.severity == Severity.ERROR and finding.fatal_at == FatalAt.STARTUP
    assert finding.message.endswith("(waiver expired on 2026-11-25: until the rebuild)")
    assert after.files[0].status == Status.BROKEN
    assert exit_code(after) == 1


def test_a_waiver_in_force_wins_over_an_expired_one() -> None:
    policy = waived_policy(
        Waiver("/app/**", "old", expires=date(2020, 1, 1)),
        Waiver("/app/**", "renewed", expires=date(2030, 1, 1)),
    )
    result = apply_policy(report(verdict("/app/bin/a", missing_lib("x"))), policy, today=TODAY)
    assert result.files[0].findings[0].message.startswith("waived (renewed, until 2030-01-01)")


@pytest.mark.parametrize(
    ("waiver", "applies"),
    [
        (Waiver("/app/bin/a", "r"), True),
        (Waiver("/app/lib/libp.so", "r"), True),  # the object whose need it is
        (Waiver("/usr/**", "r"), False),
        (Waiver("/app/**", "r", kind="undefined-symbol"), False),
        (Waiver("/app/**", "r", kind="missing-library", subject="libq.so.?"), True),
        (Waiver("/app/**", "r", subject="libr*"), False),
    ],
)
def test_waivers_match_kind_subject_and_file_or_requirer(waiver: Waiver, applies: bool) -> None:
    finding = missing_lib("libq.so.1", by="/app/lib/libp.so")
    result = apply_policy(
        report(verdict("/app/bin/a", finding)), waived_policy(waiver), today=TODAY
    )
    assert result.files[0].findings[0].message.startswith("waived") is applies


# ------------------------------------------------------------------ ceilings


def facts(
    needs: tuple[VersionNeed, ...],
    undefined: tuple[UndefinedSymbol, ...] = (),
    defs: tuple[VersionDef, ...] = (),
) -> ElfFacts:
    return ElfFacts(
        64, True, 62, 0, 0, 3, FileKind.PIE_EXEC,
        version_needs=needs, undefined=undefined, version_defs=defs,
    )  # fmt: skip


def test_versions_compare_as_numbers() -> None:
    assert version_number("2.3") < version_number("2.28") < version_number("2.28.1")


def test_ceilings_name_the_version_the_provider_and_the_symbols() -> None:
    elf = facts(
        (
            VersionNeed("libc.so.6", "GLIBC_2.2.5", 1),
            VersionNeed("libc.so.6", "GLIBC_2.34", 2),
            VersionNeed("libc.so.6", "GLIBC_PRIVATE", 3),
            VersionNeed("libstdc++.so.6", "GLIBCXX_3.4.30", 4),
            VersionNeed("libstdc++.so.6", "CXXABI_1.3", 5),
        ),
        (
            UndefinedSymbol("__libc_start_main", "GLIBC_2.34", "libc.so.6"),
            UndefinedSymbol("puts", "GLIBC_2.2.5", "libc.so.6"),
            UndefinedSymbol("_ZSt4cout", "GLIBCXX_3.4.30", "libstdc++.so.6"),
        ),
    )
    found = ceiling_findings(
        "/app/a", elf, {"GLIBC": "2.28", "GLIBCXX": "3.4.25", "CXXABI": "1.3.11"}, Severity.ERROR
    )
    assert [(f.subject, f.provider, f.symbols) for f in found] == [
        ("GLIBC_2.34", "libc.so.6", ("__libc_start_main",)),
        ("GLIBCXX_3.4.30", "libstdc++.so.6", ("_ZSt4cout",)),
    ]
    assert found[0].message == (
        "/app/a needs GLIBC_2.34 from libc.so.6 (used by __libc_start_main), above the "
        "policy's ceiling GLIBC 2.28"
    )
    assert all(f.kind == FindingKind.VERSION_CEILING and f.fatal_at is None for f in found)


def test_the_implementation_of_a_prefix_is_not_held_to_its_ceiling() -> None:
    libm = facts(
        (VersionNeed("libc.so.6", "GLIBC_2.35", 1),), defs=(VersionDef(2, "GLIBC_2.29", 9),)
    )
    assert ceiling_findings("/lib/libm.so.6", libm, {"GLIBC": "2.17"}, Severity.ERROR) == []


# ------------------------------------------------------------------ the corpus


@pytest.fixture(scope="module")
def too_new(corpus_dir: Path) -> Scanned:
    return scan(f"oci-dir:{corpus_dir / 'oci'}:glibc-too-new", ScanOptions())


@pytest.fixture(scope="module")
def deb12(corpus_dir: Path) -> Scanned:
    return scan(f"oci-dir:{corpus_dir / 'oci'}:deb12-base", ScanOptions())


def test_default_policy_a_broken_image_exits_1_a_clean_one_0(
    too_new: Scanned, deb12: Scanned
) -> None:
    default = load_policy("default")
    broken = apply_policy(too_new.report, default, today=TODAY, rootfs=too_new.rootfs)
    clean = apply_policy(deb12.report, default, today=TODAY, rootfs=deb12.rootfs)
    assert exit_code(broken) == 1
    assert {v.path for v in broken.broken()} >= {
        "/usr/local/bin/hello-bookworm",
        "/usr/local/bin/newglibc",
    }
    assert exit_code(clean) == 0
    # libthread_db's ps_* symbols come from a debugger: default waives them, so the file is
    # ok and its findings are notes that say why.
    assert clean.max_severity() == Severity.NOTE
    thread_db = next(v for v in clean.files if "libthread_db" in v.path)
    assert thread_db.status == Status.BROKEN_LAZY and thread_db.gate == "pass"
    assert all(f.message.startswith("waived (libthread_db's ps_*") for f in thread_db.findings)
    assert all(v.gate == "pass" for v in clean.broken())


def test_strict_makes_call_time_failures_errors_and_a_waiver_accepts_them(
    deb12: Scanned,
) -> None:
    builtin = load_policy("strict")
    inherited = apply_policy(deb12.report, builtin, today=TODAY, rootfs=deb12.rootfs)
    assert exit_code(inherited) == 0  # default's libthread_db waiver
    strict = replace(builtin, waivers=())
    result = apply_policy(deb12.report, strict, today=TODAY, rootfs=deb12.rootfs)
    assert exit_code(result) == 1
    waiver = Waiver(
        "/**/libthread_db*",
        "ps_* are provided by the debugger that loads it",
        "undefined-symbol",
        "ps_*",
        date(2026, 12, 31),
    )
    waived = apply_policy(
        deb12.report, replace(strict, waivers=(waiver,)), today=TODAY, rootfs=deb12.rootfs
    )
    assert exit_code(waived) == 0
    assert all(v.gate == "pass" for v in waived.broken())
    expired = apply_policy(
        deb12.report,
        replace(strict, waivers=(waiver,)),
        today=date(2027, 1, 1),
        rootfs=deb12.rootfs,
    )
    assert exit_code(expired) == 1
    lib = next(v for v in expired.files if "libthread_db" in v.path)
    assert all("waiver expired on 2026-12-31" in f.message for f in lib.findings)


def test_glibc_2_28_ceilings_name_files_and_symbols(too_new: Scanned) -> None:
    policy = load_policy("glibc-2.28")
    result = apply_policy(too_new.report, policy, today=TODAY, rootfs=too_new.rootfs)
    ceilings = {
        (v.path, f.subject): f.symbols
        for v in result.files
        for f in v.findings
        if f.kind == FindingKind.VERSION_CEILING
    }
    assert ceilings[("/usr/local/bin/hello-bookworm", "GLIBC_2.34")] == ("__libc_start_main",)
    assert ceilings[("/usr/local/bin/newglibc", "GLIBC_2.36")] == ("arc4random",)
    assert ceilings[("/usr/bin/mawk", "GLIBC_2.29")] == ("exp", "log", "pow")
    assert not any(path.startswith("/lib/x86_64-linux-gnu/libc") for path, _ in ceilings)
    statuses = by_path(result)
    assert statuses["/usr/bin/mawk"].status == Status.OK  # the image itself runs it
    assert exit_code(result) == 1
    only_new = replace(policy, include=("/usr/local/**",))
    narrowed = apply_policy(too_new.report, only_new, today=TODAY, rootfs=too_new.rootfs)
    assert {v.path for v in narrowed.files} == {
        "/usr/local/bin/hello-bookworm",
        "/usr/local/bin/newglibc",
    }


def test_ceilings_need_the_rootfs(too_new: Scanned) -> None:
    policy = load_policy("glibc-2.17")
    result = apply_policy(too_new.report, policy, today=TODAY)
    assert not any(f.kind == FindingKind.VERSION_CEILING for v in result.files for f in v.findings)
