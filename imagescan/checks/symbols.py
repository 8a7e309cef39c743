"""Symbol binding (glibc elf/dl-lookup.c `do_lookup_x`, `check_match`; LOADER.md 3.7, 3.8).

Only references that a relocation names are ever looked up; weak ones may stay unresolved.
A reference reached only through a PLT slot is bound on first call unless the object or
the environment asks for BIND_NOW; everything else is bound at start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
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
    return versyms is not None and check_match(facts, names)(versyms, version)


def check_match(
    facts: ElfFacts, names: dict[int, str] | None = None
) -> Callable[[tuple[int, ...], str | None], bool]:
    """glibc's check_match for definitions in `facts`: whether a name defined with these
    versyms binds a lookup needing `version` (or unversioned). One function per provider,
    called with each name's versyms: the binding memo calls it for every name a
    reference shares with a provider, 280,000 times on a 2,380-ELF image (issue 14)."""
    if not facts.has_versym:
        return _defined  # an unversioned provider satisfies any reference
    return functools.partial(_binds_versioned, version_names(facts) if names is None else names)


def _defined(versyms: tuple[int, ...], _: str | None) -> bool:
    return bool(versyms)


def _binds_versioned(names: dict[int, str], versyms: tuple[int, ...], version: str | None) -> bool:
    """A needed version binds a definition of that version, or one whose index has no
    name (the base or global index, l_versions[ndx].hash == 0) that is not hidden. An
    unversioned lookup binds a base or global definition, else exactly one non-hidden
    versioned definition (unambiguous). Loops, not any() over generators (issue 14)."""
    if version is not None:
        for versym in versyms:
            known = names.get(versym & ~VERSYM_HIDDEN)
            if known == version or (known is None and not versym & VERSYM_HIDDEN):
                return True
        return False
    visible = 0
    for versym in versyms:
        if versym & ~VERSYM_HIDDEN < _FIRST_NON_DEFAULT:
            return True
        visible += not versym & VERSYM_HIDDEN
    return visible == 1


def version_names(facts: ElfFacts) -> dict[int, str]:
    """Verdef index -> name, without the base entry (dl-version.c skips VER_FLG_BASE)."""
    return {vd.index: vd.name for vd in facts.version_defs if not vd.base}


@dataclass(frozen=True)
class BindingMemo:
    """A SymbolChecker's memo: which references each provider binds (bit masks, by
    (object file, provider file)), and the smallest scope seen to bind all of a file's."""

    pairs: dict[tuple[str, str], int]
    closed: dict[str, frozenset[str]]


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
    # file -> name -> the index in references() of its reference, or their indices where a
    # name is referenced with several versions. Indices, not bits (`1 << i` is an int of
    # i/8 bytes) nor (version, bit, copy) tuples: a 2,380-ELF image's 822,000 references
    # held 62 MiB of those (issue 14).
    _by_name: dict[str, dict[str, int | list[int]]] = field(default_factory=dict)
    # file -> its Verdef names; lives as long as this checker, which is one scan's.
    _names: dict[str, dict[int, str]] = field(default_factory=dict)
    # No memo of check_match's answers by (provider, name, version): 0.06 s of the XL
    # image's analysis with 2 jobs, for 9 MiB of tuples in each process (issue 14).

    def learned(self) -> BindingMemo:
        """What binding has memoised, for a process that judges the same image's files
        (a forked child's, sent back to the parent: imagescan.parallel)."""
        return BindingMemo(self._pairs, self._closed)

    def learn(self, memo: BindingMemo) -> None:
        """Take in another checker's memo of the same image (the parent's own entries
        equal it where both have one: binding depends on the files only)."""
        for key, mask in memo.pairs.items():
            self._pairs.setdefault(key, mask)
        for file, scope in memo.closed.items():
            mine = self._closed.get(file)
            if mine is None or len(scope) < len(mine):
                self._closed[file] = scope

    def unresolved(
        self,
        obj: LoadedObject,
        scope: Sequence[LoadedObject],
        scope_files: frozenset[str] | None = None,
    ) -> tuple[UndefinedSymbol, ...]:
        """The non-weak references of `obj` that no object in `scope` satisfies."""
        files = scope_files if scope_files is not None else frozenset(o.file for o in scope)
        if self.bound(obj, files):
            return ()
        closed = self._closed.get(obj.file)
        refs = self.references(obj)
        everything = (1 << len(refs)) - 1
        satisfied = 0
        tried: list[str] = []
        for provider in scope:
            satisfied |= self.satisfied(obj, provider)
            tried.append(provider.file)
            if satisfied == everything:
                break
        else:
            return tuple(refs[i] for i in _bits(everything & ~satisfied))
        # The providers tried so far bind every reference, whatever else is in the scope:
        # the memo keeps just those files (far more processes hold them all).
        used = frozenset(tried)
        if closed is None or len(used) < len(closed):
            self._closed[obj.file] = used
        return ()

    def bound(self, obj: LoadedObject, files: frozenset[str]) -> bool:
        """Whether a scope of these files is known to bind every reference of `obj`."""
        closed = self._closed.get(obj.file)
        return closed is not None and closed <= files

    def references(self, obj: LoadedObject) -> tuple[UndefinedSymbol, ...]:
        """The references the loader looks up (named by a relocation, not weak)."""
        refs = self._refs.get(obj.file)
        if refs is None:
            refs = self._refs[obj.file] = tuple(r for r in obj.facts.undefined if _needs_lookup(r))
            by_name: dict[str, int | list[int]] = {}
            for i, ref in enumerate(refs):
                known = by_name.setdefault(ref.name, i)
                if known != i:
                    by_name[ref.name] = [*known, i] if isinstance(known, list) else [known, i]
            self._by_name[obj.file] = by_name
        return refs

    def satisfied(self, obj: LoadedObject, provider: LoadedObject) -> int:
        """Bit i set when `provider` binds reference i of `obj`. A COPY-relocated symbol
        is never bound in the object itself (dl-lookup.c skip_map)."""
        key = (obj.file, provider.file)
        mask = self._pairs.get(key)
        if mask is None:
            mask = self._pairs[key] = self._mask(obj, provider)
        return mask

    def _mask(self, obj: LoadedObject, provider: LoadedObject) -> int:
        refs = self.references(obj)
        by_name = self._by_name[obj.file]
        same = provider.file == obj.file
        defined = provider.facts.defined
        binds = self._acceptor(provider)
        mask = 0
        # Only the names both have: a set intersection in C, not a loop over every ref.
        for name in by_name.keys() & defined.keys():
            found = by_name[name]
            versyms = defined[name]
            if found.__class__ is int and not same:  # the common case, without a tuple
                if binds(versyms, refs[found].version):
                    mask |= 1 << found
                continue
            for index in (found,) if isinstance(found, int) else found:
                ref = refs[index]
                if not (same and ref.copy) and binds(versyms, ref.version):
                    mask |= 1 << index
        return mask

    def _acceptor(self, provider: LoadedObject) -> Callable[[tuple[int, ...], str | None], bool]:
        """check_match for `provider`: whether a name it defines with these versyms binds a
        lookup of that name needing the version (or unversioned)."""
        facts = provider.facts
        if not self.rules.versions:
            return _binds_visible if facts.has_versym else _defined
        names = self._names.get(provider.file)
        if names is None:
            names = self._names[provider.file] = version_names(facts)
        return check_match(facts, names)

    def at_start(self, obj: LoadedObject) -> bool:
        """Whether every reference of `obj` is bound at start, not only its data and GOT
        ones: a BIND_NOW object, LD_BIND_NOW, or a loader that binds all at start (musl)."""
        return obj.facts.bind_now or self.bind_now_env or not self.rules.lazy


