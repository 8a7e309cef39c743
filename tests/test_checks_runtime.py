"""Run-time loading checks (imagescan.checks.runtime, issue 5): NSS modules named in
/etc/nsswitch.conf, libraries a program dlopens by a literal name, Go plugins whose packages
differ from the program that opens them. Images are built here from tests/fixtures/plugins."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from imagescan.analyze import Analysis
from imagescan.checks.goplugin import can_open_plugins, compare, go_plugin_findings, is_go_plugin
from imagescan.checks.model import Finding, FindingKind
from imagescan.checks.nss import (
    NssDatabase,
    NssService,
    builtin_services,
    nss_findings,
    parse_nsswitch,
)
from imagescan.elf.inspect import inspect_elf
from imagescan.elf.model import ElfFacts, FileKind, GoBuildInfo, VersionDef
from imagescan.loader.model import Outcome, Rule, SearchStep
from imagescan.loader.search import SearchResult
from imagescan.scan import ScanOptions, scan
from tests.imagebuilder import File, ImageSpec, Member, glibc_base, write_oci_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plugins"
LIB = "/usr/lib/x86_64-linux-gnu"
NSSWITCH = b"""# /etc/nsswitch.conf
passwd:         files systemd
group:          sss
hosts:          files myhostname dns
shadow:         compat [UNAVAIL=return] files
netgroup:       nis
gshadow:        away
"""


def gcc(out: Path, source: str, *flags: str) -> bytes:
    cmd = ["gcc", "-O1", "-o", str(out), str(FIXTURES / source), *flags]
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


def runtime_files(work: Path) -> list[Member]:
    there = gcc(work / "there.so", "there.c", "-shared", "-fPIC", "-Wl,-soname,libthere.so.1")
    nss = gcc(work / "nss.so", "nss_module.c", "-shared", "-fPIC", "-Wl,-soname,libnss_x.so.2")
    # a module whose own dependency (libthere.so.1, as libaway.so.1) is not in the image
    gcc(work / "libaway.so", "there.c", "-shared", "-fPIC", "-Wl,-soname,libaway.so.1")
    away = (
        "-shared",
        "-fPIC",
        f"-L{work}",
        "-Wl,--no-as-needed",
        "-laway",
        "-Wl,-soname,libnss_away.so.2",
    )
    return [
        File("/etc/nsswitch.conf", NSSWITCH),
        File(f"{LIB}/libnss_myhostname.so.2", nss),
        File(f"{LIB}/libnss_away.so.2", gcc(work / "away.so", "nss_module.c", *away)),
        File(f"{LIB}/libthere.so.1", there),
        File("/usr/bin/dlopener", gcc(work / "dlopener", "dlopener.c"), 0o755),
    ]


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    work = tmp_path_factory.mktemp("runtime")
    layout = write_oci_dir(work / "oci", ImageSpec([glibc_base(), runtime_files(work)]))
    return scan(f"oci-dir:{layout}:latest", ScanOptions()).analysis


def of_kind(analysis: Analysis, kind: FindingKind) -> list[Finding]:
    return [f for f in analysis.image_findings if f.kind == kind]


# ---------------------------------------------------------------- NSS


def test_missing_nss_modules_are_reported_by_what_they_break(analysis: Analysis) -> None:
    """files and dns are built into glibc >= 2.34; myhostname is in the image; systemd is
    missing but passwd still has files (a note); sss leaves group with nothing, compat
    returns on UNAVAIL (warnings); nis leaves netgroup with nothing, a note (not a user,
    group or host lookup)."""
    found = {
        (f.subject, str(f.severity)) for f in of_kind(analysis, FindingKind.NSS_MODULE_MISSING)
    }
    assert found == {
        ("libnss_systemd.so.2", "note"),
        ("libnss_sss.so.2", "warning"),
        ("libnss_compat.so.2", "warning"),
        ("libnss_nis.so.2", "note"),
        ("libnss_away.so.2", "warning"),
    }


def test_a_missing_nss_module_says_where_it_was_searched(analysis: Analysis) -> None:
    sss = next(f for f in of_kind(analysis, FindingKind.NSS_MODULE_MISSING) if "sss" in f.subject)
    assert "group lookups fail" in sss.message
    assert sss.required_by == "/etc/nsswitch.conf"
    assert (f"{LIB}/libnss_sss.so.2", str(Rule.DEFAULT)) in sss.tried


def test_an_nss_module_whose_dependency_is_missing_cannot_be_loaded(analysis: Analysis) -> None:
    away = next(f for f in of_kind(analysis, FindingKind.NSS_MODULE_MISSING) if "away" in f.subject)
    assert away.provider == "/lib/x86_64-linux-gnu/libnss_away.so.2"  # the first default dir
    assert "cannot be loaded" in away.message and "libaway.so.1" in away.message
    assert "gshadow lookups fail" in away.message


def test_nsswitch_lines_with_comments_and_actions() -> None:
    text = "# c\npasswd: files # x\nhosts: mdns4_minimal [NOTFOUND=return] dns\nbad line\n"
    text += "shadow: sss [ !SUCCESS = return ] files\nnetgroup: nis [!UNAVAIL=return]\n"
    assert parse_nsswitch(text) == (
        NssDatabase("passwd", (NssService("files"),)),
        NssDatabase("hosts", (NssService("mdns4_minimal"), NssService("dns"))),
        NssDatabase("shadow", (NssService("sss", unavail_returns=True), NssService("files"))),
        NssDatabase("netgroup", (NssService("nis"),)),
    )


def _missing(name: str) -> SearchResult:
    return SearchResult((SearchStep(f"/lib/{name}", Rule.DEFAULT, Outcome.ABSENT),))


def test_before_glibc_2_34_files_and_dns_are_modules_too() -> None:
    old = ElfFacts(64, True, 62, 0, 0, 3, FileKind.SHARED)
    new = dataclasses.replace(old, version_defs=(VersionDef(30, "GLIBC_2.34", 0),))
    assert builtin_services(old) == ()
    assert builtin_services(new) == ("files", "dns")
    databases = parse_nsswitch("passwd: files\nhosts: files dns\nnetgroup: nis\n")
    found = nss_findings(databases, builtin_services(old), _missing)
    assert [(f.subject, str(f.severity)) for f in found] == [
        ("libnss_files.so.2", "warning"),
        ("libnss_dns.so.2", "warning"),
        ("libnss_nis.so.2", "note"),  # netgroup lookups fail: not user, group or host ones
    ]
    assert "passwd, hosts" in found[0].message
    later = nss_findings(databases, builtin_services(new), _missing)
    assert [f.subject for f in later] == ["libnss_nis.so.2"]


# ---------------------------------------------------------------- dlopen


def test_a_dlopen_literal_the_loader_cannot_find_is_a_warning(analysis: Analysis) -> None:
    facts = analysis.ctx.facts("/usr/bin/dlopener")
    assert facts is not None
    assert set(facts.strings_so) == {"libthere.so.1", "libthere.so", "libc.so.1", "libgone.so.7"}
    found = of_kind(analysis, FindingKind.DLOPEN_CANDIDATE_MISSING)
    assert [(f.subject, f.required_by, str(f.severity)) for f in found] == [
        ("libgone.so.7", "/usr/bin/dlopener", "warning")
    ]
    assert (f"{LIB}/libgone.so.7", str(Rule.DEFAULT)) in found[0].tried
    assert 'dlopen("libgone.so.7")' in found[0].message


# ---------------------------------------------------------------- Go plugins

GO_FILES = {
    "/usr/local/lib/plugin.so": ("plugin", ("-buildmode=plugin",)),
    "/usr/local/bin/host-v1": ("host-v1", ()),
    "/usr/local/bin/host-v2": ("host-v2", ()),
    "/usr/local/lib/libadd.so": ("cshared", ("-buildmode=c-shared",)),
}


def go_build(src: Path, out: Path, flags: tuple[str, ...], cache: Path) -> None:
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local", GOPROXY="off")
    env.update(GOCACHE=str(cache / "cache"), GOPATH=str(cache / "gopath"), GO111MODULE="on")
    subprocess.run(
        ["go", "build", *flags, "-o", str(out), "."], cwd=src, env=env, check=True, timeout=300
    )


@pytest.fixture(scope="module")
def go_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("no Go toolchain")
    work = tmp_path_factory.mktemp("goplugin")
    shutil.copytree(FIXTURES / "go", work / "src")
    for path, (name, flags) in GO_FILES.items():
        go_build(work / "src" / name, work / Path(path).name, flags, work)
    return work


@pytest.fixture(scope="module")
def go_analysis(go_dir: Path) -> Analysis:
    files: list[Member] = [
        File(path, (go_dir / Path(path).name).read_bytes(), 0o755) for path in GO_FILES
    ]
    layout = write_oci_dir(go_dir / "oci", ImageSpec([glibc_base(), files]))
    return scan(f"oci-dir:{layout}:latest", ScanOptions()).analysis


def pkghashes(path: Path) -> tuple[tuple[str, str], ...]:
    """What `go.link.pkghashbytes.<package>` holds, read with pyelftools (the test's own
    reading of the fingerprints runtime/plugin.go compares)."""
    out = []
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        dynsym = elf.get_section_by_name(".dynsym")
        assert isinstance(dynsym, SymbolTableSection)
        for sym in dynsym.iter_symbols():
            if sym.name.startswith("go.link.pkghashbytes.") and sym["st_shndx"] != "SHN_UNDEF":
                section = elf.get_section(sym["st_shndx"])
                offset = sym["st_value"] - section["sh_addr"]
                data = section.data()[offset : offset + sym["st_size"]]
                out.append((sym.name.removeprefix("go.link.pkghashbytes."), data.hex()))
    return tuple(out)


def test_the_real_plugin_open_refuses_only_the_host_with_another_shared(go_dir: Path) -> None:
    """Ground truth for the fixtures: host-v1 opens the plugin, host-v2 cannot."""
    plugin = str(go_dir / "plugin.so")
    ok = subprocess.run([go_dir / "host-v1", plugin], capture_output=True, text=True)
    bad = subprocess.run([go_dir / "host-v2", plugin], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert "different version of package example.com/shared" in bad.stdout


def test_go_plugins_and_their_hosts_are_recognised(go_analysis: Analysis) -> None:
    facts = {p: go_analysis.ctx.facts(p) for p in GO_FILES}
    plugin, host_v1 = facts["/usr/local/lib/plugin.so"], facts["/usr/local/bin/host-v1"]
    assert plugin is not None and host_v1 is not None
    assert is_go_plugin(plugin) and not can_open_plugins(plugin)
    assert can_open_plugins(host_v1) and not is_go_plugin(host_v1)
    assert host_v1.go is not None and dict(host_v1.go.deps)["example.com/shared"].startswith(
        "../shared-v1"
    )
    assert go_analysis.verdicts["/usr/local/lib/plugin.so"].status == "ok"


def test_a_go_plugin_mismatch_names_the_package_and_both_sides(
    go_analysis: Analysis, go_dir: Path
) -> None:
    """The comparison over the fingerprints the files carry (read here with pyelftools)."""
    files = []
    for path in sorted(GO_FILES):
        facts = go_analysis.ctx.facts(path)
        assert facts is not None
        hashes = pkghashes(go_dir / Path(path).name)
        files.append((path, dataclasses.replace(facts, go_pkghashes=hashes)))
    found = go_plugin_findings(files)
    assert [(f.subject, f.required_by, f.provider) for f in found] == [
        ("example.com/shared", "/usr/local/bin/host-v2", "/usr/local/lib/plugin.so")
    ]
    message = found[0].message
    assert "plugin was built with a different version of package example.com/shared" in message
    assert "example.com/shared ../shared-v2" in message


def test_the_scan_reports_the_go_plugin_mismatch(go_analysis: Analysis) -> None:
    facts = go_analysis.ctx.facts("/usr/local/lib/plugin.so")
    if facts is None or not facts.go_pkghashes:
        pytest.skip("the ELF reader does not record go.link.pkghashbytes yet (ElfFacts)")
    found = of_kind(go_analysis, FindingKind.GO_PLUGIN_MISMATCH)
    assert [(f.subject, f.required_by) for f in found] == [
        ("example.com/shared", "/usr/local/bin/host-v2")
    ]


def test_a_go_c_shared_library_is_recognised_and_inspect_lists_its_exports(
    go_analysis: Analysis, go_dir: Path
) -> None:
    facts = go_analysis.ctx.facts("/usr/local/lib/libadd.so")
    assert facts is not None and facts.go is not None
    # Go 1.19 writes no "-buildmode" setting for c-shared; a shared object with build info is
    assert (facts.kind, facts.go.main_module, facts.go.cgo_enabled) == (
        "shared",
        "example.com/cshared",
        True,
    )
    assert facts.go.build_mode in (None, "c-shared")
    assert not is_go_plugin(facts)
    inspection = inspect_elf((go_dir / "libadd.so").read_bytes(), "/usr/local/lib/libadd.so")
    assert "Add" in {sym.name for sym in inspection.exports}
    assert go_analysis.verdicts["/usr/local/lib/libadd.so"].status == "ok"


def _go(version: str, *deps: tuple[str, str]) -> GoBuildInfo:
    return GoBuildInfo(version, "example.com/x", "(devel)", deps=deps)


def test_build_information_names_go_versions_and_module_versions() -> None:
    plugin = ElfFacts(64, True, 62, 0, 0, 3, FileKind.SHARED, go=_go("go1.21.0", ("m", "v1")))
    host = dataclasses.replace(plugin, kind=FileKind.EXEC, go=_go("go1.22.1", ("m", "v1")))
    mismatch = compare(plugin, host)
    assert mismatch is not None
    assert (mismatch.package, mismatch.plugin_has, mismatch.host_has) == (
        "Go toolchain",
        "go1.21.0",
        "go1.22.1",
    )
    host = dataclasses.replace(host, go=_go("go1.21.0", ("m", "v2"), ("n", "v1")))
    mismatch = compare(plugin, host)
    assert mismatch is not None and (mismatch.package, mismatch.host_has) == ("m", "v2")
    assert compare(plugin, dataclasses.replace(host, go=_go("go1.21.0", ("m", "v1")))) is None


# ---------------------------------------------------------------- the corpus


def test_the_corpus_go_plugin_and_its_host_agree(corpus_dir: Path) -> None:
    """The go image's plugin.Open host and plugin were built together: recognised, no
    mismatch; and stock Debian's nsswitch.conf (db, nis) gives notes, never warnings."""
    from tests.test_corpus_differential import scanned

    found = scanned("go")
    plugin = found.ctx.facts("/usr/local/lib/goplugin.so")
    host = found.ctx.facts("/usr/local/bin/go-plugin-host")
    assert plugin is not None and is_go_plugin(plugin)
    assert host is not None and can_open_plugins(host)
    others = [found.ctx.facts(p) for p in ("/usr/local/bin/go-cgo", "/usr/local/bin/go-static")]
    assert not any(f is not None and can_open_plugins(f) for f in others)
    kinds = {(str(f.kind), str(f.severity)) for f in found.image_findings}
    assert kinds == {("nss-module-missing", "note")}
