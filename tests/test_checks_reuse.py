"""imagescan.checks.reuse: verdicts carried from one image to the next that shares its
base are the verdicts a fresh analysis gives (issue 12), on the corpus images in a row and
on images whose top layer changes what the base's files load; so are the plugin verdicts,
the reported verdicts and the link graph made from carried work."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from imagescan.analyze import analyze
from imagescan.checks.cpu import cpu_sensitive
from imagescan.checks.model import FileVerdict
from imagescan.checks.reuse import Carry, Delta, changed_paths, cpu_sensitive_since
from imagescan.image.model import SourceOptions
from imagescan.policy.rules import RpathRules
from imagescan.report import Report
from imagescan.rootfs.squash import squash
from imagescan.scan import ScanOptions, read_image, scan
from tests.conftest import CORPUS, CORPUS_IMAGES
from tests.fleet_support import FIXTURES as FLEET_FIXTURES
from tests.fleet_support import programs
from tests.hostile import dependency_chain, synthetic_loader
from tests.imagebuilder import Dir, File, ImageSpec, Member, Symlink, glibc_base, write_oci_dir
from tests.test_checks_plugins import PERL_OK, PYEXT, WIDGET, build_files
from tests.test_rootfs_squash import layer


def _read(reference: str, carry: Carry | None = None):  # type: ignore[no-untyped-def]
    return read_image(reference, ScanOptions(source=SourceOptions()), carry=carry)


@pytest.mark.usefixtures("corpus_dir")  # skipped where no corpus is beside the checkout
def test_the_corpus_audited_in_a_row_gives_each_image_its_fresh_verdicts() -> None:
    carry = Carry()
    carried_any = False
    for name in CORPUS_IMAGES:
        image, rootfs = _read(f"oci-dir:{CORPUS / 'oci'}:{name}", carry)
        before = carry.judged
        again = analyze(rootfs, image.config, carry=carry)
        fresh = analyze(rootfs, image.config)
        assert again.verdicts == fresh.verdicts, name
        assert again.image_findings == fresh.image_findings, name
        carried_any |= before is not None and any(
            again.processes[p] is before.files[p][1] for p in again.processes if p in before.files
        )
    assert carried_any  # the corpus shares Debian 12's base: something was carried


def _chain_image(tmp: Path, name: str, top: list[File]) -> str:
    chain = dependency_chain(3, "/usr/lib64")
    base = [synthetic_loader(), *(File(path, data, 0o755) for path, data in chain)]
    return f"oci-dir:{write_oci_dir(tmp / name, ImageSpec([base, top]))}"


def test_a_top_layer_that_replaces_a_searched_library_is_judged_again(tmp_path: Path) -> None:
    """The second image replaces libchain2.so with a file that is not ELF: the program and
    the libraries that load it must not keep the first image's ok."""
    first = _chain_image(tmp_path, "a", [File("/etc/a", b"a")])
    second = _chain_image(tmp_path, "b", [File("/usr/lib64/libchain2.so", b"not an ELF")])
    carry = Carry()
    image, rootfs = _read(first, carry)
    analyze(rootfs, image.config, carry=carry)
    image, rootfs = _read(second, carry)
    assert carry.judged is not None  # the same base layer: the judging was kept
    again = analyze(rootfs, image.config, carry=carry)
    fresh = analyze(rootfs, image.config)
    assert again.verdicts == fresh.verdicts
    assert again.verdicts["/usr/bin/chain"].status == "broken"
    image, rootfs = _read(first)
    assert analyze(rootfs, image.config).verdicts["/usr/bin/chain"].status == "ok"  # stale


def test_an_image_on_another_base_drops_the_carry_before_its_layers_are_read(
    tmp_path: Path,
) -> None:
    carry = Carry()
    image, rootfs = _read(_chain_image(tmp_path, "a", [File("/etc/a", b"a")]), carry)
    analyze(rootfs, image.config, carry=carry)
    other = f"oci-dir:{write_oci_dir(tmp_path / 'c', ImageSpec([[File('/etc/c', b'c')]]))}"
    _read(other, carry)
    assert carry.judged is None


