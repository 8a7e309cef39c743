"""The checks glibc's loader runs once the objects are loaded (LOADER.md 3.6-3.8): version
needs (elf/dl-version.c), symbol lookup (elf/dl-lookup.c) and when a missing symbol kills
the process (elf/dl-reloc.c). One test per rule, named after the glibc function, built from
model objects; the compiled cases H, I, Y of tests/test_conformance.py stay the real check.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from imagescan.checks.model import FatalAt, FindingKind, Severity, Status
from imagescan.checks.symbols import accepts
from imagescan.checks.versions import DT_RELR_VERSION
from imagescan.elf.model import DF_1_NOW, VERSYM_HIDDEN, ElfFacts, VersionNeed
from tests.loader_factories import (
    Tree,
    config,
    context,
    elf_hash,
    findings,
    glibc_libc,
    glibc_tree,
    kinds,
    library,
    need,
    process,
    program,
    ref,
    verdicts,
)

EXE = "/usr/bin/exe"
LIBH = "/opt/H/lib/libH.so.1"

# LOADER.md rule -> the tests in this file that pin it (read by test_loader_rules_coverage).
RULES: dict[str, tuple[str, ...]] = {
    "3.6": (
        "test_dl_check_map_versions_missing_version_is_fatal",
        "test_match_symbol_weak_version_need_is_a_warning",
        "test_dl_check_map_versions_provider_without_verdef_is_a_note",
        "test_dl_check_map_versions_checks_the_named_provider",
        "test_dl_check_map_versions_every_object_at_start",
        "test_match_symbol_compares_hash_and_name",
        "test_dl_check_map_versions_dt_relr_without_glibc_abi_dt_relr",
        "test_dl_check_map_versions_dt_relr_check_needs_a_verneed",
    ),
    "3.7": (
        "test_do_lookup_x_searches_the_global_scope",
        "test_check_match_unversioned_provider_satisfies_versioned_ref",
        "test_check_match_versioned_ref_needs_its_version",
        "test_check_match_global_index_accepts_versioned_ref",
        "test_check_match_hidden_version_rejected_for_unversioned_ref",
        "test_do_lookup_x_single_default_version_for_unversioned_ref",
        "test_do_lookup_x_weak_undefined_is_not_an_error",
        "test_do_lookup_x_copy_relocation_skips_the_executable",
        "test_do_lookup_x_only_relocated_references_are_looked_up",
    ),
    "3.8": (
        "test_dl_relocate_object_lazy_plt_ref_fails_at_call",
        "test_dl_relocate_object_bind_now_fails_at_start",
        "test_dl_relocate_object_ld_bind_now_env_fails_at_start",
        "test_dl_relocate_object_data_ref_fails_at_start",
        "test_dl_relocate_object_bind_now_is_per_object",
        "test_dl_check_map_versions_every_object_at_start",
    ),
    "edge 6": (
        "test_dl_check_map_versions_missing_version_is_fatal",
        "test_dl_check_map_versions_checks_the_named_provider",
        "test_match_symbol_weak_version_need_is_a_warning",
        "test_dl_check_map_versions_provider_without_verdef_is_a_note",
    ),
    "edge 7": (
        "test_dl_relocate_object_lazy_plt_ref_fails_at_call",
        "test_dl_relocate_object_bind_now_fails_at_start",
        "test_do_lookup_x_weak_undefined_is_not_an_error",
        "test_dl_relocate_object_data_ref_fails_at_start",
    ),
    "edge 14": (
        "test_dl_check_map_versions_dt_relr_without_glibc_abi_dt_relr",
        "test_dl_check_map_versions_dt_relr_check_needs_a_verneed",
    ),
    "case H": ("test_case_h_dl_check_map_versions_version_not_found",),
    "case I": ("test_case_i_dl_relocate_object_lazy_vs_now",),
}


def _h_tree(lib_h: ElfFacts, *, exe_needs: tuple[VersionNeed, ...] | None = None) -> Tree:
    """exe NEEDs libH.so.1 (RUNPATH /opt/H/lib) and calls hv2@V2 from it."""
    needs = exe_needs if exe_needs is not None else (need("libH.so.1", "V2"),)
    exe = program(
        ["libH.so.1", "libc.so.6"],
        runpath="/opt/H/lib",
        version_needs=needs,
        undefined=[ref("hv2", "V2", "libH.so.1")],
    )
    return glibc_tree().file(EXE, exe).file(LIBH, lib_h)


# ---------------------------------------------------------------- 3.6 version needs


def test_dl_check_map_versions_missing_version_is_fatal() -> None:
    """LOADER.md 3.6, edge case 6: a Vernaux version the provider does not define is fatal
    at start, "version `V2' not found (required by exe)", whatever the binding mode."""
    tree = _h_tree(library("libH.so.1", versions=("V1",), defines={"hv1": "V1"}))
    ctx = context(tree.rootfs())
    proc = process(ctx, EXE)
    version = [f for f in findings(ctx, proc) if f.kind == FindingKind.MISSING_SYMBOL_VERSION]
    assert [(f.subject, f.fatal_at, f.severity, f.provider) for f in version] == [
        ("V2", FatalAt.STARTUP, Severity.ERROR, LIBH)
    ]
    assert version[0].message == f"{LIBH}: version `V2' not found (required by {EXE})"
    assert version[0].symbols == ("hv2",)


def test_match_symbol_weak_version_need_is_a_warning() -> None:
    """LOADER.md 3.6, edge case 6: a weak version need (VER_FLG_WEAK) that is not defined
    is a warning only."""
    lib_h = library("libH.so.1", versions=("V1", "V2"), defines={"hv2": "V2"})
    tree = _h_tree(lib_h, exe_needs=(need("libH.so.1", "V2"), need("libH.so.1", "V9", weak=True)))
    verdict = verdicts(tree.rootfs())[EXE]
    assert verdict.status == Status.OK
    assert [(f.kind, f.subject, f.severity, f.fatal_at) for f in verdict.findings] == [
        (FindingKind.MISSING_SYMBOL_VERSION, "V9", Severity.WARNING, None)
    ]


def test_dl_check_map_versions_provider_without_verdef_is_a_note() -> None:
    """LOADER.md 3.6, edge case 6: a provider without DT_VERDEF gives "no version
    information available" only; its unversioned hv2 satisfies the versioned reference."""
    verdict = verdicts(_h_tree(library("libH.so.1", defines=("hv2",))).rootfs())[EXE]
    assert verdict.status == Status.OK
    assert kinds(verdict.findings) == [("no-version-information", "V2", None)]
    assert verdict.findings[0].severity == Severity.NOTE


