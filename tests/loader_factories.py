"""Small factories for the loader unit tests: ELF facts, root filesystems, image configs,
and the loader objects built from them (LOADER.md rules tested without gcc or root).

Every construction of an imagescan loader or check object used by the rule tests lives here,
so that a changed signature is adapted in one place. The image model is Debian 12 on x86_64
(glibc) or Alpine on x86_64 (musl); paths are spelled as those images have them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagescan.analyze import analyze
from imagescan.checks.model import FileVerdict, Finding
from imagescan.checks.verdict import Judge
from imagescan.elf.model import (
    DF_1_NODEFLIB,
    DF_1_PIE,
    DF_BIND_NOW,
    ET_DYN,
    VERSYM_HIDDEN,
    ElfFacts,
    FileKind,
    LdsoDefaults,
    UndefinedSymbol,
    VersionDef,
    VersionNeed,
)
from imagescan.image.model import ImageConfig
from imagescan.loader import setup
from imagescan.loader.context import LoaderContext
from imagescan.loader.ldcache import DL_CACHE_HWCAP_EXTENSION, cache_libcmp
from imagescan.loader.ldcache_model import FLAG_ELF_LIBC6, FLAG_X8664_LIB64
from imagescan.loader.libc import CLibrary
from imagescan.loader.model import LibC, LoadedObject, Process, ProcessParams, SearchResult
from imagescan.loader.registry import c_library
from imagescan.loader.session import LoaderSession
from imagescan.rootfs.model import Entry, EntryType, RootFS
from tests.test_loader_ldcache import write_compat, write_new, write_old

EM_X86_64, EM_AARCH64, EM_386 = 62, 183, 3
LIBDIR = "/lib/x86_64-linux-gnu"
USRLIBDIR = "/usr/lib/x86_64-linux-gnu"
LDSO = "/lib64/ld-linux-x86-64.so.2"  # PT_INTERP of Debian's x86_64 programs
LDSO_FILE = f"{LIBDIR}/ld-linux-x86-64.so.2"
LIBC = f"{LIBDIR}/libc.so.6"
MUSL_LDSO = "/lib/ld-musl-x86_64.so.1"
MUSL_PATH_FILE = "/etc/ld-musl-x86_64.path"
# What Debian 12's ld.so has compiled in (LOADER.md 3.5): system dirs and $LIB.
DEBIAN_LDSO = LdsoDefaults(
    (LIBDIR, USRLIBDIR, "/lib", "/usr/lib"), "lib/x86_64-linux-gnu", version=(2, 40)
)
# The glibc versions a Debian libc.so.6 defines (index 1 is the base: the file's own name).
LIBC_VERSIONS = ("GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_ABI_DT_RELR")
X86_64_LIBC6 = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64  # ldconfig's flags of an x86-64 libc6 entry


def elf_hash(name: str) -> int:
    """The SysV ELF hash that vd_hash/vna_hash hold (dl-version.c compares it first)."""
    h = 0
    for byte in name.encode():
        h = ((h << 4) + byte) & 0xFFFFFFFF
        high = h & 0xF0000000
        h = (h ^ (high >> 24)) & ~high & 0xFFFFFFFF
    return h


# ---------------------------------------------------------------- ELF facts


def need(file: str, version: str, *, weak: bool = False) -> VersionNeed:
    """A Vernaux entry: `file` (a NEEDED name) must define `version`."""
    return VersionNeed(file, version, elf_hash(version), weak)


def ref(
    name: str,
    version: str | None = None,
    file: str | None = None,
    *,
    at_start: bool = False,
    lazy: bool = True,
    weak: bool = False,
    copy: bool = False,
) -> UndefinedSymbol:
    """An undefined symbol: a PLT reference by default (`lazy`); `at_start` for a data/GOT
    reference bound at load time; `version`/`file` as its versym's Vernaux names them."""
    return UndefinedSymbol(
        name,
        version,
        file if version is not None else None,
        weak=weak,
        bound_at_start=at_start,
        lazy=lazy and not at_start,
        copy=copy,
    )


