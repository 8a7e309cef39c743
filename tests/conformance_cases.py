"""The loader conformance cases of LOADER.md as data: how to build, how to lay out, what to expect.

Each `Case` is one image. `build` compiles C sources from tests/fixtures/conformance/ into a
scratch tree (paths in it look like image paths; `{B}` in flags is that tree's root); `layers`
say what the image holds (the base layer comes first); `programs` are the verdicts that both
imagescan and the real loader (shared/corpus/oracle.py) must reach; `libraries` are the real
loader's verdicts for the libraries traced on their own (oracle only: imagescan judges a
library inside the process that loads it). Every other ELF of the image must be `ok`
(`others`). Expectations were checked against glibc 2.36's ld.so by the oracle; where the real
loader taught us something, a comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

# ---------------------------------------------------------------- build steps


@dataclass(frozen=True)
class Cc:
    """One compiler run: `cc flags sources -o {B}out` (sources relative to the fixtures dir)."""

    out: str
    sources: tuple[str, ...]
    flags: tuple[str, ...] = ()
    cc: str = "gcc"


@dataclass(frozen=True)
class Patch:
    """A copy of built file `src` at `out`, edited by `op` (see test_conformance.PATCHES)."""

    out: str
    src: str
    op: str


Step = Cc | Patch

# ---------------------------------------------------------------- image members


@dataclass(frozen=True)
class Install:
    """The built file `src` (default: same path; "fixture:REL" = a fixture file) at `path`."""

    path: str
    src: str = ""
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Text:
    """A small non-ELF file (config, empty file, linker script)."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Link:
    """A symlink."""

    path: str
    target: str


@dataclass(frozen=True)
class Gone:
    """A whiteout: the lower layer's file is deleted."""

    path: str


@dataclass(frozen=True)
class Opaque:
    """An opaque-directory marker: the lower layers' contents of `path` are hidden."""

    path: str


@dataclass(frozen=True)
class Folder:
    """A directory (where a library is expected)."""

    path: str


@dataclass(frozen=True)
class Host:
    """A host file copied into the image (the musl loader)."""

    path: str
    host_path: str


Put = Install | Text | Link | Gone | Opaque | Folder | Host

# ---------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Finding:
    """A finding in imagescan's words; fatal_at None means a warning."""

    kind: str
    subject: str
    fatal_at: str | None = "startup"


@dataclass(frozen=True)
class Verdict:
    """What must be said about one ELF file.

    `findings` are exact for fatal ones (undefined symbols are compared only when no library
    or version is missing: then they are consequences); warnings must be present at least.
    `resolved` is a subset of name -> path as ld.so prints it. `loader_says` is a substring of
    the real loader's error message (for incompatible candidates).
    """

    status: str
    findings: frozenset[Finding] = frozenset()
    resolved: tuple[tuple[str, str | None], ...] = ()
    loader_says: str | None = None

    @property
    def fatal(self) -> frozenset[Finding]:
        return frozenset(f for f in self.findings if f.fatal_at is not None)

    @property
    def warnings(self) -> frozenset[Finding]:
        return frozenset(f for f in self.findings if f.fatal_at is None)


def ok(*warnings: Finding, resolved: Mapping[str, str] | None = None) -> Verdict:
    """Starts fine (warnings allowed); `resolved` names must map to these paths."""
    return Verdict("ok", frozenset(warnings), _res(resolved or {}))


def _res(resolved: Mapping[str, str | None]) -> tuple[tuple[str, str | None], ...]:
    return tuple(sorted(resolved.items()))


def resolving(verdict: Verdict, resolved: Mapping[str, str | None]) -> Verdict:
    """`verdict`, also requiring that these names map to these paths (None: not found)."""
    merged = dict(verdict.resolved) | dict(resolved)
    return Verdict(verdict.status, verdict.findings, _res(merged), verdict.loader_says)


def missing(*names: str, also: tuple[Finding, ...] = ()) -> Verdict:
    """Fatal at start: these DT_NEEDED names are not found."""
    found = frozenset(Finding("missing-library", n) for n in names) | frozenset(also)
    return Verdict("broken", found)


def missing_version(*versions: str) -> Verdict:
    """Fatal at start: these Verneed versions are not defined by the provider."""
    return Verdict("broken", frozenset(Finding("missing-symbol-version", v) for v in versions))


def undefined(symbol: str, fatal_at: str) -> Verdict:
    """An undefined symbol, fatal at `startup` (broken) or at `call` (broken-lazy)."""
    status = "broken" if fatal_at == "startup" else "broken-lazy"
    return Verdict(status, frozenset({Finding("undefined-symbol", symbol, fatal_at)}))


def incompatible(name: str, loader_says: str) -> Verdict:
    """Fatal at start: the first candidate for `name` is a file open_verify rejects fatally."""
    return Verdict("broken", frozenset({Finding("incompatible-library", name)}), (), loader_says)


def warn(kind: str, subject: str) -> Finding:
    return Finding(kind, subject, None)


FOREIGN = Verdict("foreign-arch")
OK = Verdict("ok")


@dataclass(frozen=True)
class Case:
    """One image of the conformance suite."""

    name: str
    doc: str
    build: tuple[Step, ...]
    layers: tuple[tuple[Put, ...], ...]
    programs: Mapping[str, Verdict]
    libraries: Mapping[str, Verdict] = field(default_factory=lambda: MappingProxyType({}))
    base: str = "glibc"  # "glibc" (tests/imagebuilder.glibc_base) | "musl" (loader only)
    ldconfig: bool = False  # rebuild /etc/ld.so.cache over base + layers[0]
    env: tuple[str, ...] = ()
    user: str | None = None
    others: Verdict = OK  # every other ELF file (ld.so, libc.so.6)
    # Verdict overrides when the CPU supports this glibc-hwcaps level (or better)
    by_level: Mapping[str, Mapping[str, Verdict]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    requires: tuple[str, ...] = ()  # probes: "gcc -m32"
    # Paths only a real start can judge (a symlink to a program: neither the oracle nor
    # imagescan list symlinks as files)
    starts: Mapping[str, Verdict] = field(default_factory=lambda: MappingProxyType({}))
    # Where the oracle's trace is known to differ from a real start (see the case's comment)
    oracle_differs: Mapping[str, Verdict] = field(default_factory=lambda: MappingProxyType({}))
    # Libraries whose `libraries` verdict imagescan must reach too (judged as main objects)
    library_checks: tuple[str, ...] = ()


# ---------------------------------------------------------------- gcc flag helpers

LIB = ("-shared", "-fPIC", "-Wl,--no-as-needed")
EXE = ("-Wl,--no-as-needed", "-Wl,-z,lazy")
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def soname(name: str) -> tuple[str, ...]:
    return (f"-Wl,-soname,{name}",)


def runpath(path: str) -> tuple[str, ...]:
    """DT_RUNPATH (GNU ld 2.40 then writes no DT_RPATH)."""
    return ("-Wl,--enable-new-dtags", f"-Wl,-rpath,{path}")


def rpath(path: str) -> tuple[str, ...]:
    """DT_RPATH."""
    return ("-Wl,--disable-new-dtags", f"-Wl,-rpath,{path}")


def against(directory: str, *libs: str) -> tuple[str, ...]:
    """Link against built libs in `directory` (a scratch-tree path) by file name, in order."""
    names = tuple(f"-l:{lib}" for lib in libs)
    return (f"-L{{B}}{directory}", f"-Wl,-rpath-link,{{B}}{directory}", *names)


def lib(out: str, fn: str, *calls: str, flags: tuple[str, ...] = (), cc: str = "gcc") -> Cc:
    """common/lib.c as `out` (SONAME = file name) defining `fn`, calling `calls`."""
    defs = [f"-DFN={fn}"] + [f"-D{m}={c}" for m, c in zip(("CALLS", "CALLS2"), calls, strict=False)]
    name = out.rsplit("/", 1)[1]
    return Cc(out, ("common/lib.c",), (*LIB, *soname(name), *defs, *flags), cc)


def exe(out: str, *calls: str, flags: tuple[str, ...] = (), cc: str = "gcc") -> Cc:
    """common/main.c as `out` calling `calls` (one or two)."""
    defs = tuple(f"-D{m}={c}" for m, c in zip(("CALL1", "CALL2"), calls, strict=False))
    return Cc(out, ("common/main.c",), (*EXE, *defs, *flags), cc)


def files(*paths: str, mode: int = 0o755) -> tuple[Install, ...]:
    return tuple(Install(p, mode=mode) for p in paths)


def frozen(verdicts: dict[str, Verdict]) -> Mapping[str, Verdict]:
    return MappingProxyType(verdicts)


# ---------------------------------------------------------------- the cases

LIBDIR = "/usr/lib/x86_64-linux-gnu"  # Debian multiarch dir; /lib is a symlink to usr/lib

CASE_A = Case(
    "A_runpath_not_inherited",
    "exe RUNPATH=/opt/A/lib -> libA (no rpath) -> libB, which lives only in /opt/A/lib",
    build=(
        lib("/opt/A/lib/libB.so.1", "b_func"),
        lib("/opt/A/lib/libA.so.1", "a_func", "b_func", flags=against("/opt/A/lib", "libB.so.1")),
        exe(
            "/opt/A/bin/app",
            "a_func",
            flags=(*runpath("/opt/A/lib"), *against("/opt/A/lib", "libA.so.1")),
        ),
    ),
    layers=(files("/opt/A/bin/app", "/opt/A/lib/libA.so.1", "/opt/A/lib/libB.so.1"),),
    programs=frozen(
        {"/opt/A/bin/app": resolving(missing("libB.so.1"), {"libA.so.1": "/opt/A/lib/libA.so.1"})}
    ),
    libraries=frozen({"/opt/A/lib/libA.so.1": missing("libB.so.1"), "/opt/A/lib/libB.so.1": OK}),
)

CASE_B = Case(
    "B_rpath_inherited",
    "exe RPATH=p1 -> libP (RPATH=p2) -> libQ (in p2, no rpath) -> libR (in p2)",
    build=(
        lib("/opt/B/p2/libR.so.1", "r_func"),
        lib("/opt/B/p2/libQ.so.1", "q_func", "r_func", flags=against("/opt/B/p2", "libR.so.1")),
        lib(
            "/opt/B/p1/libP.so.1",
            "p_func",
            "q_func",
            flags=(*rpath("/opt/B/p2"), *against("/opt/B/p2", "libQ.so.1")),
        ),
        exe(
            "/opt/B/bin/app",
            "p_func",
            flags=(*rpath("/opt/B/p1"), *against("/opt/B/p1", "libP.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/B/bin/app", "/opt/B/p1/libP.so.1", "/opt/B/p2/libQ.so.1", "/opt/B/p2/libR.so.1"
        ),
    ),
    programs=frozen(
        {
            "/opt/B/bin/app": ok(
                resolved={"libQ.so.1": "/opt/B/p2/libQ.so.1", "libR.so.1": "/opt/B/p2/libR.so.1"}
            )
        }
    ),
    libraries=frozen(
        {
            "/opt/B/p1/libP.so.1": OK,  # its own RPATH serves libQ and, inherited, libR
            "/opt/B/p2/libQ.so.1": missing("libR.so.1"),
            "/opt/B/p2/libR.so.1": OK,
        }
    ),
)

CASE_C = Case(
    "C_bfs_first_requester",
    "exe RUNPATH=adir NEEDED libCA then libCC; libCA RUNPATH=cdir holds libCC (edge 3)",
    build=(
        lib("/opt/C/cdir/libCC.so.1", "cc_func"),
        lib(
            "/opt/C/adir/libCA.so.1",
            "ca_func",
            "cc_func",
            flags=(*runpath("/opt/C/cdir"), *against("/opt/C/cdir", "libCC.so.1")),
        ),
        exe(
            "/opt/C/bin/app",
            "ca_func",
            "cc_func",
            flags=(
                *runpath("/opt/C/adir"),
                *against("/opt/C/adir", "libCA.so.1"),
                *against("/opt/C/cdir", "libCC.so.1"),
            ),
        ),
    ),
    layers=(files("/opt/C/bin/app", "/opt/C/adir/libCA.so.1", "/opt/C/cdir/libCC.so.1"),),
    # ld.so (trace mode) prints "libCC.so.1 => not found" for the exe's request, then finds
    # it for libCA: a real start dies at the first lookup (_dl_map_object_deps is BFS).
    programs=frozen({"/opt/C/bin/app": missing("libCC.so.1")}),
    libraries=frozen({"/opt/C/adir/libCA.so.1": OK, "/opt/C/cdir/libCC.so.1": OK}),
)

CASE_C_FRAGILE = Case(
    "C_fragile_found_by_earlier_load",
    "exe RUNPATH=adir NEEDED libCA, libCB; libCA (RUNPATH cdir) and libCB (no path) need libCC",
    build=(
        lib("/opt/Cf/cdir/libCC.so.1", "cc_func"),
        lib(
            "/opt/Cf/adir/libCA.so.1",
            "ca_func",
            "cc_func",
            flags=(*runpath("/opt/Cf/cdir"), *against("/opt/Cf/cdir", "libCC.so.1")),
        ),
        lib(
            "/opt/Cf/adir/libCB.so.1",
            "cb_func",
            "cc_func",
            flags=against("/opt/Cf/cdir", "libCC.so.1"),
        ),
        exe(
            "/opt/Cf/bin/app",
            "ca_func",
            "cb_func",
            flags=(*runpath("/opt/Cf/adir"), *against("/opt/Cf/adir", "libCA.so.1", "libCB.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/Cf/bin/app",
            "/opt/Cf/adir/libCA.so.1",
            "/opt/Cf/adir/libCB.so.1",
            "/opt/Cf/cdir/libCC.so.1",
        ),
    ),
    # libCB's own context cannot find libCC; it works only because libCA loaded it first.
    programs=frozen(
        {
            "/opt/Cf/bin/app": ok(
                warn("fragile-dependency", "libCC.so.1"),
                resolved={"libCC.so.1": "/opt/Cf/cdir/libCC.so.1"},
            )
        }
    ),
    libraries=frozen(
        {
            "/opt/Cf/adir/libCA.so.1": OK,
            "/opt/Cf/adir/libCB.so.1": missing("libCC.so.1"),
            "/opt/Cf/cdir/libCC.so.1": OK,
        }
    ),
)


def _d_build(tag: str) -> tuple[Step, ...]:
    name = f"libD{tag}.so.1"
    return (
        lib(f"/opt/D{tag}/lib/{name}", f"d{tag}_func"),
        exe(
            f"/opt/D{tag}/bin/app",
            f"d{tag}_func",
            flags=against(f"/opt/D{tag}/lib", name),
        ),
    )


def _d_layer(tag: str) -> tuple[Put, ...]:
    conf = Text(f"/etc/ld.so.conf.d/opt-d{tag}.conf", f"/opt/D{tag}/lib\n".encode())
    return (*files(f"/opt/D{tag}/bin/app", f"/opt/D{tag}/lib/libD{tag}.so.1"), conf)


CASE_D = Case(
    "D_conf_without_ldconfig",
    "a dir listed in /etc/ld.so.conf.d, ldconfig not re-run: ld.so reads only the cache",
    build=_d_build(""),
    layers=(_d_layer(""),),
    programs=frozen(
        {"/opt/D/bin/app": missing("libD.so.1", also=(warn("stale-ld-cache", "libD.so.1"),))}
    ),
    libraries=frozen({"/opt/D/lib/libD.so.1": OK}),
)

CASE_D_REBUILT = Case(
    "D_conf_with_ldconfig",
    "control for D: the same image with the cache rebuilt finds the library",
    build=_d_build("r"),
    layers=(_d_layer("r"),),
    ldconfig=True,
    programs=frozen({"/opt/Dr/bin/app": ok(resolved={"libDr.so.1": "/opt/Dr/lib/libDr.so.1"})}),
    libraries=frozen({"/opt/Dr/lib/libDr.so.1": OK}),
)

CASE_D_DELETED = Case(
    "D_cache_entry_deleted_falls_through",
    "the cache points at a file a later layer deleted; a copy in a default dir is found",
    build=_d_build("x"),
    layers=(
        _d_layer("x"),
        (Gone("/opt/Dx/lib/libDx.so.1"), Install(f"{LIBDIR}/libDx.so.1", "/opt/Dx/lib/libDx.so.1")),
    ),
    ldconfig=True,
    # open_verify fails on the cached path (ENOENT): _dl_map_object goes on to the system dirs,
    # printed as the first one, /lib/x86_64-linux-gnu.
    programs=frozen(
        {
            "/opt/Dx/bin/app": ok(
                warn("stale-ld-cache", "libDx.so.1"),
                resolved={"libDx.so.1": "/lib/x86_64-linux-gnu/libDx.so.1"},
            )
        }
    ),
    libraries=frozen({f"{LIBDIR}/libDx.so.1": OK}),
)

CASE_D_GONE = Case(
    "D_cache_entry_deleted_nothing_left",
    "the cache points at a deleted file and no default dir has a copy: not found",
    build=_d_build("g"),
    layers=(_d_layer("g"), (Gone("/opt/Dg/lib/libDg.so.1"),)),
    ldconfig=True,
    programs=frozen(
        {"/opt/Dg/bin/app": missing("libDg.so.1", also=(warn("stale-ld-cache", "libDg.so.1"),))}
    ),
)

CASE_E = Case(
    "E_origin_through_symlink",
    "exe RUNPATH=/opt/E/lib; lib/libS -> ../real/libS (RUNPATH $ORIGIN) needs real/libU",
    build=(
        lib("/opt/E/real/libU.so.1", "u_func"),
        lib(
            "/opt/E/real/libS.so.1",
            "s_func",
            "u_func",
            flags=(*runpath("$ORIGIN"), *against("/opt/E/real", "libU.so.1")),
        ),
        exe(
            "/opt/E/bin/app",
            "s_func",
            flags=(*runpath("/opt/E/lib"), *against("/opt/E/real", "libS.so.1")),
        ),
    ),
    layers=(
        (
            *files("/opt/E/bin/app", "/opt/E/real/libS.so.1", "/opt/E/real/libU.so.1"),
            Link("/opt/E/lib/libS.so.1", "../real/libS.so.1"),
        ),
    ),
    # $ORIGIN of libS is the directory it was found in (l_origin from realname), not realpath
    programs=frozen(
        {"/opt/E/bin/app": resolving(missing("libU.so.1"), {"libS.so.1": "/opt/E/lib/libS.so.1"})}
    ),
    libraries=frozen({"/opt/E/real/libS.so.1": OK, "/opt/E/real/libU.so.1": OK}),
)


def _g_build(*extra: Step) -> tuple[Step, ...]:
    return (
        lib("/opt/G/d2/libG.so.1", "g_func"),
        exe(
            "/opt/G/bin/app",
            "g_func",
            flags=(*runpath("/opt/G/d1:/opt/G/d2"), *against("/opt/G/d2", "libG.so.1")),
        ),
        *extra,
    )


_G_FILES = files("/opt/G/bin/app", "/opt/G/d2/libG.so.1")

CASE_G_SHORT = Case(
    "G_empty_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 is empty: open_verify says 'file too short', no fallback",
    build=_g_build(),
    layers=((*_G_FILES, Text("/opt/G/d1/libG.so.1", b"")),),
    programs=frozen({"/opt/G/bin/app": incompatible("libG.so.1", "file too short")}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK}),
)

CASE_G_TRUNCATED = Case(
    "G_truncated_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 is the first 40 bytes of the library (less than an Ehdr)",
    build=_g_build(Patch("/opt/G/d1/libG.so.1", "/opt/G/d2/libG.so.1", "truncate=40")),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1", mode=0o644)),),
    programs=frozen({"/opt/G/bin/app": incompatible("libG.so.1", "file too short")}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK}),
)

CASE_G_DIRECTORY = Case(
    "G_directory_candidate",
    "RUNPATH d1:d2, d1/libG.so.1 is a directory: open() succeeds, read() fails with EISDIR,"
    " and open_verify reports 'cannot read file data: Error 21', fatal (not ENOENT/EACCES)",
    build=_g_build(),
    layers=((*_G_FILES, Folder("/opt/G/d1/libG.so.1")),),
    # I expected a skip; the real loader (oracle and a real start) says fatal.
    programs=frozen({"/opt/G/bin/app": incompatible("libG.so.1", "cannot read file data")}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK}),
)

CASE_G_SCRIPT = Case(
    "G_linker_script_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 is a GNU ld script: 'invalid ELF header', no fallback",
    build=_g_build(),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1", "fixture:G/script.ld", 0o644)),),
    programs=frozen({"/opt/G/bin/app": incompatible("libG.so.1", "invalid ELF header")}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK}),
)

CASE_G_CLASS = Case(
    "G_32bit_candidate_is_skipped",
    "RUNPATH d1:d2, d1/libG.so.1 is 32-bit (gcc -m32): skipped, d2's copy is used",
    build=_g_build(lib("/opt/G/d1/libG.so.1", "g_func", flags=("-m32",))),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1")),),
    programs=frozen({"/opt/G/bin/app": ok(resolved={"libG.so.1": "/opt/G/d2/libG.so.1"})}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK, "/opt/G/d1/libG.so.1": FOREIGN}),
    requires=("gcc -m32",),
)