def test_dl_check_map_versions_checks_the_named_provider() -> None:
    """LOADER.md 3.6, edge case 6: the need is checked against the object Verneed names
    (libH.so.1), not any loaded object: libK defining V2 does not help (H_PROVIDER)."""
    tree = _h_tree(library("libH.so.1", versions=("V1",), defines={"hv1": "V1"}))
    tree.file("/opt/H/lib/libK.so.1", library("libK.so.1", versions=("V2",), defines={"hv2": "V2"}))
    exe = program(
        ["libH.so.1", "libK.so.1", "libc.so.6"],
        runpath="/opt/H/lib",
        version_needs=[need("libH.so.1", "V2")],
        undefined=[ref("hv2", "V2", "libH.so.1")],
    )
    verdict = verdicts(tree.file(EXE, exe).rootfs())[EXE]
    assert verdict.status == Status.BROKEN
    assert kinds(verdict.findings) == [("missing-symbol-version", "V2", "startup")]


def test_dl_check_map_versions_every_object_at_start() -> None:
    """LOADER.md 3.6/3.8: version needs of every loaded object, not just main, are checked
    at start, even when everything is bound lazily."""
    tree = glibc_tree().file(EXE, program(["libA.so.1"], runpath="/opt/A"))
    lib_a = library("libA.so.1", ["libB.so.1"], version_needs=[need("libB.so.1", "B_3")])
    tree.file("/opt/A/libA.so.1", lib_a)
    tree.file("/usr/lib/libB.so.1", library("libB.so.1", versions=("B_1", "B_2")))
    verdict = verdicts(tree.rootfs())[EXE]
    assert verdict.status == Status.BROKEN
    assert [(f.subject, f.required_by, f.fatal_at) for f in verdict.findings] == [
        ("B_3", "/opt/A/libA.so.1", FatalAt.STARTUP)
    ]


def test_match_symbol_compares_hash_and_name() -> None:
    """LOADER.md 3.6 (match_symbol): a Verdef matches on vd_hash and then the name; a
    Vernaux with the right name but another hash is not satisfied."""
    lib_h = library("libH.so.1", versions=("V2",), defines={"hv2": "V2"})
    wrong_hash = VersionNeed("libH.so.1", "V2", elf_hash("V2") ^ 1)
    assert verdicts(_h_tree(lib_h).rootfs())[EXE].status == Status.OK
    verdict = verdicts(_h_tree(lib_h, exe_needs=(wrong_hash,)).rootfs())[EXE]
    assert kinds(verdict.findings) == [("missing-symbol-version", "V2", "startup")]


