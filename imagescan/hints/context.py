"""What every fix hint may look at: the report's verdicts, the image's files and packages."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagescan.checks.model import FileVerdict
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.hints.index import PackageIndex
from imagescan.hints.model import ImageProvenance, Provenance
from imagescan.hints.provenance import provenance_of
from imagescan.image.model import ImageConfig
from imagescan.loader.ldconf import parse_ld_so_conf
from imagescan.packages.model import PackageDb
from imagescan.rootfs.model import EntryType, RootFS
from imagescan.rootfs.paths import listdir, resolve


@dataclass
class HintContext:
    """The inputs of the hint functions, with lookups built once per scan."""

    rootfs: RootFS
    config: ImageConfig
    packages: PackageDb
    image: ImageProvenance
    provenance: Mapping[str, Provenance]
    verdicts: Mapping[str, FileVerdict]
    index: PackageIndex | None = None
    steps: tuple[str | None, ...] = ()  # the build step of each layer
    _by_name: dict[str, list[str]] | None = field(default=None, repr=False)
    _conf_dirs: tuple[str, ...] | None = field(default=None, repr=False)
    _libraries: list[tuple[str, ElfFacts]] | None = field(default=None, repr=False)

    def resolve(self, path: str) -> str | None:
        """The real path `path` leads to inside the image."""
        return resolve(self.rootfs.entries, posixpath.normpath(path)).path

    def facts(self, path: str) -> ElfFacts | None:
        """The ELF facts of the file `path` leads to."""
        real = self.resolve(path)
        entry = self.rootfs.entries.get(real) if real else None
        return entry.elf if entry is not None and entry.type is EntryType.FILE else None

    def origin(self, path: str) -> str:
        """Where a file came from, in one line (judged files and any other)."""
        real = self.resolve(path) or path
        known = self.provenance.get(real)
        if known is not None:
            return known.summary
        entry = self.rootfs.entries.get(real)
        layer = entry.layer if entry is not None else None
        return provenance_of(real, layer, self.rootfs, self.steps, self.packages).summary

    def files_named(self, name: str) -> list[str]:
        """ELF files whose SONAME or file name is `name` (symlinks count by their name),
        as real paths, sorted."""
        if self._by_name is None:
            self._by_name = self._name_index()
        return sorted(set(self._by_name.get(name, ())))

    def _name_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for path, entry in self.rootfs.entries.items():
            if entry.type is EntryType.SYMLINK:
                facts = self.facts(path)
                if facts is not None:
                    index.setdefault(path.rpartition("/")[2], []).append(self.resolve(path) or path)
            elif entry.type is EntryType.FILE and entry.elf is not None:
                index.setdefault(path.rpartition("/")[2], []).append(path)
                if entry.elf.soname:
                    index.setdefault(entry.elf.soname, []).append(path)
        return index

    def defining(self, symbol: str, machine: int) -> list[str]:
        """Shared libraries of the image's architecture that define `symbol` (a program's
        own definitions, such as copy-relocated data, are no provider)."""
        if self._libraries is None:
            self._libraries = [
                (path, entry.elf)
                for path, entry in sorted(self.rootfs.entries.items())
                if entry.type is EntryType.FILE
                and entry.elf is not None
                and entry.elf.kind is FileKind.SHARED
            ]
        return [
            path
            for path, facts in self._libraries
            if facts.machine == machine and symbol in facts.defined
        ]

    def programs_defining(self, symbol: str, machine: int) -> list[str]:
        """Programs of the image's architecture that export `symbol` (plugin hosts)."""
        return [
            path
            for path, entry in sorted(self.rootfs.entries.items())
            if entry.type is EntryType.FILE
            and entry.elf is not None
            and entry.elf.kind in (FileKind.EXEC, FileKind.PIE_EXEC)
            and entry.elf.machine == machine
            and symbol in entry.elf.defined
        ]

    def conf_dirs(self) -> tuple[str, ...]:
        """The directories /etc/ld.so.conf names (what `ldconfig` would put in the cache)."""
        if self._conf_dirs is None:
            conf = parse_ld_so_conf(self.rootfs.kept.get, lambda d: listdir(self.rootfs, d))
            self._conf_dirs = tuple(self.resolve(d) or d for d in conf.dirs)
        return self._conf_dirs
