"""Version needs (glibc elf/dl-version.c `_dl_check_map_versions`, `match_symbol`).

Checked for every object at start, whatever the binding mode, against the specific object
that the Verneed entry names (LOADER.md 3.6, edge case 6).
"""

from __future__ import annotations

from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity
from imagescan.elf.model import VersionNeed
from imagescan.loader.model import LoadedObject, Process

DT_RELR_VERSION = "GLIBC_ABI_DT_RELR"


# provider file -> the (name, hash) of each version it defines: what match_symbol compares
# a need with. Many objects need libc's versions, and each would scan its Verdefs again.
DefinedVersions = dict[str, frozenset[tuple[str, int]]]


def version_findings(process: Process, defined: DefinedVersions | None = None) -> list[Finding]:
    """Missing versions (fatal unless weak) and providers without version information.
    `defined` is a memo of the providers' versions, kept by the caller for an image."""
    defined = {} if defined is None else defined
    by_name = _names(process)
    findings: list[Finding] = []
    for obj in process.objects:
        for need in obj.facts.version_needs:
            provider = by_name.get(need.file)
            if provider is not None and (need.name, need.hash) not in _defined(defined, provider):
                findings.extend(_check_need(obj, need, provider))
    return findings


def _defined(defined: DefinedVersions, provider: LoadedObject) -> frozenset[tuple[str, int]]:
    versions = defined.get(provider.file)
    if versions is None:
        versions = frozenset((vd.name, vd.hash) for vd in provider.facts.version_defs)
        defined[provider.file] = versions
    return versions


def _names(process: Process) -> dict[str, LoadedObject]:
    """find_needed's view: each object by the names it was loaded or later looked up under
    (add_name_to_object records a lookup by SONAME, e.g. a NEEDED naming the object itself,
    which is how a main object's own Verneed finds it)."""
    by_name: dict[str, LoadedObject] = {}
    for obj in reversed(process.objects):  # the first object known by a name wins
        by_name.update((name, obj) for name in (*obj.names, obj.path))
    for res in process.resolutions:
        if res.found is not None:
            by_name.setdefault(res.name, process.objects[res.found])
    return by_name


def _check_need(obj: LoadedObject, need: VersionNeed, provider: LoadedObject) -> list[Finding]:
    if not provider.facts.version_defs:
        message = f"{provider.path}: no version information available (required by {obj.path})"
        return [
            _finding(
                FindingKind.NO_VERSION_INFORMATION,
                Severity.NOTE,
                obj,
                need,
                provider,
                message,
                None,
            )
        ]
    if any(vd.name == need.name and vd.hash == need.hash for vd in provider.facts.version_defs):
        return []
    message = f"{provider.path}: version `{need.name}' not found (required by {obj.path})"
    if need.weak:
        return [
            _finding(
                FindingKind.MISSING_SYMBOL_VERSION,
                Severity.WARNING,
                obj,
                need,
                provider,
                message + " [weak]",
                None,
            )
        ]
    return [
        _finding(
            FindingKind.MISSING_SYMBOL_VERSION,
            Severity.ERROR,
            obj,
            need,
            provider,
            message,
            FatalAt.STARTUP,
        )
    ]


def _finding(
    kind: FindingKind,
    severity: Severity,
    obj: LoadedObject,
    need: VersionNeed,
    provider: LoadedObject,
    message: str,
    fatal_at: FatalAt | None,
) -> Finding:
    symbols = tuple(
        sorted(
            u.name
            for u in obj.facts.undefined
            if u.version == need.name and u.version_file == need.file
        )
    )
    return Finding(
        kind,
        severity,
        need.name,
        message,
        fatal_at=fatal_at,
        required_by=obj.path,
        provider=provider.path,
        version=need.name,
        symbols=symbols,
    )


def dt_relr_findings(process: Process) -> list[Finding]:
    """An object with DT_RELR and version needs that needs libc but not GLIBC_ABI_DT_RELR is
    refused by a glibc >= 2.36 loader (_dl_check_map_versions), i.e. one whose libc defines
    that version. The test sits inside `if (dyn != NULL)`, dyn being DT_VERNEED: an object
    without any version need is not refused, and the NEEDED name must start "libc.so."."""
    findings: list[Finding] = []
    for obj in process.objects:
        facts = obj.facts
        if not facts.has_relr or not facts.version_needs:
            continue
        if not any(n.startswith("libc.so.") for n in facts.needed):
            continue
        if any(n.name == DT_RELR_VERSION for n in facts.version_needs):
            continue
        libc = next((o for o in process.objects if o.facts.soname == "libc.so.6"), None)
        if libc is None or not any(v.name == DT_RELR_VERSION for v in libc.facts.version_defs):
            continue
        findings.append(
            Finding(
                FindingKind.DT_RELR_WITHOUT_VERSION,
                Severity.ERROR,
                DT_RELR_VERSION,
                f"{obj.path}: DT_RELR without GLIBC_ABI_DT_RELR dependency",
                fatal_at=FatalAt.STARTUP,
                required_by=obj.path,
                provider=libc.path,
            )
        )
    return findings
