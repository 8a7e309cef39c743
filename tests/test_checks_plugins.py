"""Plugins judged inside their host (imagescan.checks.plugins, issue 5): natural hosts (a Python
extension in python3.11, Perl XS modules in perl), hosts found by their symbols (a plugin of
an ordinary -rdynamic program), the closest host when none satisfies, declared hosts.

The hosts are small C programs built with -rdynamic that export what the real python3.11 and
perl export to their modules (PyLong_FromLong, Perl_newXS, ...): the host choice and the
verdict inside it depend only on those exports, and a real interpreter would make the image
hundreds of megabytes."""

from __future__ import annotations

import functools
import pickle
import subprocess
from pathlib import Path

import pytest

from imagescan import parallel
from imagescan.analyze import Analysis, _unspared, judge_files
from imagescan.checks.budget import NOT_JUDGED_NOTE
from imagescan.checks.cpu import cpu_sensitive
from imagescan.checks.model import FileVerdict, FindingKind, HostTrial, Status
from imagescan.checks.plugins import (
    declared_hosts,
    host_candidates,
    host_evidence,
    hosted_whole,
    judge_plugins,
    links_to,
    rank_hosts,
)
from imagescan.checks.verdict import Judge
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.image.model import ImageConfig
from imagescan.loader import setup
from imagescan.loader.model import Process
from imagescan.loader.session import LoaderSession
from imagescan.packages.read import read_packages
from imagescan.render.why import explain
from imagescan.rootfs.model import EntryType, RootFS
from imagescan.scan import ScanOptions, read_image, scan
from tests.imagebuilder import File, ImageSpec, Member, Symlink, glibc_base, write_oci_dir
from tests.loader_factories import Tree, context

Declared = tuple[tuple[str, str], ...]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plugins"
LIB = "/usr/lib/x86_64-linux-gnu"
PYEXT = f"{LIB}/python3/dist-packages/spam.cpython-311-x86_64-linux-gnu.so"
PERL_OK = f"{LIB}/perl5/5.36/auto/Foo/Foo.so"
PERL_BROKEN = f"{LIB}/perl5/5.36/auto/Bar/Bar.so"
WIDGET = "/opt/app/plugins/widget.so"
PARTIAL = "/opt/app/plugins/partial.so"
BARE = "/opt/app/plugins/bare.so"  # no DT_NEEDED, not even libc
LINKED = "/opt/app/lib/libwidget.so"  # the same code, loaded by /opt/app/bin/user's DT_NEEDED