def test_dl_check_map_versions_dt_relr_without_glibc_abi_dt_relr() -> None:
    """LOADER.md 3.6, edge case 14: an object with DT_RELR that needs libc.so.6 but not
    GLIBC_ABI_DT_RELR is refused by a glibc >= 2.36 loader; with the need it starts."""
    libc_needs = [need("libc.so.6", "GLIBC_2.34")]
    bare = program(["libc.so.6"], has_relr=True, version_needs=libc_needs)
    marked = program(
        ["libc.so.6"],
        has_relr=True,
        version_needs=[*libc_needs, need("libc.so.6", DT_RELR_VERSION)],
    )
    tree = glibc_tree().file("/usr/bin/bare", bare).file("/usr/bin/marked", marked)
    found = verdicts(tree.rootfs())
    assert kinds(found["/usr/bin/bare"].findings) == [
        ("dt-relr-without-version", "GLIBC_ABI_DT_RELR", "startup")
    ]
    assert found["/usr/bin/marked"].status == Status.OK
    table = {"puts": "GLIBC_2.2.5", "__libc_start_main": "GLIBC_2.34"}
    older = library("libc.so.6", versions=("GLIBC_2.2.5", "GLIBC_2.34"), defines=table)
    tree.file("/lib/x86_64-linux-gnu/libc.so.6", older)
    assert kinds(verdicts(tree.rootfs())["/usr/bin/marked"].findings) == [
        ("missing-symbol-version", "GLIBC_ABI_DT_RELR", "startup")
    ]


def test_dl_check_map_versions_dt_relr_check_needs_a_verneed() -> None:
    """LOADER.md 3.6, edge case 14: the DT_RELR test sits inside the DT_VERNEED handling, so
    a DT_RELR object that NEEDs libc.so.6 but has no version needs at all is not refused."""
    exe = program(["libc.so.6"], has_relr=True)
    verdict = verdicts(glibc_tree().file("/usr/bin/bare", exe).rootfs())["/usr/bin/bare"]
    assert verdict.status == Status.OK


# ---------------------------------------------------------------- 3.7 symbol lookup


def test_do_lookup_x_searches_the_global_scope() -> None:
    """LOADER.md 3.7: symbols are looked up in the global scope (main, preloads, BFS deps):
    libY1 calls y2_func from libY2 without needing it; inside the program that is fine,
    traced on its own libY1 fails when y2_func is called (case Y)."""
    tree = glibc_tree()
    tree.file("/opt/Y/libY1.so", library("libY1.so", ["libc.so.6"], undefined=[ref("y2_func")]))
    tree.file("/opt/Y/libY2.so", library("libY2.so", defines=("y2_func",)))
    tree.file(EXE, program(["libY1.so", "libY2.so"], runpath="/opt/Y"))
    found = verdicts(tree.rootfs())
    assert found[EXE].status == Status.OK and found[EXE].findings == ()
    assert found["/opt/Y/libY1.so"].status == Status.BROKEN_LAZY
    assert kinds(found["/opt/Y/libY1.so"].findings) == [("undefined-symbol", "y2_func", "call")]
    # A preload is in the global scope too (main, preloads, then BFS).
    tree.file(EXE, program(["libY1.so"], runpath="/opt/Y"))
    assert verdicts(tree.rootfs())[EXE].status == Status.BROKEN_LAZY
    preloaded = verdicts(tree.rootfs(), config("LD_PRELOAD=/opt/Y/libY2.so"))
    assert preloaded[EXE].status == Status.OK


def test_check_match_unversioned_provider_satisfies_versioned_ref() -> None:
    """LOADER.md 3.7: a provider without a versym table satisfies a versioned reference."""
    assert accepts(library("libu.so", defines=("foo",)), "foo", "V1")
    assert not accepts(library("libu.so", defines=("foo",)), "bar", None)