def _private_libdir_image(tmp: Path, name: str, top: list[Member]) -> str:
    chain = [File(path, data, 0o755) for path, data in dependency_chain(2, "/usr/lib64")]
    base: list[Member] = [Dir("/usr/lib64", 0o700), synthetic_loader(), *chain]
    spec = ImageSpec([base, top], user="1000")
    return f"oci-dir:{write_oci_dir(tmp / name, spec)}"


def test_a_directory_made_searchable_on_top_is_judged_again(tmp_path: Path) -> None:
    """As User 1000 the base's /usr/lib64 (0700, root's) cannot be searched: open() fails
    with EACCES before any entry of the library is looked at. The second image makes the
    directory 0755: what depended on that denial must be judged again."""
    first = _private_libdir_image(tmp_path, "a", [File("/etc/a", b"a")])
    second = _private_libdir_image(tmp_path, "b", [Dir("/usr/lib64", 0o755)])
    carry = Carry()
    image, rootfs = _read(first, carry)
    assert analyze(rootfs, image.config, carry=carry).verdicts["/usr/bin/chain"].status != "ok"
    image, rootfs = _read(second, carry)
    assert carry.judged is not None
    again = analyze(rootfs, image.config, carry=carry)
    assert again.verdicts == analyze(rootfs, image.config).verdicts
    assert again.verdicts["/usr/bin/chain"].status == "ok"


# ---------------------------------------------------------------- plugins and reports


def _same_report(carried: Report, fresh: Report) -> None:
    """The whole report, link graph too, but for the time it was made."""
    assert carried.links is not None and fresh.links is not None
    links = replace(carried.links, created=fresh.links.created)
    assert replace(carried, links=links) == fresh


@pytest.mark.usefixtures("corpus_dir")  # skipped where no corpus is beside the checkout
def test_the_corpus_scanned_in_a_row_gives_each_image_its_fresh_report() -> None:
    """Reported verdicts and link-graph edges carried (by value, by process) from one
    image to the next are those a fresh scan makes."""
    carry = Carry()
    for name in CORPUS_IMAGES:
        reference = f"oci-dir:{CORPUS / 'oci'}:{name}"
        _same_report(scan(reference, ScanOptions(), carry=carry).report, _fresh(reference))


def _fresh(reference: str) -> Report:
    return scan(reference, ScanOptions()).report


@functools.cache
def _plugin_fleet(work: str) -> dict[str, str]:
    """Images over one base (glibc + the plugin tests' hosts and plugins), whose top layers
    change nothing, replace the Python host with one that exports nothing of Python's, or
    replace the base's libc.so.6 with a file that is not ELF."""
    root = Path(work)
    base = [*glibc_base(), *build_files(root)]
    libc = next(m.path for m in base if m.path.endswith("/libc.so.6"))
    perl = next(m for m in base if m.path == "/usr/bin/perl")
    assert isinstance(perl, File)
    tops: dict[str, list[Member]] = {
        "a": [File("/etc/a", b"a")],
        "b": [File("/etc/b", b"b")],
        "host": [File("/usr/bin/python3.11", perl.data, 0o755)],
        "libc": [File(libc, b"not an ELF")],
    }
    specs = {name: ImageSpec([base, top]) for name, top in tops.items()}
    layout = write_oci_dir(root / "oci", specs)
    return {name: f"oci-dir:{layout}:{name}" for name in tops}


@pytest.fixture(scope="module")
def plugin_fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _plugin_fleet(str(tmp_path_factory.mktemp("reuse-plugins")))


def _in_a_row(fleet: dict[str, str], names: list[str]) -> list[Report]:
    """Each image scanned after the one before it (a carry), checked against a fresh scan."""
    carry, reports = Carry(), []
    for name in names:
        report = scan(fleet[name], ScanOptions(), carry=carry).report
        _same_report(report, _fresh(fleet[name]))
        reports.append(report)
    return reports


def _verdict(report: Report, path: str) -> FileVerdict:
    return next(v for v in report.files if v.path == path)


def test_plugin_trials_hold_while_nothing_they_looked_at_changes(
    plugin_fleet: dict[str, str],
) -> None:
    carry = Carry()
    scan(plugin_fleet["a"], ScanOptions(), carry=carry)
    before = dict(carry.memos["trials"])
    report = scan(plugin_fleet["b"], ScanOptions(), carry=carry).report
    after = carry.memos["trials"]
    key = ("/usr/bin/python3.11", PYEXT)
    assert after[key] is before[key]  # carried, not tried again
    assert _verdict(report, PYEXT).host == "/usr/bin/python3.11"
    _same_report(report, _fresh(plugin_fleet["b"]))


