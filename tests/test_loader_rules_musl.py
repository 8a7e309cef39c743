"""musl's loader rules of LOADER.md 3.9 and edge case 10, one test per rule, built from
model objects and named after the musl function (ldso/dynlink.c) they follow.

The host-musl checks in tests/test_loader_musl.py and the compiled M_* conformance cases
stay the real-loader check. A test marked xfail(strict) records where imagescan disagrees
with musl's dynlink.c.
"""

from __future__ import annotations

from typing import Any

from imagescan.checks.model import FatalAt, Status
from imagescan.elf.model import ElfFacts
from imagescan.loader.model import LibC
from imagescan.loader.musl import MUSL_DEFAULT_PATH, musl_path_file
from tests.loader_factories import (
    EM_386,
    MUSL_LDSO,
    MUSL_PATH_FILE,
    Tree,
    config,
    context,
    find,
    findings,
    glibc_libc,
    kinds,
    ld_so_cache,
    library,
    load_order,
    loaded,
    musl_process_params,
    musl_tree,
    need,
    process,
    program,
    ref,
    resolved,
    tried,
    verdicts,
)

APP = "/usr/bin/app"
MUSL_LIBC = "libc.musl-x86_64.so.1"  # what musl-gcc programs NEED

# LOADER.md rule -> the tests in this file that pin it (read by test_loader_rules_coverage).
RULES: dict[str, tuple[str, ...]] = {
    "3.9": (
        "test_musl_load_library_libc_names_map_to_ldso",
        "test_musl_load_library_interpreter_name_is_self",
        "test_musl_load_library_ld_library_path_before_rpath",
        "test_musl_fixup_rpath_runpath_inherited_down_the_chain",
        "test_musl_fixup_rpath_runpath_replaces_rpath",
        "test_musl_fixup_rpath_non_origin_dollar_voids_that_rpath",
        "test_musl_fixup_rpath_origin_is_the_found_path",
        "test_musl_fixup_rpath_secure_main_origin_dropped",
        "test_musl_fixup_rpath_secure_library_origin_kept",
        "test_musl_path_open_splits_on_colon_and_newline",
        "test_musl_path_open_eloop_inhibits_further_search",
        "test_musl_load_library_sys_path_file",
        "test_musl_map_library_no_class_check",
        "test_musl_load_library_same_inode_reused",
        "test_musl_load_library_shortname_not_soname",
        "test_musl_load_library_second_libc_is_the_loader",
        "test_musl_find_sym_ignores_version_names",
        "test_musl_do_relocs_all_at_start",
        "test_musl_dls3_ld_preload_and_no_ld_so_cache",
    ),
    "edge 10": (
        "test_musl_load_library_ld_library_path_before_rpath",
        "test_musl_fixup_rpath_runpath_inherited_down_the_chain",
        "test_musl_load_library_sys_path_file",
        "test_musl_load_library_libc_names_map_to_ldso",
        "test_musl_find_sym_ignores_version_names",
        "test_musl_fixup_rpath_non_origin_dollar_voids_that_rpath",
    ),
}


def _musl_app(needed: list[str], **facts: Any) -> ElfFacts:
    return program([*needed, MUSL_LIBC], interpreter=MUSL_LDSO, **facts)


def _tree(*, path_file: bytes | None = None) -> Tree:
    return musl_tree(path_file)


def test_musl_load_library_libc_names_map_to_ldso() -> None:
    """LOADER.md 3.9, edge case 10: "lib" + c./pthread./rt./m./dl./util./xnet. is the loader
    itself (so glibc's libc.so.6, libm.so.6, libdl.so.2 "resolve"); libcx.so does not."""
    ctx = context(_tree().rootfs())
    main = [loaded(APP, _musl_app([]))]
    names = ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"]
    names += ["libutil.so.1", "libxnet.so", MUSL_LIBC]
    for name in names:
        assert tried(find(ctx, main, name, musl=True)) == [(MUSL_LDSO, "musl libc alias", "found")]
    other = find(ctx, main, "libcx.so", musl=True)
    assert other.path is None and [s.rule.name for s in other.steps] == ["MUSL_PATH"] * 3


def test_musl_load_library_interpreter_name_is_self() -> None:
    """LOADER.md 3.9: a NEEDED equal to the loader's name (its PT_INTERP) is the loader."""
    tree = _tree().file(APP, _musl_app([MUSL_LDSO]))
    proc = process(context(tree.rootfs()), APP, musl=True)
    assert load_order(proc) == [APP, MUSL_LDSO]
    assert resolved(proc)[MUSL_LDSO] == MUSL_LDSO


