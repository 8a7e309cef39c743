"""ELF facts as frozen values, named with the ELF spec's words.

Symbol tables are kept compact (one dict entry per defined name) because an image holds
hundreds of thousands of them; see DESIGN.md "Performance rules".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

# e_type
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
# DT_FLAGS / DT_FLAGS_1 bits the loader looks at
DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_NODEFLIB = 0x800
DF_1_PIE = 0x08000000
# Versym: bit 15 marks a hidden (non-default) version; the rest is the version index.
VERSYM_HIDDEN = 0x8000
VER_NDX_LOCAL, VER_NDX_GLOBAL = 0, 1
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2


class FileKind(enum.StrEnum):
    """What an ELF file is, in the verdict files' words."""

    EXEC = "exec"
    PIE_EXEC = "pie-exec"
    SHARED = "shared"
    STATIC_EXEC = "static-exec"
    STATIC_PIE = "static-pie"
    RELOCATABLE = "relocatable"
    DEBUGINFO = "debuginfo"
    CORE = "core"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class VersionNeed:
    """One Vernaux entry: `file` (vn_file, a NEEDED name) must define version `name`."""

    file: str
    name: str
    hash: int
    weak: bool = False


@dataclass(frozen=True, slots=True)
class VersionDef:
    """One Verdef entry. `index` is what versym values refer to; `base` is the file's own name."""

    index: int
    name: str
    hash: int
    base: bool = False
    weak: bool = False


@dataclass(frozen=True, slots=True)
class UndefinedSymbol:
    """An undefined dynamic symbol this file references.

    `version`/`version_file` come from its versym via Vernaux (None when unversioned).
    `bound_at_start` is True when a non-PLT relocation (GLOB_DAT, COPY, absolute, TLS, IFUNC)
    references it: then it is resolved at load time whatever the binding mode (LOADER.md 3.8).
    `lazy` is True when a JUMP_SLOT relocation references it (resolved on first call unless
    BIND_NOW). A symbol with neither is referenced by no relocation. `copy` marks a symbol
    the executable defines itself but fills by a COPY relocation: its lookup skips the
    executable (dl-lookup.c skip_map, ELF_RTYPE_CLASS_COPY) and happens at start.
    """

    name: str
    version: str | None = None
    version_file: str | None = None
    weak: bool = False
    bound_at_start: bool = False
    lazy: bool = False
    type: int = 0  # STT_*
    copy: bool = False  # named by a COPY relocation: looked up past the object itself
    # st_value != 0 although undefined: a non-PIE executable's canonical PLT entry, the
    # function's address for the whole process (dl-protected.h checks it, issue 9)
    canonical: bool = False


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    """What `.go.buildinfo` says (what `go version -m` prints)."""

    go_version: str
    main_module: str | None = None
    main_version: str | None = None
    build_mode: str | None = None
    cgo_enabled: bool | None = None
    stripped: bool = False
    deps: tuple[tuple[str, str], ...] = ()  # (module path, version)
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LdsoDefaults:
    """Search defaults compiled into an ld.so: system dirs and the `$LIB` expansion."""

    system_dirs: tuple[str, ...]
    lib: str
    platform: str | None = None
    version: tuple[int, int] | None = None  # glibc's, from "release version 2.36" in rodata


@dataclass(frozen=True, slots=True)
class ElfFacts:
    """Everything the loader emulation and the checks need from one ELF file.

    `defined` maps each defined dynamic symbol name to the raw versym values of its
    definitions (usually one; 0xffff when the file has no versym table), so that version
    matching in dl-lookup.c's check_match can be done later: bit 15 = hidden, the rest is a
    `VersionDef.index`. `defined_types` is not kept: the loader rejects only undefined and
    zero-valued non-TLS symbols, which the reader drops already.
    """

    elf_class: int  # 32 or 64
    little_endian: bool
    machine: int  # e_machine
    osabi: int
    abiversion: int
    e_type: int
    kind: FileKind
    # open_verify (dl-load.c) problems that make this file a FATAL candidate, split at where
    # glibc checks e_machine: `ident_problem` covers EI_VERSION, EI_OSABI, EI_ABIVERSION,
    # e_ident padding and e_version (checked before the machine); `type_problem` covers
    # e_type not DYN/EXEC and a wrong e_phentsize (checked after). None = fine. Class and
    # byte order are compared by the loader with the process's own.
    ident_problem: str | None = None
    type_problem: str | None = None
    # what _dl_map_object_from_fd / _dl_map_segments refuse (imagescan.elf.mapping): a
    # program header table past the file's end, PT_LOAD alignment or order, no PT_LOAD, no
    # (or an empty) PT_DYNAMIC. None = mappable.
    map_problem: str | None = None
    interpreter: str | None = None
    dynamic: bool = False
    needed: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()  # DT_FILTER: loaded like DT_NEEDED, fatal when absent
    auxiliary: tuple[str, ...] = ()  # DT_AUXILIARY: loaded when found, ignored when absent
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags: int = 0
    flags_1: int = 0
    has_relr: bool = False
    has_textrel: bool = False
    version_needs: tuple[VersionNeed, ...] = ()
    version_defs: tuple[VersionDef, ...] = ()
    has_versym: bool = False
    defined: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    undefined: tuple[UndefinedSymbol, ...] = ()
    go: GoBuildInfo | None = None
    ldso: LdsoDefaults | None = None
    strings_so: tuple[str, ...] = ()  # `lib*.so*` string literals, for dlopen candidates
    symbols_read: bool = True  # False: headers only (`imagescan ls`), no symbol tables
    # (package path, hex) of each `go.link.pkghashbytes.<package>` a Go plugin or plugin host
    # exports: the link-time fingerprints runtime/plugin.go compares (issue 5)
    go_pkghashes: tuple[tuple[str, str], ...] = ()
    # GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (gcc -mno-direct-extern-access) and the
    # defined STV_PROTECTED symbols: glibc refuses a copy relocation against those
    # (sysdeps/generic/dl-protected.h _dl_check_protected_symbol)
    indirect_extern_access: bool = False
    protected: frozenset[str] = frozenset()
    # hex digests of the file's whole content, for SBOM checksums (issue 13; SPDX 2.3 wants
    # SHA-1 for every file); None when the facts did not come from a file's bytes
    sha256: str | None = None
    sha1: str | None = None

    @property
    def bind_now(self) -> bool:
        """DF_BIND_NOW or DF_1_NOW (`-z now`): every PLT slot resolved at start."""
        return bool(self.flags & DF_BIND_NOW or self.flags_1 & DF_1_NOW)

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def is_static(self) -> bool:
        return self.kind in (FileKind.STATIC_EXEC, FileKind.STATIC_PIE)

    def version_name(self, index: int) -> str | None:
        """The Verdef name for a versym index (hidden bit ignored)."""
        index &= ~VERSYM_HIDDEN
        for vd in self.version_defs:
            if vd.index == index:
                return vd.name
        return None