def test_a_top_layer_that_replaces_a_plugin_host_gets_the_fresh_plugin_verdict(
    plugin_fleet: dict[str, str],
) -> None:
    """spam.so is ok inside the base's python3.11; the top layer's python3.11 exports
    nothing of Python's: the carried trial must not keep the ok."""
    first, replaced, again = _in_a_row(plugin_fleet, ["a", "host", "b"])
    assert _verdict(first, PYEXT).status == "ok"
    assert _verdict(replaced, PYEXT).status != "ok"
    assert _verdict(again, PYEXT).status == "ok"


def test_a_top_layer_that_breaks_a_base_library_gets_fresh_plugin_verdicts(
    plugin_fleet: dict[str, str],
) -> None:
    """libc.so.6 replaced by a file that is not ELF: no host starts, no plugin keeps the
    base's ok, and every link-graph edge to libc goes."""
    first, broken, again = _in_a_row(plugin_fleet, ["a", "libc", "b"])
    for path in (PYEXT, PERL_OK, WIDGET):
        assert _verdict(first, path).status == "ok", path
        assert _verdict(broken, path).status != "ok", path
        assert _verdict(again, path).status == "ok", path
    assert broken.links is not None and first.links is not None
    assert len(broken.links.links) < len(first.links.links)


# ---------------------------------------------------------------- package databases


def _status(*packages: str) -> File:
    paragraphs = (
        f"Package: {p}\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n\n"
        for p in packages
    )
    return File("/var/lib/dpkg/status", "".join(paragraphs).encode())


@functools.cache
def _package_fleet(work: str) -> dict[str, str]:
    """dpkg's tool package lists /opt/tool/bin/tool; /opt/tool is a symlink to /srv/a,
    and /srv/b holds the same program. Top layers: nothing of the packages; /opt/tool
    pointed at /srv/b (a directory walk of the owners changes, no verdict does); a second
    package in the status file (a kept file changes)."""
    root = Path(work)
    hello = programs(root / "build")["hello"]
    base: list[Member] = [
        *glibc_base(),
        *(File(f"/srv/{d}/bin/tool", hello, 0o755) for d in ("a", "b")),
        Symlink("/opt/tool", "/srv/a"),
        _status("tool"),
        File("/var/lib/dpkg/info/tool.list", b"/opt/tool/bin/tool\n"),
    ]
    tops: dict[str, list[Member]] = {
        "a": [File("/etc/a", b"a")],
        "moved": [Symlink("/opt/tool", "/srv/b")],
        "status": [_status("tool", "other")],
    }
    layout = write_oci_dir(root / "oci", {n: ImageSpec([base, top]) for n, top in tops.items()})
    return {name: f"oci-dir:{layout}:{name}" for name in tops}


@pytest.fixture(scope="module")
def package_fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _package_fleet(str(tmp_path_factory.mktemp("reuse-packages")))


def _owners(report: Report) -> dict[str, str]:
    assert report.links is not None
    return {path: package.name for path, package in report.links.owners.items()}


def test_package_databases_are_carried_while_they_read_the_same(
    package_fleet: dict[str, str],
) -> None:
    carry = Carry()
    scan(package_fleet["a"], ScanOptions(), carry=carry)
    assert carry.packages is not None
    before = carry.packages.db
    report = scan(package_fleet["a"], ScanOptions(), carry=carry).report
    assert carry.packages.db.owners is before.owners  # carried, not read again
    assert _owners(report)["/srv/a/bin/tool"] == "tool"


def test_a_symlink_on_an_owners_walk_or_a_new_status_gets_fresh_packages(
    package_fleet: dict[str, str],
) -> None:
    """/opt/tool pointed elsewhere: dpkg's /opt/tool/bin/tool is now /srv/b's file, though
    no verdict changes; a second package in the status file is listed."""
    first, moved, again, status = _in_a_row(package_fleet, ["a", "moved", "a", "status"])
    assert _owners(first).get("/srv/a/bin/tool") == "tool"
    assert "/srv/b/bin/tool" not in _owners(first)
    assert _owners(moved).get("/srv/b/bin/tool") == "tool"
    assert "/srv/a/bin/tool" not in _owners(moved)
    assert _owners(again) == _owners(first)
    assert status.links is not None and first.links is not None
    assert [p.name for p in status.links.packages] == ["tool", "other"]
    assert [p.name for p in first.links.packages] == ["tool"]