CASE_G_MACHINE = Case(
    "G_other_machine_candidate_is_skipped",
    "RUNPATH d1:d2, d1/libG.so.1 has e_machine EM_AARCH64 (patched): skipped, d2's is used",
    build=_g_build(Patch("/opt/G/d1/libG.so.1", "/opt/G/d2/libG.so.1", "e_machine=183")),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1")),),
    programs=frozen({"/opt/G/bin/app": ok(resolved={"libG.so.1": "/opt/G/d2/libG.so.1"})}),
    libraries=frozen({"/opt/G/d2/libG.so.1": OK, "/opt/G/d1/libG.so.1": FOREIGN}),
)

CASE_G_ENDIAN = Case(
    "G_big_endian_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 has EI_DATA=ELFDATA2MSB (patched): open_verify fails fatally"
    " ('ELF file data encoding not little-endian'), unlike a wrong class or machine",
    build=_g_build(Patch("/opt/G/d1/libG.so.1", "/opt/G/d2/libG.so.1", "e_ident=5:2")),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1")),),
    programs=frozen(
        {"/opt/G/bin/app": incompatible("libG.so.1", "ELF file data encoding not little-endian")}
    ),
    # the oracle's own reader cannot parse the byte-swapped header: its status is "error"
    libraries=frozen({"/opt/G/d2/libG.so.1": OK, "/opt/G/d1/libG.so.1": Verdict("error")}),
)

CASE_G_OSABI = Case(
    "G_foreign_osabi_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 has EI_OSABI=ELFOSABI_SOLARIS (patched): 'ELF file OS ABI"
    " invalid' (VALID_ELF_OSABI in sysdeps/gnu/ldsodefs.h), fatal",
    build=_g_build(Patch("/opt/G/d1/libG.so.1", "/opt/G/d2/libG.so.1", "e_ident=7:6")),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1")),),
    programs=frozen({"/opt/G/bin/app": incompatible("libG.so.1", "ELF file OS ABI invalid")}),
    libraries=frozen(
        {
            "/opt/G/d2/libG.so.1": OK,
            # traced on its own, ld.so refuses to load it for the same reason
            "/opt/G/d1/libG.so.1": incompatible("/opt/G/d1/libG.so.1", "ELF file OS ABI invalid"),
        }
    ),
    library_checks=("/opt/G/d1/libG.so.1",),
)

CASE_G_DEBUG = Case(
    "G_debug_only_candidate_is_fatal",
    "RUNPATH d1:d2, d1/libG.so.1 is `objcopy --only-keep-debug` of the library: its notes keep"
    " file bytes, its PT_DYNAMIC has p_filesz 0: 'object file has no dynamic section'"
    " (_dl_map_object_from_fd), fatal",
    build=_g_build(Patch("/opt/G/d1/libG.so.1", "/opt/G/d2/libG.so.1", "only-keep-debug")),
    layers=((*_G_FILES, Install("/opt/G/d1/libG.so.1", mode=0o644)),),
    programs=frozen(
        {"/opt/G/bin/app": incompatible("libG.so.1", "object file has no dynamic section")}
    ),
    libraries=frozen(
        {
            "/opt/G/d2/libG.so.1": OK,
            "/opt/G/d1/libG.so.1": incompatible(
                "/opt/G/d1/libG.so.1", "object file has no dynamic section"
            ),
        }
    ),
    library_checks=("/opt/G/d1/libG.so.1",),
)

_H_OLD = Cc(
    "/opt/H/lib/libH.so.1",
    ("H/libh.c",),
    (*LIB, *soname("libH.so.1"), "-Wl,--version-script={S}/H/v1.map"),
)
_H_NEW = Cc(
    "/link/H/libH.so.1",
    ("H/libh.c",),
    (*LIB, *soname("libH.so.1"), "-DWITH_V2", "-Wl,--version-script={S}/H/v2.map"),
)
_H_PLAIN = Cc("/opt/H/plain/libH.so.1", ("H/libh.c",), (*LIB, *soname("libH.so.1"), "-DWITH_V2"))


def _h_exe(out: str, source: str, libdir: str) -> Cc:
    return Cc(out, (source,), (*EXE, *runpath(libdir), *against("/link/H", "libH.so.1")))


CASE_H = Case(
    "H_versions",
    "needs hv2@V2 but the image's libH defines only V1; a weak V2 need; a provider without"
    " version information",
    build=(
        _H_OLD,
        _H_NEW,
        _H_PLAIN,
        _h_exe("/opt/H/bin/needs-v2", "H/main.c", "/opt/H/lib"),
        _h_exe("/opt/H/bin/weak-v2.tmp", "H/weak.c", "/opt/H/lib"),
        Patch("/opt/H/bin/weak-v2", "/opt/H/bin/weak-v2.tmp", "weak-vernaux=V2"),
        _h_exe("/opt/H/bin/unversioned-provider", "H/both.c", "/opt/H/plain"),
    ),
    layers=(
        files(
            "/opt/H/bin/needs-v2",
            "/opt/H/bin/weak-v2",
            "/opt/H/bin/unversioned-provider",
            "/opt/H/lib/libH.so.1",
            "/opt/H/plain/libH.so.1",
        ),
    ),
    # _dl_check_map_versions: VER_FLG_WEAK and a provider without DT_VERDEF are only warnings
    # (printed with LD_VERBOSE), and a weak undefined hv2 binds to 0.
    programs=frozen(
        {
            "/opt/H/bin/needs-v2": missing_version("V2"),
            "/opt/H/bin/weak-v2": ok(warn("missing-symbol-version", "V2")),
            "/opt/H/bin/unversioned-provider": ok(),
        }
    ),
    libraries=frozen({"/opt/H/lib/libH.so.1": OK, "/opt/H/plain/libH.so.1": OK}),
)

CASE_H_SYMBOL = Case(
    "H_version_present_symbol_at_other_version",
    "the image's libH defines V2 (for hv3) but hv2 only at V1: the version check passes and"
    " the lookup of hv2@V2 fails; -z lazy makes it a call-time failure",
    build=(
        Cc(
            "/opt/H2/lib/libH.so.1",
            ("H/libh-v2-other.c",),
            (*LIB, *soname("libH.so.1"), "-Wl,--version-script={S}/H/v2-other.map"),
        ),
        _H_NEW,
        _h_exe("/opt/H2/bin/needs-hv2-at-v2", "H/main.c", "/opt/H2/lib"),
    ),
    layers=(files("/opt/H2/bin/needs-hv2-at-v2", "/opt/H2/lib/libH.so.1"),),
    programs=frozen({"/opt/H2/bin/needs-hv2-at-v2": undefined("hv2", "call")}),
    libraries=frozen({"/opt/H2/lib/libH.so.1": OK}),
)

CASE_H_PROVIDER = Case(
    "H_version_checked_against_the_named_provider",
    "needs hv2@V2 from libH.so.1 (old: V1 only); another loaded library, libK.so.1, defines"
    " V2 and hv2: the Verneed names libH, so the start still fails (_dl_check_map_versions)",
    build=(
        _H_OLD,
        _H_NEW,
        Cc(
            "/opt/H3/lib/libK.so.1",
            ("H/libh.c",),
            (*LIB, *soname("libK.so.1"), "-DWITH_V2", "-Wl,--version-script={S}/H/v2.map"),
        ),
        Cc(
            "/opt/H3/bin/needs-v2",
            ("H/main.c",),
            (
                *EXE,
                *runpath("/opt/H/lib:/opt/H3/lib"),
                *against("/link/H", "libH.so.1"),
                *against("/opt/H3/lib", "libK.so.1"),
            ),
        ),
    ),
    layers=(files("/opt/H3/bin/needs-v2", "/opt/H/lib/libH.so.1", "/opt/H3/lib/libK.so.1"),),
    programs=frozen({"/opt/H3/bin/needs-v2": missing_version("V2")}),
    libraries=frozen({"/opt/H/lib/libH.so.1": OK, "/opt/H3/lib/libK.so.1": OK}),
)

