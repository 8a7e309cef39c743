"""Copy relocations against protected data and direct references to protected functions
(glibc sysdeps/generic/dl-protected.h `_dl_check_protected_symbol`, called by dl-lookup.c
do_lookup_x for an STV_PROTECTED definition).

The executable's COPY relocation is looked up past the executable itself; when it binds to a
protected symbol, ld.so prints a warning, and when the defining library is marked
GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (gcc -mno-direct-extern-access) the start fails.
The same holds for a PLT (JUMP_SLOT) lookup of an undefined symbol with a non-zero value,
a non-PIE program's canonical PLT entry, bound to a protected function: then the error
comes when the slot is bound (first call, or start under BIND_NOW).
"""

from __future__ import annotations

from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity
from imagescan.checks.symbols import accepts
from imagescan.elf.model import UndefinedSymbol
from imagescan.loader.model import LoadedObject, Process


def protected_findings(process: Process) -> list[Finding]:
    """One finding per COPY relocation of the main program bound to a protected symbol."""
    main = process.main
    findings: list[Finding] = []
    for ref in main.facts.undefined:
        if not (ref.copy or (ref.canonical and ref.lazy)):
            continue
        provider = _provider(process, ref)
        if provider is None or ref.name not in provider.facts.protected:
            continue
        found = _finding(main, ref, provider) if ref.copy else _direct(main, ref, provider)
        findings.append(found)
    return findings


def _provider(process: Process, ref: UndefinedSymbol) -> LoadedObject | None:
    """The object a COPY lookup binds to: the first in the global scope after the main
    program (ELF_RTYPE_CLASS_COPY skips it) that accepts the reference."""
    for obj in process.objects[1:]:
        if accepts(obj.facts, ref.name, ref.version):
            return obj
    return None


def _direct(main: LoadedObject, ref: UndefinedSymbol, provider: LoadedObject) -> Finding:
    """A canonical PLT entry bound to a protected function (dl-protected.h, type_class PLT)."""
    if provider.facts.indirect_extern_access:
        when = FatalAt.STARTUP if main.facts.bind_now else FatalAt.CALL
        why = "the program takes the address of a protected function"
        return _refused(main, ref, provider, why, when)
    return _warned(
        main,
        ref,
        provider,
        f"warning: direct reference to protected function `{ref.name}' in "
        f"`{provider.path}' may break pointer equality",
    )


def _finding(main: LoadedObject, ref: UndefinedSymbol, provider: LoadedObject) -> Finding:
    if provider.facts.indirect_extern_access:
        why = "a copy relocation against a protected symbol"
        return _refused(main, ref, provider, why, FatalAt.STARTUP)
    return _warned(
        main,
        ref,
        provider,
        f"warning: copy relocation against non-copyable protected symbol `{ref.name}' in "
        f"`{provider.path}' (the program and the library each see their own copy)",
    )


def _refused(
    main: LoadedObject, ref: UndefinedSymbol, provider: LoadedObject, why: str, when: FatalAt
) -> Finding:
    """glibc's refusal for a library marked GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS."""
    return Finding(
        FindingKind.PROTECTED_COPY_RELOCATION,
        Severity.ERROR if when == FatalAt.STARTUP else Severity.WARNING,
        ref.name,
        f"{main.path}: {ref.name}: {provider.path}: error due to "
        f"GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS ({why} of a library built with "
        "-mno-direct-extern-access)",
        fatal_at=when,
        required_by=main.path,
        provider=provider.path,
        symbols=(ref.name,),
    )


def _warned(main: LoadedObject, ref: UndefinedSymbol, provider: LoadedObject, text: str) -> Finding:
    """ld.so's warning for an unmarked library: the program still starts."""
    return Finding(
        FindingKind.PROTECTED_COPY_RELOCATION,
        Severity.WARNING,
        ref.name,
        text,
        required_by=main.path,
        provider=provider.path,
        symbols=(ref.name,),
    )
