"""Symbol binding (glibc elf/dl-lookup.c `do_lookup_x`, `check_match`; LOADER.md 3.7, 3.8).

Only references that a relocation names are ever looked up; weak ones may stay unresolved.
A reference reached only through a PLT slot is bound on first call unless the object or
the environment asks for BIND_NOW; everything else is bound at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity
from imagescan.elf.model import VERSYM_HIDDEN, ElfFacts, UndefinedSymbol
from imagescan.loader.libc import BindingRules
from imagescan.loader.libc_glibc import Glibc
from imagescan.loader.model import LoadedObject, Process

# Versym index threshold for unversioned references (dl-lookup.c: 3 unless RETURN_NEWEST).
_FIRST_NON_DEFAULT = 3


def accepts(
    facts: ElfFacts, name: str, version: str | None, names: dict[int, str] | None = None
) -> bool:
    """Whether a lookup of `name` (needing `version`, or unversioned) binds in `facts`.
    `names` is `version_names(facts)`, when the caller keeps it."""
    versyms = facts.defined.get(name)
    if not versyms:
        return False
    if not facts.has_versym:
        return True  # an unversioned provider satisfies any reference
    if version is not None:
        names = version_names(facts) if names is None else names
        return any(_matches_version(names, v, version) for v in versyms)
    if any((v & ~VERSYM_HIDDEN) < _FIRST_NON_DEFAULT for v in versyms):
        return True
    # Exactly one non-hidden versioned definition is unambiguous and accepted.
    return sum(1 for v in versyms if not v & VERSYM_HIDDEN) == 1


def _matches_version(names: dict[int, str], versym: int, version: str) -> bool:
    index = versym & ~VERSYM_HIDDEN
    name = names.get(index)
    if name == version:
        return True
    # l_versions[ndx].hash == 0 (base or global index): accepted unless hidden.
    return name is None and not versym & VERSYM_HIDDEN


def version_names(facts: ElfFacts) -> dict[int, str]:
    """Verdef index -> name, without the base entry (dl-version.c skips VER_FLG_BASE)."""
    return {vd.index: vd.name for vd in facts.version_defs if not vd.base}


@dataclass
class SymbolChecker:
    """Memoised binding: many processes share the same objects, so which of an object's
    references one provider satisfies is computed once per (object, provider) pair, as a
    bit mask over the object's references."""

    bind_now_env: bool = False
    rules: BindingRules = Glibc.binding
    _refs: dict[str, tuple[UndefinedSymbol, ...]] = field(default_factory=dict)
    _pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    # file -> the smallest scope (as files) seen to satisfy every reference of that file.
    # Binding is existential, so any scope holding those files satisfies them too.
    _closed: dict[str, frozenset[str]] = field(default_factory=dict)
    _by_name: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # file -> its Verdef names; lives as long as this checker, which is one scan's.
    _names: dict[str, dict[int, str]] = field(default_factory=dict)

    def unresolved(
        self,
        obj: LoadedObject,
        scope: Sequence[LoadedObject],
        scope_files: frozenset[str] | None = None,
    ) -> tuple[UndefinedSymbol, ...]:
        """The non-weak references of `obj` that no object in `scope` satisfies."""
        files = scope_files if scope_files is not None else frozenset(o.file for o in scope)
        closed = self._closed.get(obj.file)
        if closed is not None and closed <= files:
            return ()
        refs = self.references(obj)
        everything = (1 << len(refs)) - 1
        satisfied = 0
        for provider in scope:
            satisfied |= self.satisfied(obj, provider)
            if satisfied == everything:
                break
        missing = tuple(ref for i, ref in enumerate(refs) if not satisfied >> i & 1)
        if not missing and (closed is None or len(files) < len(closed)):
            self._closed[obj.file] = files
        return missing

    def references(self, obj: LoadedObject) -> tuple[UndefinedSymbol, ...]:
        """The references the loader looks up (named by a relocation, not weak)."""
        refs = self._refs.get(obj.file)
        if refs is None:
            refs = self._refs[obj.file] = tuple(r for r in obj.facts.undefined if _needs_lookup(r))
            by_name: dict[str, list[int]] = {}
            for i, ref in enumerate(refs):
                by_name.setdefault(ref.name, []).append(i)
            self._by_name[obj.file] = by_name
        return refs

    def satisfied(self, obj: LoadedObject, provider: LoadedObject) -> int:
        """Bit i set when `provider` binds reference i of `obj`. A COPY-relocated symbol
        is never bound in the object itself (dl-lookup.c skip_map)."""
        key = (obj.file, provider.file)
        mask = self._pairs.get(key)
        if mask is None:
            refs = self.references(obj)
            by_name = self._by_name[obj.file]
            same = provider.file == obj.file
            mask = 0
            # Only the names both have: a set intersection in C, not a loop over every ref.
            for name in by_name.keys() & provider.facts.defined.keys():
                for i in by_name[name]:
                    if not (same and refs[i].copy):
                        mask |= self._accepts(provider, refs[i]) << i
            self._pairs[key] = mask
        return mask

    def _accepts(self, provider: LoadedObject, ref: UndefinedSymbol) -> bool:
        facts = provider.facts
        if not self.rules.versions:  # musl ignores version names; hidden ones never bind
            versyms = facts.defined.get(ref.name, ())
            return any(not v & VERSYM_HIDDEN or not facts.has_versym for v in versyms)
        names = self._names.get(provider.file)
        if names is None:
            names = self._names[provider.file] = version_names(facts)
        return accepts(facts, ref.name, ref.version, names)

    def when(self, obj: LoadedObject, ref: UndefinedSymbol) -> FatalAt:
        """Start-up for data/GOT references, BIND_NOW objects, LD_BIND_NOW, and loaders
        that bind everything at start (musl)."""
        if ref.bound_at_start or obj.facts.bind_now or self.bind_now_env or not self.rules.lazy:
            return FatalAt.STARTUP
        return FatalAt.CALL


def _needs_lookup(ref: UndefinedSymbol) -> bool:
    return not ref.weak and (ref.bound_at_start or ref.lazy)


def undefined_symbol_findings(
    process: Process, checker: SymbolChecker, *, only: Sequence[int] | None = None
) -> list[Finding]:
    """`undefined symbol: X, version V (path)` for every object (or only those indexed)."""
    findings: list[Finding] = []
    indices = range(len(process.objects)) if only is None else only
    files = frozenset(o.file for o in process.objects)
    for index in indices:
        obj = process.objects[index]
        for ref in checker.unresolved(obj, process.objects, files):
            findings.append(_finding(obj, ref, checker.when(obj, ref)))
    return findings


def _finding(obj: LoadedObject, ref: UndefinedSymbol, when: FatalAt) -> Finding:
    version = f", version {ref.version}" if ref.version else ""
    severity = Severity.ERROR if when == FatalAt.STARTUP else Severity.WARNING
    return Finding(
        FindingKind.UNDEFINED_SYMBOL,
        severity,
        ref.name,
        f"undefined symbol: {ref.name}{version} ({obj.path})",
        fatal_at=when,
        required_by=obj.path,
        version=ref.version,
        symbols=(ref.name,),
    )