def elf(
    kind: FileKind = FileKind.SHARED,
    *,
    soname: str | None = None,
    needed: Sequence[str] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    interpreter: str | None = None,
    versions: Sequence[str] = (),
    defines: Mapping[str, str | None] | Iterable[str] = (),
    hidden: Mapping[str, str] | None = None,
    undefined: Sequence[UndefinedSymbol] = (),
    version_needs: Sequence[VersionNeed] = (),
    bind_now: bool = False,
    flags_1: int = 0,
    nodeflib: bool = False,
    has_relr: bool = False,
    elf_class: int = 64,
    machine: int = EM_X86_64,
    little_endian: bool = True,
    ident_problem: str | None = None,
    type_problem: str | None = None,
    ldso: LdsoDefaults | None = None,
) -> ElfFacts:
    """ElfFacts of a dynamic object. `versions` are its Verdef names (after the base entry);
    `defines` maps each defined symbol to its version name (None = unversioned/global), and
    `hidden` adds hidden (non-default, `@` not `@@`) definitions."""
    defs = _version_defs(soname, versions)
    index = {vd.name: vd.index for vd in defs if not vd.base}
    has_versym = bool(versions)
    table = _defined(defines, hidden or {}, index, has_versym)
    return ElfFacts(
        elf_class=elf_class,
        little_endian=little_endian,
        machine=machine,
        osabi=0,
        abiversion=0,
        e_type=ET_DYN,
        kind=kind,
        ident_problem=ident_problem,
        type_problem=type_problem,
        interpreter=interpreter,
        dynamic=True,
        needed=tuple(needed),
        soname=soname,
        rpath=rpath,
        runpath=runpath,
        flags=DF_BIND_NOW if bind_now else 0,
        flags_1=flags_1 | (DF_1_NODEFLIB if nodeflib else 0),
        has_relr=has_relr,
        version_needs=tuple(version_needs),
        version_defs=defs,
        has_versym=has_versym or any(u.version for u in undefined),
        defined=table,
        undefined=tuple(undefined),
        ldso=ldso,
    )


def _version_defs(soname: str | None, versions: Sequence[str]) -> tuple[VersionDef, ...]:
    if not versions:
        return ()
    base = soname or "base"
    named = (VersionDef(i, v, elf_hash(v)) for i, v in enumerate(versions, start=2))
    return (VersionDef(1, base, elf_hash(base), base=True), *named)


def _defined(
    defines: Mapping[str, str | None] | Iterable[str],
    hidden: Mapping[str, str],
    index: Mapping[str, int],
    has_versym: bool,
) -> dict[str, tuple[int, ...]]:
    """Symbol -> raw versym values, as the reader keeps them (0xffff: no versym table)."""
    pairs = defines.items() if isinstance(defines, Mapping) else ((n, None) for n in defines)
    table: dict[str, tuple[int, ...]] = {}
    for name, version in pairs:
        value = (index[version] if version else 1) if has_versym else 0xFFFF
        table[name] = (*table.get(name, ()), value)
    for name, version in hidden.items():
        table[name] = (*table.get(name, ()), index[version] | VERSYM_HIDDEN)
    return table


def program(
    needed: Sequence[str] = (), *, interpreter: str = LDSO, flags_1: int = 0, **facts: Any
) -> ElfFacts:
    """A PIE program (what gcc builds by default) with PT_INTERP `interpreter`."""
    return elf(
        FileKind.PIE_EXEC,
        needed=needed,
        interpreter=interpreter,
        flags_1=DF_1_PIE | flags_1,
        **facts,
    )


def library(soname: str, needed: Sequence[str] = (), **facts: Any) -> ElfFacts:
    """A shared library with DT_SONAME `soname`."""
    return elf(FileKind.SHARED, soname=soname, needed=needed, **facts)


def glibc_ldso(version: tuple[int, int] = (2, 40)) -> ElfFacts:
    """Debian's ld-linux-x86-64.so.2 with its compiled-in defaults readable."""
    defaults = LdsoDefaults(DEBIAN_LDSO.system_dirs, DEBIAN_LDSO.lib, version=version)
    return library(
        "ld-linux-x86-64.so.2",
        versions=("GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_PRIVATE"),
        defines={"_dl_find_object": "GLIBC_2.2.5", "__tls_get_addr": "GLIBC_2.3"},
        ldso=defaults,
    )


def glibc_libc(defines: Mapping[str, str | None] | None = None) -> ElfFacts:
    """Debian's libc.so.6: versions GLIBC_2.2.5, GLIBC_2.34, GLIBC_ABI_DT_RELR."""
    table = defines or {"puts": "GLIBC_2.2.5", "__libc_start_main": "GLIBC_2.34"}
    return library(
        "libc.so.6",
        ["ld-linux-x86-64.so.2"],
        versions=LIBC_VERSIONS,
        defines=table,
        version_needs=[need("ld-linux-x86-64.so.2", "GLIBC_2.3")],
        undefined=[ref("__tls_get_addr", "GLIBC_2.3", "ld-linux-x86-64.so.2", at_start=True)],
    )