def test_check_match_versioned_ref_needs_its_version() -> None:
    """LOADER.md 3.7: a versioned reference binds only a definition of that version: libH
    defines V2 (so the version check passes) but hv2 only at V1; the lookup of hv2@V2 fails
    when called (H_SYMBOL)."""
    lib_h = library("libH.so.1", versions=("V1", "V2"), defines={"hv2": "V1", "hv3": "V2"})
    assert not accepts(lib_h, "hv2", "V2") and accepts(lib_h, "hv2", "V1")
    verdict = verdicts(_h_tree(lib_h).rootfs())[EXE]
    assert verdict.status == Status.BROKEN_LAZY
    assert [(f.kind, f.subject, f.version, f.fatal_at) for f in verdict.findings] == [
        (FindingKind.UNDEFINED_SYMBOL, "hv2", "V2", FatalAt.CALL)
    ]
    assert verdict.findings[0].message == f"undefined symbol: hv2, version V2 ({EXE})"


def test_check_match_global_index_accepts_versioned_ref() -> None:
    """LOADER.md 3.7: a definition at the base/global index (hash 0 in l_versions) that is
    not hidden satisfies a versioned reference."""
    lib = library("libg.so", versions=("V1",), defines={"foo": None, "bar": "V1"})
    assert accepts(lib, "foo", "V7")
    assert not accepts(lib, "bar", "V7")


def test_check_match_hidden_version_rejected_for_unversioned_ref() -> None:
    """LOADER.md 3.7: for an unversioned reference a hidden (non-default) version at index
    >= 3 never matches: libhid has bar@@V1 and only the hidden foo@V2 (H_HIDDEN)."""
    lib = library("libhid.so", versions=("V1", "V2"), defines={"bar": "V1"}, hidden={"foo": "V2"})
    assert accepts(lib, "bar", None) and not accepts(lib, "foo", None)
    assert accepts(lib, "foo", "V2")
    tree = glibc_tree().file("/opt/hid/libhid.so", lib)
    exe = program(["libhid.so"], runpath="/opt/hid", undefined=[ref("foo"), ref("bar")])
    verdict = verdicts(tree.file(EXE, exe).rootfs())[EXE]
    assert verdict.status == Status.BROKEN_LAZY
    assert kinds(verdict.findings) == [("undefined-symbol", "foo", "call")]


def test_do_lookup_x_single_default_version_for_unversioned_ref() -> None:
    """LOADER.md 3.7: an unversioned reference to a symbol defined only at versions >= 3
    takes the single non-hidden definition; two would be ambiguous (num_versions != 1)."""
    one = library("libd.so", versions=("V1", "V2"), defines={"foo": "V2"})
    assert one.defined["foo"] == (3,) and accepts(one, "foo", None)
    two = dataclasses.replace(one, defined={"foo": (3, 4)})
    assert not accepts(two, "foo", None)
    hidden_too = dataclasses.replace(one, defined={"foo": (3, 4 | VERSYM_HIDDEN)})
    assert accepts(hidden_too, "foo", None)


def test_do_lookup_x_weak_undefined_is_not_an_error() -> None:
    """LOADER.md 3.7, edge case 7: an unresolved STB_WEAK reference is 0, no error."""
    exe = program(
        ["libc.so.6"], undefined=[ref("maybe", weak=True), ref("gone", weak=True, at_start=True)]
    )
    verdict = verdicts(glibc_tree().file(EXE, exe).rootfs())[EXE]
    assert verdict.status == Status.OK and verdict.findings == ()


def test_do_lookup_x_copy_relocation_skips_the_executable() -> None:
    """LOADER.md 3.7: a COPY relocation's symbol is looked up past the executable that
    defines the copy (ELF_RTYPE_CLASS_COPY, skip_map): it must come from a library."""
    copy_ref = ref("environ", at_start=True, copy=True)
    exe = program(["libc.so.6"], defines=("environ",), undefined=[copy_ref])
    verdict = verdicts(glibc_tree().file(EXE, exe).rootfs())[EXE]
    assert kinds(verdict.findings) == [("undefined-symbol", "environ", "startup")]
    tree = glibc_tree().file(EXE, exe)
    tree.file("/lib/x86_64-linux-gnu/libc.so.6", glibc_libc({"environ": "GLIBC_2.2.5"}))
    assert verdicts(tree.rootfs())[EXE].status == Status.OK


def test_do_lookup_x_only_relocated_references_are_looked_up() -> None:
    """LOADER.md 3.7/3.8: only references a relocation names are looked up; an undefined
    symbol no relocation uses never fails."""
    exe = program(["libc.so.6"], undefined=[ref("unused", lazy=False)])
    assert verdicts(glibc_tree().file(EXE, exe).rootfs())[EXE].status == Status.OK


# ---------------------------------------------------------------- 3.8 when it kills