CASE_H_HIDDEN = Case(
    "H_unversioned_reference_skips_hidden_version",
    "a program linked against an unversioned libhid (foo, bar); the image's libhid has bar@@V1"
    " and only the hidden foo@V2 (version index 3): check_match rejects hidden versions >= 3"
    " for an unversioned reference, so foo is undefined (lazy: at call)",
    build=(
        Cc(
            "/opt/H4/lib/libhid.so.1",
            ("H/libhid.c",),
            (*LIB, *soname("libhid.so.1"), "-Wl,--version-script={S}/H/hid.map"),
        ),
        Cc("/link/H4/libhid.so.1", ("H/libhid.c",), (*LIB, *soname("libhid.so.1"), "-DPLAIN")),
        Cc(
            "/opt/H4/bin/app",
            ("H/hid-main.c",),
            (*EXE, *runpath("/opt/H4/lib"), *against("/link/H4", "libhid.so.1")),
        ),
    ),
    layers=(files("/opt/H4/bin/app", "/opt/H4/lib/libhid.so.1"),),
    programs=frozen({"/opt/H4/bin/app": undefined("foo", "call")}),
    libraries=frozen({"/opt/H4/lib/libhid.so.1": OK}),
)

CASE_O_ORDER = Case(
    "O_search_order_rpath_llp_runpath",
    "Env LD_LIBRARY_PATH=/opt/none;/opt/O/llp (';' separates too) holds the new libH (V2);"
    " /opt/O/rp holds the old one (V1). DT_RPATH is searched before LD_LIBRARY_PATH,"
    " DT_RUNPATH after it (_dl_map_object)",
    build=(
        replace(_H_OLD, out="/opt/O/rp/libH.so.1"),
        replace(_H_NEW, out="/opt/O/llp/libH.so.1"),
        Cc(
            "/opt/O/bin/runpath",
            ("H/main.c",),
            (*EXE, *runpath("/opt/O/rp"), *against("/opt/O/llp", "libH.so.1")),
        ),
        Cc(
            "/opt/O/bin/rpath",
            ("H/main.c",),
            (*EXE, *rpath("/opt/O/rp"), *against("/opt/O/llp", "libH.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/O/bin/runpath", "/opt/O/bin/rpath", "/opt/O/rp/libH.so.1", "/opt/O/llp/libH.so.1"
        ),
    ),
    env=(PATH, "LD_LIBRARY_PATH=/opt/none;/opt/O/llp"),
    programs=frozen(
        {
            "/opt/O/bin/runpath": ok(resolved={"libH.so.1": "/opt/O/llp/libH.so.1"}),
            "/opt/O/bin/rpath": resolving(
                missing_version("V2"), {"libH.so.1": "/opt/O/rp/libH.so.1"}
            ),
        }
    ),
    libraries=frozen({"/opt/O/rp/libH.so.1": OK, "/opt/O/llp/libH.so.1": OK}),
)

_I_OLD = Cc("/opt/I/lib/libI.so.1", ("I/libi.c",), (*LIB, *soname("libI.so.1")))
_I_NEW = Cc("/link/I/libI.so.1", ("I/libi.c",), (*LIB, *soname("libI.so.1"), "-DFULL"))


def _i_exe(out: str, source: str, *flags: str) -> Cc:
    return Cc(
        out,
        (source,),
        ("-Wl,--no-as-needed", *flags, *runpath("/opt/I/lib"), *against("/link/I", "libI.so.1")),
    )


CASE_I = Case(
    "I_lazy_vs_now",
    "libI lacks fi: -z lazy fails when called, -z now at start; weak refs fine; data at start",
    build=(
        _I_OLD,
        _I_NEW,
        _i_exe("/opt/I/bin/lazy", "I/call.c", "-Wl,-z,lazy"),
        _i_exe("/opt/I/bin/now", "I/call.c", "-Wl,-z,now"),
        _i_exe("/opt/I/bin/weak", "I/weak.c", "-Wl,-z,now"),
        _i_exe("/opt/I/bin/data", "I/data.c", "-fPIC", "-Wl,-z,lazy"),
        _i_exe("/opt/I/bin/data-nopie", "I/data.c", "-no-pie", "-fno-pie", "-Wl,-z,lazy"),
        _i_exe("/opt/I/bin/tls", "I/tls.c", "-Wl,-z,lazy"),
    ),
    layers=(
        files(
            "/opt/I/bin/lazy",
            "/opt/I/bin/now",
            "/opt/I/bin/weak",
            "/opt/I/bin/data",
            "/opt/I/bin/data-nopie",
            "/opt/I/bin/tls",
            "/opt/I/lib/libI.so.1",
        ),
    ),
    programs=frozen(
        {
            "/opt/I/bin/lazy": undefined("fi", "call"),
            "/opt/I/bin/now": undefined("fi", "startup"),
            "/opt/I/bin/weak": ok(),
            "/opt/I/bin/data": undefined("fd_var", "startup"),  # R_X86_64_GLOB_DAT
            "/opt/I/bin/data-nopie": undefined("fd_var", "startup"),  # R_X86_64_COPY
            "/opt/I/bin/tls": undefined("ft_var", "startup"),  # R_X86_64_TPOFF64
        }
    ),
    libraries=frozen({"/opt/I/lib/libI.so.1": OK}),
)

CASE_I_ENV = Case(
    "I_ld_bind_now_in_env",
    "the -z lazy program of case I in an image whose Env sets LD_BIND_NOW=1: fails at start",
    build=(_I_OLD, _I_NEW, _i_exe("/opt/I/bin/lazy", "I/call.c", "-Wl,-z,lazy")),
    layers=(files("/opt/I/bin/lazy", "/opt/I/lib/libI.so.1"),),
    env=(PATH, "LD_BIND_NOW=1"),
    programs=frozen({"/opt/I/bin/lazy": undefined("fi", "startup")}),
    libraries=frozen({"/opt/I/lib/libI.so.1": OK}),
)

CASE_Y = Case(
    "Y_symbol_from_the_global_scope",
    "libY1 calls y2_func but does not NEED libY2; the program NEEDs both, so the global scope"
    " (main, then BFS) provides it: fine. Traced alone, libY1 fails when y2_func is called",
    build=(
        lib("/opt/Y/lib/libY2.so.1", "y2_func"),
        lib("/opt/Y/lib/libY1.so.1", "y1_func", "y2_func"),
        exe(
            "/opt/Y/bin/app",
            "y1_func",
            flags=(*runpath("/opt/Y/lib"), *against("/opt/Y/lib", "libY1.so.1", "libY2.so.1")),
        ),
    ),
    layers=(files("/opt/Y/bin/app", "/opt/Y/lib/libY1.so.1", "/opt/Y/lib/libY2.so.1"),),
    programs=frozen({"/opt/Y/bin/app": OK}),
    libraries=frozen(
        {"/opt/Y/lib/libY1.so.1": undefined("y2_func", "call"), "/opt/Y/lib/libY2.so.1": OK}
    ),
)

CASE_Z = Case(
    "Z_upper_layer_hides_the_library",
    "layer 1 has /opt/Z/lib/libZ.so.1; layer 2 marks /opt/Z/lib opaque (.wh..wh..opq) and adds"
    " only a README there: the squashed image has no libZ, the program is broken",
    build=(
        lib("/opt/Z/lib/libZ.so.1", "z_func"),
        exe(
            "/opt/Z/bin/app",
            "z_func",
            flags=(*runpath("/opt/Z/lib"), *against("/opt/Z/lib", "libZ.so.1")),
        ),
    ),
    layers=(
        files("/opt/Z/bin/app", "/opt/Z/lib/libZ.so.1"),
        (Opaque("/opt/Z/lib"), Text("/opt/Z/lib/README", b"the library moved\n")),
    ),
    programs=frozen({"/opt/Z/bin/app": missing("libZ.so.1")}),
)

CASE_L = Case(
    "L_dollar_lib",
    "RUNPATH dir/$LIB: Debian's ld.so expands $LIB to lib/x86_64-linux-gnu, not lib",
    build=(
        lib("/opt/L/lib/libL.so.1", "l_func"),
        exe(
            "/opt/L/bin/app",
            "l_func",
            flags=(*runpath("/opt/L/$LIB"), *against("/opt/L/lib", "libL.so.1")),
        ),
        lib("/opt/L2/lib/x86_64-linux-gnu/libL2.so.1", "l2_func"),
        exe(
            "/opt/L2/bin/app",
            "l2_func",
            flags=(
                *runpath("/opt/L2/$LIB"),
                *against("/opt/L2/lib/x86_64-linux-gnu", "libL2.so.1"),
            ),
        ),
    ),
    layers=(
        files(
            "/opt/L/bin/app",
            "/opt/L/lib/libL.so.1",
            "/opt/L2/bin/app",
            "/opt/L2/lib/x86_64-linux-gnu/libL2.so.1",
        ),
    ),
    programs=frozen(
        {
            "/opt/L/bin/app": missing("libL.so.1"),
            "/opt/L2/bin/app": ok(
                resolved={"libL2.so.1": "/opt/L2/lib/x86_64-linux-gnu/libL2.so.1"}
            ),
        }
    ),
    libraries=frozen({"/opt/L/lib/libL.so.1": OK, "/opt/L2/lib/x86_64-linux-gnu/libL2.so.1": OK}),
)

CASE_R = Case(
    "R_runpath_of_requester_blocks_chain_rpath",
    "exe RPATH=p -> libR1 (in p, RUNPATH=/opt/R/none) -> libR2 (in p): the chain RPATH is"
    " skipped because the requester libR1 has a RUNPATH; libR3 without one is fine",
    build=(
        lib("/opt/R/p/libR2.so.1", "r2_func"),
        lib(
            "/opt/R/p/libR1.so.1",
            "r1_func",
            "r2_func",
            flags=(*runpath("/opt/R/none"), *against("/opt/R/p", "libR2.so.1")),
        ),
        lib("/opt/R/p/libR3.so.1", "r3_func", "r2_func", flags=against("/opt/R/p", "libR2.so.1")),
        exe(
            "/opt/R/bin/app",
            "r1_func",
            flags=(*rpath("/opt/R/p"), *against("/opt/R/p", "libR1.so.1")),
        ),
        exe(
            "/opt/R/bin/control",
            "r3_func",
            flags=(*rpath("/opt/R/p"), *against("/opt/R/p", "libR3.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/R/bin/app",
            "/opt/R/bin/control",
            "/opt/R/p/libR1.so.1",
            "/opt/R/p/libR2.so.1",
            "/opt/R/p/libR3.so.1",
        ),
    ),
    programs=frozen(
        {
            "/opt/R/bin/app": missing("libR2.so.1"),
            "/opt/R/bin/control": ok(resolved={"libR2.so.1": "/opt/R/p/libR2.so.1"}),
        }
    ),
    libraries=frozen(
        {
            "/opt/R/p/libR1.so.1": missing("libR2.so.1"),
            "/opt/R/p/libR2.so.1": OK,
            "/opt/R/p/libR3.so.1": missing("libR2.so.1"),
        }
    ),
)

CASE_R_BOTH = Case(
    "R_rpath_ignored_when_object_has_runpath",
    "an exe with DT_RPATH '/opt/RR/p:/opt/RR/q' and (patched in) DT_RUNPATH '/opt/RR/q': glibc"
    " drops DT_RPATH at load (get-dynamic-info.h), so libRR1 in /opt/RR/p is not found",
    build=(
        lib("/opt/RR/p/libRR1.so.1", "rr1_func"),
        exe(
            "/opt/RR/bin/rpath-only",
            "rr1_func",
            flags=(*rpath("/opt/RR/p:/opt/RR/q"), *against("/opt/RR/p", "libRR1.so.1")),
        ),
        Patch("/opt/RR/bin/both", "/opt/RR/bin/rpath-only", "runpath-from-rpath-suffix=/opt/RR/q"),
    ),
    layers=(files("/opt/RR/bin/rpath-only", "/opt/RR/bin/both", "/opt/RR/p/libRR1.so.1"),),
    programs=frozen(
        {
            "/opt/RR/bin/rpath-only": ok(resolved={"libRR1.so.1": "/opt/RR/p/libRR1.so.1"}),
            "/opt/RR/bin/both": missing("libRR1.so.1"),
        }
    ),
    libraries=frozen({"/opt/RR/p/libRR1.so.1": OK}),
)

CASE_N = Case(
    "N_nodefaultlib",
    "libN1 (-z nodefaultlib) needs libN2, which is in the cache and in /usr/lib/x86_64-linux-gnu:"
    " neither may be used for libN1's request; libN3 without the flag finds it",
    build=(
        lib(f"{LIBDIR}/libN2.so.1", "n2_func"),
        lib(
            "/opt/N/lib/libN1.so.1",
            "n1_func",
            "n2_func",
            flags=("-nostdlib", "-Wl,-z,nodefaultlib", *against(LIBDIR, "libN2.so.1")),
        ),
        lib("/opt/N/lib/libN3.so.1", "n3_func", "n2_func", flags=against(LIBDIR, "libN2.so.1")),
        exe(
            "/opt/N/bin/app",
            "n1_func",
            flags=(*runpath("/opt/N/lib"), *against("/opt/N/lib", "libN1.so.1")),
        ),
        exe(
            "/opt/N/bin/control",
            "n3_func",
            flags=(*runpath("/opt/N/lib"), *against("/opt/N/lib", "libN3.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/N/bin/app",
            "/opt/N/bin/control",
            "/opt/N/lib/libN1.so.1",
            "/opt/N/lib/libN3.so.1",
            f"{LIBDIR}/libN2.so.1",
        ),
    ),
    ldconfig=True,
    programs=frozen(
        {
            "/opt/N/bin/app": missing("libN2.so.1"),
            # the cache entry, written by ldconfig under the first conf dir that has it
            "/opt/N/bin/control": ok(resolved={"libN2.so.1": "/lib/x86_64-linux-gnu/libN2.so.1"}),
        }
    ),
    libraries=frozen(
        {
            "/opt/N/lib/libN1.so.1": missing("libN2.so.1"),
            "/opt/N/lib/libN3.so.1": OK,
            f"{LIBDIR}/libN2.so.1": OK,
        }
    ),
)

CASE_S = Case(
    "S_needed_with_slash",
    "DT_NEEDED names with a '/' are opened as paths, never searched (SONAME set to a path)",
    build=(
        Cc(
            "/opt/S/lib/libslash.so",
            ("common/lib.c",),
            (*LIB, *soname("/opt/S/lib/libslash.so"), "-DFN=s_func"),
        ),
        Cc(
            f"{LIBDIR}/libslash2.so",
            ("common/lib.c",),
            (*LIB, *soname("/opt/S/gone/libslash2.so"), "-DFN=s2_func"),
        ),
        exe("/opt/S/bin/app", "s_func", flags=against("/opt/S/lib", "libslash.so")),
        exe("/opt/S/bin/app-gone", "s2_func", flags=against(LIBDIR, "libslash2.so")),
    ),
    layers=(
        files(
            "/opt/S/bin/app",
            "/opt/S/bin/app-gone",
            "/opt/S/lib/libslash.so",
            f"{LIBDIR}/libslash2.so",
        ),
    ),
    programs=frozen(
        {
            # ld.so lists a found slash name as itself ("/opt/S/lib/libslash.so (0x...)")
            "/opt/S/bin/app": OK,
            "/opt/S/bin/app-gone": missing("/opt/S/gone/libslash2.so"),
        }
    ),
    libraries=frozen({"/opt/S/lib/libslash.so": OK, f"{LIBDIR}/libslash2.so": OK}),
)

CASE_S_DEDUPE = Case(
    "S_soname_matches_a_library_loaded_by_path",
    "exe NEEDED '/opt/SD/lib/libsd.so.1' (SONAME libsd.so.1) then libX.so.1 (RUNPATH"
    " /opt/SD/x); libX needs libsd.so.1, which no search would find: _dl_lookup_map matches"
    " the loaded object's DT_SONAME, so the process starts",
    build=(
        lib("/opt/SD/lib/libsd.so.1", "sd_func"),
        Cc(
            "/link/SD/libsd-by-path.so",
            ("common/lib.c",),
            (*LIB, *soname("/opt/SD/lib/libsd.so.1"), "-DFN=sd_func"),
        ),
        lib("/opt/SD/x/libX.so.1", "x_func", "sd_func", flags=against("/opt/SD/lib", "libsd.so.1")),
        exe(
            "/opt/SD/bin/app",
            "sd_func",
            "x_func",
            flags=(
                *runpath("/opt/SD/x"),
                *against("/link/SD", "libsd-by-path.so"),
                *against("/opt/SD/x", "libX.so.1"),
            ),
        ),
    ),
    layers=(files("/opt/SD/bin/app", "/opt/SD/lib/libsd.so.1", "/opt/SD/x/libX.so.1"),),
    programs=frozen({"/opt/SD/bin/app": ok(warn("fragile-dependency", "libsd.so.1"))}),
    libraries=frozen({"/opt/SD/lib/libsd.so.1": OK, "/opt/SD/x/libX.so.1": missing("libsd.so.1")}),
)

CASE_E_MAIN = Case(
    "E_main_origin_is_the_real_path",
    "/usr/local/bin/tool -> /opt/OR/bin/tool (RUNPATH $ORIGIN/../lib): the main program's"
    " $ORIGIN comes from /proc/self/exe, symlinks resolved; Env LD_LIBRARY_PATH=$ORIGIN/../lib2"
    " expands against the main program too (_dl_init_paths)",
    build=(
        lib("/opt/OR/lib/libor.so.1", "or_func"),
        lib("/opt/OR/lib2/libor2.so.1", "or2_func"),
        exe(
            "/opt/OR/bin/tool",
            "or_func",
            flags=(*runpath("$ORIGIN/../lib"), *against("/opt/OR/lib", "libor.so.1")),
        ),
        exe("/opt/OR/bin/tool2", "or2_func", flags=against("/opt/OR/lib2", "libor2.so.1")),
    ),
    layers=(
        (
            *files(
                "/opt/OR/bin/tool",
                "/opt/OR/bin/tool2",
                "/opt/OR/lib/libor.so.1",
                "/opt/OR/lib2/libor2.so.1",
            ),
            Link("/usr/local/bin/tool", "/opt/OR/bin/tool"),
            Link("/usr/local/bin/tool2", "../../../opt/OR/bin/tool2"),
        ),
    ),
    env=(PATH, "LD_LIBRARY_PATH=$ORIGIN/../lib2"),
    programs=frozen(
        {
            "/opt/OR/bin/tool": ok(resolved={"libor.so.1": "/opt/OR/bin/../lib/libor.so.1"}),
            "/opt/OR/bin/tool2": ok(resolved={"libor2.so.1": "/opt/OR/bin/../lib2/libor2.so.1"}),
        }
    ),
    starts=frozen({"/usr/local/bin/tool": OK, "/usr/local/bin/tool2": OK}),
    libraries=frozen({"/opt/OR/lib/libor.so.1": OK, "/opt/OR/lib2/libor2.so.1": OK}),
)

_P_BUILD = (
    lib("/link/P/libgone.so.1", "gone_func"),
    lib("/opt/P/lib/libpre.so", "pre_func", "gone_func", flags=against("/link/P", "libgone.so.1")),
    Cc("/opt/P/bin/hello", ("common/hello.c",), EXE),
)
_P_FILES = files("/opt/P/bin/hello", "/opt/P/lib/libpre.so")
# ld.so has no DT_NEEDED: the preload is mapped for it too, but only the preload's undefined
# symbols are reported, not its missing dependency (the oracle's trace of ld.so itself).
_P_LIBS = frozen(
    {
        "/opt/P/lib/libpre.so": missing("libgone.so.1"),
        f"{LIBDIR}/ld-linux-x86-64.so.2": undefined("gone_func", "call"),
    }
)

CASE_P_ENV = Case(
    "P_ld_preload_env_missing_dep",
    "Env LD_PRELOAD=/opt/P/lib/libpre.so, which needs a missing libgone.so.1: every dynamic"
    " program fails to start",
    build=_P_BUILD,
    layers=(_P_FILES,),
    env=(PATH, "LD_PRELOAD=/opt/P/lib/libpre.so"),
    programs=frozen({"/opt/P/bin/hello": missing("libgone.so.1")}),
    libraries=_P_LIBS,
    others=missing("libgone.so.1"),
)

CASE_P_FILE = Case(
    "P_ld_so_preload_missing_dep",
    "/etc/ld.so.preload names libpre.so, which needs a missing libgone.so.1",
    build=_P_BUILD,
    layers=((*_P_FILES, Text("/etc/ld.so.preload", b"/opt/P/lib/libpre.so\n")),),
    programs=frozen({"/opt/P/bin/hello": missing("libgone.so.1")}),
    libraries=_P_LIBS,
    others=missing("libgone.so.1"),
)

CASE_P_MISSING = Case(
    "P_missing_preload_is_a_warning",
    "LD_PRELOAD and /etc/ld.so.preload name files that do not exist: 'cannot be preloaded ..."
    " ignored', the program starts",
    build=_P_BUILD,
    layers=((*_P_FILES, Text("/etc/ld.so.preload", b"/opt/P/lib/not-here.so\n")),),
    env=(PATH, "LD_PRELOAD=/opt/P/lib/nowhere.so"),
    programs=frozen(
        {
            "/opt/P/bin/hello": ok(
                warn("preload-missing", "/opt/P/lib/nowhere.so"),
                warn("preload-missing", "/opt/P/lib/not-here.so"),
            )
        }
    ),
    libraries=frozen({"/opt/P/lib/libpre.so": missing("libgone.so.1")}),
)

CASE_W = Case(
    "W_empty_runpath_element_is_cwd",
    "RUNPATH '/opt/W/none:' ends in an empty element = the current directory; the library is"
    " in / (the oracle's and the default WorkingDir); without the empty element it is not found",
    build=(
        lib("/libW.so.1", "w_func"),
        exe(
            "/opt/W/bin/app",
            "w_func",
            flags=(*runpath("/opt/W/none:"), *against("/", "libW.so.1")),
        ),
        exe(
            "/opt/W/bin/control",
            "w_func",
            flags=(*runpath("/opt/W/none"), *against("/", "libW.so.1")),
        ),
    ),
    layers=(files("/opt/W/bin/app", "/opt/W/bin/control", "/libW.so.1"),),
    # LD_DEBUG=libs shows the empty element as "" (search path ...:/opt/W/none:glibc-hwcaps/...),
    # so the realname is the relative "libW.so.1" and ldd lists it as "libW.so.1 (0x...)".
    programs=frozen({"/opt/W/bin/app": OK, "/opt/W/bin/control": missing("libW.so.1")}),
    libraries=frozen({"/libW.so.1": OK}),
)


def _u_case(name: str, user: str | None, root_runs: bool) -> Case:
    """Set-id programs owned by root and by 1000; AT_SECURE when the exec changes the ids."""
    found = ok(resolved={"libU.so.1": "/opt/U/lib/libU.so.1"})
    by_root, by_1000 = (found, missing("libU.so.1")) if root_runs else (missing("libU.so.1"), found)
    return Case(
        name,
        f"setuid/setgid programs owned by root and by 1000:1000 whose library is reachable only"
        f" through the image's LD_LIBRARY_PATH; User={user!r}: AT_SECURE (LD_LIBRARY_PATH"
        f" dropped) exactly when the program's owner/group differs from the running ids",
        build=(
            lib("/opt/U/lib/libU.so.1", "u_func"),
            exe("/opt/U/bin/app", "u_func", flags=against("/opt/U/lib", "libU.so.1")),
        ),
        layers=(
            (
                Install("/opt/U/bin/suid-app", "/opt/U/bin/app", 0o4755),
                Install("/opt/U/bin/sgid-app", "/opt/U/bin/app", 0o2755),
                Install("/opt/U/bin/suid-1000-app", "/opt/U/bin/app", 0o4755, uid=1000, gid=1000),
                Install("/opt/U/bin/sgid-1000-app", "/opt/U/bin/app", 0o2755, uid=1000, gid=1000),
                Install("/opt/U/bin/plain-app", "/opt/U/bin/app"),
                Install("/opt/U/lib/libU.so.1"),
            ),
        ),
        env=(PATH, "LD_LIBRARY_PATH=/opt/U/lib"),
        user=user,
        programs=frozen(
            {
                "/opt/U/bin/suid-app": by_root,
                "/opt/U/bin/sgid-app": by_root,
                "/opt/U/bin/suid-1000-app": by_1000,
                "/opt/U/bin/sgid-1000-app": by_1000,
                "/opt/U/bin/plain-app": found,
            }
        ),
        libraries=frozen({"/opt/U/lib/libU.so.1": OK}),
    )


CASE_U_ORIGIN = Case(
    "U_setuid_origin_outside_trusted_dirs",
    "a setuid-root program with RUNPATH $ORIGIN/../lib in /opt, User 1000:1000: under AT_SECURE"
    " a $ORIGIN expansion outside the trusted system dirs is dropped (_dl_dst_substitute,"
    " check_for_trusted), so the library is not found; the plain copy is fine",
    build=(
        lib("/opt/SO/lib/libso.so.1", "so_func"),
        exe(
            "/opt/SO/bin/tool",
            "so_func",
            flags=(*runpath("$ORIGIN/../lib"), *against("/opt/SO/lib", "libso.so.1")),
        ),
    ),
    layers=(
        (
            Install("/opt/SO/bin/suid-tool", "/opt/SO/bin/tool", 0o4755),
            *files("/opt/SO/bin/tool", "/opt/SO/lib/libso.so.1"),
        ),
    ),
    user="1000:1000",
    programs=frozen(
        {
            "/opt/SO/bin/suid-tool": missing("libso.so.1"),
            "/opt/SO/bin/tool": ok(resolved={"libso.so.1": "/opt/SO/bin/../lib/libso.so.1"}),
        }
    ),
    libraries=frozen({"/opt/SO/lib/libso.so.1": OK}),
    # The oracle emulates AT_SECURE by dropping variables only; $ORIGIN stays expanded in its
    # trace. The real start (test_programs_start_as_expected) fails as the rule says.
    oracle_differs=frozen(
        {"/opt/SO/bin/suid-tool": ok(resolved={"libso.so.1": "/opt/SO/bin/../lib/libso.so.1"})}
    ),
)


CASE_U_PRELOAD = Case(
    "U_setuid_user_1000_ignores_ld_preload",
    "Env LD_PRELOAD names a preload whose dependency is missing; User 1000:1000. The plain"
    " program fails; the setuid-root one starts, because AT_SECURE drops preload entries with"
    " a '/' (rtld.c handle_preload_list / unsecvars.h)",
    build=_P_BUILD,
    layers=(
        (
            Install("/opt/P/bin/suid-hello", "/opt/P/bin/hello", 0o4755),
            *_P_FILES,
        ),
    ),
    env=(PATH, "LD_PRELOAD=/opt/P/lib/libpre.so"),
    user="1000:1000",
    programs=frozen({"/opt/P/bin/suid-hello": OK, "/opt/P/bin/hello": missing("libgone.so.1")}),
    libraries=_P_LIBS,
    others=missing("libgone.so.1"),
    # The oracle traces with the image's Env and only ADDS what a secure-mode trace misses,
    # so it reports the setuid program broken; the real start (test_programs_start_...) and
    # the rule say it starts.
    oracle_differs=frozen({"/opt/P/bin/suid-hello": missing("libgone.so.1")}),
)

CASE_U_TRUSTED_PRELOAD = Case(
    "U_setuid_trusted_slash_free_preloads",
    "Env LD_PRELOAD='libpre-plain.so libpre-suid.so', both in the multiarch dir and the cache;"
    " each needs a missing library; User 1000:1000. A setuid-root program (AT_SECURE) loads"
    " only the set-user-ID one (do_preload: __RTLD_SECURE, open_path skips other files, no"
    " cache); the plain program loads both",
    build=(
        lib("/link/UT/libgone1.so.1", "gone1_func"),
        lib("/link/UT/libgone2.so.1", "gone2_func"),
        lib(
            f"{LIBDIR}/libpre-plain.so",
            "plain_func",
            "gone1_func",
            flags=against("/link/UT", "libgone1.so.1"),
        ),
        lib(
            f"{LIBDIR}/libpre-suid.so",
            "suid_func",
            "gone2_func",
            flags=against("/link/UT", "libgone2.so.1"),
        ),
        Cc("/opt/UT/bin/hello", ("common/hello.c",), EXE),
    ),
    layers=(
        (
            Install("/opt/UT/bin/suid-hello", "/opt/UT/bin/hello", 0o4755),
            Install("/opt/UT/bin/hello"),
            Install(f"{LIBDIR}/libpre-plain.so", mode=0o755),
            Install(f"{LIBDIR}/libpre-suid.so", mode=0o4755),
        ),
    ),
    ldconfig=True,
    env=(PATH, "LD_PRELOAD=libpre-plain.so libpre-suid.so"),
    user="1000:1000",
    programs=frozen(
        {
            "/opt/UT/bin/suid-hello": missing(
                "libgone2.so.1", also=(warn("preload-missing", "libpre-plain.so"),)
            ),
            "/opt/UT/bin/hello": missing("libgone1.so.1", "libgone2.so.1"),
        }
    ),
    libraries=frozen(
        {
            f"{LIBDIR}/libpre-plain.so": missing("libgone1.so.1", "libgone2.so.1"),
            f"{LIBDIR}/libpre-suid.so": missing("libgone1.so.1", "libgone2.so.1"),
            f"{LIBDIR}/ld-linux-x86-64.so.2": Verdict(
                "broken-lazy",
                frozenset(
                    {
                        Finding("undefined-symbol", "gone1_func", "call"),
                        Finding("undefined-symbol", "gone2_func", "call"),
                    }
                ),
            ),
        }
    ),
    others=missing("libgone1.so.1", "libgone2.so.1"),
    # the oracle traces with the image's Env (it cannot trace in secure mode) and adds only
    # what a secure trace misses: the real start and the rule judge the setuid program
    oracle_differs=frozen({"/opt/UT/bin/suid-hello": missing("libgone1.so.1", "libgone2.so.1")}),
)

CASE_U_USER = _u_case("U_setid_run_by_user_1000", "1000:1000", root_runs=False)
CASE_U_ROOT = _u_case("U_setid_run_by_root", None, root_runs=True)


def _hw_libs(prefix: str, name: str) -> tuple[Cc, ...]:
    """The baseline copy (HW_1 only) and the glibc-hwcaps/x86-64-v2 copy (HW_1, HW_2)."""
    flags = (*LIB, *soname(name))
    return (
        Cc(f"{prefix}/{name}", ("HW/libhw.c",), (*flags, "-Wl,--version-script={S}/HW/hw1.map")),
        Cc(
            f"{prefix}/glibc-hwcaps/x86-64-v2/{name}",
            ("HW/libhw.c",),
            (*flags, "-DWITH_HW2", "-Wl,--version-script={S}/HW/hw2.map"),
        ),
    )


CASE_HW = Case(
    "HW_glibc_hwcaps_subdir",
    "RUNPATH /opt/HW/lib holds libhw.so.1 (HW_1) and glibc-hwcaps/x86-64-v2/libhw.so.1"
    " (HW_1, HW_2); the program needs HW_2: fine only where the CPU supports x86-64-v2",
    build=(
        *_hw_libs("/opt/HW/lib", "libhw.so.1"),
        Cc(
            "/opt/HW/bin/app",
            ("HW/main.c",),
            (
                *EXE,
                *runpath("/opt/HW/lib"),
                *against("/opt/HW/lib/glibc-hwcaps/x86-64-v2", "libhw.so.1"),
            ),
        ),
    ),
    layers=(
        files(
            "/opt/HW/bin/app",
            "/opt/HW/lib/libhw.so.1",
            "/opt/HW/lib/glibc-hwcaps/x86-64-v2/libhw.so.1",
        ),
    ),
    # Baseline x86-64 (no hwcaps subdir usable): the plain copy lacks HW_2.
    programs=frozen({"/opt/HW/bin/app": missing_version("HW_2")}),
    # This host's `ld.so --help` lists x86-64-v4, -v3, -v2 as "supported, searched": open_path
    # tries glibc-hwcaps/x86-64-v4, -v3, -v2 in each dir before the dir itself.
    by_level=MappingProxyType(
        {
            "x86-64-v2": frozen(
                {
                    "/opt/HW/bin/app": ok(
                        resolved={"libhw.so.1": "/opt/HW/lib/glibc-hwcaps/x86-64-v2/libhw.so.1"}
                    )
                }
            )
        }
    ),
    libraries=frozen(
        {"/opt/HW/lib/libhw.so.1": OK, "/opt/HW/lib/glibc-hwcaps/x86-64-v2/libhw.so.1": OK}
    ),
)


def _tls_libs(prefix: str, name: str) -> tuple[Cc, ...]:
    """The baseline copy (HW_1 only) in the directory, the HW_2 copy in its tls/ subdir."""
    flags = (*LIB, *soname(name))
    return (
        Cc(f"{prefix}/{name}", ("HW/libhw.c",), (*flags, "-Wl,--version-script={S}/HW/hw1.map")),
        Cc(
            f"{prefix}/tls/{name}",
            ("HW/libhw.c",),
            (*flags, "-DWITH_HW2", "-Wl,--version-script={S}/HW/hw2.map"),
        ),
    )


CASE_TLS = Case(
    "HW_legacy_tls_subdir",
    "glibc <= 2.36 (this image's 2.36) still tries the legacy hwcaps subdirs (tls/ for every"
    " CPU) before each directory itself: the tls/ copy with HW_2 is the one loaded",
    build=(
        *_tls_libs("/opt/TLS/lib", "libtls.so.1"),
        Cc(
            "/opt/TLS/bin/app",
            ("HW/main.c",),
            (*EXE, *runpath("/opt/TLS/lib"), *against("/opt/TLS/lib/tls", "libtls.so.1")),
        ),
    ),
    layers=(files("/opt/TLS/bin/app", "/opt/TLS/lib/libtls.so.1", "/opt/TLS/lib/tls/libtls.so.1"),),
    programs=frozen(
        {"/opt/TLS/bin/app": ok(resolved={"libtls.so.1": "/opt/TLS/lib/tls/libtls.so.1"})}
    ),
    libraries=frozen({"/opt/TLS/lib/libtls.so.1": OK, "/opt/TLS/lib/tls/libtls.so.1": OK}),
)

CASE_HW_CACHE = Case(
    "HW_glibc_hwcaps_in_ld_so_cache",
    "the same pair in a ld.so.conf dir with the cache rebuilt: ldconfig records the"
    " glibc-hwcaps copy in the cache's hwcaps extension; the program has no RUNPATH",
    build=(
        *_hw_libs("/opt/HWC/lib", "libhwc.so.1"),
        Cc(
            "/opt/HWC/bin/app",
            ("HW/main.c",),
            (*EXE, *against("/opt/HWC/lib/glibc-hwcaps/x86-64-v2", "libhwc.so.1")),
        ),
    ),
    layers=(
        (
            *files(
                "/opt/HWC/bin/app",
                "/opt/HWC/lib/libhwc.so.1",
                "/opt/HWC/lib/glibc-hwcaps/x86-64-v2/libhwc.so.1",
            ),
            Text("/etc/ld.so.conf.d/opt-hwc.conf", b"/opt/HWC/lib\n"),
        ),
    ),
    ldconfig=True,
    programs=frozen({"/opt/HWC/bin/app": missing_version("HW_2")}),
    by_level=MappingProxyType(
        {
            "x86-64-v2": frozen(
                {
                    "/opt/HWC/bin/app": ok(
                        resolved={"libhwc.so.1": "/opt/HWC/lib/glibc-hwcaps/x86-64-v2/libhwc.so.1"}
                    )
                }
            )
        }
    ),
    libraries=frozen(
        {"/opt/HWC/lib/libhwc.so.1": OK, "/opt/HWC/lib/glibc-hwcaps/x86-64-v2/libhwc.so.1": OK}
    ),
)

CASE_RELR = Case(
    "RELR_glibc_abi_dt_relr",
    "-z pack-relative-relocs: with the GLIBC_ABI_DT_RELR need (as ld writes it) fine; with that"
    " Vernaux renamed to GLIBC_2.2.5 (patched) ld.so refuses the DT_RELR object; a DT_RELR"
    " library needing libc.so.6 with no version needs at all loads",
    build=(
        Cc("/opt/RELR/bin/relr", ("RELR/relr.c",), (*EXE, "-Wl,-z,pack-relative-relocs")),
        Patch(
            "/opt/RELR/bin/relr-no-abi-need",
            "/opt/RELR/bin/relr",
            "rename-vernaux=GLIBC_ABI_DT_RELR:GLIBC_2.2.5",
        ),
        Cc(
            "/opt/RELR/lib/libbare.so",
            ("RELR/bare.c",),
            (*LIB, *soname("libbare.so"), "-nostdlib", "-Wl,-z,pack-relative-relocs", "-lc"),
        ),
        exe(
            "/opt/RELR/bin/uses-bare",
            "getpid",
            flags=(*runpath("/opt/RELR/lib"), *against("/opt/RELR/lib", "libbare.so")),
        ),
    ),
    layers=(
        files(
            "/opt/RELR/bin/relr",
            "/opt/RELR/bin/relr-no-abi-need",
            "/opt/RELR/bin/uses-bare",
            "/opt/RELR/lib/libbare.so",
        ),
    ),
    programs=frozen(
        {
            "/opt/RELR/bin/relr": ok(),
            # libbare has DT_RELR and needs libc.so.6 but has no DT_VERNEED at all: the check
            # sits inside _dl_check_map_versions' `if (dyn != NULL)`, so it loads.
            "/opt/RELR/bin/uses-bare": ok(resolved={"libbare.so": "/opt/RELR/lib/libbare.so"}),
            "/opt/RELR/bin/relr-no-abi-need": Verdict(
                "broken",
                frozenset({Finding("dt-relr-without-version", "GLIBC_ABI_DT_RELR")}),
                (),
                "DT_RELR without GLIBC_ABI_DT_RELR dependency",
            ),
        }
    ),
    libraries=frozen({"/opt/RELR/lib/libbare.so": OK}),
)

CASE_G_SCRIPT_DEFAULT = Case(
    "G_needed_name_is_a_linker_script_in_a_system_dir",
    "the program needs libscript.so, and /usr/lib/x86_64-linux-gnu/libscript.so is a GNU ld"
    " script (as libc.so is): ldconfig left it out of the cache, the system-directory search"
    " opens it, open_verify says 'invalid ELF header', fatal",
    build=(
        lib("/link/LS/libscript.so", "ls_func"),
        exe("/opt/LS/bin/app", "ls_func", flags=against("/link/LS", "libscript.so")),
    ),
    layers=(
        (
            *files("/opt/LS/bin/app"),
            Install(f"{LIBDIR}/libscript.so", "fixture:G/libc-like.ld", 0o644),
        ),
    ),
    ldconfig=True,
    programs=frozen({"/opt/LS/bin/app": incompatible("libscript.so", "invalid ELF header")}),
)

CASE_AUDIT = Case(
    "AU_audit_module_absent_is_ignored",
    "DT_AUDIT (-Wl,--audit) and LD_AUDIT name modules that are not in the image: rtld.c"
    " prints 'cannot be loaded as audit interface ... ignored' and starts the program",
    build=(
        lib("/opt/AU/lib/libau.so.1", "au_func"),
        exe(
            "/opt/AU/bin/app",
            "au_func",
            flags=(
                "-Wl,--audit=libaudit-gone.so.1",
                *runpath("/opt/AU/lib"),
                *against("/opt/AU/lib", "libau.so.1"),
            ),
        ),
    ),
    layers=(files("/opt/AU/bin/app", "/opt/AU/lib/libau.so.1"),),
    env=(PATH, "LD_AUDIT=/opt/AU/lib/libaudit-env-gone.so"),
    programs=frozen({"/opt/AU/bin/app": OK}),
    libraries=frozen({"/opt/AU/lib/libau.so.1": OK}),
)

CASE_UNIQUE = Case(
    "U2_gnu_unique_symbol",
    "libu.so.1 defines uvar as STB_GNU_UNIQUE (EI_OSABI becomes ELFOSABI_GNU); the program"
    " reads it: do_lookup_x binds unique symbols like global ones",
    build=(
        Cc("/opt/U2/lib/libu.so.1", ("U2/libu.c",), (*LIB, *soname("libu.so.1"))),
        Cc(
            "/opt/U2/bin/app",
            ("U2/main.c",),
            (*EXE, *runpath("/opt/U2/lib"), *against("/opt/U2/lib", "libu.so.1")),
        ),
    ),
    layers=(files("/opt/U2/bin/app", "/opt/U2/lib/libu.so.1"),),
    programs=frozen({"/opt/U2/bin/app": ok(resolved={"libu.so.1": "/opt/U2/lib/libu.so.1"})}),
    libraries=frozen({"/opt/U2/lib/libu.so.1": OK}),
)

_V_FLAGS = (*LIB, *soname("libself.so.1"))

CASE_V_SELF = Case(
    "V_version_need_names_the_object_itself",
    "libself.so.1 was linked against an older libself.so.1 (f@V2): its DT_NEEDED and Verneed"
    " name itself, and it defines only V1. find_needed finds the object itself (the NEEDED"
    " lookup by SONAME added the name): version `V2' not found",
    build=(
        Cc("/link/V/libself.so.1", ("V/old.c",), (*_V_FLAGS, "-Wl,--version-script={S}/V/v2.map")),
        Cc(
            "/opt/V/lib/libself.so.1",
            ("V/libself.c",),
            (*_V_FLAGS, "-Wl,--version-script={S}/V/v1.map", *against("/link/V", "libself.so.1")),
        ),
        Cc(
            "/opt/V/bin/app",
            ("V/main.c",),
            (*EXE, *runpath("/opt/V/lib"), *against("/opt/V/lib", "libself.so.1")),
        ),
    ),
    layers=(files("/opt/V/bin/app", "/opt/V/lib/libself.so.1"),),
    programs=frozen({"/opt/V/bin/app": missing_version("V2")}),
    libraries=frozen({"/opt/V/lib/libself.so.1": missing_version("V2")}),
    library_checks=("/opt/V/lib/libself.so.1",),
)

_NOSTDLIB_LIB = (*LIB, "-nostdlib")

CASE_T_RTLD = Case(
    "T_tls_get_addr_without_ld_so_in_scope",
    "two -nostdlib libraries sharing a __thread variable and a -nostdlib program: nothing"
    " needs ld.so, so rtld.c leaves it out of the search list and __tls_get_addr (an ld.so"
    " symbol, called through the PLT) is undefined: the process dies at the first access",
    build=(
        Cc("/opt/T/lib/libta.so.1", ("T/libta.c",), (*_NOSTDLIB_LIB, *soname("libta.so.1"))),
        Cc(
            "/opt/T/lib/libtb.so.1",
            ("T/libtb.c",),
            (
                *_NOSTDLIB_LIB,
                *soname("libtb.so.1"),
                *runpath("/opt/T/lib"),
                *against("/opt/T/lib", "libta.so.1"),
            ),
        ),
        Cc(
            "/opt/T/bin/app",
            ("T/start.c",),
            (
                *EXE,
                "-nostdlib",
                "-fno-stack-protector",
                *runpath("/opt/T/lib"),
                *against("/opt/T/lib", "libtb.so.1"),
            ),
        ),
    ),
    layers=(files("/opt/T/bin/app", "/opt/T/lib/libta.so.1", "/opt/T/lib/libtb.so.1"),),
    programs=frozen({"/opt/T/bin/app": undefined("__tls_get_addr", "call")}),
    libraries=frozen(
        {
            "/opt/T/lib/libtb.so.1": undefined("__tls_get_addr", "call"),
            # no DT_NEEDED: the oracle checks its symbols inside libc.so.6's process, where
            # nothing needs ld.so either
            "/opt/T/lib/libta.so.1": undefined("__tls_get_addr", "call"),
        }
    ),
    library_checks=("/opt/T/lib/libtb.so.1",),
)

CASE_F_FILTER = Case(
    "F_filter_and_auxiliary_filtees_absent",
    "libF.so.1 is a filter (-Wl,-F,libfilteeF.so.1), libAux.so.1 an auxiliary filter"
    " (-Wl,-f,libauxF.so.1); neither filtee is in the image. _dl_map_object_deps loads"
    " filtees like DT_NEEDED: a DT_FILTER one is fatal when absent, a DT_AUXILIARY one ignored",
    build=(
        lib("/opt/F/lib/libF.so.1", "f_func", flags=("-Wl,-F,libfilteeF.so.1",)),
        lib("/opt/F/lib/libAux.so.1", "aux_func", flags=("-Wl,-f,libauxF.so.1",)),
        exe(
            "/opt/F/bin/app-filter",
            "f_func",
            flags=(*runpath("/opt/F/lib"), *against("/opt/F/lib", "libF.so.1")),
        ),
        exe(
            "/opt/F/bin/app-aux",
            "aux_func",
            flags=(*runpath("/opt/F/lib"), *against("/opt/F/lib", "libAux.so.1")),
        ),
    ),
    layers=(
        files(
            "/opt/F/bin/app-filter",
            "/opt/F/bin/app-aux",
            "/opt/F/lib/libF.so.1",
            "/opt/F/lib/libAux.so.1",
        ),
    ),
    programs=frozen(
        {"/opt/F/bin/app-filter": missing("libfilteeF.so.1"), "/opt/F/bin/app-aux": OK}
    ),
    # dlopen("libF.so.1") fails the same way as the program's start
    libraries=frozen(
        {"/opt/F/lib/libF.so.1": missing("libfilteeF.so.1"), "/opt/F/lib/libAux.so.1": OK}
    ),
    library_checks=("/opt/F/lib/libF.so.1", "/opt/F/lib/libAux.so.1"),
    # `ld.so libF.so.1` (the oracle's trace) does not load the filtees of its main object
    oracle_differs=frozen({"/opt/F/lib/libF.so.1": OK}),
)


def _px_lib(out: str, *flags: str) -> Cc:
    return Cc(out, ("PX/libp.c",), (*LIB, *soname("libP.so.1"), *flags))


def _px_exe(out: str, libdir: str) -> Cc:
    # linked against a default-visibility copy: GNU ld 2.40 refuses a copy relocation
    # against a protected symbol itself, so the protected library arrives only at run time
    flags = (*EXE, "-fno-pie", "-no-pie", *runpath(libdir), *against("/link/PX", "libP.so.1"))
    return Cc(out, ("PX/main.c",), flags)


CASE_PX_PROTECTED = Case(
    "PX_copy_relocation_against_protected_data",
    "a non-PIE program copies pdata (R_X86_64_COPY); the image's libP.so.1 defines it"
    " STV_PROTECTED. Built with -mno-direct-extern-access (GNU_PROPERTY_1_NEEDED_INDIRECT_"
    "EXTERN_ACCESS) the start fails; unmarked, ld.so only warns (dl-protected.h)",
    build=(
        _px_lib("/link/PX/libP.so.1"),
        _px_lib("/opt/PX/marked/libP.so.1", "-DPROTECTED", "-mno-direct-extern-access"),
        _px_lib("/opt/PX/plain/libP.so.1", "-DPROTECTED"),
        _px_exe("/opt/PX/bin/app-marked", "/opt/PX/marked"),
        _px_exe("/opt/PX/bin/app-plain", "/opt/PX/plain"),
    ),
    layers=(
        files(
            "/opt/PX/bin/app-marked",
            "/opt/PX/bin/app-plain",
            "/opt/PX/marked/libP.so.1",
            "/opt/PX/plain/libP.so.1",
        ),
    ),
    programs=frozen(
        {
            "/opt/PX/bin/app-marked": Verdict(
                "broken",
                frozenset({Finding("protected-copy-relocation", "pdata")}),
                (),
                "error due to GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS",
            ),
            "/opt/PX/bin/app-plain": ok(warn("protected-copy-relocation", "pdata")),
        }
    ),
    requires=("gcc -mno-direct-extern-access",),
)

# ---------------------------------------------------------------- musl (ldso/dynlink.c)

MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"
_MUSL_LIB = (*LIB, "-Wl,-soname,libmu.so")


def _musl_base_layer(*extra: Put) -> tuple[Put, ...]:
    return (Host(MUSL_LOADER, MUSL_LOADER), *extra)


CASE_M_LLP = Case(
    "M_musl_ld_library_path_before_rpath",
    "musl: LD_LIBRARY_PATH is searched before the program's RPATH (load_library: env_path"
    " first, then fixup_rpath along the needed_by chain); only the LLP copy has mu_new",
    build=(
        Cc("/opt/M/rp/libmu.so", ("musl/libmu.c",), _MUSL_LIB, "musl-gcc"),
        Cc("/opt/M/llp/libmu.so", ("musl/libmu.c",), (*_MUSL_LIB, "-DNEW"), "musl-gcc"),
        Cc(
            "/opt/M/bin/app",
            ("musl/main.c",),
            ("-Wl,--no-as-needed", *rpath("/opt/M/rp"), *against("/opt/M/llp", "libmu.so")),
            "musl-gcc",
        ),
    ),
    layers=(
        _musl_base_layer(*files("/opt/M/bin/app", "/opt/M/rp/libmu.so", "/opt/M/llp/libmu.so")),
    ),
    base="musl",
    requires=("musl-gcc",),
    env=(PATH, "LD_LIBRARY_PATH=/opt/M/llp"),
    programs=frozen({"/opt/M/bin/app": ok(resolved={"libmu.so": "/opt/M/llp/libmu.so"})}),
    libraries=frozen({"/opt/M/rp/libmu.so": OK, "/opt/M/llp/libmu.so": OK}),
)

CASE_M_PATH = Case(
    "M_musl_path_file_replaces_defaults",
    "musl: /etc/ld-musl-x86_64.path (prefix = parent of the loader's dir) lists /opt/M2/lib;"
    " the default /lib:/usr/local/lib:/usr/lib is then not searched",
    build=(
        lib("/opt/M2/lib/libmp.so", "mp_func", cc="musl-gcc"),
        lib("/usr/lib/libmq.so", "mq_func", cc="musl-gcc"),
        exe("/opt/M2/bin/app", "mp_func", cc="musl-gcc", flags=against("/opt/M2/lib", "libmp.so")),
        exe(
            "/opt/M2/bin/app-mq",
            "mp_func",
            "mq_func",
            cc="musl-gcc",
            flags=(*against("/opt/M2/lib", "libmp.so"), *against("/usr/lib", "libmq.so")),
        ),
    ),
    layers=(
        _musl_base_layer(
            *files(
                "/opt/M2/bin/app", "/opt/M2/bin/app-mq", "/opt/M2/lib/libmp.so", "/usr/lib/libmq.so"
            ),
            Text("/etc/ld-musl-x86_64.path", b"/opt/M2/lib\n"),
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/M2/bin/app": ok(resolved={"libmp.so": "/opt/M2/lib/libmp.so"}),
            "/opt/M2/bin/app-mq": missing("libmq.so"),
        }
    ),
    libraries=frozen({"/opt/M2/lib/libmp.so": OK, "/usr/lib/libmq.so": OK}),
)

CASE_M_PRELOAD = Case(
    "M_musl_ld_preload_from_env",
    "musl: LD_PRELOAD in the image's Env is loaded before the program's own needs (__dls3,"
    " load_preload); a preload that needs a missing library breaks every dynamic program",
    build=(
        lib("/opt/M5/gone/libgone.so", "gone_func", cc="musl-gcc"),
        lib(
            "/opt/M5/lib/libpre.so",
            "pre_func",
            "gone_func",
            cc="musl-gcc",
            flags=against("/opt/M5/gone", "libgone.so"),
        ),
        lib("/opt/M5/lib/libm5.so", "m5_func", cc="musl-gcc"),
        exe("/opt/M5/bin/app", "m5_func", cc="musl-gcc", flags=against("/opt/M5/lib", "libm5.so")),
    ),
    layers=(
        _musl_base_layer(
            *files("/opt/M5/bin/app", "/opt/M5/lib/libpre.so", "/opt/M5/lib/libm5.so")
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    env=(PATH, "LD_PRELOAD=/opt/M5/lib/libpre.so", "LD_LIBRARY_PATH=/opt/M5/lib"),
    # every dynamic object of the image gets the preload, the loader itself included
    others=missing("libgone.so"),
    programs=frozen({"/opt/M5/bin/app": missing("libgone.so")}),
    libraries=frozen(
        {
            "/opt/M5/lib/libpre.so": missing("libgone.so"),
            "/opt/M5/lib/libm5.so": missing("libgone.so"),
        }
    ),
)

CASE_M_INHERIT = Case(
    "M_musl_runpath_inherited",
    "musl: case A's layout (exe RUNPATH=a -> libma without rpath -> libmb in a) works, because"
    " musl walks the needed_by chain for RUNPATH as for RPATH",
    build=(
        lib("/opt/M3/a/libmb.so", "mb_func", cc="musl-gcc"),
        lib(
            "/opt/M3/a/libma.so",
            "ma_func",
            "mb_func",
            cc="musl-gcc",
            flags=against("/opt/M3/a", "libmb.so"),
        ),
        exe(
            "/opt/M3/bin/app",
            "ma_func",
            cc="musl-gcc",
            flags=(*runpath("/opt/M3/a"), *against("/opt/M3/a", "libma.so")),
        ),
    ),
    layers=(
        _musl_base_layer(*files("/opt/M3/bin/app", "/opt/M3/a/libma.so", "/opt/M3/a/libmb.so")),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen({"/opt/M3/bin/app": ok(resolved={"libmb.so": "/opt/M3/a/libmb.so"})}),
    libraries=frozen({"/opt/M3/a/libma.so": missing("libmb.so"), "/opt/M3/a/libmb.so": OK}),
)

CASE_M_DOLLAR = Case(
    "M_musl_dollar_in_rpath_and_libc_aliases",
    "musl: an RPATH with any '$' other than $ORIGIN is ignored whole (fixup_rpath returns"
    " without setting p->rpath); libpthread.so.0 / libm.so.6 needs resolve to the loader",
    build=(
        lib("/opt/M4/lib/libm4.so", "m4_func", cc="musl-gcc"),
        exe(
            "/opt/M4/bin/app-dollar",
            "m4_func",
            cc="musl-gcc",
            flags=(*rpath("/opt/M4/lib:/opt/M4/$LIB"), *against("/opt/M4/lib", "libm4.so")),
        ),
        exe(
            "/opt/M4/bin/app-plain",
            "m4_func",
            cc="musl-gcc",
            flags=(*rpath("/opt/M4/lib"), *against("/opt/M4/lib", "libm4.so")),
        ),
        Cc(
            "/link/M4/libpthread.so.0",
            ("musl/stub.c",),
            (*LIB, *soname("libpthread.so.0")),
            "musl-gcc",
        ),
        Cc("/link/M4/libm.so.6", ("musl/stub.c",), (*LIB, *soname("libm.so.6")), "musl-gcc"),
        Cc(
            "/opt/M4/bin/app-aliases",
            ("common/hello.c",),
            (*EXE, *against("/link/M4", "libpthread.so.0", "libm.so.6")),
            "musl-gcc",
        ),
    ),
    layers=(
        _musl_base_layer(
            *files(
                "/opt/M4/bin/app-dollar",
                "/opt/M4/bin/app-plain",
                "/opt/M4/bin/app-aliases",
                "/opt/M4/lib/libm4.so",
            )
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/M4/bin/app-dollar": missing("libm4.so"),
            "/opt/M4/bin/app-plain": ok(resolved={"libm4.so": "/opt/M4/lib/libm4.so"}),
            "/opt/M4/bin/app-aliases": OK,
        }
    ),
    libraries=frozen({"/opt/M4/lib/libm4.so": OK}),
)


def _long_dir(length: int) -> str:
    """An absolute directory path of exactly `length` characters (components of 200)."""
    parts, left = ["/opt/M6"], length - len("/opt/M6")
    while left > 0:
        part = "d" * min(200, left - 1)
        parts.append(part)
        left -= len(part) + 1
    return "/".join(parts)


_M6_FITS, _M6_TOO_LONG = _long_dir(502), _long_dir(503)  # + "/" + "libm6.so": 511, 512 bytes

CASE_M_PATH_BUF = Case(
    "M_musl_dir_name_buffer_limit",
    "musl: path_open builds DIR/NAME in a 512-byte buffer (2*NAME_MAX+2) and passes over a"
    " directory whose DIR/NAME does not fit: found at 511 bytes, not at 512",
    build=(
        lib(f"{_M6_FITS}/libm6.so", "m6_func", cc="musl-gcc"),
        lib(f"{_M6_TOO_LONG}/libm6.so", "m6_func", cc="musl-gcc"),
        exe(
            "/opt/M6/bin/app-fits",
            "m6_func",
            cc="musl-gcc",
            flags=(*rpath(_M6_FITS), *against(_M6_FITS, "libm6.so")),
        ),
        exe(
            "/opt/M6/bin/app-too-long",
            "m6_func",
            cc="musl-gcc",
            flags=(*rpath(_M6_TOO_LONG), *against(_M6_TOO_LONG, "libm6.so")),
        ),
    ),
    layers=(
        _musl_base_layer(
            *files(
                "/opt/M6/bin/app-fits",
                "/opt/M6/bin/app-too-long",
                f"{_M6_FITS}/libm6.so",
                f"{_M6_TOO_LONG}/libm6.so",
            )
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/M6/bin/app-fits": ok(resolved={"libm6.so": f"{_M6_FITS}/libm6.so"}),
            "/opt/M6/bin/app-too-long": missing("libm6.so"),
        }
    ),
    libraries=frozen({f"{_M6_FITS}/libm6.so": OK, f"{_M6_TOO_LONG}/libm6.so": OK}),
)

CASE_X = Case(
    "X_interpreter_missing_and_static",
    "an image with only musl's loader: a glibc program's PT_INTERP is missing; static and"
    " static-pie programs need no loader",
    build=(
        Cc("/opt/X/bin/glibc-hello", ("common/hello.c",), EXE),
        Cc("/opt/X/bin/static", ("common/hello.c",), ("-static",)),
        Cc("/opt/X/bin/static-pie", ("common/hello.c",), ("-static-pie",)),
    ),
    layers=(
        _musl_base_layer(
            *files("/opt/X/bin/glibc-hello", "/opt/X/bin/static", "/opt/X/bin/static-pie")
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/X/bin/glibc-hello": Verdict(
                "interpreter-missing",
                frozenset({Finding("missing-interpreter", "/lib64/ld-linux-x86-64.so.2")}),
            ),
            "/opt/X/bin/static": Verdict("static"),
            "/opt/X/bin/static-pie": Verdict("static"),
        }
    ),
)

CASE_W_LLP = Case(
    "W_empty_ld_library_path_element_is_cwd",
    "Env LD_LIBRARY_PATH=/opt/W2/none: ends in an empty element = the current directory (/),"
    " where the library is",
    build=(
        lib("/libW2.so.1", "w2_func"),
        exe("/opt/W2/bin/app", "w2_func", flags=against("/", "libW2.so.1")),
    ),
    layers=(files("/opt/W2/bin/app", "/libW2.so.1"),),
    env=(PATH, "LD_LIBRARY_PATH=/opt/W2/none:"),
    programs=frozen({"/opt/W2/bin/app": OK}),
    libraries=frozen({"/libW2.so.1": OK}),
)


def _nod_lib(out: str, bind: str) -> Cc:
    return Cc(out, ("NOD/noneed.c",), (*LIB, "-nostdlib", *soname(out.rsplit("/", 1)[1]), bind))


CASE_NOD = Case(
    "NOD_no_needed_still_relocated",
    "-nostdlib shared objects without any DT_NEEDED calling an undefined function: ld.so's"
    " 'statically linked' replaces only the dependency list in trace mode; the object is"
    " relocated and the symbol fails (-z now at start, -z lazy when called), in a program too",
    build=(
        _nod_lib("/opt/NOD/lib/libnodnow.so", "-Wl,-z,now"),
        _nod_lib("/opt/NOD/lib/libnodlazy.so", "-Wl,-z,lazy"),
        Cc(
            "/opt/NOD/bin/app",
            ("NOD/main.c",),
            (*EXE, *runpath("/opt/NOD/lib"), *against("/opt/NOD/lib", "libnodlazy.so")),
        ),
    ),
    layers=(files("/opt/NOD/bin/app", "/opt/NOD/lib/libnodnow.so", "/opt/NOD/lib/libnodlazy.so"),),
    programs=frozen({"/opt/NOD/bin/app": undefined("nowhere", "call")}),
    libraries=frozen(
        {
            "/opt/NOD/lib/libnodnow.so": undefined("nowhere", "startup"),
            "/opt/NOD/lib/libnodlazy.so": undefined("nowhere", "call"),
        }
    ),
)

_X32_LOADER = (
    Host("/usr/lib32/ld-linux.so.2", "/lib32/ld-linux.so.2"),
    Host("/usr/lib32/libc.so.6", "/lib32/libc.so.6"),
    Link("/lib32", "usr/lib32"),
    Link("/usr/lib/ld-linux.so.2", "/lib32/ld-linux.so.2"),
)

CASE_X_I386 = Case(
    "X_i386_programs_in_an_amd64_image",
    "an x86-64 kernel runs i386 programs with the image's /lib/ld-linux.so.2 (libc6-i386's"
    " layout): they are judged, not foreign; a 64-bit candidate is skipped for them",
    build=(
        lib("/opt/X/lib32/libx.so.1", "x_func", flags=("-m32",)),
        lib("/opt/X/lib64/libx.so.1", "x_func"),
        lib("/opt/X/gone/libnope32.so.1", "nope_func", flags=("-m32",)),
        exe(
            "/opt/X/bin/app32",
            "x_func",
            flags=(
                "-m32",
                *runpath("/opt/X/lib64:/opt/X/lib32"),
                *against("/opt/X/lib32", "libx.so.1"),
            ),
        ),
        exe(
            "/opt/X/bin/app32-missing",
            "nope_func",
            flags=("-m32", *runpath("/opt/X/lib32"), *against("/opt/X/gone", "libnope32.so.1")),
        ),
    ),
    layers=(
        (
            *_X32_LOADER,
            *files("/opt/X/bin/app32", "/opt/X/bin/app32-missing"),
            *files("/opt/X/lib32/libx.so.1", "/opt/X/lib64/libx.so.1"),
        ),
    ),
    programs=frozen(
        {
            "/opt/X/bin/app32": ok(resolved={"libx.so.1": "/opt/X/lib32/libx.so.1"}),
            "/opt/X/bin/app32-missing": missing("libnope32.so.1"),
        }
    ),
    libraries=frozen({"/opt/X/lib32/libx.so.1": OK, "/opt/X/lib64/libx.so.1": OK}),
    requires=("gcc -m32",),
)

CASES: tuple[Case, ...] = (
    CASE_X_I386,
    CASE_NOD,
    CASE_TLS,
    CASE_M_PRELOAD,
    CASE_A,
    CASE_B,
    CASE_C,
    CASE_C_FRAGILE,
    CASE_D,
    CASE_D_REBUILT,
    CASE_D_DELETED,
    CASE_D_GONE,
    CASE_E,
    CASE_E_MAIN,
    CASE_G_SHORT,
    CASE_G_TRUNCATED,
    CASE_G_DIRECTORY,
    CASE_G_SCRIPT,
    CASE_G_CLASS,
    CASE_G_MACHINE,
    CASE_G_ENDIAN,
    CASE_G_OSABI,
    CASE_G_DEBUG,
    CASE_V_SELF,
    CASE_G_SCRIPT_DEFAULT,
    CASE_AUDIT,
    CASE_UNIQUE,
    CASE_T_RTLD,
    CASE_F_FILTER,
    CASE_PX_PROTECTED,
    CASE_H,
    CASE_H_SYMBOL,
    CASE_H_PROVIDER,
    CASE_H_HIDDEN,
    CASE_O_ORDER,
    CASE_I,
    CASE_I_ENV,
    CASE_Y,
    CASE_Z,
    CASE_L,
    CASE_R,
    CASE_R_BOTH,
    CASE_N,
    CASE_S,
    CASE_S_DEDUPE,
    CASE_P_ENV,
    CASE_P_FILE,
    CASE_P_MISSING,
    CASE_W,
    CASE_W_LLP,
    CASE_U_USER,
    CASE_U_ROOT,
    CASE_U_PRELOAD,
    CASE_U_TRUSTED_PRELOAD,
    CASE_U_ORIGIN,
    CASE_HW,
    CASE_HW_CACHE,
    CASE_RELR,
    CASE_M_LLP,
    CASE_M_PATH,
    CASE_M_INHERIT,
    CASE_M_DOLLAR,
    CASE_M_PATH_BUF,
    CASE_X,
)


# ---------------------------------------------------------------- issue 9: open() errors, musl's
# shortnames and second libc, empty RUNPATH, secure-mode DSTs (appended; see CASES below)

CASE_K_EACCES = Case(
    "K_unreadable_candidate_is_skipped",
    "User 1000:1000; RUNPATH /opt/K/d1:/opt/K/d2 and /opt/K/d1/libK.so.1 is root's, mode 0600:"
    " open() fails with EACCES and open_path goes on to d2; with d1 alone it is not found,"
    " unless the program is setuid-root (the loader opens files with the effective uid)",
    build=(
        lib("/opt/K/d2/libK.so.1", "k_func"),
        exe(
            "/opt/K/bin/app",
            "k_func",
            flags=(*runpath("/opt/K/d1:/opt/K/d2"), *against("/opt/K/d2", "libK.so.1")),
        ),
        exe(
            "/opt/K/bin/app-d1",
            "k_func",
            flags=(*runpath("/opt/K/d1"), *against("/opt/K/d2", "libK.so.1")),
        ),
    ),
    layers=(
        (
            *files("/opt/K/bin/app", "/opt/K/bin/app-d1", "/opt/K/d2/libK.so.1"),
            Install("/opt/K/d1/libK.so.1", "/opt/K/d2/libK.so.1", 0o600),
            Install("/opt/K/bin/suid-app-d1", "/opt/K/bin/app-d1", 0o4755),
        ),
    ),
    user="1000:1000",
    programs=frozen(
        {
            "/opt/K/bin/app": ok(resolved={"libK.so.1": "/opt/K/d2/libK.so.1"}),
            "/opt/K/bin/app-d1": missing("libK.so.1"),
            "/opt/K/bin/suid-app-d1": ok(resolved={"libK.so.1": "/opt/K/d1/libK.so.1"}),
        }
    ),
    libraries=frozen({"/opt/K/d1/libK.so.1": OK, "/opt/K/d2/libK.so.1": OK}),
    # The oracle traces as root, who may read the 0600 file: d1's copy is found for both.
    # The real start as 1000 (test_programs_start_as_expected) follows the rule.
    oracle_differs=frozen(
        {
            "/opt/K/bin/app": ok(resolved={"libK.so.1": "/opt/K/d1/libK.so.1"}),
            "/opt/K/bin/app-d1": ok(resolved={"libK.so.1": "/opt/K/d1/libK.so.1"}),
        }
    ),
)

CASE_K_ELOOP = Case(
    "K_symlink_loop_ends_the_path_list",
    "RUNPATH /opt/KL/d1:/opt/KL/d2; /opt/KL/d1/libKL.so.1 is a symlink to itself: open() fails"
    " with ELOOP in a directory that exists, open_path returns -1 and d2 is never tried",
    build=(
        lib("/opt/KL/d2/libKL.so.1", "kl_func"),
        exe(
            "/opt/KL/bin/app",
            "kl_func",
            flags=(*runpath("/opt/KL/d1:/opt/KL/d2"), *against("/opt/KL/d2", "libKL.so.1")),
        ),
        exe(
            "/opt/KL/bin/control",
            "kl_func",
            flags=(*runpath("/opt/KL/d2"), *against("/opt/KL/d2", "libKL.so.1")),
        ),
    ),
    layers=(
        (
            *files("/opt/KL/bin/app", "/opt/KL/bin/control", "/opt/KL/d2/libKL.so.1"),
            Link("/opt/KL/d1/libKL.so.1", "libKL.so.1"),
        ),
    ),
    programs=frozen(
        {
            "/opt/KL/bin/app": missing("libKL.so.1"),
            "/opt/KL/bin/control": ok(resolved={"libKL.so.1": "/opt/KL/d2/libKL.so.1"}),
        }
    ),
    libraries=frozen({"/opt/KL/d2/libKL.so.1": OK}),
)

CASE_M_ELOOP = Case(
    "M_musl_symlink_loop_inhibits_search",
    "musl: RUNPATH /opt/ML/loop:/opt/ML/lib, /opt/ML/loop/libml.so a symlink to itself:"
    " path_open returns -2 on ELOOP, which inhibits every further path (also the system path)",
    build=(
        lib("/opt/ML/lib/libml.so", "ml_func", cc="musl-gcc"),
        exe(
            "/opt/ML/bin/app",
            "ml_func",
            cc="musl-gcc",
            flags=(*runpath("/opt/ML/loop:/opt/ML/lib"), *against("/opt/ML/lib", "libml.so")),
        ),
        exe(
            "/opt/ML/bin/control",
            "ml_func",
            cc="musl-gcc",
            flags=(*runpath("/opt/ML/lib"), *against("/opt/ML/lib", "libml.so")),
        ),
    ),
    layers=(
        _musl_base_layer(
            *files("/opt/ML/bin/app", "/opt/ML/bin/control", "/opt/ML/lib/libml.so"),
            Link("/opt/ML/loop/libml.so", "libml.so"),
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/ML/bin/app": missing("libml.so"),
            "/opt/ML/bin/control": ok(resolved={"libml.so": "/opt/ML/lib/libml.so"}),
        }
    ),
    libraries=frozen({"/opt/ML/lib/libml.so": OK}),
)

CASE_M_SHORTNAME = Case(
    "M_musl_shortname_not_soname",
    "musl: the program NEEDs libfoo.so (a file whose SONAME is libfoo.so.1) and libB.so, which"
    " NEEDs libfoo.so.1: load_library matches loaded objects by shortname (the basename of"
    " the path found), never by DT_SONAME, so libfoo.so.1 is searched and not found",
    build=(
        lib("/link/MS/libfoo.so", "foo_func", cc="musl-gcc"),
        lib("/link/MS/libfoo.so.1", "foo_func", cc="musl-gcc"),
        lib(
            "/opt/MS/lib/libB.so",
            "b_func",
            "foo_func",
            cc="musl-gcc",
            flags=against("/link/MS", "libfoo.so.1"),
        ),
        exe(
            "/opt/MS/bin/app",
            "foo_func",
            "b_func",
            cc="musl-gcc",
            flags=(
                *runpath("/opt/MS/lib"),
                *against("/link/MS", "libfoo.so"),
                *against("/opt/MS/lib", "libB.so"),
            ),
        ),
    ),
    layers=(
        _musl_base_layer(
            *files("/opt/MS/bin/app", "/opt/MS/lib/libB.so"),
            Install("/opt/MS/lib/libfoo.so", "/link/MS/libfoo.so.1"),
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen(
        {
            "/opt/MS/bin/app": resolving(
                missing("libfoo.so.1"), {"libfoo.so": "/opt/MS/lib/libfoo.so"}
            )
        }
    ),
    libraries=frozen({"/opt/MS/lib/libfoo.so": OK, "/opt/MS/lib/libB.so": missing("libfoo.so.1")}),
)

CASE_M_SECOND_LIBC = Case(
    "M_musl_second_libc_is_the_loader",
    "musl: the program NEEDs libfakec.so, which defines __libc_start_main and stdin and NEEDs"
    ' a missing libnothere.so: load_library unmaps it and answers load_library("libc.so"),'
    " the loader itself, so its dependency is never loaded and the program starts",
    build=(
        lib("/link/M5/libnothere.so", "nothere_func", cc="musl-gcc"),
        lib(
            "/opt/M5/lib/libfakec.so",
            "__libc_start_main",
            "nothere_func",
            cc="musl-gcc",
            flags=(
                "-Wl,--defsym,stdin=__libc_start_main",
                *against("/link/M5", "libnothere.so"),
            ),
        ),
        lib("/opt/M5/lib/libm5.so", "m5_func", cc="musl-gcc"),
        exe(
            "/opt/M5/bin/app",
            "m5_func",
            cc="musl-gcc",
            flags=(
                *runpath("/opt/M5/lib"),
                *against("/opt/M5/lib", "libm5.so"),
                *against("/opt/M5/lib", "libfakec.so"),
            ),
        ),
    ),
    layers=(
        _musl_base_layer(
            *files("/opt/M5/bin/app", "/opt/M5/lib/libfakec.so", "/opt/M5/lib/libm5.so")
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    programs=frozen({"/opt/M5/bin/app": ok(resolved={"libfakec.so": MUSL_LOADER})}),
    # musl's ldd prints the libc names once ("libc.so => ..."), never libfakec.so.
    oracle_differs=frozen({"/opt/M5/bin/app": OK}),
    libraries=frozen(
        {"/opt/M5/lib/libfakec.so": missing("libnothere.so"), "/opt/M5/lib/libm5.so": OK}
    ),
)

CASE_W_EMPTY = Case(
    "W_empty_runpath_string_is_ignored",
    "a DT_RUNPATH that is the empty string (DT_DEBUG turned into a RUNPATH naming the NUL of"
    " the RPATH string) has no elements at all (decompose_rpath: 'Ignore empty rpaths'), unlike"
    " ':' (the current directory); the library is in /, the WorkingDir; the RPATH is ignored",
    build=(
        lib("/libWE.so.1", "we_func"),
        exe(
            "/opt/WE/bin/app-rpath",
            "we_func",
            flags=(*rpath("/opt/WE/none"), *against("/", "libWE.so.1")),
        ),
        Patch("/opt/WE/bin/app", "/opt/WE/bin/app-rpath", "runpath-from-rpath-suffix="),
        exe(
            "/opt/WE/bin/control",
            "we_func",
            flags=(*runpath(":"), *against("/", "libWE.so.1")),
        ),
    ),
    layers=(files("/opt/WE/bin/app", "/opt/WE/bin/control", "/libWE.so.1"),),
    programs=frozen({"/opt/WE/bin/app": missing("libWE.so.1"), "/opt/WE/bin/control": OK}),
    libraries=frozen({"/libWE.so.1": OK}),
)

CASE_U_SECURE_DST = Case(
    "U_secure_dst_rules",
    "setuid-root programs run by User 1000:1000 (AT_SECURE): $ORIGIN/../lib/ut of /usr/bin/ut"
    " normalises into the trusted /usr/lib (is_trusted_path_normalize: a prefix is enough);"
    " a library's own RUNPATH $ORIGIN is not trust-checked; $LIB never is",
    build=(
        lib("/usr/lib/ut/libut.so.1", "ut_func"),
        exe(
            "/usr/bin/ut",
            "ut_func",
            flags=(*runpath("$ORIGIN/../lib/ut"), *against("/usr/lib/ut", "libut.so.1")),
        ),
        lib("/opt/SL/lib/libsl2.so.1", "sl2_func"),
        lib(
            "/opt/SL/lib/libsl1.so.1",
            "sl1_func",
            "sl2_func",
            flags=(*runpath("$ORIGIN"), *against("/opt/SL/lib", "libsl2.so.1")),
        ),
        exe(
            "/opt/SL/bin/tool",
            "sl1_func",
            flags=(*runpath("/opt/SL/lib"), *against("/opt/SL/lib", "libsl1.so.1")),
        ),
        lib(f"/opt/SQ/lib/{LIBDIR.rsplit('/', 1)[1]}/libsq.so.1", "sq_func"),
        exe(
            "/opt/SQ/bin/tool",
            "sq_func",
            flags=(
                *runpath("/opt/SQ/$LIB"),
                *against(f"/opt/SQ/lib/{LIBDIR.rsplit('/', 1)[1]}", "libsq.so.1"),
            ),
        ),
    ),
    layers=(
        (
            Install("/usr/bin/ut", mode=0o4755),
            Install("/opt/SL/bin/tool", mode=0o4755),
            Install("/opt/SQ/bin/tool", mode=0o4755),
            *files("/usr/lib/ut/libut.so.1", "/opt/SL/lib/libsl1.so.1", "/opt/SL/lib/libsl2.so.1"),
            *files(f"/opt/SQ/lib/{LIBDIR.rsplit('/', 1)[1]}/libsq.so.1"),
        ),
    ),
    user="1000:1000",
    programs=frozen(
        {
            "/usr/bin/ut": ok(resolved={"libut.so.1": "/usr/bin/../lib/ut/libut.so.1"}),
            "/opt/SL/bin/tool": ok(resolved={"libsl2.so.1": "/opt/SL/lib/libsl2.so.1"}),
            "/opt/SQ/bin/tool": ok(
                resolved={"libsq.so.1": f"/opt/SQ/lib/{LIBDIR.rsplit('/', 1)[1]}/libsq.so.1"}
            ),
        }
    ),
)

CASE_P_NONEEDED = Case(
    "P_preload_into_object_without_needed",
    "Env LD_PRELOAD=/opt/P/lib/libpre.so (needs a missing libgone.so.1): ld.so, which has no"
    " DT_NEEDED, is traced as 'statically linked', so only the preload's undefined symbol is"
    " reported for it, not the missing dependency; every program fails",
    build=_P_BUILD,
    layers=(_P_FILES,),
    env=(PATH, "LD_PRELOAD=/opt/P/lib/libpre.so"),
    programs=frozen({"/opt/P/bin/hello": missing("libgone.so.1")}),
    libraries=_P_LIBS,
    others=missing("libgone.so.1"),
    library_checks=(f"{LIBDIR}/ld-linux-x86-64.so.2",),
)

CASES = (
    *CASES,
    CASE_K_EACCES,
    CASE_K_ELOOP,
    CASE_M_ELOOP,
    CASE_M_SHORTNAME,
    CASE_M_SECOND_LIBC,
    CASE_W_EMPTY,
    CASE_U_SECURE_DST,
    CASE_P_NONEEDED,
)


def _pf_exe(out: str, libdir: str, *flags: str) -> Cc:
    # linked against a default-visibility copy, as _px_exe: the protected library arrives
    # only at run time
    link = (*EXE, "-fno-pie", "-no-pie", *runpath(libdir), *against("/link/PF", "libPF.so.1"))
    return Cc(out, ("PX/fnptr.c",), (*link, *flags))


CASE_PF_PROTECTED = Case(
    "PF_direct_reference_to_protected_function",
    "a non-PIE program takes the address of p_func (a canonical PLT entry: undefined, non-zero"
    " st_value); the image's libPF.so.1 defines it STV_PROTECTED. Marked -mno-direct-extern-"
    "access, binding the JUMP_SLOT fails (-z now: at start); unmarked, ld.so only warns",
    build=(
        lib("/link/PF/libPF.so.1", "p_func"),
        lib(
            "/opt/PF/marked/libPF.so.1",
            "p_func",
            flags=("-fvisibility=protected", "-mno-direct-extern-access"),
        ),
        lib("/opt/PF/plain/libPF.so.1", "p_func", flags=("-fvisibility=protected",)),
        _pf_exe("/opt/PF/bin/app-marked-now", "/opt/PF/marked", "-Wl,-z,now"),
        _pf_exe("/opt/PF/bin/app-plain", "/opt/PF/plain"),
    ),
    layers=(
        files(
            "/opt/PF/bin/app-marked-now",
            "/opt/PF/bin/app-plain",
            "/opt/PF/marked/libPF.so.1",
            "/opt/PF/plain/libPF.so.1",
        ),
    ),
    programs=frozen(
        {
            "/opt/PF/bin/app-marked-now": Verdict(
                "broken",
                frozenset({Finding("protected-copy-relocation", "p_func")}),
                (),
                "error due to GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS",
            ),
            "/opt/PF/bin/app-plain": ok(warn("protected-copy-relocation", "p_func")),
        }
    ),
    requires=("gcc -mno-direct-extern-access",),
)

CASES = (*CASES, CASE_PF_PROTECTED)

CASE_U_PRELOAD_GOES_ON = Case(
    "U_setuid_preload_search_goes_on",
    "Env LD_PRELOAD=libpre-late.so; User 1000:1000. The multiarch dir's copy is plain, /usr/lib's"
    " is set-user-ID and needs a missing library: for the setuid-root program open_path passes"
    " over the plain copy (errno ENOENT, __RTLD_SECURE) and loads the later one; the plain"
    " program takes the first copy and starts",
    build=(
        lib("/link/UL/libgone3.so.1", "gone3_func"),
        lib(f"{LIBDIR}/libpre-late.so", "late_func"),
        lib(
            "/usr/lib/libpre-late.so",
            "late_func",
            "gone3_func",
            flags=against("/link/UL", "libgone3.so.1"),
        ),
        Cc("/opt/UL/bin/hello", ("common/hello.c",), EXE),
    ),
    layers=(
        (
            Install("/opt/UL/bin/suid-hello", "/opt/UL/bin/hello", 0o4755),
            Install("/opt/UL/bin/hello"),
            Install(f"{LIBDIR}/libpre-late.so", mode=0o755),
            Install("/usr/lib/libpre-late.so", mode=0o4755),
        ),
    ),
    env=(PATH, "LD_PRELOAD=libpre-late.so"),
    user="1000:1000",
    programs=frozen({"/opt/UL/bin/suid-hello": missing("libgone3.so.1"), "/opt/UL/bin/hello": OK}),
    libraries=frozen({"/usr/lib/libpre-late.so": missing("libgone3.so.1")}),
    # the oracle traces without AT_SECURE (LD_PRELOAD dropped, or the env's first copy): only
    # the real start and the rule judge the setuid program
    oracle_differs=frozen({"/opt/UL/bin/suid-hello": OK}),
)

CASES = (*CASES, CASE_U_PRELOAD_GOES_ON)

CASE_M_SECURE_ORIGIN = Case(
    "M_musl_secure_library_origin_kept",
    "musl, setuid-root programs run by User 1000:1000 (libc.secure): fixup_rpath refuses the"
    " kernel-mapped main program's $ORIGIN rpath, but a library's RUNPATH $ORIGIN is expanded"
    " ('For libraries, however, $ORIGIN can be processed safely'): libmk1's $ORIGIN/../lib2"
    " alone finds libmk2",
    build=(
        lib("/opt/MK/lib2/libmk2.so", "mk2_func", cc="musl-gcc"),
        lib(
            "/opt/MK/lib1/libmk1.so",
            "mk1_func",
            "mk2_func",
            cc="musl-gcc",
            flags=(*runpath("$ORIGIN/../lib2"), *against("/opt/MK/lib2", "libmk2.so")),
        ),
        exe(
            "/opt/MK/bin/tool",
            "mk1_func",
            cc="musl-gcc",
            flags=(*runpath("/opt/MK/lib1"), *against("/opt/MK/lib1", "libmk1.so")),
        ),
        exe(
            "/opt/MK/bin/origin-tool",
            "mk1_func",
            cc="musl-gcc",
            flags=(*runpath("$ORIGIN/../lib1"), *against("/opt/MK/lib1", "libmk1.so")),
        ),
    ),
    layers=(
        _musl_base_layer(
            Install("/opt/MK/bin/tool", mode=0o4755),
            Install("/opt/MK/bin/origin-tool", mode=0o4755),
            Install("/opt/MK/bin/plain-origin-tool", "/opt/MK/bin/origin-tool"),
            *files("/opt/MK/lib1/libmk1.so", "/opt/MK/lib2/libmk2.so"),
        ),
    ),
    base="musl",
    requires=("musl-gcc",),
    user="1000:1000",
    programs=frozen(
        {
            "/opt/MK/bin/tool": ok(resolved={"libmk2.so": "/opt/MK/lib1/../lib2/libmk2.so"}),
            "/opt/MK/bin/origin-tool": missing("libmk1.so"),
            "/opt/MK/bin/plain-origin-tool": ok(
                resolved={"libmk1.so": "/opt/MK/bin/../lib1/libmk1.so"}
            ),
        }
    ),
    libraries=frozen({"/opt/MK/lib1/libmk1.so": OK, "/opt/MK/lib2/libmk2.so": OK}),
    # the oracle emulates no secure mode for musl: the real start judges the setuid ones
    oracle_differs=frozen(
        {"/opt/MK/bin/origin-tool": ok(resolved={"libmk1.so": "/opt/MK/bin/../lib1/libmk1.so"})}
    ),
)

CASES = (*CASES, CASE_M_SECURE_ORIGIN)

_SYM = "/opt/SYM/lib"

CASE_SYM_SYMBOLIC = Case(
    "SYM_dt_symbolic_changes_order_not_outcome",
    "-Bsymbolic libraries (DT_SYMBOLIC: dl-lookup.c looks in the object itself first, then in"
    " the global scope): one defines s_fn, as libsinterp.so earlier in the scope does too, and"
    " calls s_dep from libsdep.so; another calls s_absent, defined nowhere. Looking in itself"
    " first changes which definition binds, never whether one is found: the first and the"
    " program that loads it are ok, the second fails when called",
    build=(
        lib(f"{_SYM}/libsdep.so", "s_dep"),
        lib(f"{_SYM}/libsinterp.so", "s_fn"),
        lib(
            f"{_SYM}/libsymb.so",
            "s_fn",
            "s_dep",
            flags=("-Wl,-Bsymbolic", *runpath(_SYM), *against(_SYM, "libsdep.so")),
        ),
        lib(f"{_SYM}/libsmiss.so", "s_miss", "s_absent", flags=("-Wl,-Bsymbolic",)),
        exe(
            "/opt/SYM/bin/app",
            "s_fn",
            flags=(*runpath(_SYM), *against(_SYM, "libsinterp.so", "libsymb.so")),
        ),
    ),
    layers=(
        files(
            "/opt/SYM/bin/app",
            f"{_SYM}/libsdep.so",
            f"{_SYM}/libsinterp.so",
            f"{_SYM}/libsymb.so",
            f"{_SYM}/libsmiss.so",
        ),
    ),
    programs=frozen({"/opt/SYM/bin/app": ok()}),
    libraries=frozen(
        {
            f"{_SYM}/libsymb.so": ok(),
            f"{_SYM}/libsmiss.so": undefined("s_absent", "call"),
        }
    ),
    library_checks=(f"{_SYM}/libsymb.so", f"{_SYM}/libsmiss.so"),
)

CASES = (*CASES, CASE_SYM_SYMBOLIC)
