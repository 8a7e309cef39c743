"""glibc's loader rules of LOADER.md, one test per rule, built from model objects.

Each test is named after the glibc function whose behaviour it pins (elf/dl-load.c,
dl-deps.c, dl-cache.c, dl-object.c, rtld.c) and cites the LOADER.md rule in its docstring.
The compiled conformance suite (tests/test_conformance.py) stays the check against the real
loader; these run in milliseconds without gcc, root or images. A test marked xfail(strict)
records a place where imagescan disagrees with glibc's source (the lead decides the fix).
"""

from __future__ import annotations

import dataclasses

import pytest

from imagescan.analyze import analyze
from imagescan.checks.model import FatalAt, FindingKind, Severity, Status
from imagescan.elf.model import ElfFacts, LdsoDefaults, UndefinedSymbol
from imagescan.loader import dst
from imagescan.loader.ldconf import ldconfig_dirs, parse_ld_so_conf
from imagescan.loader.setup import env_preloads
from tests.loader_factories import (
    EM_386,
    EM_AARCH64,
    LDSO,
    LDSO_FILE,
    LIBC,
    LIBDIR,
    USRLIBDIR,
    CacheRow,
    Tree,
    config,
    context,
    find,
    findings,
    glibc_params,
    glibc_tree,
    kinds,
    ld_so_cache,
    library,
    load_order,
    loaded,
    process,
    program,
    ref,
    resolved,
    tried,
    verdicts,
)

APP = "/usr/bin/app"
SYSTEM_DIRS = (LIBDIR, USRLIBDIR, "/lib", "/usr/lib")  # Debian 12's ld.so, in its order
MISSING, FOUND, SKIPPED, FATAL, ABSENT = "missing-library", "found", "skipped", "fatal", "absent"

# LOADER.md rule -> the tests in this file that pin it (read by test_loader_rules_coverage).
RULES: dict[str, tuple[str, ...]] = {
    "3.1": (
        "test_dl_map_object_deps_breadth_first",
        "test_dl_map_object_deps_first_requester_context",
    ),
    "3.2": (
        "test_dl_map_object_search_order_rpath_llp_runpath_cache_defaults",
        "test_dl_map_object_rpath_inherited_up_the_loader_chain",
        "test_dl_map_object_runpath_is_own_only",
        "test_dl_map_object_runpath_of_requester_blocks_chain_rpath",
        "test_get_dynamic_info_rpath_ignored_when_runpath_present",
        "test_dl_map_object_ld_library_path_colon_and_semicolon",
        "test_dl_init_paths_ld_library_path_dsts_expand_against_main",
        "test_dl_map_object_nodeflib_drops_defaults_and_system_cache_entries",
        "test_dl_map_object_needed_with_slash_is_not_searched",
        "test_dl_lookup_map_matches_soname_of_loaded_object",
        "test_dl_file_id_match_p_same_file_under_two_names",
        "test_dl_signal_error_cannot_open_shared_object_file",
        "test_fillin_rpath_trailing_slash_and_duplicates",
        "test_dl_dst_substitute_unknown_dst_stays_literal",
        "test_dl_dst_substitute_unreplaceable_dst_drops_element",
        "test_decompose_rpath_empty_element_is_cwd",
        "test_decompose_rpath_empty_string_is_ignored",
        "test_dl_new_object_origin_of_relative_realname_uses_cwd",
    ),
    "3.3": (
        "test_open_verify_wrong_class_skipped",
        "test_open_verify_wrong_machine_skipped",
        "test_open_verify_short_file_is_fatal",
        "test_open_verify_header_problems_are_fatal",
        "test_open_verify_directory_is_fatal",
        "test_open_path_realname_is_not_symlink_resolved",
        "test_open_path_glibc_hwcaps_subdirs_first",
        "test_open_path_legacy_subdirs_of_glibc_2_36",
        "test_open_path_eloop_ends_that_path_list",
        "test_open_path_unreadable_candidate_is_skipped",
    ),
    "3.7": ("test_dl_check_protected_symbol_canonical_plt_entry",),
    "3.4": (
        "test_dl_load_cache_lookup_finds_soname_outside_search_dirs",
        "test_dl_load_cache_lookup_ignores_ld_so_conf",
        "test_dl_load_cache_lookup_stale_entry_falls_through_to_defaults",
        "test_search_cache_glibc_hwcaps_entry_by_cpu_level",
        "test_search_cache_first_directory_scanned_wins",
        "test_dl_cache_check_flags_other_abi_entry_skipped",
        "test_dl_load_cache_lookup_wrong_endian_cache_ignored",
        "test_dl_load_cache_lookup_reads_all_three_layouts",
        "test_parse_conf_include_hwcap_and_trailing_slash",
    ),
    "3.5": (
        "test_dl_new_object_origin_is_the_directory_found_in",
        "test_dl_get_origin_main_program_is_real_path",
        "test_dl_dst_lib_is_debian_multiarch",
        "test_dl_platform_haswell_on_intel_avx2",
        "test_ldso_defaults_read_from_the_image_ldso",
    ),
    "edge 1": (
        "test_dl_load_cache_lookup_ignores_ld_so_conf",
        "test_dl_load_cache_lookup_stale_entry_falls_through_to_defaults",
    ),
    "edge 2": (
        "test_dl_map_object_runpath_is_own_only",
        "test_dl_map_object_rpath_inherited_up_the_loader_chain",
        "test_dl_map_object_runpath_of_requester_blocks_chain_rpath",
    ),
    "edge 3": (
        "test_dl_map_object_deps_first_requester_context",
        "test_dl_map_object_deps_fragile_found_by_earlier_load",
    ),
    "edge 4": (
        "test_dl_new_object_origin_is_the_directory_found_in",
        "test_dl_get_origin_main_program_is_real_path",
    ),
    "edge 5": (
        "test_open_verify_short_file_is_fatal",
        "test_open_verify_wrong_class_skipped",
        "test_open_verify_header_problems_are_fatal",
    ),
    "edge 8": (
        "test_dl_dst_lib_is_debian_multiarch",
        "test_dl_platform_haswell_on_intel_avx2",
        "test_open_path_glibc_hwcaps_subdirs_first",
        "test_search_cache_glibc_hwcaps_entry_by_cpu_level",
    ),
    "edge 9": ("test_ldso_defaults_read_from_the_image_ldso",),
    "edge 11": (
        "test_dl_non_dynamic_init_secure_mode_follows_the_user",
        "test_dl_dst_substitute_secure_main_origin_outside_trusted_dirs_dropped",
    ),
    "edge 12": (
        "test_decompose_rpath_empty_element_is_cwd",
        "test_dl_init_paths_empty_ld_library_path_element_is_cwd",
    ),
    "edge 13": (
        "test_dl_main_preloads_load_before_needed",
        "test_dl_map_object_needed_with_slash_is_not_searched",
        "test_rtld_ld_so_preload_separators",
    ),
    "case A": ("test_case_a_dl_map_object_runpath_not_inherited",),
    "case B": ("test_case_b_dl_map_object_rpath_inherited",),
    "case C": ("test_case_c_dl_map_object_deps_first_requester_fails",),
    "case D": ("test_case_d_dl_load_cache_lookup_conf_without_ldconfig",),
    "case E": ("test_case_e_dl_new_object_origin_through_symlink",),
    "case G": ("test_case_g_open_verify_empty_candidate_is_fatal",),
    "case L": ("test_case_l_dl_dst_lib_expands_to_multiarch",),
    "Secure mode": (
        "test_dl_non_dynamic_init_secure_mode_follows_the_user",
        "test_dl_non_dynamic_init_file_capabilities_are_secure",
        "test_dl_non_dynamic_init_user_name_from_the_image_passwd",
        "test_dl_dst_substitute_secure_main_origin_outside_trusted_dirs_dropped",
        "test_is_trusted_path_normalize_prefix_after_dotdot",
        "test_dl_dst_substitute_secure_library_origin_not_trust_checked",
        "test_dl_dst_substitute_secure_lib_and_platform_not_trust_checked",
        "test_dl_dst_substitute_secure_origin_must_open_the_element",
        "test_open_path_setuid_program_opens_as_its_owner",
        "test_open_path_supplementary_group_may_read",
        "test_handle_preload_list_secure_drops_entries_with_slash",
        "test_open_path_secure_preload_needs_setuid_bit",
        "test_open_path_secure_preload_search_goes_on_past_plain_files",
    ),
    "Preloads": (
        "test_dl_main_preloads_load_before_needed",
        "test_do_preload_missing_dependency_breaks_every_program",
        "test_do_preload_missing_file_is_a_warning",
        "test_do_preload_unusable_file_is_a_warning",
        "test_do_preload_into_object_without_needed",
        "test_rtld_ld_so_preload_separators",
    ),
}


# ---------------------------------------------------------------- 3.1 load order