def _i_tree(**exe_facts: Any) -> Tree:
    """Case I: libI lacks fi; exe calls fi through the PLT."""
    tree = glibc_tree().file("/opt/I/libI.so", library("libI.so", defines=("other",)))
    exe = program(["libI.so"], runpath="/opt/I", undefined=[ref("fi")], **exe_facts)
    return tree.file(EXE, exe)


def test_dl_relocate_object_lazy_plt_ref_fails_at_call() -> None:
    """LOADER.md 3.8, edge case 7: a missing function reached through a JUMP_SLOT is bound
    lazily: the program starts and fails when it is called ("symbol lookup error")."""
    verdict = verdicts(_i_tree().rootfs())[EXE]
    assert verdict.status == Status.BROKEN_LAZY
    assert [(f.subject, f.fatal_at, f.severity) for f in verdict.findings] == [
        ("fi", FatalAt.CALL, Severity.WARNING)
    ]


def test_dl_relocate_object_bind_now_fails_at_start() -> None:
    """LOADER.md 3.8, edge case 7: DF_BIND_NOW or DF_1_NOW (-z now) binds every PLT slot at
    start, so the same missing function fails at start."""
    for facts in ({"bind_now": True}, {"flags_1": DF_1_NOW}):
        verdict = verdicts(_i_tree(**facts).rootfs())[EXE]
        assert verdict.status == Status.BROKEN
        assert kinds(verdict.findings) == [("undefined-symbol", "fi", "startup")]


def test_dl_relocate_object_ld_bind_now_env_fails_at_start() -> None:
    """LOADER.md 3.8: LD_BIND_NOW in the image's Env makes lazy references fail at start
    (case I_ENV); rtld.c's process_envvars takes any non-empty value."""
    verdict = verdicts(_i_tree().rootfs(), config("LD_BIND_NOW=1"))[EXE]
    assert kinds(verdict.findings) == [("undefined-symbol", "fi", "startup")]
    # rtld.c process_envvars: any non-empty value (even "0") binds now; empty stays lazy.
    assert verdicts(_i_tree().rootfs(), config("LD_BIND_NOW=0"))[EXE].status == Status.BROKEN
    lazy = verdicts(_i_tree().rootfs(), config("LD_BIND_NOW="))[EXE]
    assert lazy.status == Status.BROKEN_LAZY


def test_dl_relocate_object_data_ref_fails_at_start() -> None:
    """LOADER.md 3.8, edge case 7: a data reference (GLOB_DAT, COPY, absolute, TLS) is bound
    at load, so it fails at start even in a lazy program."""
    tree = _i_tree()
    exe = program(["libI.so"], runpath="/opt/I", undefined=[ref("fi_data", at_start=True)])
    verdict = verdicts(tree.file(EXE, exe).rootfs())[EXE]
    assert kinds(verdict.findings) == [("undefined-symbol", "fi_data", "startup")]


def test_dl_relocate_object_bind_now_is_per_object() -> None:
    """LOADER.md 3.8: BIND_NOW is a flag of the object whose relocations are processed: a
    -z now library's missing function fails at start inside a lazy program."""
    tree = glibc_tree().file(EXE, program(["libN.so"], runpath="/opt/N"))
    tree.file("/opt/N/libN.so", library("libN.so", bind_now=True, undefined=[ref("fn")]))
    verdict = verdicts(tree.rootfs())[EXE]
    assert [(f.subject, f.required_by, f.fatal_at) for f in verdict.findings] == [
        ("fn", "/opt/N/libN.so", FatalAt.STARTUP)
    ]


# ---------------------------------------------------------------- conformance cases


def test_case_h_dl_check_map_versions_version_not_found() -> None:
    """LOADER.md case H: exe needs hv2@V2; the image's libH defines only V1: fatal
    "version `V2' not found (required by exe)"."""
    tree = _h_tree(library("libH.so.1", versions=("V1",), defines={"hv1": "V1", "hv2": "V1"}))
    verdict = verdicts(tree.rootfs())[EXE]
    assert verdict.status == Status.BROKEN
    assert ("missing-symbol-version", "V2", "startup") in kinds(verdict.findings)


def test_case_i_dl_relocate_object_lazy_vs_now() -> None:
    """LOADER.md case I: libI lacks fi; -z lazy starts and fails when fi is called, -z now
    fails at start."""
    lazy = verdicts(_i_tree().rootfs())[EXE]
    now = verdicts(_i_tree(bind_now=True).rootfs())[EXE]
    assert (lazy.status, now.status) == (Status.BROKEN_LAZY, Status.BROKEN)
    assert [f.message for f in lazy.findings] == [f"undefined symbol: fi ({EXE})"]