def test_cpu_sensitivity_from_the_changed_entries_is_that_of_the_whole_image() -> None:
    """A top layer that adds a glibc-hwcaps directory, or a library whose RUNPATH names
    $PLATFORM, makes the image CPU-sensitive; one that adds neither leaves it as it was."""
    base = [Dir("/usr"), Dir("/usr/lib"), File("/usr/lib/libx.so", b"x")]
    hwcaps = [Dir("/usr/lib/glibc-hwcaps"), Dir("/usr/lib/glibc-hwcaps/x86-64-v3")]
    hwcaps.append(File("/usr/lib/glibc-hwcaps/x86-64-v3/libx.so", b"x"))
    first = squash([layer(0, *base), layer(1, File("/etc/a", b"a"))])
    assert not cpu_sensitive(first)
    for top, expected in ((hwcaps, True), ([File("/etc/b", b"b")], False)):
        rootfs = squash([layer(0, *base), layer(1, *top)])
        since = cpu_sensitive_since(rootfs, Delta(changed_paths(first, rootfs)))
        assert since == cpu_sensitive(rootfs) == expected


@pytest.mark.parametrize("hygiene", [False, True])
def test_the_policys_verdicts_of_carried_work_are_its_fresh_ones(
    hygiene: bool, tmp_path: Path
) -> None:
    """audit.judge gives a verdict back as the policy judged it for the previous image of
    the base when the analysis carried that very verdict and the store the very facts
    (policy.apply's memo); never for a file with an RPATH or RUNPATH while the hygiene
    rules look at the directories they name."""
    from datetime import date

    from imagescan.audit import AuditSettings, judge
    from imagescan.policy.apply import apply_policy
    from imagescan.policy.load import load_policy
    from imagescan.store import open_store

    policy = load_policy("default")
    if not hygiene:
        policy = replace(policy, rpath=RpathRules())
    options = ScanOptions(source=SourceOptions())
    store = open_store(tmp_path / "store")
    settings = AuditSettings(options, policy, date(2026, 12, 7), str(tmp_path / "store"))
    carry, previous, served = Carry(), {}, set()
    try:
        for reference in _fleet(tmp_path):
            report, _ = judge(reference, settings, store, carry)
            scanned = scan(reference, replace(options, links=False))
            fresh = apply_policy(
                scanned.report, policy, today=settings.today, rootfs=scanned.rootfs
            )
            assert report.files == fresh.files, reference
            served |= {v.path for v in report.files if previous.get(v.path) is v}
            previous = {v.path: v for v in report.files}
    finally:
        store.close()
    assert PLAIN in served  # the memo gave verdicts back
    assert (RPATH_USER in served) is not hygiene


RPATH_USER, PLAIN = "/usr/local/bin/with-rpath", "/usr/local/bin/plain"


def _fleet(tmp: Path) -> list[str]:
    """Three images of one base; the base has a program with a RUNPATH and one without."""
    elves = programs(tmp / "build")
    runpath = tmp / "build" / "with-rpath"  # hello with a RUNPATH the hygiene rules check
    hello_c = str(FLEET_FIXTURES / "hello.c")
    subprocess.run(["gcc", "-o", runpath, hello_c, "-Wl,-rpath,/opt/x/lib"], check=True)
    base = [*glibc_base(), File(RPATH_USER, runpath.read_bytes(), 0o755)]
    base.append(File(PLAIN, elves["hello"], 0o755))
    specs = {
        f"i{n}": ImageSpec(
            [
                base,
                [
                    File(f"/etc/image-{n}", b"x"),
                    File("/usr/local/bin/hello", elves["hello"], 0o755),
                ],
            ]
        )
        for n in range(3)
    }
    layout = write_oci_dir(tmp / "oci", specs)
    return [f"oci-dir:{layout}:i{n}" for n in range(3)]