def musl_ldso() -> ElfFacts:
    """musl's ld-musl-x86_64.so.1 (libc and loader in one, no symbol versions)."""
    return library("libc.musl-x86_64.so.1", defines=("__libc_start_main", "stdin", "puts"))


# ---------------------------------------------------------------- root filesystems


@dataclass
class Tree:
    """A root filesystem index under construction; `rootfs()` adds the parent directories.

    Regular files get distinct file ids (st_dev/st_ino) unless made with `hardlink`."""

    entries: dict[str, Entry] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)
    next_id: int = 1

    def file(
        self,
        path: str,
        facts: ElfFacts | None = None,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        caps: bool = False,
        verify: str | None = None,
        layer: int = 0,
    ) -> Tree:
        """A regular file: an ELF (`facts`) or one open_verify rejects with `verify`."""
        self.next_id += 1
        self.entries[path] = Entry(
            path, EntryType.FILE, layer, 4096, mode, uid, gid, None, self.next_id, caps,
            verify, facts,
        )  # fmt: skip
        return self

    def hardlink(self, path: str, existing: str) -> Tree:
        """Another name for the regular file `existing` (same file id)."""
        old = self.entries[existing]
        self.entries[path] = Entry(
            path, EntryType.FILE, old.layer, old.size, old.mode, old.uid, old.gid, None,
            old.file_id, old.has_caps, old.verify, old.elf,
        )  # fmt: skip
        return self

    def link(self, path: str, target: str) -> Tree:
        self.entries[path] = Entry(path, EntryType.SYMLINK, 0, link_target=target)
        return self

    def dir(self, path: str) -> Tree:
        self.entries[path] = Entry(path, EntryType.DIR, 0, mode=0o755)
        return self

    def text(self, path: str, data: bytes, *, keep: bool = True) -> Tree:
        """A small non-ELF file, kept verbatim (ld.so.cache, ld.so.conf, path files)."""
        self.file(path, mode=0o644, verify="invalid ELF header")
        if keep:
            self.kept[path] = data
        return self

    def rootfs(self) -> RootFS:
        entries = dict(self.entries)
        for path in list(entries):
            parent = path.rpartition("/")[0]
            while parent and parent not in entries:
                entries[parent] = Entry(parent, EntryType.DIR, 0, mode=0o755)
                parent = parent.rpartition("/")[0]
        return RootFS(entries, dict(self.kept))


