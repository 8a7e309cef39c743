"""What every fix hint may look at: the report's verdicts, the image's files and packages."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field

from imagescan.checks.model import FileVerdict, Finding, FindingKind
from imagescan.elf.model import ElfFacts, FileKind
from imagescan.hints.index import PackageIndex
from imagescan.hints.model import ImageProvenance, Provenance
from imagescan.hints.provenance import provenance_of
from imagescan.image.model import ImageConfig
from imagescan.loader.ldconf import parse_ld_so_conf
from imagescan.packages.model import PackageDb
from imagescan.rootfs.model import EntryType, RootFS
from imagescan.rootfs.paths import listdir, resolve


@dataclass(frozen=True)
class VerdictCauses:
    """Of one verdict: the real paths of the files its process loaded, and its
    missing-library and missing-version findings by the object that required them (in
    the verdict's order)."""

    loaded_real: frozenset[str]
    missing: Mapping[str | None, list[Finding]]


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
    _files: list[tuple[str, ElfFacts]] | None = field(default=None, repr=False)
    _defined_by: dict[str, list[tuple[str, ElfFacts]]] | None = field(default=None, repr=False)
    # path -> the real path it leads to: each undefined symbol's hint resolves every file
    # its program loads, 19,500 walks for a 2,380-ELF image's 2,000 (issue 14)
    _real: dict[str, str | None] = field(default_factory=dict, repr=False)
    # verdict path -> (that verdict, the real paths of what its process loaded, its
    # missing libraries and versions by requester): the same for each of its findings
    _of_verdict: dict[str, tuple[FileVerdict, VerdictCauses]] = field(
        default_factory=dict, repr=False
    )

    def resolve(self, path: str) -> str | None:
        """The real path `path` leads to inside the image."""
        if path not in self._real:
            self._real[path] = resolve(self.rootfs.entries, posixpath.normpath(path)).path
        return self._real[path]

    def causes(self, verdict: FileVerdict) -> VerdictCauses:
        """What the hints of each of `verdict`'s findings look up, found once."""
        known = self._of_verdict.get(verdict.path)
        if known is None or known[0] is not verdict:
            known = self._of_verdict[verdict.path] = (verdict, self._causes(verdict))
        return known[1]

    def _causes(self, verdict: FileVerdict) -> VerdictCauses:
        loaded = verdict.resolved.values()
        real = frozenset(r for p in loaded if p and (r := self.resolve(p)) is not None)
        missing: dict[str | None, list[Finding]] = {}
        for finding in verdict.findings:
            if finding.kind in (FindingKind.MISSING_SYMBOL_VERSION, FindingKind.MISSING_LIBRARY):
                missing.setdefault(finding.required_by, []).append(finding)
        return VerdictCauses(real, missing)

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
        return self._definers(symbol, machine, FileKind.SHARED)

    def programs_defining(self, symbol: str, machine: int) -> list[str]:
        """Programs of the image's architecture that export `symbol` (plugin hosts)."""
        return self._definers(symbol, machine, FileKind.EXEC, FileKind.PIE_EXEC)

    def _definers(self, symbol: str, machine: int, *kinds: FileKind) -> list[str]:
        """The ELF files of `kinds` that define `symbol`, by path. The symbols the report's
        findings name are looked up in one pass over the files, kept by name: a search of
        every library per finding took 1 s of the XL image's 2,010 findings (issue 14)."""
        if self._defined_by is None:
            self._defined_by = self._definers_of(self._wanted())
        found = self._defined_by.get(symbol)
        if found is None:  # a symbol no finding names: the files searched for it alone
            found = [(p, f) for p, f in self._elf_files() if symbol in f.defined]
        return [p for p, f in found if f.machine == machine and f.kind in kinds]

    def _wanted(self) -> set[str]:
        return {
            finding.subject
            for verdict in self.verdicts.values()
            for finding in verdict.findings
            if finding.kind is FindingKind.UNDEFINED_SYMBOL
        }

    def _definers_of(self, wanted: set[str]) -> dict[str, list[tuple[str, ElfFacts]]]:
        """Each of `wanted` -> the ELF files that define it (none: an empty list)."""
        found: dict[str, list[tuple[str, ElfFacts]]] = {name: [] for name in wanted}
        for path, facts in self._elf_files():
            for name in facts.defined.keys() & wanted:
                found[name].append((path, facts))
        return found

    def _elf_files(self) -> list[tuple[str, ElfFacts]]:
        """Shared libraries and programs, sorted by path."""
        if self._files is None:
            self._files = [
                (path, entry.elf)
                for path, entry in sorted(self.rootfs.entries.items())
                if entry.type is EntryType.FILE
                and entry.elf is not None
                and entry.elf.kind in _DEFINERS
            ]
        return self._files

    def conf_dirs(self) -> tuple[str, ...]:
        """The directories /etc/ld.so.conf names (what `ldconfig` would put in the cache)."""
        if self._conf_dirs is None:
            conf = parse_ld_so_conf(self.rootfs.kept.get, lambda d: listdir(self.rootfs, d))
            self._conf_dirs = tuple(self.resolve(d) or d for d in conf.dirs)
        return self._conf_dirs


_DEFINERS = (FileKind.SHARED, FileKind.EXEC, FileKind.PIE_EXEC)  # what `_definers` looks into