def test_musl_load_library_ld_library_path_before_rpath() -> None:
    """LOADER.md 3.9, edge case 10: LD_LIBRARY_PATH is searched first, before any RPATH
    (case M_LLP); glibc searches RPATH first."""
    tree = _tree().file("/opt/llp/libm1.so", library("libm1.so"))
    tree.file("/opt/rp/libm1.so", library("libm1.so"))
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/llp"))
    main = [loaded(APP, _musl_app([], rpath="/opt/rp"))]
    assert tried(find(ctx, main, "libm1.so", musl=True)) == [
        ("/opt/llp/libm1.so", "LD_LIBRARY_PATH", "found")
    ]


def test_musl_fixup_rpath_runpath_inherited_down_the_chain() -> None:
    """LOADER.md 3.9, edge case 10: RUNPATH is treated like RPATH and inherited along the
    chain of who needed whom: libB (only in main's RUNPATH dir) is found for libA
    (case M_INHERIT; glibc would not find it)."""
    tree = _tree().file(APP, _musl_app(["libA.so"], runpath="/opt/m"))
    tree.file("/opt/m/libA.so", library("libA.so", ["libB.so"]))
    tree.file("/opt/m/libB.so", library("libB.so"))
    proc = process(context(tree.rootfs()), APP, musl=True)
    assert resolved(proc)["libB.so"] == "/opt/m/libB.so"
    lib_b = next(r for r in proc.resolutions if r.name == "libB.so")
    assert [(s.path, s.owner) for s in lib_b.steps] == [("/opt/m/libB.so", APP)]


def test_musl_fixup_rpath_runpath_replaces_rpath() -> None:
    """LOADER.md 3.9: an object with both uses its RUNPATH only."""
    tree = _tree().file("/opt/rp/libq.so", library("libq.so"))
    main = [loaded(APP, _musl_app([], rpath="/opt/rp", runpath="/opt/run"))]
    result = find(context(tree.rootfs()), main, "libq.so", musl=True)
    assert [s.path for s in result.steps if s.rule.name == "RPATH"] == ["/opt/run/libq.so"]
    assert result.path is None


def test_musl_fixup_rpath_non_origin_dollar_voids_that_rpath() -> None:
    """LOADER.md 3.9, edge case 10: any '$' other than $ORIGIN/${ORIGIN} makes musl ignore
    the whole rpath of that object, also its plain elements (case M_DOLLAR)."""
    tree = _tree().file("/opt/x/libd.so", library("libd.so"))
    ctx = context(tree.rootfs())
    voided = [loaded(APP, _musl_app([], runpath="/opt/x:/opt/$LIB"))]
    assert find(ctx, voided, "libd.so", musl=True).path is None
    kept = [loaded(APP, _musl_app([], runpath="/opt/x:${ORIGIN}/../lib"))]
    assert find(ctx, kept, "libd.so", musl=True).path == "/opt/x/libd.so"


def test_musl_fixup_rpath_origin_is_the_found_path() -> None:
    """LOADER.md 3.9: a library's $ORIGIN is the directory of the name it was opened as
    (p->name), the main program's that of /proc/self/exe."""
    tree = _tree().file("/opt/o/real/libu.so", library("libu.so"))
    tree.file("/opt/o/real/libs.so", library("libs.so", ["libu.so"], runpath="$ORIGIN"))
    tree.link("/opt/o/lib/libs.so", "../real/libs.so")
    tree.file("/opt/o/bin/app", _musl_app(["libs.so"], runpath="$ORIGIN/../lib"))
    proc = process(context(tree.rootfs()), "/opt/o/bin/app", musl=True)
    assert resolved(proc)["libs.so"] == "/opt/o/bin/../lib/libs.so"
    lib_u = next(r for r in proc.resolutions if r.name == "libu.so")
    assert lib_u.steps[0].path == "/opt/o/bin/../lib/libu.so"


def test_musl_fixup_rpath_secure_main_origin_dropped() -> None:
    """LOADER.md 3.9: in secure mode $ORIGIN is not expanded for the main program, and
    LD_LIBRARY_PATH is not read (__dls3)."""
    tree = _tree().file("/opt/s/lib/libs.so", library("libs.so"))
    tree.file("/opt/s/bin/app", _musl_app([], runpath="$ORIGIN/../lib"))
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/s/lib"))
    main = [loaded("/opt/s/bin/app", _musl_app([], runpath="$ORIGIN/../lib"))]
    assert find(ctx, main, "libs.so", musl=True).steps[0].rule.name == "LD_LIBRARY_PATH"
    secure = find(ctx, main, "libs.so", musl=True, params=musl_process_params(ctx, secure=True))
    assert secure.path is None
    assert [s.rule.name for s in secure.steps] == ["MUSL_PATH"] * 3