def test_dl_map_object_deps_breadth_first() -> None:
    """LOADER.md 3.1: the queue is walked in order and new objects are appended, so the
    load order (the global scope) is breadth-first: main, its NEEDED, then theirs."""
    tree = glibc_tree().file(APP, program(["libA.so", "libB.so"], runpath="/opt/l"))
    tree.file("/opt/l/libA.so", library("libA.so", ["libC.so"], runpath="/opt/l"))
    tree.file("/opt/l/libB.so", library("libB.so", ["libD.so"], runpath="/opt/l"))
    tree.file("/opt/l/libC.so", library("libC.so")).file("/opt/l/libD.so", library("libD.so"))
    proc = process(context(tree.rootfs()), APP)
    libs = ["/opt/l/libA.so", "/opt/l/libB.so", "/opt/l/libC.so", "/opt/l/libD.so"]
    # ld.so was needed by nobody: rtld.c's dl_main takes it out of the search list, so it
    # is not in the symbol scope (issue 9; judged by the real loader in conformance).
    assert load_order(proc) == [APP, *libs]
    assert [(r.requester, r.name) for r in proc.resolutions] == [
        (0, "libA.so"),
        (0, "libB.so"),
        (1, "libC.so"),
        (2, "libD.so"),
    ]


def test_dl_map_object_deps_first_requester_context() -> None:
    """LOADER.md 3.1, edge case 3: a name is resolved once, in the context of the first
    object in BFS order that needs it; libCA's RUNPATH would find libCC, main's does not."""
    tree = glibc_tree()
    tree.file(APP, program(["libCA.so", "libCC.so"], runpath="/opt/a"))
    tree.file("/opt/a/libCA.so", library("libCA.so", ["libCC.so"], runpath="/opt/c"))
    tree.file("/opt/c/libCC.so", library("libCC.so"))
    proc_ctx = context(tree.rootfs())
    proc = process(proc_ctx, APP)
    first = [r for r in proc.resolutions if r.name == "libCC.so"]
    # main asks first and fails: the real start stops there. libCA's own request is what
    # ldd's trace shows next (a failed name leaves only a faked entry, which
    # _dl_lookup_map skips), so it is searched again in libCA's context.
    assert [(r.requester, r.found) for r in first] == [(0, None), (1, 2)]
    assert kinds(findings(proc_ctx, proc)) == [(MISSING, "libCC.so", "startup")]


