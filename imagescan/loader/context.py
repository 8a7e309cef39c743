"""What the loader emulation knows about one image, gathered once: the search defaults of
its own ld.so, its ld.so.cache, its Env, preloads, and memoised path queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from imagescan.elf.model import ElfFacts, LdsoDefaults
from imagescan.loader.ldcache import LdCache
from imagescan.rootfs.model import Entry, EntryType, RootFS
from imagescan.rootfs.paths import resolve

# e_machine -> (OCI architecture names, ELF class). Used to tell foreign files.
MACHINES: dict[str, tuple[int, int]] = {
    "amd64": (62, 64),
    "386": (3, 32),
    "arm64": (183, 64),
    "arm": (40, 32),
    "ppc64le": (21, 64),
    "s390x": (22, 64),
    "riscv64": (243, 64),
}

# Compiled-in defaults per distribution family, when the image's ld.so cannot be read
# (LOADER.md 3.5 and edge case 9: Debian multiarch vs /lib64).
FALLBACK_LDSO = {
    62: LdsoDefaults(
        ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"),
        "lib/x86_64-linux-gnu",
    ),
    183: LdsoDefaults(
        ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"),
        "lib/aarch64-linux-gnu",
    ),
}

GLIBC_LOADERS = {
    62: ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-x86-64.so.2"),
    183: ("/lib/ld-linux-aarch64.so.1",),
    3: ("/lib/ld-linux.so.2",),
    40: ("/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3"),
    21: ("/lib64/ld64.so.2",),
    22: ("/lib/ld64.so.1",),
    243: ("/lib/ld-linux-riscv64-lp64d.so.1",),
}
MUSL_ARCH = {62: "x86_64", 183: "aarch64", 3: "i386", 40: "armhf", 22: "s390x", 243: "riscv64"}


@dataclass(frozen=True)
class Target:
    """The CPU the verdict is for: machine, class, byte order, glibc-hwcaps preference."""

    machine: int
    elf_class: int
    little_endian: bool = True
    hwcaps: tuple[str, ...] = ()  # glibc-hwcaps subdirectory names, best first
    platform: str | None = "x86_64"


@dataclass
class LoaderContext:
    """Image-wide inputs of every search. Path queries are memoised (the image is fixed)."""

    rootfs: RootFS
    target: Target
    env: dict[str, str]
    run_ids: tuple[int, int] = (0, 0)
    working_dir: str = "/"
    cache: LdCache | None = None
    preload_file: tuple[str, ...] = ()
    _resolved: dict[str, str | None] = field(default_factory=dict)
    # Memos: the image is fixed, so a search (by its inputs) or a cache lookup is too.
    searches: dict[object, object] = field(default_factory=dict)
    cache_hits: dict[object, str | None] = field(default_factory=dict)

    def resolve(self, path: str) -> str | None:
        """The rootfs path of what `path` names after symlinks, or None when absent."""
        if path not in self._resolved:
            self._resolved[path] = resolve(self.rootfs.entries, path).path
        return self._resolved[path]

    def entry(self, path: str) -> Entry | None:
        """The entry `path` leads to (symlinks followed), or None."""
        real = self.resolve(path)
        return self.rootfs.entries.get(real) if real is not None else None

    def regular_file(self, path: str) -> Entry | None:
        found = self.entry(path)
        return found if found is not None and found.type == EntryType.FILE else None

    def facts(self, path: str) -> ElfFacts | None:
        found = self.regular_file(path)
        return found.elf if found is not None else None