def test_musl_fixup_rpath_secure_library_origin_kept() -> None:
    """LOADER.md 3.9: a library's RUNPATH $ORIGIN is expanded in secure mode too."""
    lib_k = library("libk1.so", runpath="$ORIGIN")
    tree = _tree().file("/opt/k/libk1.so", lib_k).file("/opt/k/libk2.so", library("libk2.so"))
    ctx = context(tree.rootfs())
    objects = [loaded(APP, _musl_app([])), loaded("/opt/k/libk1.so", lib_k, 0)]
    result = find(ctx, objects, "libk2.so", musl=True, params=musl_process_params(ctx, secure=True))
    assert result.path == "/opt/k/libk2.so"


def test_musl_path_open_splits_on_colon_and_newline() -> None:
    """LOADER.md 3.9: path lists are split on ':' and '\\n'; empty elements are skipped (no
    current-directory element, unlike glibc)."""
    tree = _tree().file("/srv/libw.so", library("libw.so"))
    ctx = context(
        tree.rootfs(), config("LD_LIBRARY_PATH=/opt/a::/opt/b\n/opt/c:", working_dir="/srv")
    )
    result = find(ctx, [loaded(APP, _musl_app([]))], "libw.so", musl=True)
    assert [s.path for s in result.steps if s.rule.name == "LD_LIBRARY_PATH"] == [
        "/opt/a/libw.so",
        "/opt/b/libw.so",
        "/opt/c/libw.so",
    ]
    assert result.path is None


def test_musl_path_open_eloop_inhibits_further_search() -> None:
    """LOADER.md 3.9: "continue on ENOENT/ENOTDIR/EACCES/ENAMETOOLONG; other errors stop"."""
    tree = _tree().file("/lib/libl.so", library("libl.so")).link("/opt/loop/libl.so", "libl.so")
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/loop"))
    result = find(ctx, [loaded(APP, _musl_app([]))], "libl.so", musl=True)
    assert result.path is None


def test_musl_load_library_sys_path_file() -> None:
    """LOADER.md 3.9, edge case 10: <prefix>/etc/ld-musl-ARCH.path replaces the defaults;
    an empty one means no system dirs at all; without one: /lib:/usr/local/lib:/usr/lib
    (case M_PATH)."""
    assert musl_path_file(MUSL_LDSO, "x86_64") == MUSL_PATH_FILE
    assert (
        musl_path_file("/usr/lib/ld-musl-x86_64.so.1", "x86_64") == "/usr/etc/ld-musl-x86_64.path"
    )
    main = [loaded(APP, _musl_app([]))]

    def dirs(path_file: bytes | None) -> tuple[str, ...]:
        return musl_process_params(context(_tree(path_file=path_file).rootfs())).ldso.system_dirs

    assert dirs(None) == MUSL_DEFAULT_PATH == ("/lib", "/usr/local/lib", "/usr/lib")
    assert dirs(b"/opt/m/lib\n/usr/lib:/lib\n") == ("/opt/m/lib", "/usr/lib", "/lib")
    assert dirs(b"") == ()
    tree = _tree(path_file=b"").file("/lib/libz.so.1", library("libz.so.1"))
    assert find(context(tree.rootfs()), main, "libz.so.1", musl=True).steps == ()


def test_musl_load_library_same_inode_reused() -> None:
    """LOADER.md 3.9: a file found under a new name with the (dev, ino) of a loaded object
    is that object."""
    tree = _tree().file(APP, _musl_app(["libone.so", "libtwo.so"], runpath="/opt/i"))
    tree.file("/opt/i/libone.so", library("libone.so"))
    tree.hardlink("/opt/i/libtwo.so", "/opt/i/libone.so")
    proc = process(context(tree.rootfs()), APP, musl=True)
    assert load_order(proc) == [APP, "/opt/i/libone.so", MUSL_LDSO]
    assert resolved(proc)["libtwo.so"] == "/opt/i/libone.so"