def test_dl_map_object_deps_fragile_found_by_earlier_load() -> None:
    """LOADER.md edge case 3 (the reverse): libCB's own search cannot reach libCC, but
    libCA loaded it first; it starts, with a fragile-dependency warning."""
    tree = glibc_tree()
    tree.file(APP, program(["libCA.so", "libCB.so"], runpath="/opt/a"))
    tree.file("/opt/a/libCA.so", library("libCA.so", ["libCC.so"], runpath="/opt/c"))
    tree.file("/opt/a/libCB.so", library("libCB.so", ["libCC.so"]))
    tree.file("/opt/c/libCC.so", library("libCC.so"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.OK
    assert kinds(verdict.findings) == [("fragile-dependency", "libCC.so", None)]
    assert verdict.findings[0].required_by == "/opt/a/libCB.so"
    assert verdict.resolved["libCC.so"] == "/opt/c/libCC.so"


# ---------------------------------------------------------------- 3.2 map_object


def _search_tree() -> Tree:
    tree = glibc_tree()
    cache = ld_so_cache([("libx.so.1", "/opt/cached/libx.so.1")])  # file absent: stale
    return tree.text("/etc/ld.so.cache", cache)


def test_dl_map_object_search_order_rpath_llp_runpath_cache_defaults() -> None:
    """LOADER.md 3.2: RPATH (requester without RUNPATH), LD_LIBRARY_PATH, the requester's
    RUNPATH, ld.so.cache, then the compiled-in system directories (case O)."""
    ctx = context(_search_tree().rootfs(), config("LD_LIBRARY_PATH=/opt/llp"))
    cached = [("/opt/cached/libx.so.1", "ld.so.cache", ABSENT)]
    defaults = [(f"{d}/libx.so.1", "system search path", ABSENT) for d in SYSTEM_DIRS]
    with_rpath = find(ctx, [loaded(APP, program(rpath="/opt/rp"))], "libx.so.1")
    assert tried(with_rpath) == [
        ("/opt/rp/libx.so.1", "RPATH", ABSENT),
        ("/opt/llp/libx.so.1", "LD_LIBRARY_PATH", ABSENT),
        *cached,
        *defaults,
    ]
    with_runpath = find(ctx, [loaded(APP, program(runpath="/opt/run"))], "libx.so.1")
    assert tried(with_runpath) == [
        ("/opt/llp/libx.so.1", "LD_LIBRARY_PATH", ABSENT),
        ("/opt/run/libx.so.1", "RUNPATH", ABSENT),
        *cached,
        *defaults,
    ]
    assert with_rpath.path is None and with_rpath.fatal is None


def test_dl_map_object_rpath_inherited_up_the_loader_chain() -> None:
    """LOADER.md 3.2, edge case 2: without RUNPATH, the RPATH of the requester, of its
    loader, and so on up to main are searched, nearest first."""
    ctx = context(glibc_tree().file("/p1/libR.so", library("libR.so")).rootfs())
    objects = [
        loaded(APP, program(rpath="/p1")),
        loaded("/p1/libP.so", library("libP.so", rpath="/p2"), loader=0),
        loaded("/p2/libQ.so", library("libQ.so"), loader=1),
    ]
    result = find(ctx, objects, "libR.so")
    assert tried(result) == [
        ("/p2/libR.so", "RPATH", ABSENT),
        ("/p1/libR.so", "RPATH", FOUND),
    ]
    assert [s.owner for s in result.steps] == ["/p1/libP.so", APP]
    assert result.path == "/p1/libR.so"


def test_dl_map_object_runpath_is_own_only() -> None:
    """LOADER.md 3.2, edge case 2: RUNPATH applies to the object's own NEEDED only; a
    library loaded through main's RUNPATH does not search it."""
    ctx = context(glibc_tree().file("/a/libB.so", library("libB.so")).rootfs())
    objects = [loaded(APP, program(runpath="/a")), loaded("/a/libA.so", library("libA.so"), 0)]
    result = find(ctx, objects, "libB.so")
    assert result.path is None
    assert "/a/libB.so" not in [s.path for s in result.steps]
    assert find(ctx, objects, "libB.so", requester=0).path == "/a/libB.so"


def test_dl_map_object_runpath_of_requester_blocks_chain_rpath() -> None:
    """LOADER.md 3.2, edge case 2: when the requester has RUNPATH, no RPATH of the chain is
    searched, not even main's (case R)."""
    ctx = context(glibc_tree().file("/p1/libQ.so", library("libQ.so")).rootfs())
    objects = [
        loaded(APP, program(rpath="/p1")),
        loaded("/p1/libP.so", library("libP.so", runpath="/r"), 0),
    ]
    result = find(ctx, objects, "libQ.so")
    assert result.path is None
    assert [s.rule for s in result.steps if s.rule.name in ("RPATH", "RUNPATH")] == ["RUNPATH"]


def test_get_dynamic_info_rpath_ignored_when_runpath_present() -> None:
    """LOADER.md 3.2: DT_RPATH is nulled at load when the object also has DT_RUNPATH
    (get-dynamic-info.h), also as a link of the loader chain."""
    ctx = context(glibc_tree().file("/p1/libQ.so", library("libQ.so")).rootfs())
    main = loaded(APP, program(rpath="/p1", runpath="/r"))
    assert find(ctx, [main], "libQ.so").path is None
    chain = [main, loaded("/r/libP.so", library("libP.so"), 0)]
    assert find(ctx, chain, "libQ.so").path is None


def test_dl_map_object_ld_library_path_colon_and_semicolon() -> None:
    """LOADER.md 3.2: LD_LIBRARY_PATH is split on ':' and ';' (case O)."""
    tree = glibc_tree().file("/opt/two/libx.so.1", library("libx.so.1"))
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/none;/opt/zero:/opt/two"))
    result = find(ctx, [loaded(APP, program())], "libx.so.1")
    assert tried(result) == [
        ("/opt/none/libx.so.1", "LD_LIBRARY_PATH", ABSENT),
        ("/opt/zero/libx.so.1", "LD_LIBRARY_PATH", ABSENT),
        ("/opt/two/libx.so.1", "LD_LIBRARY_PATH", FOUND),
    ]


def test_dl_init_paths_ld_library_path_dsts_expand_against_main() -> None:
    """LOADER.md 3.2: LD_LIBRARY_PATH's DSTs are expanded against the main program, whoever
    the requester is."""
    tree = glibc_tree().file("/opt/x/lib/libq.so", library("libq.so"))
    tree.file("/opt/x/bin/app", program()).file("/opt/y/libr.so", library("libr.so"))
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=$ORIGIN/../lib"))
    objects = [loaded("/opt/x/bin/app", program()), loaded("/opt/y/libr.so", library("libr.so"), 0)]
    result = find(ctx, objects, "libq.so")
    assert tried(result) == [("/opt/x/bin/../lib/libq.so", "LD_LIBRARY_PATH", FOUND)]


def test_dl_map_object_nodeflib_drops_defaults_and_system_cache_entries() -> None:
    """LOADER.md 3.2: DF_1_NODEFLIB skips the system directories and every cache entry in
    them; a cache entry elsewhere is still used (case N)."""
    tree = glibc_tree()
    tree.file(f"{USRLIBDIR}/libsys.so.1", library("libsys.so.1"))
    tree.file("/opt/n/libopt.so.1", library("libopt.so.1"))
    rows = [("libsys.so.1", f"{USRLIBDIR}/libsys.so.1"), ("libopt.so.1", "/opt/n/libopt.so.1")]
    ctx = context(tree.text("/etc/ld.so.cache", ld_so_cache(rows)).rootfs())
    plain, nodeflib = [loaded(APP, program())], [loaded(APP, program(nodeflib=True))]
    assert find(ctx, plain, "libsys.so.1").path == f"{USRLIBDIR}/libsys.so.1"
    blocked = find(ctx, nodeflib, "libsys.so.1")
    assert blocked.path is None and blocked.steps == ()
    assert tried(find(ctx, nodeflib, "libopt.so.1")) == [
        ("/opt/n/libopt.so.1", "ld.so.cache", FOUND)
    ]


def test_dl_map_object_needed_with_slash_is_not_searched() -> None:
    """LOADER.md 3.2, edge case 13: a NEEDED name with '/' is opened as a path (DSTs
    expanded against the requester), with no search at all (case S)."""
    tree = glibc_tree().file("/opt/s/lib/libs.so", library("libs.so"))
    tree.file(f"{LIBDIR}/libs.so", library("libs.so")).file("/opt/s/bin/app", program())
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/s/lib"))
    main = [loaded("/opt/s/bin/app", program())]
    assert tried(find(ctx, main, "/opt/s/lib/libs.so")) == [
        ("/opt/s/lib/libs.so", "NEEDED with '/'", FOUND)
    ]
    assert tried(find(ctx, main, "$ORIGIN/../lib/libs.so")) == [
        ("/opt/s/bin/../lib/libs.so", "NEEDED with '/'", FOUND)
    ]
    assert tried(find(ctx, main, "/opt/none/libs.so")) == [
        ("/opt/none/libs.so", "NEEDED with '/'", ABSENT)
    ]


def test_dl_lookup_map_matches_soname_of_loaded_object() -> None:
    """LOADER.md 3.2: a name equal to a loaded object's name or DT_SONAME is that object;
    nothing is searched (_dl_lookup_map). libB asks for libfoo.so.1, which is only in main's
    RUNPATH, and gets the libfoo.so main loaded."""
    tree = glibc_tree()
    tree.file(APP, program(["libfoo.so", "libB.so"], runpath="/opt/f"))
    tree.file("/opt/f/libfoo.so", library("libfoo.so.1"))
    tree.file("/opt/f/libB.so", library("libB.so", ["libfoo.so.1"]))
    proc = process(context(tree.rootfs()), APP)
    again = next(r for r in proc.resolutions if r.name == "libfoo.so.1")
    assert again.reused and proc.objects[again.found or 0].path == "/opt/f/libfoo.so"
    assert [(s.path, s.rule.name) for s in again.steps] == [("/opt/f/libfoo.so", "LOADED")]
    assert load_order(proc) == [APP, "/opt/f/libfoo.so", "/opt/f/libB.so"]


def test_dl_file_id_match_p_same_file_under_two_names() -> None:
    """LOADER.md 3.2: a found file with the (st_dev, st_ino) of a loaded object is that
    object under another name (_dl_map_object_from_fd, _dl_file_id_match_p)."""
    tree = glibc_tree()
    tree.file(APP, program(["liba.so", "libb.so"], runpath="/opt/i"))
    tree.file("/opt/i/libreal.so.1", library("libreal.so.1"))
    tree.link("/opt/i/liba.so", "libreal.so.1").hardlink("/opt/i/libb.so", "/opt/i/libreal.so.1")
    proc = process(context(tree.rootfs()), APP)
    assert load_order(proc) == [APP, "/opt/i/liba.so"]
    assert resolved(proc)["libb.so"] == "/opt/i/liba.so"
    assert proc.objects[1].names == ("liba.so", "libb.so")


def test_dl_signal_error_cannot_open_shared_object_file() -> None:
    """LOADER.md 3.2: a NEEDED name found nowhere is fatal at start, "cannot open shared
    object file", with every candidate tried listed."""
    tree = glibc_tree().file(APP, program(["libnone.so.1"], runpath="/opt/r"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.BROKEN
    (missing,) = verdict.findings
    assert (missing.kind, missing.fatal_at, missing.severity) == (
        FindingKind.MISSING_LIBRARY,
        FatalAt.STARTUP,
        Severity.ERROR,
    )
    assert "libnone.so.1: cannot open shared object file" in missing.message
    assert missing.tried[0] == ("/opt/r/libnone.so.1", "RUNPATH")
    assert missing.tried[-1] == ("/usr/lib/libnone.so.1", "system search path")


def test_fillin_rpath_trailing_slash_and_duplicates() -> None:
    """LOADER.md 3.2 (fillin_rpath): trailing '/' is removed and a directory already in
    the list is not searched twice."""
    ctx = context(glibc_tree().rootfs())
    main = [loaded(APP, program(runpath="/opt/a/:/opt/a//:/opt/b:/opt/a"))]
    runpath = [s.path for s in find(ctx, main, "libz.so").steps if s.rule.name == "RUNPATH"]
    assert runpath == ["/opt/a/libz.so", "/opt/b/libz.so"]


def test_dl_dst_substitute_unknown_dst_stays_literal() -> None:
    """LOADER.md 3.2: an unknown `$FOO` (or `$ORIGINX`) stays literal in the path."""
    values = dst.DstValues("/o", "lib/x86_64-linux-gnu", "x86_64")
    assert dst.search_dirs("/opt/$FOO/lib:$ORIGINX", values) == ["/opt/$FOO/lib", "$ORIGINX"]
    assert dst.search_dirs("${ORIGIN}/a:$ORIGIN/b:$LIB", values) == [
        "/o/a",
        "/o/b",
        "lib/x86_64-linux-gnu",
    ]


def test_dl_dst_substitute_unreplaceable_dst_drops_element() -> None:
    """LOADER.md 3.2: a known DST that cannot be replaced drops its element only."""
    values = dst.DstValues(None, "lib", None)
    assert dst.search_dirs("$ORIGIN/a:/b:/c/$PLATFORM", values) == ["/b"]
    assert dst.expand("$ORIGIN/libx.so", values) is None


def test_decompose_rpath_empty_element_is_cwd() -> None:
    """LOADER.md 3.2, edge case 12: an empty RUNPATH element is the current directory (the
    image's WorkingDir); the realname stays relative (case W)."""
    tree = glibc_tree().file("/srv/libW.so.1", library("libW.so.1"))
    tree.file("/opt/W/bin/app", program(["libW.so.1"], runpath="/opt/W/none:"))
    tree.file("/opt/W/bin/control", program(["libW.so.1"], runpath="/opt/W/none"))
    in_srv = verdicts(tree.rootfs(), config(working_dir="/srv"))
    assert in_srv["/opt/W/bin/app"].resolved["libW.so.1"] == "libW.so.1"
    assert in_srv["/opt/W/bin/app"].status == Status.OK
    assert in_srv["/opt/W/bin/control"].status == Status.BROKEN
    assert verdicts(tree.rootfs())["/opt/W/bin/app"].status == Status.BROKEN  # cwd "/"


def test_dl_init_paths_empty_ld_library_path_element_is_cwd() -> None:
    """LOADER.md edge case 12: an empty LD_LIBRARY_PATH element is the current directory."""
    tree = glibc_tree().file("/srv/libW.so.1", library("libW.so.1"))
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/none:", working_dir="/srv"))
    result = find(ctx, [loaded(APP, program())], "libW.so.1")
    assert tried(result)[-1] == ("libW.so.1", "LD_LIBRARY_PATH", FOUND)


def test_decompose_rpath_empty_string_is_ignored() -> None:
    """LOADER.md 3.2 (decompose_rpath): a DT_RUNPATH that is the empty string has no
    elements at all, unlike ':' (two empty elements = the current directory)."""
    tree = glibc_tree().file("/libW.so.1", library("libW.so.1"))
    ctx = context(tree.rootfs())
    result = find(ctx, [loaded(APP, program(runpath=""))], "libW.so.1")
    assert [s.rule.name for s in result.steps].count("RUNPATH") == 0
    assert result.path is None


def test_dl_new_object_origin_of_relative_realname_uses_cwd() -> None:
    """LOADER.md 3.2/3.5: a library found through an empty (CWD) element has the realname
    'libW.so.1'; its $ORIGIN is the current directory, so its RUNPATH $ORIGIN/sub finds
    /srv/sub/libX.so.1 when WorkingDir is /srv."""
    tree = glibc_tree()
    tree.file("/srv/libW.so.1", library("libW.so.1", ["libX.so.1"], runpath="$ORIGIN/sub"))
    tree.file("/srv/sub/libX.so.1", library("libX.so.1"))
    tree.file(APP, program(["libW.so.1"], runpath=":"))
    verdict = verdicts(tree.rootfs(), config(working_dir="/srv"))[APP]
    assert verdict.resolved["libX.so.1"] == "/srv/sub/libX.so.1"
    assert verdict.status == Status.OK


# ---------------------------------------------------------------- 3.3 open_path / open_verify


def _two_dirs(first: ElfFacts | None, first_verify: str | None = None) -> Tree:
    """RUNPATH /d1:/d2; /d2/libG.so.1 is the good one, /d1/libG.so.1 is `first`."""
    tree = glibc_tree().file("/d2/libG.so.1", library("libG.so.1"))
    tree.file("/d1/libG.so.1", first, verify=first_verify)
    return tree.file(APP, program(["libG.so.1"], runpath="/d1:/d2"))


def _g_search(tree: Tree) -> list[tuple[str, str, str]]:
    ctx = context(tree.rootfs())
    steps = tried(find(ctx, [loaded(APP, program(runpath="/d1:/d2"))], "libG.so.1"))
    return [s for s in steps if s[1] == "RUNPATH"]


def test_open_verify_wrong_class_skipped() -> None:
    """LOADER.md 3.3, edge case 5: a candidate of the other ELF class is skipped and the
    search goes on (case G, 32-bit)."""
    tree = _two_dirs(library("libG.so.1", elf_class=32, machine=EM_386))
    assert _g_search(tree) == [
        ("/d1/libG.so.1", "RUNPATH", SKIPPED),
        ("/d2/libG.so.1", "RUNPATH", FOUND),
    ]
    assert verdicts(tree.rootfs())[APP].resolved["libG.so.1"] == "/d2/libG.so.1"


def test_open_verify_wrong_machine_skipped() -> None:
    """LOADER.md 3.3: a candidate for another e_machine is skipped (case G, EM_AARCH64)."""
    tree = _two_dirs(library("libG.so.1", machine=EM_AARCH64))
    assert _g_search(tree) == [
        ("/d1/libG.so.1", "RUNPATH", SKIPPED),
        ("/d2/libG.so.1", "RUNPATH", FOUND),
    ]


def test_open_verify_short_file_is_fatal() -> None:
    """LOADER.md 3.3, edge case 5: a too-short candidate is fatal; later directories are
    not tried (case G)."""
    tree = _two_dirs(None, "file too short")
    assert _g_search(tree) == [("/d1/libG.so.1", "RUNPATH", FATAL)]
    verdict = verdicts(tree.rootfs())[APP]
    assert kinds(verdict.findings) == [("incompatible-library", "libG.so.1", "startup")]
    assert "/d1/libG.so.1: file too short" in verdict.findings[0].message


@pytest.mark.parametrize(
    "facts",
    [
        library("libG.so.1", little_endian=False),
        library("libG.so.1", ident_problem="ELF file OS ABI invalid"),
        library("libG.so.1", type_problem="only ET_DYN and ET_EXEC can be loaded"),
    ],
    ids=["big-endian", "osabi", "e_type"],
)
def test_open_verify_header_problems_are_fatal(facts: ElfFacts) -> None:
    """LOADER.md 3.3, edge case 5: wrong byte order, OSABI/ABIVERSION/padding/EI_VERSION and
    e_type/phentsize problems are fatal, no fallback to later directories."""
    assert _g_search(_two_dirs(facts)) == [("/d1/libG.so.1", "RUNPATH", FATAL)]


def test_open_verify_directory_is_fatal() -> None:
    """LOADER.md 3.3: a directory named like the library opens, then reading fails (EISDIR):
    "cannot read file data", fatal (case G, directory)."""
    tree = glibc_tree().file("/d2/libG.so.1", library("libG.so.1")).dir("/d1/libG.so.1")
    result = find(context(tree.rootfs()), [loaded(APP, program(runpath="/d1:/d2"))], "libG.so.1")
    assert tried(result) == [("/d1/libG.so.1", "RUNPATH", FATAL)]
    assert result.fatal is not None and result.fatal.startswith("cannot read file data")


def test_open_path_eloop_ends_that_path_list() -> None:
    """LOADER.md 3.3: "if a file existed but open failed with errno not in {ENOENT, EACCES,
    ENOTDIR}: stop searching" that list. A symlink loop in /d1 keeps /d2 from being tried."""
    tree = glibc_tree().file("/d2/libG.so.1", library("libG.so.1"))
    tree.link("/d1/libG.so.1", "libG.so.1")  # ELOOP
    result = find(context(tree.rootfs()), [loaded(APP, program(runpath="/d1:/d2"))], "libG.so.1")
    assert "/d2/libG.so.1" not in [s.path for s in result.steps]


def test_open_path_unreadable_candidate_is_skipped() -> None:
    """LOADER.md 3.3: an errno in {ENOENT, EACCES, ENOTDIR} goes on to the next candidate:
    /d1/libG.so.1 (root, mode 0600) cannot be opened by User 1000, /d2's copy is used."""
    tree = _two_dirs(library("libG.so.1"))
    tree.file("/d1/libG.so.1", library("libG.so.1"), mode=0o600)
    verdict = verdicts(tree.rootfs(), config(user="1000:1000"))[APP]
    assert verdict.resolved["libG.so.1"] == "/d2/libG.so.1"


def test_open_path_realname_is_not_symlink_resolved() -> None:
    """LOADER.md 3.3: the realname is dir/name as tried, not the symlink's target."""
    tree = glibc_tree().file("/opt/v/libv.so.1.2.3", library("libv.so.1"))
    tree.link("/opt/v/libv.so.1", "libv.so.1.2.3").file(APP, program(["libv.so.1"], rpath="/opt/v"))
    proc = process(context(tree.rootfs()), APP)
    assert (proc.objects[1].path, proc.objects[1].file) == (
        "/opt/v/libv.so.1",
        "/opt/v/libv.so.1.2.3",
    )


def test_open_path_glibc_hwcaps_subdirs_first() -> None:
    """LOADER.md 3.3, edge case 8: each directory is tried as glibc-hwcaps/<level>/ for
    every level the CPU supports, best first, then the directory itself."""
    tree = glibc_tree()
    tree.file("/opt/hw/libhw.so.1", library("libhw.so.1"))
    tree.file("/opt/hw/glibc-hwcaps/x86-64-v2/libhw.so.1", library("libhw.so.1"))
    main = [loaded(APP, program(runpath="/opt/hw"))]
    v3 = find(context(tree.rootfs(), cpu_level="x86-64-v3"), main, "libhw.so.1")
    assert tried(v3) == [
        ("/opt/hw/glibc-hwcaps/x86-64-v3/libhw.so.1", "RUNPATH", ABSENT),
        ("/opt/hw/glibc-hwcaps/x86-64-v2/libhw.so.1", "RUNPATH", FOUND),
    ]
    baseline = find(context(tree.rootfs()), main, "libhw.so.1")
    assert tried(baseline) == [("/opt/hw/libhw.so.1", "RUNPATH", FOUND)]
    # Every directory, LD_LIBRARY_PATH's and the system ones too.
    ctx = context(tree.rootfs(), config("LD_LIBRARY_PATH=/opt/llp"), cpu_level="x86-64-v2")
    paths = [s.path for s in find(ctx, [loaded(APP, program())], "libnone.so").steps]
    assert paths[:2] == ["/opt/llp/glibc-hwcaps/x86-64-v2/libnone.so", "/opt/llp/libnone.so"]
    assert paths[2:4] == [f"{LIBDIR}/glibc-hwcaps/x86-64-v2/libnone.so", f"{LIBDIR}/libnone.so"]


def test_open_path_legacy_subdirs_of_glibc_2_36() -> None:
    """LOADER.md 3.3: glibc 2.36 also tries tls/x86_64/x86_64, tls/x86_64, tls,
    x86_64/x86_64, x86_64 in each directory (removed in 2.37)."""
    tree = glibc_tree(ldso_version=(2, 36)).file("/opt/t/x86_64/libt.so.1", library("libt.so.1"))
    result = find(context(tree.rootfs()), [loaded(APP, program(runpath="/opt/t"))], "libt.so.1")
    # _dl_important_hwcaps does not merge equal paths: with platform and hwcap both "x86_64"
    # LD_DEBUG=libs shows tls/x86_64 and x86_64 twice (LOADER.md lists them once).
    assert [s.path for s in result.steps] == [
        "/opt/t/tls/x86_64/x86_64/libt.so.1",
        "/opt/t/tls/x86_64/libt.so.1",
        "/opt/t/tls/x86_64/libt.so.1",
        "/opt/t/tls/libt.so.1",
        "/opt/t/x86_64/x86_64/libt.so.1",
        "/opt/t/x86_64/libt.so.1",
    ]
    newer = glibc_tree().file("/opt/t/x86_64/libt.so.1", library("libt.so.1"))
    ctx = context(newer.rootfs())
    assert find(ctx, [loaded(APP, program(runpath="/opt/t"))], "libt.so.1").path is None


# ---------------------------------------------------------------- 3.4 ld.so.cache


def test_dl_load_cache_lookup_finds_soname_outside_search_dirs() -> None:
    """LOADER.md 3.4: the cache maps the SONAME to a path; it is tried after RUNPATH and
    before the system directories (case D, cache rebuilt)."""
    tree = glibc_tree().file("/opt/d/libd.so.1", library("libd.so.1"))
    tree.text("/etc/ld.so.cache", ld_so_cache([("libd.so.1", "/opt/d/libd.so.1")]))
    result = find(context(tree.rootfs()), [loaded(APP, program())], "libd.so.1")
    assert tried(result) == [("/opt/d/libd.so.1", "ld.so.cache", FOUND)]


def _conf_only_tree() -> Tree:
    tree = glibc_tree().file("/opt/d/libd.so.1", library("libd.so.1"))
    tree.text("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
    tree.text("/etc/ld.so.conf.d/d.conf", b"/opt/d\n")
    tree.text("/etc/ld.so.cache", ld_so_cache([("libc.so.6", LIBC)]))
    return tree.file(APP, program(["libd.so.1"]))


def test_dl_load_cache_lookup_ignores_ld_so_conf() -> None:
    """LOADER.md 3.4, edge case 1: ld.so never reads ld.so.conf; a directory listed there
    is searched only through a cache ldconfig wrote after it was added."""
    ctx = context(_conf_only_tree().rootfs())
    result = find(ctx, [loaded(APP, program())], "libd.so.1")
    assert result.path is None
    assert not [s for s in result.steps if s.path.startswith("/opt/d")]


def test_dl_load_cache_lookup_stale_entry_falls_through_to_defaults() -> None:
    """LOADER.md 3.4, edge case 1: a cache entry whose file is gone fails to open and the
    search goes on in the system directories (case D, deleted entry)."""
    tree = glibc_tree().file(f"{USRLIBDIR}/libx.so.1", library("libx.so.1"))
    tree.text("/etc/ld.so.cache", ld_so_cache([("libx.so.1", "/opt/gone/libx.so.1")]))
    result = find(context(tree.rootfs()), [loaded(APP, program())], "libx.so.1")
    assert tried(result) == [
        ("/opt/gone/libx.so.1", "ld.so.cache", ABSENT),
        (f"{LIBDIR}/libx.so.1", "system search path", ABSENT),
        (f"{USRLIBDIR}/libx.so.1", "system search path", FOUND),
    ]


def test_search_cache_glibc_hwcaps_entry_by_cpu_level() -> None:
    """LOADER.md 3.4, edge case 8: a glibc-hwcaps cache entry is chosen when the CPU
    supports its level, ranked by the CPU's preference; otherwise the plain entry."""
    rows: list[CacheRow] = [
        ("libhw.so.1", "/opt/hw/libhw.so.1"),
        ("libhw.so.1", "/opt/hw/glibc-hwcaps/x86-64-v2/libhw.so.1", "x86-64-v2"),
        ("libhw.so.1", "/opt/hw/glibc-hwcaps/x86-64-v3/libhw.so.1", "x86-64-v3"),
    ]
    tree = glibc_tree().text("/etc/ld.so.cache", ld_so_cache(rows))
    for path in ("/opt/hw/libhw.so.1", rows[1][1], rows[2][1]):
        tree.file(path, library("libhw.so.1"))
    main = [loaded(APP, program())]
    chosen = {
        level: find(context(tree.rootfs(), cpu_level=level), main, "libhw.so.1").path
        for level in ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4")
    }
    assert chosen == {
        "x86-64": "/opt/hw/libhw.so.1",
        "x86-64-v2": rows[1][1],
        "x86-64-v3": rows[2][1],
        "x86-64-v4": rows[2][1],
    }


def test_search_cache_first_directory_scanned_wins() -> None:
    """LOADER.md 3.4: duplicate SONAMEs in the cache: the first directory ldconfig scanned
    (the first entry) wins at lookup."""
    rows = [("libdup.so.1", "/opt/a/libdup.so.1"), ("libdup.so.1", "/opt/b/libdup.so.1")]
    tree = glibc_tree().text("/etc/ld.so.cache", ld_so_cache(rows))
    tree.file("/opt/a/libdup.so.1", library("libdup.so.1"))
    tree.file("/opt/b/libdup.so.1", library("libdup.so.1"))
    result = find(context(tree.rootfs()), [loaded(APP, program())], "libdup.so.1")
    assert result.path == "/opt/a/libdup.so.1"


def test_dl_cache_check_flags_other_abi_entry_skipped() -> None:
    """LOADER.md 3.4: entries whose flags are not the target's (x86_64 expects
    ELF_LIBC6|X8664_LIB64) are skipped: an i386 libc6 entry is not used."""
    tree = glibc_tree().file("/opt/32/lib32.so.1", library("lib32.so.1"))
    tree.text("/etc/ld.so.cache", ld_so_cache([("lib32.so.1", "/opt/32/lib32.so.1")], flags=3))
    result = find(context(tree.rootfs()), [loaded(APP, program())], "lib32.so.1")
    assert result.path is None
    assert "ld.so.cache" not in [str(s.rule) for s in result.steps]


@pytest.mark.parametrize("layout", ["new", "old", "compat"])
def test_dl_load_cache_lookup_reads_all_three_layouts(layout: str) -> None:
    """LOADER.md 3.4: the new format, the old "ld.so-1.7.0" one and old-followed-by-new are
    all read; keys are found by the digit-aware binary search (libn.so.9 < libn.so.10)."""
    names = [f"libn.so.{n}" for n in (1, 2, 9, 10, 11, 100)] + ["liba.so.1", "libz.so.1"]
    tree = glibc_tree().text(
        "/etc/ld.so.cache", ld_so_cache([(n, f"/opt/n/{n}") for n in names], layout=layout)
    )
    for name in names:
        tree.file(f"/opt/n/{name}", library(name))
    ctx = context(tree.rootfs())
    main = [loaded(APP, program())]
    assert {n: find(ctx, main, n).path for n in names} == {n: f"/opt/n/{n}" for n in names}
    assert find(ctx, main, "libn.so.3").path is None


def test_dl_load_cache_lookup_wrong_endian_cache_ignored() -> None:
    """LOADER.md 3.4: a cache of the other byte order is ignored entirely."""
    data = bytearray(ld_so_cache([("libd.so.1", "/opt/d/libd.so.1")]))
    data[28] = 3  # cache_file_new.flags: cache_file_new_flags_endian_big
    tree = glibc_tree().file("/opt/d/libd.so.1", library("libd.so.1"))
    ctx = context(tree.text("/etc/ld.so.cache", bytes(data)).rootfs())
    assert ctx.cache is None
    assert find(ctx, [loaded(APP, program())], "libd.so.1").path is None


def test_parse_conf_include_hwcap_and_trailing_slash() -> None:
    """LOADER.md 3.4 (ldconfig parse_conf): '#' comments, `include` globs relative to the
    including file's directory, `hwcap` lines ignored with a warning, trailing '/' and
    whitespace stripped; the trusted system dirs come after the conf dirs."""
    files = {
        "/etc/ld.so.conf": b"# comment\ninclude conf.d/*.conf\nhwcap 1 x\n/opt/z/ \t\n",
        "/etc/conf.d/b.conf": b"/opt/b\n",
        "/etc/conf.d/a.conf": b"/opt/a//\n#/opt/no\n",
    }
    listing = {"/etc/conf.d": ["b.conf", "a.conf", "notes.txt"]}
    conf = parse_ld_so_conf(files.get, lambda d: listing.get(d, []))
    assert conf.dirs == ("/opt/a", "/opt/b", "/opt/z")
    assert conf.problems == ("/etc/ld.so.conf:3: hwcap directive ignored",)
    assert ldconfig_dirs(conf, ("/lib/x86_64-linux-gnu", "/opt/a/")) == (
        "/opt/a",
        "/opt/b",
        "/opt/z",
        "/lib/x86_64-linux-gnu",
    )


# ---------------------------------------------------------------- 3.5 DSTs


def _symlinked_lib_tree() -> Tree:
    """Case E: /opt/E/lib/libS.so -> ../real/libS.so; libS has RUNPATH $ORIGIN."""
    tree = glibc_tree()
    tree.file("/opt/E/bin/app", program(["libS.so"], runpath="/opt/E/lib"))
    tree.file("/opt/E/real/libS.so", library("libS.so", ["libU.so"], runpath="$ORIGIN"))
    tree.file("/opt/E/real/libU.so", library("libU.so"))
    return tree.link("/opt/E/lib/libS.so", "../real/libS.so")


def test_dl_new_object_origin_is_the_directory_found_in() -> None:
    """LOADER.md 3.5, edge case 4: a library's $ORIGIN is the directory of the path it was
    found under, not of the symlink's target (_dl_new_object's realname)."""
    proc = process(context(_symlinked_lib_tree().rootfs()), "/opt/E/bin/app")
    lib_u = next(r for r in proc.resolutions if r.name == "libU.so")
    assert lib_u.found is None
    assert [s.path for s in lib_u.steps if s.rule.name == "RUNPATH"] == ["/opt/E/lib/libU.so"]


def test_dl_get_origin_main_program_is_real_path() -> None:
    """LOADER.md 3.5, edge case 4: the main program's $ORIGIN comes from /proc/self/exe,
    symlinks resolved (case E main)."""
    tree = glibc_tree().file("/opt/app/lib/libm1.so", library("libm1.so"))
    tree.file("/opt/app/bin/app", program(["libm1.so"], runpath="$ORIGIN/../lib"))
    tree.link("/usr/bin/app", "/opt/app/bin/app")
    proc = process(context(tree.rootfs()), "/usr/bin/app")
    assert resolved(proc)["libm1.so"] == "/opt/app/bin/../lib/libm1.so"


def test_dl_dst_lib_is_debian_multiarch() -> None:
    """LOADER.md 3.5, edge case 8: $LIB is what the image's ld.so has compiled in; on
    Debian lib/x86_64-linux-gnu."""
    tree = glibc_tree().file("/opt/L/lib/x86_64-linux-gnu/libl.so", library("libl.so"))
    result = find(context(tree.rootfs()), [loaded(APP, program(runpath="/opt/L/$LIB"))], "libl.so")
    assert result.path == "/opt/L/lib/x86_64-linux-gnu/libl.so"


def test_dl_platform_haswell_on_intel_avx2() -> None:
    """LOADER.md 3.5, edge case 8: $PLATFORM is AT_PLATFORM, which glibc overrides to
    "haswell" on Intel CPUs with AVX2 (cpu-features.c); an AMD x86-64-v3 CPU keeps x86_64."""
    tree = glibc_tree()
    tree.file("/opt/p/haswell/libp.so", library("libp.so"))
    tree.file("/opt/p/x86_64/libp.so", library("libp.so"))
    main = [loaded(APP, program(runpath="/opt/p/$PLATFORM"))]
    chosen = {
        cpu: find(context(tree.rootfs(), cpu_level=cpu), main, "libp.so").path
        for cpu in ("haswell", "x86-64-v3", "x86-64")
    }
    assert chosen == {
        "haswell": "/opt/p/haswell/libp.so",
        "x86-64-v3": "/opt/p/x86_64/libp.so",
        "x86-64": "/opt/p/x86_64/libp.so",
    }


def test_ldso_defaults_read_from_the_image_ldso() -> None:
    """LOADER.md 3.5, edge case 9: the system dirs and $LIB come from the image's own ld.so
    (a Fedora-like /lib64 build here), not from a hard-coded list."""
    fedora = library("ld-linux-x86-64.so.2", ldso=LdsoDefaults(("/lib64", "/usr/lib64"), "lib64"))
    tree = Tree().file("/lib64/ld-linux-x86-64.so.2", fedora)
    tree.file("/usr/lib64/libf.so", library("libf.so"))
    ctx = context(tree.rootfs())
    assert glibc_params(ctx).ldso.system_dirs == ("/lib64", "/usr/lib64")
    result = find(ctx, [loaded(APP, program())], "libf.so")
    assert tried(result) == [
        ("/lib64/libf.so", "system search path", ABSENT),
        ("/usr/lib64/libf.so", "system search path", FOUND),
    ]
    assert find(ctx, [loaded(APP, program(runpath="/opt/$LIB"))], "libf.so").steps[0].path == (
        "/opt/lib64/libf.so"
    )


# ---------------------------------------------------------------- conformance cases


def test_case_a_dl_map_object_runpath_not_inherited() -> None:
    """LOADER.md case A: exe RUNPATH=a -> libA (no rpath) -> libB, only in a: not found."""
    tree = glibc_tree()
    tree.file(APP, program(["libA.so"], runpath="/opt/A/lib"))
    tree.file("/opt/A/lib/libA.so", library("libA.so", ["libB.so"]))
    tree.file("/opt/A/lib/libB.so", library("libB.so"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.BROKEN
    assert kinds(verdict.findings) == [(MISSING, "libB.so", "startup")]
    assert verdict.findings[0].required_by == "/opt/A/lib/libA.so"


def test_case_b_dl_map_object_rpath_inherited() -> None:
    """LOADER.md case B: exe RPATH=p1 -> libP (RPATH=p2) -> libQ (in p2, no rpath) -> libR
    (in p2): found through libP's RPATH."""
    tree = glibc_tree()
    tree.file(APP, program(["libP.so"], rpath="/p1"))
    tree.file("/p1/libP.so", library("libP.so", ["libQ.so"], rpath="/p2"))
    tree.file("/p2/libQ.so", library("libQ.so", ["libR.so"]))
    tree.file("/p2/libR.so", library("libR.so"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.OK and verdict.findings == ()
    assert verdict.resolved["libR.so"] == "/p2/libR.so"


def test_case_c_dl_map_object_deps_first_requester_fails() -> None:
    """LOADER.md case C: exe RUNPATH=adir NEEDED libCA then libCC; libCA's RUNPATH holds
    libCC, but exe requests it first (BFS): fails."""
    tree = glibc_tree()
    tree.file(APP, program(["libCA.so", "libCC.so"], runpath="/opt/C/adir"))
    tree.file("/opt/C/adir/libCA.so", library("libCA.so", ["libCC.so"], runpath="/opt/C/cdir"))
    tree.file("/opt/C/cdir/libCC.so", library("libCC.so"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.BROKEN
    assert ("missing-library", "libCC.so", "startup") in kinds(verdict.findings)
    assert verdict.findings[0].required_by == APP


def test_case_d_dl_load_cache_lookup_conf_without_ldconfig() -> None:
    """LOADER.md case D: a directory listed in ld.so.conf.d without re-running ldconfig:
    not found; imagescan also says the cache is stale."""
    rootfs = _conf_only_tree().rootfs()
    analysis = analyze(rootfs, config())
    assert analysis.verdicts[APP].status == Status.BROKEN
    assert kinds(analysis.verdicts[APP].findings) == [(MISSING, "libd.so.1", "startup")]
    assert kinds(analysis.image_findings) == [("stale-ld-cache", "libd.so.1", None)]


def test_case_e_dl_new_object_origin_through_symlink() -> None:
    """LOADER.md case E: libS reached through a symlink has $ORIGIN = E/lib; libU (in
    real/) is not found."""
    verdict = verdicts(_symlinked_lib_tree().rootfs())["/opt/E/bin/app"]
    assert verdict.status == Status.BROKEN
    assert kinds(verdict.findings) == [(MISSING, "libU.so", "startup")]
    assert verdict.resolved["libS.so"] == "/opt/E/lib/libS.so"


def test_case_g_open_verify_empty_candidate_is_fatal() -> None:
    """LOADER.md case G: RUNPATH d1:d2, d1/libG.so.1 empty: fatal "file too short"."""
    verdict = verdicts(_two_dirs(None, "file too short").rootfs())[APP]
    assert verdict.status == Status.BROKEN
    assert [(f.kind, f.provider, f.fatal_at) for f in verdict.findings] == [
        (FindingKind.INCOMPATIBLE_LIBRARY, "/d1/libG.so.1", FatalAt.STARTUP)
    ]


def test_case_l_dl_dst_lib_expands_to_multiarch() -> None:
    """LOADER.md case L: RUNPATH dir/$LIB with the library only in dir/lib: not found."""
    tree = glibc_tree().file("/opt/L/lib/libl.so", library("libl.so"))
    tree.file(APP, program(["libl.so"], runpath="/opt/L/$LIB"))
    verdict = verdicts(tree.rootfs())[APP]
    assert verdict.status == Status.BROKEN
    assert verdict.findings[0].tried[0] == ("/opt/L/lib/x86_64-linux-gnu/libl.so", "RUNPATH")


# ---------------------------------------------------------------- secure mode (AT_SECURE)


def _setid_tree() -> Tree:
    """Set-id programs owned by root and by 1000 whose library only LD_LIBRARY_PATH finds."""
    tree = glibc_tree().file("/opt/U/lib/libU.so.1", library("libU.so.1"))
    app = program(["libU.so.1"])
    tree.file("/opt/U/bin/suid-app", app, mode=0o4755)
    tree.file("/opt/U/bin/sgid-app", app, mode=0o2755)
    tree.file("/opt/U/bin/suid-1000-app", app, mode=0o4755, uid=1000, gid=1000)
    return tree.file("/opt/U/bin/plain-app", app)


def test_dl_non_dynamic_init_secure_mode_follows_the_user() -> None:
    """LOADER.md Secure mode, edge case 11: AT_SECURE (LD_LIBRARY_PATH dropped) exactly when
    the exec changes the ids: setuid-root run by 1000 fails, run by root starts."""
    rootfs = _setid_tree().rootfs()
    env = "LD_LIBRARY_PATH=/opt/U/lib"
    status = {}
    for user in (None, "root", "1000:1000"):
        found = verdicts(rootfs, config(env, user=user))
        status[user] = {
            path.rsplit("/", 1)[1]: v.status for path, v in found.items() if "/U/bin" in path
        }
    ok, broken = Status.OK, Status.BROKEN
    assert (
        status[None]
        == status["root"]
        == {
            "suid-app": ok,
            "sgid-app": ok,
            "suid-1000-app": broken,
            "plain-app": ok,
        }
    )
    assert status["1000:1000"] == {
        "suid-app": broken,
        "sgid-app": broken,
        "suid-1000-app": ok,
        "plain-app": ok,
    }


def test_dl_non_dynamic_init_user_name_from_the_image_passwd() -> None:
    """LOADER.md Secure mode: a `User` given by name runs with the ids the image's
    /etc/passwd gives it; "root" is not secure for a setuid-root program."""
    tree = _setid_tree().text("/etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:\n")
    env = "LD_LIBRARY_PATH=/opt/U/lib"
    as_app = verdicts(tree.rootfs(), config(env, user="app"))
    assert as_app["/opt/U/bin/suid-app"].status == Status.BROKEN
    assert as_app["/opt/U/bin/suid-1000-app"].status == Status.OK
    assert verdicts(tree.rootfs(), config(env, user="root"))["/opt/U/bin/suid-app"].status == (
        Status.OK
    )


def test_dl_non_dynamic_init_file_capabilities_are_secure() -> None:
    """LOADER.md Secure mode: a file with capabilities runs in secure mode for a non-root
    user."""
    tree = glibc_tree().file("/opt/U/lib/libU.so.1", library("libU.so.1"))
    tree.file("/opt/U/bin/cap-app", program(["libU.so.1"]), caps=True)
    env = "LD_LIBRARY_PATH=/opt/U/lib"
    assert verdicts(tree.rootfs(), config(env, user="1000"))["/opt/U/bin/cap-app"].status == (
        Status.BROKEN
    )
    assert verdicts(tree.rootfs(), config(env))["/opt/U/bin/cap-app"].status == Status.OK


def test_dl_dst_substitute_secure_main_origin_outside_trusted_dirs_dropped() -> None:
    """LOADER.md 3.5 and Secure mode: under AT_SECURE the main program's $ORIGIN expansion
    must lie in a trusted directory; /opt/SO/bin/../lib does not (case U_ORIGIN)."""
    tree = glibc_tree().file("/opt/SO/lib/libso.so.1", library("libso.so.1"))
    tool = program(["libso.so.1"], runpath="$ORIGIN/../lib")
    tree.file("/opt/SO/bin/tool", tool).file("/opt/SO/bin/suid-tool", tool, mode=0o4755)
    found = verdicts(tree.rootfs(), config(user="1000:1000"))
    assert kinds(found["/opt/SO/bin/suid-tool"].findings) == [(MISSING, "libso.so.1", "startup")]
    assert found["/opt/SO/bin/tool"].resolved["libso.so.1"] == "/opt/SO/bin/../lib/libso.so.1"


def test_is_trusted_path_normalize_prefix_after_dotdot() -> None:
    """LOADER.md 3.5 Secure mode: a setuid /usr/bin/tool with RUNPATH $ORIGIN/../lib/tool
    expands to /usr/bin/../lib/tool = /usr/lib/tool, under the trusted /usr/lib: kept."""
    tool = program(runpath="$ORIGIN/../lib/tool")
    tree = glibc_tree().file("/usr/lib/tool/libt.so.1", library("libt.so.1"))
    ctx = context(tree.file("/usr/bin/tool", tool, mode=0o4755).rootfs())
    main = [loaded("/usr/bin/tool", tool)]
    result = find(ctx, main, "libt.so.1", params=glibc_params(ctx, secure=True))
    assert result.path == "/usr/bin/../lib/tool/libt.so.1"


def test_dl_dst_substitute_secure_library_origin_not_trust_checked() -> None:
    """LOADER.md 3.5 Secure mode: a library's RUNPATH $ORIGIN (first element) is expanded
    in secure mode too; only the executable's $ORIGIN must be trusted."""
    libk1 = library("libk1.so", runpath="$ORIGIN")
    tree = glibc_tree().file("/opt/k/libk2.so", library("libk2.so"))
    tree.file("/opt/k/libk1.so", libk1).file("/usr/bin/tool", program(), mode=0o4755)
    ctx = context(tree.rootfs())
    objects = [loaded("/usr/bin/tool", program()), loaded("/opt/k/libk1.so", libk1, 0)]
    result = find(ctx, objects, "libk2.so", params=glibc_params(ctx, secure=True))
    assert result.path == "/opt/k/libk2.so"


def test_dl_dst_substitute_secure_lib_and_platform_not_trust_checked() -> None:
    """LOADER.md 3.5 Secure mode: only $ORIGIN is restricted; /opt/q/$LIB is searched."""
    tree = glibc_tree().file("/opt/q/lib/x86_64-linux-gnu/libq.so", library("libq.so"))
    ctx = context(tree.rootfs())
    main = [loaded("/usr/bin/tool", program(runpath="/opt/q/$LIB"))]
    result = find(ctx, main, "libq.so", params=glibc_params(ctx, secure=True))
    assert result.path == "/opt/q/lib/x86_64-linux-gnu/libq.so"


def test_dl_dst_substitute_secure_origin_must_open_the_element() -> None:
    """LOADER.md 3.5 Secure mode: under AT_SECURE $ORIGIN is replaced only as the first
    thing of an element, followed by '/' or nothing; elsewhere the element is dropped."""
    values = dst.DstValues("/opt/k", "lib", "x86_64")
    secure = dst.Secure(False, SYSTEM_DIRS)
    text = "$ORIGIN:${ORIGIN}/a:/x/$ORIGIN:${ORIGIN}b:/q/$LIB"
    assert dst.search_dirs(text, values, secure=secure) == ["/opt/k", "/opt/k/a", "/q/lib"]
    main = dst.Secure(True, SYSTEM_DIRS)
    assert dst.expand("$ORIGIN/../lib/x", dst.DstValues("/usr/bin", "l", None), main) == (
        "/usr/bin/../lib/x"
    )
    assert dst.expand("$ORIGIN/../../opt", dst.DstValues("/usr/lib", "l", None), main) is None
    assert not dst.is_trusted_path_normalize("/usr/libx", SYSTEM_DIRS)
    assert dst.is_trusted_path_normalize("//usr/./lib//y/..", SYSTEM_DIRS)


def test_open_path_setuid_program_opens_as_its_owner() -> None:
    """LOADER.md 3.3: the loader opens libraries with the process's effective ids; a
    setuid-root program run by User 1000 reads a root-only (0600) library, a plain one
    cannot and finds nothing else."""
    tree = glibc_tree().file("/opt/R/lib/libR.so.1", library("libR.so.1"), mode=0o600)
    tool = program(["libR.so.1"], runpath="/opt/R/lib")
    tree.file("/opt/R/bin/suid", tool, mode=0o4755).file("/opt/R/bin/plain", tool)
    found = verdicts(tree.rootfs(), config(user="1000:1000"))
    assert found["/opt/R/bin/suid"].status == Status.OK
    assert kinds(found["/opt/R/bin/plain"].findings) == [(MISSING, "libR.so.1", "startup")]
    assert verdicts(tree.rootfs())["/opt/R/bin/plain"].status == Status.OK  # root reads it


def test_open_path_supplementary_group_may_read() -> None:
    """LOADER.md 3.3: a User given without a group gets the /etc/group groups that list
    it (runc); group-readable 0640 files of such a group open, other users' do not."""
    tree = glibc_tree().file("/opt/R/lib/libR.so.1", library("libR.so.1"), mode=0o640, gid=50)
    tree.file("/opt/R/bin/app", program(["libR.so.1"], runpath="/opt/R/lib"))
    tree.text("/etc/passwd", b"app:x:1000:1000::/:/bin/sh\n")
    tree.text("/etc/group", b"staff:x:50:other,app\napp:x:1000:\n")
    assert verdicts(tree.rootfs(), config(user="app"))["/opt/R/bin/app"].status == Status.OK
    by_ids = verdicts(tree.rootfs(), config(user="1000:1000"))["/opt/R/bin/app"]
    assert by_ids.status == Status.BROKEN


def _preload_tree() -> Tree:
    tree = glibc_tree()
    tree.file("/opt/P/lib/libpre.so", library("libpre.so", ["libgone.so.1"]))
    return tree.file("/opt/P/bin/hello", program(["libc.so.6"]))


def test_handle_preload_list_secure_drops_entries_with_slash() -> None:
    """LOADER.md Secure mode: AT_SECURE drops LD_PRELOAD entries with a '/'; the setuid-root
    program run by 1000 starts, the plain one fails on the preload's missing dependency."""
    tree = _preload_tree()
    tree.file("/opt/P/bin/suid-hello", program(["libc.so.6"]), mode=0o4755)
    image = config("LD_PRELOAD=/opt/P/lib/libpre.so", user="1000:1000")
    found = verdicts(tree.rootfs(), image)
    assert found["/opt/P/bin/suid-hello"].status == Status.OK
    assert kinds(found["/opt/P/bin/hello"].findings) == [(MISSING, "libgone.so.1", "startup")]
    assert env_preloads("/a/x.so libb.so:/c.so libd.so", secure=True) == ("libb.so", "libd.so")


def test_open_path_secure_preload_needs_setuid_bit() -> None:
    """LOADER.md Secure mode: a slash-free LD_PRELOAD entry is kept in secure mode, but only
    a setuid file in the search path may be preloaded; libpre.so (mode 0755) is ignored, so
    its missing dependency does not stop the setuid program."""
    tree = glibc_tree()
    tree.file(f"{LIBDIR}/libpre.so", library("libpre.so", ["libgone.so.1"]))
    tree.file("/opt/P/bin/suid-hello", program(["libc.so.6"]), mode=0o4755)
    image = config("LD_PRELOAD=libpre.so", user="1000:1000")
    assert verdicts(tree.rootfs(), image)["/opt/P/bin/suid-hello"].status == Status.OK


def test_open_path_secure_preload_search_goes_on_past_plain_files() -> None:
    """LOADER.md Secure mode: open_path refuses a file without the set-user-ID bit with
    errno ENOENT and goes on; a later set-user-ID copy is loaded, and the ld.so.cache is
    not consulted for the preload (case U_setuid_preload_search_goes_on)."""
    tree = glibc_tree()
    tree.file(f"{LIBDIR}/libpre.so", library("libpre.so"))
    tree.file("/usr/lib/libpre.so", library("libpre.so", ["libgone.so.1"]), mode=0o4755)
    tree.file("/opt/c/libpre2.so", library("libpre2.so", ["libgone.so.1"]), mode=0o4755)
    tree.text("/etc/ld.so.cache", ld_so_cache([("libpre2.so", "/opt/c/libpre2.so")]))
    tree.file("/opt/P/bin/suid-hello", program(["libc.so.6"]), mode=0o4755)
    tree.file("/opt/P/bin/hello", program(["libc.so.6"]))
    found = verdicts(tree.rootfs(), config("LD_PRELOAD=libpre.so", user="1000:1000"))
    assert kinds(found["/opt/P/bin/suid-hello"].findings) == [(MISSING, "libgone.so.1", "startup")]
    assert found["/opt/P/bin/hello"].status == Status.OK
    by_cache = verdicts(tree.rootfs(), config("LD_PRELOAD=libpre2.so", user="1000:1000"))
    assert by_cache["/opt/P/bin/suid-hello"].status == Status.OK
    assert by_cache["/opt/P/bin/hello"].status == Status.BROKEN


# ---------------------------------------------------------------- preloads


def test_dl_main_preloads_load_before_needed() -> None:
    """LOADER.md 3.1 and Preloads, edge case 13: LD_PRELOAD objects, then /etc/ld.so.preload
    objects, are loaded right after main and before its DT_NEEDED."""
    tree = glibc_tree().file("/opt/p/libenv.so", library("libenv.so"))
    tree.file("/opt/p/libfile.so", library("libfile.so"))
    tree.text("/etc/ld.so.preload", b"/opt/p/libfile.so\n")
    tree.file(APP, program(["libc.so.6"]))
    proc = process(context(tree.rootfs(), config("LD_PRELOAD=/opt/p/libenv.so")), APP)
    assert load_order(proc) == [APP, "/opt/p/libenv.so", "/opt/p/libfile.so", LIBC, LDSO]
    assert [(r.name, r.preload) for r in proc.resolutions[:3]] == [
        ("/opt/p/libenv.so", True),
        ("/opt/p/libfile.so", True),
        ("libc.so.6", False),
    ]


def test_do_preload_missing_dependency_breaks_every_program() -> None:
    """LOADER.md Preloads: a preload (Env LD_PRELOAD or /etc/ld.so.preload) whose own
    dependency is missing stops every dynamic program (cases P_ENV, P_FILE)."""
    by_env = verdicts(_preload_tree().rootfs(), config("LD_PRELOAD=/opt/P/lib/libpre.so"))
    tree = _preload_tree().text("/etc/ld.so.preload", b"/opt/P/lib/libpre.so\n")
    by_file = verdicts(tree.rootfs())
    for found in (by_env, by_file):
        assert found["/opt/P/bin/hello"].status == Status.BROKEN
        assert kinds(found["/opt/P/bin/hello"].findings) == [(MISSING, "libgone.so.1", "startup")]
        assert found["/opt/P/bin/hello"].findings[0].required_by == "/opt/P/lib/libpre.so"


def test_do_preload_missing_file_is_a_warning() -> None:
    """LOADER.md Preloads: a preload file that does not exist is only a warning ("cannot be
    preloaded ... ignored"); the program starts (case P_MISSING)."""
    tree = _preload_tree().text("/etc/ld.so.preload", b"/opt/P/lib/not-here.so\n")
    verdict = verdicts(tree.rootfs(), config("LD_PRELOAD=/opt/P/lib/nowhere.so"))[
        "/opt/P/bin/hello"
    ]
    assert verdict.status == Status.OK
    assert kinds(verdict.findings) == [
        ("preload-missing", "/opt/P/lib/not-here.so", None),
        ("preload-missing", "/opt/P/lib/nowhere.so", None),
    ]
    assert "cannot be preloaded" in verdict.findings[0].message


def test_do_preload_unusable_file_is_a_warning() -> None:
    """LOADER.md Preloads: do_preload catches every error of mapping the preload itself
    (wrong class, too short): "cannot be preloaded ... ignored", the program starts."""
    tree = _preload_tree().file("/opt/P/lib/short.so", None, verify="file too short")
    tree.file("/opt/P/lib/lib32.so", library("lib32.so", elf_class=32, machine=EM_386))
    image = config("LD_PRELOAD=/opt/P/lib/short.so:/opt/P/lib/lib32.so")
    verdict = verdicts(tree.rootfs(), image)["/opt/P/bin/hello"]
    assert verdict.status == Status.OK
    assert kinds(verdict.findings) == [
        ("preload-missing", "/opt/P/lib/lib32.so", None),
        ("preload-missing", "/opt/P/lib/short.so", None),
    ]


def test_do_preload_into_object_without_needed() -> None:
    """LOADER.md Preloads: an object without DT_NEEDED (ld.so here) still gets the preload;
    the preload's missing dependency is not reported for it, its undefined symbols are."""
    tree = glibc_tree()
    pre = library("libpre.so", ["libgone.so.1"], undefined=[ref("gone_func")])
    tree.file("/opt/P/lib/libpre.so", pre)
    verdict = verdicts(tree.rootfs(), config("LD_PRELOAD=/opt/P/lib/libpre.so"))[LDSO_FILE]
    assert kinds(verdict.findings) == [("undefined-symbol", "gone_func", "call")]


def test_rtld_ld_so_preload_separators() -> None:
    """LOADER.md Preloads, edge case 13: /etc/ld.so.preload entries are separated by
    blanks, tabs, newlines or ':'; LD_PRELOAD by ' ' or ':'."""
    tree = glibc_tree().text("/etc/ld.so.preload", b"/a.so /b.so:c.so\n\t/d.so\n")
    assert context(tree.rootfs()).preload_file == ("/a.so", "/b.so", "c.so", "/d.so")
    assert env_preloads("/x.so:/y.so  z.so", secure=False) == ("/x.so", "/y.so", "z.so")


# ---------------------------------------------------------------- 3.7 protected symbols


def test_dl_check_protected_symbol_canonical_plt_entry() -> None:
    """LOADER.md 3.7 (dl-protected.h): a non-PIE program's canonical PLT entry (undefined,
    st_value != 0) bound by its JUMP_SLOT to a protected function of a library marked
    GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS fails when the slot is bound: at the first
    call (lazy) or at start (BIND_NOW); unmarked it is a warning (case PF)."""
    slot = UndefinedSymbol("p_func", lazy=True, canonical=True)
    plain = dataclasses.replace(
        library("libPF.so.1", defines=("p_func",)), protected=frozenset({"p_func"})
    )
    marked = dataclasses.replace(plain, indirect_extern_access=True)

    def judged(lib: ElfFacts, **facts: bool) -> list[tuple[str, str, str | None]]:
        tree = glibc_tree().file("/opt/PF/lib/libPF.so.1", lib)
        app = dataclasses.replace(
            program(["libPF.so.1"], runpath="/opt/PF/lib", **facts), undefined=(slot,)
        )
        return kinds(verdicts(tree.file(APP, app).rootfs())[APP].findings)

    assert judged(marked) == [("protected-copy-relocation", "p_func", "call")]
    assert judged(marked, bind_now=True) == [("protected-copy-relocation", "p_func", "startup")]
    assert judged(plain) == [("protected-copy-relocation", "p_func", None)]