def _binds_visible(versyms: tuple[int, ...], _: str | None) -> bool:
    """musl ignores version names; hidden ones never bind."""
    return any(not v & VERSYM_HIDDEN for v in versyms)


def _bits(mask: int) -> Iterator[int]:
    """The indices of the bits set in `mask`, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _needs_lookup(ref: UndefinedSymbol) -> bool:
    return not ref.weak and (ref.bound_at_start or ref.lazy)


def undefined_symbol_findings(
    process: Process, checker: SymbolChecker, *, only: Sequence[int] | None = None
) -> list[Finding]:
    """`undefined symbol: X, version V (path)` for every object (or only those indexed)."""
    findings: list[Finding] = []
    indices = range(len(process.objects)) if only is None else only
    files = frozenset(o.file for o in process.objects)
    needs: list[list[int]] | None = None
    for index in indices:
        obj = process.objects[index]
        if checker.bound(obj, files):
            continue
        needs = _needs(process) if needs is None else needs
        scope = [process.objects[i] for i in _nearest_first(needs, index)]
        missing = checker.unresolved(obj, scope, files)
        if missing:
            at_start = checker.at_start(obj)
            findings += (_finding(obj, ref, at_start or ref.bound_at_start) for ref in missing)
    return findings


def _needs(process: Process) -> list[list[int]]:
    """Object index -> the indices of the objects its names resolved to."""
    needs: list[list[int]] = [[] for _ in process.objects]
    for res in process.resolutions:
        if res.found is not None:
            needs[res.requester].append(res.found)
    return needs


def _nearest_first(needs: list[list[int]], index: int) -> list[int]:
    """Every object index, the object itself and what it needs (breadth-first) first: an
    object is linked against its own dependencies, so binding mostly ends there, and which
    objects bind a reference does not depend on their order (binding is existential)."""
    order, seen = [index], {index}
    at = 0
    while at < len(order):
        for found in needs[order[at]]:
            if found not in seen:
                seen.add(found)
                order.append(found)
        at += 1
    return order + [i for i in range(len(needs)) if i not in seen]


def _finding(obj: LoadedObject, ref: UndefinedSymbol, at_start: bool) -> Finding:
    version = f", version {ref.version}" if ref.version else ""
    when, severity = (
        (FatalAt.STARTUP, Severity.ERROR) if at_start else (FatalAt.CALL, Severity.WARNING)
    )
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