def test_musl_map_library_no_class_check() -> None:
    """LOADER.md 3.9: musl checks no class or machine in path_open: the first file that
    opens is used, and a 32-bit one fails to map (no fallback, unlike glibc)."""
    tree = _tree().file("/opt/a/libG.so.1", library("libG.so.1", elf_class=32, machine=EM_386))
    tree.file("/opt/b/libG.so.1", library("libG.so.1"))
    main = [loaded(APP, _musl_app([], runpath="/opt/a:/opt/b"))]
    result = find(context(tree.rootfs()), main, "libG.so.1", musl=True)
    assert tried(result) == [("/opt/a/libG.so.1", "RPATH", "fatal")]


def test_musl_load_library_shortname_not_soname() -> None:
    """LOADER.md 3.9: "shortname = basename of found PATH, not SONAME": libfoo.so (SONAME
    libfoo.so.1) loaded by main does not satisfy libB's libfoo.so.1, which is searched and
    missing here."""
    tree = _tree().file(APP, _musl_app(["libfoo.so", "libB.so"], runpath="/opt/f"))
    tree.file("/opt/f/libfoo.so", library("libfoo.so.1"))
    tree.file("/opt/f/libB.so", library("libB.so", ["libfoo.so.1"]))
    proc = process(context(tree.rootfs()), APP, musl=True)
    assert resolved(proc)["libfoo.so.1"] is None


def test_musl_load_library_second_libc_is_the_loader() -> None:
    """LOADER.md 3.9: an opened file that defines __libc_start_main and stdin is replaced
    by the loader itself: glibc's libc.so.6 NEEDED by path does not pull in ld-linux."""
    libc = glibc_libc({"__libc_start_main": "GLIBC_2.34", "stdin": "GLIBC_2.2.5"})
    tree = _tree().file("/opt/glibc/libc.so.6", libc)
    tree.file(APP, _musl_app(["/opt/glibc/libc.so.6"]))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.OK
    assert verdict.resolved["/opt/glibc/libc.so.6"] == MUSL_LDSO


def test_musl_find_sym_ignores_version_names() -> None:
    """LOADER.md 3.9, edge case 10: musl never enforces glibc version needs (gcompat relies
    on it) and binds a versioned reference to any non-hidden definition; hidden ones never
    bind."""
    lib_h = library("libH.so.1", versions=("V1",), defines={"hv1": "V1"}, hidden={"hid": "V1"})
    exe = _musl_app(
        ["libH.so.1"],
        runpath="/opt/H",
        version_needs=[need("libH.so.1", "V2")],
        undefined=[ref("hv1", "V2", "libH.so.1", at_start=True), ref("hid", at_start=True)],
    )
    tree = _tree().file("/opt/H/libH.so.1", lib_h).file(APP, exe)
    ctx = context(tree.rootfs())
    proc = process(ctx, APP, musl=True)
    assert proc.libc == LibC.MUSL
    assert kinds(findings(ctx, proc)) == [("undefined-symbol", "hid", "startup")]


def test_musl_do_relocs_all_at_start() -> None:
    """LOADER.md 3.9 (musl binds every reference at load, no lazy PLT): a missing function
    fails at start even without -z now."""
    tree = _tree().file("/opt/I/libI.so", library("libI.so", defines=("other",)))
    tree.file(APP, _musl_app(["libI.so"], runpath="/opt/I", undefined=[ref("fi")]))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.BROKEN
    assert [(f.subject, f.fatal_at) for f in verdict.findings] == [("fi", FatalAt.STARTUP)]


def test_musl_dls3_ld_preload_and_no_ld_so_cache() -> None:
    """LOADER.md 3.9: musl reads LD_PRELOAD from the Env (case M_PRELOAD) but has no
    ld.so.cache and no /etc/ld.so.preload."""
    tree = _tree().file("/opt/p/libpre.so", library("libpre.so", ["libgone.so.1"]))
    tree.file("/opt/c/libc1.so", library("libc1.so"))
    tree.text("/etc/ld.so.cache", ld_so_cache([("libc1.so", "/opt/c/libc1.so")]))
    tree.text("/etc/ld.so.preload", b"/opt/p/libpre.so\n")
    tree.file(APP, _musl_app(["libc1.so"]))
    plain = verdicts(tree.rootfs())[APP]
    assert kinds(plain.findings) == [("missing-library", "libc1.so", "startup")]
    preloaded = verdicts(tree.rootfs(), config("LD_PRELOAD=/opt/p/libpre.so"))[APP]
    assert ("missing-library", "libgone.so.1", "startup") in kinds(preloaded.findings)