def gcc(out: Path, source: str, *flags: str) -> bytes:
    subprocess.run(
        ["gcc", "-O1", "-o", str(out), str(FIXTURES / source), *flags],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def build_files(work: Path) -> list[Member]:
    """The hosts (exec, 0o755) and plugins (shared, no DT_NEEDED on their hosts)."""

    def host(name: str, define: str) -> bytes:
        return gcc(work / name, "host.c", "-rdynamic", f"-D{define}")

    def module(name: str, source: str, *flags: str) -> bytes:
        return gcc(work / name, source, "-shared", "-fPIC", *flags)

    return [
        File("/usr/bin/python3.11", host("python3.11", "PYTHON"), 0o755),
        File("/usr/bin/perl", host("perl", "PERL"), 0o755),
        File("/opt/app/bin/app", host("app", "APP"), 0o755),
        File(PYEXT, module("spam.so", "pyext.c")),
        File(PERL_OK, module("Foo.so", "perlxs.c")),
        File(PERL_BROKEN, module("Bar.so", "perlxs.c", "-DMISSING")),
        File(WIDGET, module("widget.so", "widget.c")),
        File(PARTIAL, module("partial.so", "widget.c", "-DMISSING")),
        File(BARE, module("bare.so", "widget.c", "-nostdlib")),
        File(LINKED, module("libwidget.so", "widget.c", "-Wl,-soname,libwidget.so")),
        File("/opt/app/bin/user", user(work), 0o755),
    ]


def user(work: Path) -> bytes:
    """A program linked against libwidget.so (DT_NEEDED) that does not define what the
    library needs: the library is no plugin, and the program is what is broken."""
    linking = (f"-L{work}", "-Wl,--no-as-needed", "-lwidget", "-Wl,-rpath,/opt/app/lib")
    return gcc(work / "user", "host.c", *linking, "-Wl,--unresolved-symbols=ignore-in-shared-libs")


@functools.cache
def _layout(work: str) -> Path:
    root = Path(work)
    spec = ImageSpec([glibc_base(), build_files(root)])
    return write_oci_dir(root / "oci", spec)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _layout(str(tmp_path_factory.mktemp("plugins")))


def analysed(layout: Path, declared: tuple[tuple[str, str], ...] = ()) -> Analysis:
    return scan(f"oci-dir:{layout}:latest", ScanOptions(plugin_hosts=declared)).analysis


@pytest.fixture(scope="module")
def analysis(layout: Path) -> Analysis:
    return analysed(layout)


def undefined(verdict: FileVerdict) -> set[str]:
    return {f.subject for f in verdict.findings if f.kind == FindingKind.UNDEFINED_SYMBOL}


def test_python_extension_is_judged_inside_the_matching_python(analysis: Analysis) -> None:
    verdict = analysis.verdicts[PYEXT]
    assert (verdict.host, verdict.status, undefined(verdict)) == (
        "/usr/bin/python3.11",
        "ok",
        set(),
    )
    assert verdict.note is not None and "Python extension modules" in verdict.note


def test_perl_xs_module_is_ok_inside_perl(analysis: Analysis) -> None:
    verdict = analysis.verdicts[PERL_OK]
    assert (verdict.host, verdict.status, undefined(verdict)) == ("/usr/bin/perl", "ok", set())


def test_perl_xs_module_with_a_genuinely_missing_symbol_fails_when_called(
    analysis: Analysis,
) -> None:
    """Inside perl only the symbol perl lacks is left, at call time (a lazy PLT call)."""
    verdict = analysis.verdicts[PERL_BROKEN]
    assert verdict.host == "/usr/bin/perl"
    assert verdict.status == Status.BROKEN_LAZY
    assert undefined(verdict) == {"Perl_gone_in_this_perl"}


def test_a_plugin_of_an_unlisted_program_is_judged_inside_it(analysis: Analysis) -> None:
    """No naming convention points at /opt/app/bin/app: its exported symbols do."""
    verdict = analysis.verdicts[WIDGET]
    assert (verdict.host, verdict.status, undefined(verdict)) == ("/opt/app/bin/app", "ok", set())
    assert verdict.note is not None and "defines every symbol the plugin lacks (1)" in verdict.note


def test_a_plugin_no_host_satisfies_keeps_its_verdict_and_names_the_closest(
    analysis: Analysis,
) -> None:
    verdict = analysis.verdicts[PARTIAL]
    assert verdict.host is None
    assert verdict.status == Status.BROKEN_LAZY
    assert undefined(verdict) == {"app_register_widget", "app_unknown_hook"}
    assert verdict.note is not None
    assert "closest host, /opt/app/bin/app, lacks 1: app_unknown_hook" in verdict.note


def test_an_object_without_needed_is_checked_and_judged_inside_its_host(
    analysis: Analysis,
) -> None:
    """ld.so's "statically linked" only replaces the dependency list in trace mode: an
    object without DT_NEEDED is relocated and its symbols are bound like any other's
    (issue 9). bare.so lacks the host's app_register_widget and libc's strlen; inside
    /opt/app/bin/app (same installation prefix) both are there."""
    verdict = analysis.verdicts[BARE]
    assert (verdict.host, verdict.status, undefined(verdict)) == ("/opt/app/bin/app", "ok", set())


def test_a_library_a_program_needs_is_not_given_a_host(analysis: Analysis) -> None:
    """Only shared objects no program loads through DT_NEEDED are plugins: libwidget.so is
    judged in its own closure, and the program that needs it is broken."""
    verdict = analysis.verdicts[LINKED]
    assert (verdict.host, verdict.note, undefined(verdict)) == (None, None, {"app_register_widget"})
    assert undefined(analysis.verdicts["/opt/app/bin/user"]) == {"app_register_widget"}


def test_hosts_themselves_and_libc_are_not_plugins(analysis: Analysis) -> None:
    hosted = {p for p, v in analysis.verdicts.items() if v.host}
    assert hosted == {PYEXT, PERL_OK, PERL_BROKEN, WIDGET, BARE}


def test_a_declared_host_wins_over_inference(layout: Path) -> None:
    """The policy says perl loads widget.so: judged there, it lacks app_register_widget."""
    found = analysed(layout, (("/opt/app/plugins/*.so", "/usr/bin/perl"),))
    verdict = found.verdicts[WIDGET]
    assert verdict.host == "/usr/bin/perl"
    assert undefined(verdict) == {"app_register_widget"}
    assert verdict.note is not None and "declared by the policy" in verdict.note


def test_a_declared_host_missing_from_the_image_is_a_warning(layout: Path) -> None:
    found = analysed(layout, (("**/widget.so", "/usr/bin/widgetd"),))
    verdict = found.verdicts[WIDGET]
    assert verdict.host is None
    kinds = [(f.kind, f.subject, str(f.severity)) for f in verdict.findings]
    assert (FindingKind.PLUGIN_HOST_MISSING, "/usr/bin/widgetd", "warning") in kinds
    assert undefined(verdict) == {"app_register_widget"}  # its standalone verdict


def test_why_shows_the_host_choice(analysis: Analysis) -> None:
    lines = list(explain(analysis.verdicts[WIDGET], analysis.processes.get(WIDGET), None))
    assert lines[0] == f"{WIDGET}: ok (judged inside /opt/app/bin/app)"
    assert any(line.startswith("  plugin host: judged inside /opt/app/bin/app") for line in lines)
    closest = list(explain(analysis.verdicts[PARTIAL], analysis.processes.get(PARTIAL), None))
    assert any("closest host, /opt/app/bin/app" in line for line in closest)


# ---------------------------------------------------------------- pure rules


def _facts(defined: tuple[str, ...] = ()) -> ElfFacts:
    return ElfFacts(64, True, 62, 0, 0, 3, FileKind.SHARED, defined=dict.fromkeys(defined, (1,)))


def first_host(path: str, facts: ElfFacts) -> str | None:
    return next(iter(host_candidates(path, facts)), None)


def test_natural_hosts_follow_the_module_naming() -> None:
    python = host_candidates("/usr/lib/python3/dist-packages/x.cpython-312-a.so", _facts())
    assert list(python)[:2] == ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    assert first_host("/usr/lib/x/perl5/auto/X/X.so", _facts(("boot_X",))) == "/usr/bin/perl"
    gcc_plugin = "/usr/lib/gcc/x86_64-linux-gnu/12/plugin/annobin.so"
    assert first_host(gcc_plugin, _facts()) == "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"
    assert first_host("/usr/lib/x86_64-linux-gnu/tc/m_xt.so", _facts()) == "/usr/sbin/tc"
    assert first_host("/usr/lib/libfoo.so.1", _facts()) is None


def test_declared_hosts_match_globs_in_declaration_order() -> None:
    declared = (("/opt/**/*.so", "/opt/a"), ("*.so", "/opt/b"), ("/usr/**", "/opt/c"))
    assert declared_hosts("/opt/app/p.so", declared) == ("/opt/a", "/opt/b")
    assert declared_hosts("/srv/p.so.1", declared) == ()


def test_hosts_rank_by_coverage_then_own_exports_then_path() -> None:
    providers = {"a": {"/bin/x", "/bin/y", "/bin/z"}, "b": {"/bin/y", "/bin/z"}}
    facts = {"/bin/z": _facts(("a", "b")), "/bin/y": _facts(())}
    ranked = rank_hosts(("a", "b", "c"), providers, facts.get)
    assert ranked == ["/bin/z", "/bin/y", "/bin/x"]
    assert rank_hosts(("c",), providers, facts.get) == []


def test_an_underlinked_library_gets_no_host_but_a_note(tmp_path: Path) -> None:
    """A library whose only lacks are C runtime symbols (built without -lm) is not a plugin
    of whichever program happens to load libm: it keeps its standalone verdict, as ldd -r
    gives it, and the note says what is missing from its DT_NEEDED."""
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    lib = gcc(tmp_path / "libroot3.so", "underlinked.c", "-shared", "-fPIC", "-fno-builtin")
    prog = gcc(tmp_path / "mathuser", "mathuser.c", "-fno-builtin", "-lm")
    files = [
        File(libm, Path(libm).read_bytes(), 0o644),
        File("/usr/bin/mathuser", prog, 0o755),
        File("/opt/lib/libroot3.so", lib),
    ]
    layout = write_oci_dir(tmp_path / "oci", {"t": ImageSpec([glibc_base(), files])})
    report = scan(f"oci-dir:{layout}:t", ScanOptions()).report
    verdict = next(v for v in report.files if v.path == "/opt/lib/libroot3.so")
    assert verdict.host is None
    assert verdict.status == Status.BROKEN_LAZY
    assert verdict.note is not None and verdict.note.startswith("underlinked: cbrt")
    assert {f.subject for f in verdict.findings} == {"cbrt"}


def test_a_host_needs_evidence_beyond_its_symbols() -> None:
    """Issue 9: scipy's vendored libgfortran is no plugin of gdal_contour, a library lacking
    strlcat none of postgres; a module directory named after the host, or a shared
    installation prefix below the system directories, is evidence."""
    postgres = "/usr/lib/postgresql/15/bin/postgres"
    assert host_evidence(postgres, "/usr/lib/postgresql/15/lib/auth_delay.so") is not None
    assert host_evidence("/usr/sbin/nginx", "/usr/lib/nginx/modules/ngx_mail.so") is not None
    assert host_evidence("/usr/bin/node", "/app/node_modules/sharp/build/sharp.node") is not None
    assert host_evidence("/opt/app/bin/app", "/opt/app/plugins/widget.so") is not None
    scipy = "/usr/lib/python3/dist-packages/scipy.libs/libgfortran-040039e1.so.5.0.0"
    assert host_evidence("/usr/bin/gdal_contour", scipy) is None
    assert host_evidence(postgres, "/usr/lib/x86_64-linux-gnu/libbsd-user.so.0") is None
    assert host_evidence("/usr/bin/app", "/usr/lib/x86_64-linux-gnu/libfoo.so.1") is None


def test_evidence_from_a_symlink_or_the_package_that_installs_both() -> None:
    """Issue 9 on an unseen image: Debian's lua-cjson is loaded by lua5.4 as
    lua/5.4/cjson.so, a symlink to a file of the triplet directory; rsyslog's modules lie
    in a directory not named rsyslogd, but the package rsyslog installs both."""
    lua_cjson = f"{LIB}/liblua5.4-cjson.so.0.0.0"
    assert host_evidence("/usr/bin/lua5.4", lua_cjson) is None
    named = host_evidence("/usr/bin/lua5.4", lua_cjson, (f"{LIB}/lua/5.4/cjson.so",))
    assert named == "it lies under lua/, named after lua"
    owners = {"/usr/sbin/rsyslogd": "rsyslog", f"{LIB}/rsyslog/imfile.so": "rsyslog"}
    owners[f"{LIB}/libother.so.1"] = "other"
    same = host_evidence("/usr/sbin/rsyslogd", f"{LIB}/rsyslog/imfile.so", (), owners.get)
    assert same == "the package rsyslog installs both"
    assert host_evidence("/usr/sbin/rsyslogd", f"{LIB}/libother.so.1", (), owners.get) is None
    assert host_evidence("/usr/sbin/rsyslogd", f"{LIB}/libnobody.so.1", (), owners.get) is None


def test_the_symlinks_to_a_plugin_are_every_symlink_that_resolves_to_it() -> None:
    """links_to resolves only the symlinks whose link text can end on a plugin (its name,
    or a link's that can): the same aliases as resolving every symlink, through chains,
    relative and absolute texts and directory links, and none through a directory text,
    a dangling or a looping link (issue 14)."""
    cjson = f"{LIB}/liblua5.4-cjson.so.0.0.0"
    widget = "/opt/app/lib/widget.so"
    tree = Tree().file(cjson).file(widget).file("/opt/other/widget.so").dir("/srv")
    tree.link(f"{LIB}/liblua5.4-cjson.so.0", "liblua5.4-cjson.so.0.0.0")
    tree.link(f"{LIB}/lua/5.4/cjson.so", "../../liblua5.4-cjson.so.0")  # a chain
    tree.link("/usr/lib/lua", "x86_64-linux-gnu/lua")  # a directory link, then through it:
    tree.link("/usr/share/lua/cjson.so", "/usr/lib/lua/5.4/cjson.so")
    tree.link("/opt/app/plugins/w.so", "../lib/./widget.so").link("/opt/w", "app/lib/widget.so")
    tree.link("/opt/app/lib/widget.so.1", "/opt/other/widget.so")  # its name, another file
    tree.link("/opt/app/here", ".").link("/opt/app/up", "..").link("/opt/app/d", "lib/")
    tree.link("/opt/a", "b").link("/opt/b", "a").link("/opt/gone", "widget.so")
    ctx = context(tree.rootfs())
    targets = {cjson, widget}
    every = {}  # resolving every symlink of the image
    for path, entry in sorted(ctx.rootfs.entries.items()):
        if entry.type == EntryType.SYMLINK and ctx.resolve(path) in targets:
            every.setdefault(ctx.resolve(path), []).append(path)
    assert links_to(ctx, targets) == {real: tuple(paths) for real, paths in every.items()}
    assert links_to(ctx, targets) == {
        cjson: (
            f"{LIB}/liblua5.4-cjson.so.0",
            f"{LIB}/lua/5.4/cjson.so",
            "/usr/share/lua/cjson.so",
        ),
        widget: ("/opt/app/plugins/w.so", "/opt/w"),
    }
    assert links_to(ctx, {"/opt/other/widget.so"}) == {
        "/opt/other/widget.so": ("/opt/app/lib/widget.so.1",)
    }


MODD = "/usr/sbin/modd"
OWNED = f"{LIB}/modules-of-modd/widget.so"  # installed by modd's package
ALIASED = f"{LIB}/libappwidget.so.0"  # loaded by appd as /usr/lib/appd/widget.so


def _dpkg(package: str, paths: list[str]) -> list[Member]:
    """The dpkg database as dpkg writes it: status paragraph and info/PACKAGE.list."""
    status = f"Package: {package}\nStatus: install ok installed\nVersion: 1.0-1\n"
    status += "Architecture: amd64\n\n"
    listed = "".join(f"{path}\n" for path in paths)
    return [
        File("/var/lib/dpkg/status", status.encode()),
        File(f"/var/lib/dpkg/info/{package}.list", listed.encode()),
    ]


def test_a_host_proven_by_its_package_or_a_symlink_judges_the_plugin(tmp_path: Path) -> None:
    """Compiled end to end: widget.so lacks app_register_widget, which both hosts export;
    the package that installs modd installs it too, and appd loads the other copy through
    a symlink in its own module directory. Without that evidence (the second image: no
    package database, no symlink) both keep their standalone verdict."""

    def build(name: str, *flags: str) -> bytes:
        return gcc(tmp_path / name, *flags)

    host = build("host", "host.c", "-rdynamic", "-DAPP")
    plugin = build("widget.so", "widget.c", "-shared", "-fPIC")
    files = [File(MODD, host, 0o755), File("/usr/sbin/appd", host, 0o755)]
    files += [File(OWNED, plugin), File(ALIASED, plugin)]
    proven = [*files, *_dpkg("modd", [MODD, OWNED]), Symlink("/usr/lib/appd/widget.so", ALIASED)]
    images = {"proven": ImageSpec([glibc_base(), proven]), "bare": ImageSpec([glibc_base(), files])}
    layout = write_oci_dir(tmp_path / "oci", images)
    found = scan(f"oci-dir:{layout}:proven", ScanOptions()).analysis.verdicts
    assert (found[OWNED].host, found[OWNED].status) == (MODD, Status.OK)
    assert found[OWNED].note is not None and "the package modd installs both" in found[OWNED].note
    assert (found[ALIASED].host, found[ALIASED].status) == ("/usr/sbin/appd", Status.OK)
    bare = scan(f"oci-dir:{layout}:bare", ScanOptions()).analysis.verdicts
    for path in (OWNED, ALIASED):
        assert (bare[path].host, bare[path].status) == (None, Status.BROKEN_LAZY)
        assert bare[path].note is not None and bare[path].note.startswith("judged on its own")


def test_the_trials_made_while_judging_are_those_plugin_judging_asks_for(layout: Path) -> None:
    """hosted_whole runs while the files are judged (in forked children too): it makes
    the trials judge_plugins then asks for, with the same results, and they reach another
    judge through learned() as a forked child's reach the parent."""
    image, rootfs = read_image(f"oci-dir:{layout}:latest", ScanOptions())

    def judge() -> Judge:
        return Judge(LoaderSession(setup.make_context(rootfs, image.config)))

    early = judge()
    judge_files(early, rootfs, spared=functools.partial(hosted_whole, early))
    assert early.trials[("/usr/bin/python3.11", PYEXT)] == HostTrial("/usr/bin/python3.11", ())
    assert early.trials[("/usr/bin/perl", PERL_BROKEN)] is not None
    late = judge()
    verdicts, processes = judge_files(late, rootfs)
    assert late.trials == {}
    alone = Analysis(late.ctx, verdicts, processes, packages=read_packages(rootfs))
    judge_plugins(late, alone)
    assert {key: late.trials[key] for key in early.trials} == early.trials
    taught = judge()
    taught.learn(pickle.loads(pickle.dumps(early.learned())))
    assert taught.trials == early.trials
    assert taught.spared == early.spared == {PYEXT, PERL_OK}


def _judged(
    rootfs: RootFS, config: ImageConfig, spare: bool, declared: Declared = ()
) -> tuple[Judge, dict[str, FileVerdict], dict[str, Process], dict[str, FileVerdict]]:
    """The judge, the verdicts alone (their undefined symbols spared or not), the
    processes, and the verdicts after plugin judging."""
    judge = Judge(LoaderSession(setup.make_context(rootfs, config)))
    spared = functools.partial(hosted_whole, judge, declared=declared) if spare else None
    verdicts, processes = judge_files(judge, rootfs, spared=spared)
    alone = Analysis(judge.ctx, verdicts, processes, packages=read_packages(rootfs))
    return judge, verdicts, processes, {**verdicts, **judge_plugins(judge, alone, declared)}


@pytest.mark.parametrize("declared", [(), ((PYEXT, "/opt/app/bin/app"),)])
def test_sparing_the_symbols_a_host_finds_changes_no_verdict(
    layout: Path, declared: Declared
) -> None:
    """A plugin that a natural host judges whole has its undefined symbols spared while
    the files are judged (judge_plugins drops them all); after plugin judging every
    verdict is the one judged with them found. A declared host is judge_plugins' own."""
    image, rootfs = read_image(f"oci-dir:{layout}:latest", ScanOptions())
    _, plain_alone, _, plain = _judged(rootfs, image.config, False, declared)
    judge, spared_alone, processes, spared = _judged(rootfs, image.config, True, declared)
    assert spared == plain
    assert undefined(plain_alone[PYEXT]) and undefined(plain_alone[PERL_OK])
    assert not undefined(spared_alone[PERL_OK])  # perl defines every one of them
    assert bool(undefined(spared_alone[PYEXT])) == bool(declared)
    assert undefined(spared_alone[PERL_BROKEN]) == undefined(plain_alone[PERL_BROKEN])
    assert not hosted_whole(judge, processes[PERL_BROKEN])  # perl lacks one of its symbols


def test_on_a_cpu_dependent_image_the_verdicts_alone_are_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the CPU can change a search (a glibc-hwcaps directory), the other CPU models'
    judgings are compared with each file's verdict alone: the spared undefined symbols are
    found again first (analyze._unspared), those a forked child spared too, and the scan's
    verdicts are as before."""
    library = gcc(tmp_path / "libhw.so.1", "widget.c", "-shared", "-fPIC")
    hwcaps = File(f"{LIB}/glibc-hwcaps/x86-64-v3/libhw.so.1", library)
    spec = ImageSpec([glibc_base(), [*build_files(tmp_path), hwcaps]])
    reference = f"oci-dir:{write_oci_dir(tmp_path / 'oci', spec)}:latest"
    image, rootfs = read_image(reference, ScanOptions())
    assert cpu_sensitive(rootfs)
    _, plain_alone, _, _ = _judged(rootfs, image.config, False)
    judge, spared_alone, processes, _ = _judged(rootfs, image.config, True)
    assert spared_alone != plain_alone
    assert judge.spared == {PYEXT, PERL_OK}
    assert _unspared(judge, spared_alone, processes) == plain_alone
    verdict = scan(reference, ScanOptions()).analysis.verdicts[PYEXT]
    assert (verdict.host, verdict.status, undefined(verdict)) == (
        "/usr/bin/python3.11",
        "ok",
        set(),
    )
    assert not any(f.kind == FindingKind.CPU_DEPENDENT for f in verdict.findings)
    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)
    alone, forked = (scan(reference, ScanOptions(jobs=jobs)).analysis for jobs in (1, 2))
    assert forked.verdicts == alone.verdicts


def test_a_spared_file_judged_again_past_the_bound_stays_skipped(layout: Path) -> None:
    """A forked child may spare a plugin that the parent then judges again as skipped,
    past the bound on work (analyze._as_one_process): no process, nothing to find again."""
    image, rootfs = read_image(f"oci-dir:{layout}:latest", ScanOptions())
    judge, verdicts, processes, _ = _judged(rootfs, image.config, True)
    skipped = FileVerdict(PYEXT, "shared", Status.SKIPPED, note=NOT_JUDGED_NOTE)
    rest = {p: v for p, v in processes.items() if p != PYEXT}
    whole = _unspared(judge, {**verdicts, PYEXT: skipped}, rest)
    assert whole[PYEXT] == skipped
    assert undefined(whole[PERL_OK]) == undefined(_judged(rootfs, image.config, False)[1][PERL_OK])