def glibc_tree(ldso_version: tuple[int, int] = (2, 40)) -> Tree:
    """Debian 12's loader and libc, /lib64/ld-linux-x86-64.so.2 a symlink as there."""
    tree = Tree()
    tree.file(LDSO_FILE, glibc_ldso(ldso_version)).file(LIBC, glibc_libc())
    return tree.link(LDSO, "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def musl_tree(path_file: bytes | None = None) -> Tree:
    """Alpine's loader, its libc symlink and (optionally) its path file."""
    tree = Tree().file(MUSL_LDSO, musl_ldso())
    tree.link("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
    if path_file is not None:
        tree.text(MUSL_PATH_FILE, path_file)
    return tree


CacheRow = tuple[str, str] | tuple[str, str, str]  # soname, path[, glibc-hwcaps name]


def ld_so_cache(
    rows: Sequence[CacheRow], *, flags: int = X86_64_LIBC6, layout: str = "new"
) -> bytes:
    """/etc/ld.so.cache bytes as ldconfig writes them: keys in descending _dl_cache_libcmp
    order, glibc-hwcaps entries before the plain one of the same key, duplicates in the
    order given (the first directory scanned wins at lookup). `layout` "old" is the libc5
    format, "compat" the old one with the new one inside (no hwcaps entries in either)."""
    names = sorted({row[2] for row in rows if len(row) == 3})
    entries = []
    for order, row in enumerate(rows):
        hwcap = 0
        if len(row) == 3:
            level = int(row[2].rsplit("-v", 1)[1]) - 1 if "-v" in row[2] else 0
            hwcap = DL_CACHE_HWCAP_EXTENSION | level << 32 | names.index(row[2])
        entries.append((row[0], row[1], flags, hwcap, order))

    def compare(a: tuple[str, str, int, int, int], b: tuple[str, str, int, int, int]) -> int:
        by_key = cache_libcmp(b[0].encode(), a[0].encode())
        return by_key or (not a[3]) - (not b[3]) or a[4] - b[4]

    ordered = [e[:4] for e in sorted(entries, key=functools.cmp_to_key(compare))]
    if layout != "new":
        assert not names, "the old layouts have no hwcap field"
        return write_old(ordered) if layout == "old" else write_compat(ordered)
    return write_new(ordered, names)


# ---------------------------------------------------------------- image config, loader objects


def config(*env: str, user: str | None = None, working_dir: str | None = None) -> ImageConfig:
    """An amd64 image config with Env entries "NAME=value"."""
    return ImageConfig(env=tuple(env), user=user, working_dir=working_dir)


def context(
    rootfs: RootFS, image: ImageConfig | None = None, cpu_level: str | None = None
) -> LoaderContext:
    """The image-wide loader inputs (ld.so.cache parsed from the kept bytes)."""
    return setup.make_context(rootfs, image or config(), cpu_level)


def _lib(musl: bool) -> CLibrary:
    return c_library(LibC.MUSL if musl else LibC.GLIBC)


def glibc_params(ctx: LoaderContext, *, secure: bool = False) -> ProcessParams:
    """Process parameters of the image's glibc ld.so (its compiled-in defaults)."""
    return _lib(False).params(ctx, LDSO, secure)


def musl_process_params(ctx: LoaderContext, *, secure: bool = False) -> ProcessParams:
    """Process parameters of the image's musl loader (its path file)."""
    return _lib(True).params(ctx, MUSL_LDSO, secure)


def loaded(
    path: str, facts: ElfFacts, loader: int | None = None, file: str | None = None
) -> LoadedObject:
    """An object already in the process, found as `path` (its realname)."""
    return LoadedObject(path, file or path, facts, (path,), loader)


def find(
    ctx: LoaderContext,
    objects: Sequence[LoadedObject],
    name: str,
    *,
    requester: int | None = None,
    params: ProcessParams | None = None,
    musl: bool = False,
) -> SearchResult:
    """Where the loader finds `name` for `objects[requester]` (default: the last one)."""
    index = len(objects) - 1 if requester is None else requester
    lib = _lib(musl)
    chosen = params or lib.params(ctx, MUSL_LDSO if musl else LDSO, False)
    return lib.search(ctx, chosen, objects, index, name)


def process(ctx: LoaderContext, main: str, *, musl: bool = False) -> Process:
    """The process the image's loader (glibc's, or musl's) builds for the program at `main`:
    its preloads as that loader reads them, then the DT_NEEDED breadth-first."""
    entry = ctx.regular_file(main)
    assert entry is not None and entry.elf is not None, f"no ELF at {main}"
    return LoaderSession(ctx).process(main, entry, entry.elf, MUSL_LDSO if musl else LDSO)


def findings(ctx: LoaderContext, proc: Process) -> list[Finding]:
    """The checks the process's C library's loader runs (glibc adds versions, DT_RELR)."""
    return Judge(LoaderSession(ctx)).findings(proc)


def verdicts(
    rootfs: RootFS, image: ImageConfig | None = None, cpu_level: str | None = None
) -> Mapping[str, FileVerdict]:
    """imagescan's verdict for every ELF file of the image (the whole pipeline's middle)."""
    return analyze(rootfs, image or config(), cpu_level).verdicts


# ---------------------------------------------------------------- reading results


def resolved(proc: Process) -> dict[str, str | None]:
    """NEEDED/preload name -> the path it was found as (first resolution of each name)."""
    out: dict[str, str | None] = {}
    for res in proc.resolutions:
        if out.get(res.name) is None:
            out[res.name] = proc.objects[res.found].path if res.found is not None else None
    return out


def load_order(proc: Process) -> list[str]:
    return [obj.path for obj in proc.objects]


def tried(result: SearchResult) -> list[tuple[str, str, str]]:
    """(path, rule, outcome) of every candidate, in order."""
    return [(s.path, str(s.rule), str(s.outcome)) for s in result.steps]


def kinds(found: Iterable[Finding]) -> list[tuple[str, str, str | None]]:
    """(kind, subject, fatal_at) of findings, sorted."""
    return sorted((str(f.kind), f.subject, f.fatal_at and str(f.fatal_at)) for f in found)
