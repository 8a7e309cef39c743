"""SARIF 2.1.0 (OASIS), for code-scanning dashboards: one run, one rule per finding kind.

Locations are paths inside the image, relative to the uriBaseId IMAGE_ROOT (the root of the
squashed filesystem), so a consumer never mistakes them for files of the scanning host; the
image reference, the layer index and the layer's diff_id ride in each result's properties.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imagescan.checks.model import FileVerdict, Finding, FindingKind, Severity
from imagescan.render.hints import add_rule_help, sarif_fix
from imagescan.report import Report
from imagescan.rootfs.model import Skipped

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# Placeholder until the project has a public home page; SARIF wants an absolute URI here.
INFORMATION_URI = "https://github.com/imagescan/imagescan"
IMAGE_ROOT = "IMAGE_ROOT"
FINGERPRINT_KEY = "imagescanFinding/v1"
# the file an image-wide finding of a kind is about, when the finding names no file itself
IMAGE_FINDING_FILE = {FindingKind.STALE_LD_CACHE: "/etc/ld.so.cache"}


@dataclass(frozen=True)
class RuleText:
    """What a finding kind means and what to do about it."""

    name: str
    short: str
    full: str
    help: str
    level: Severity


RULES: dict[FindingKind, RuleText] = {
    FindingKind.MISSING_INTERPRETER: RuleText(
        "MissingInterpreter",
        "The program interpreter (PT_INTERP) is not in the image",
        "The program names a dynamic loader in PT_INTERP that the image lacks; the kernel "
        "refuses to execute it (execve fails with ENOENT: 'required file not found').",
        "Install the loader the program was built for (a glibc program on a musl image needs "
        "glibc's ld-linux), or rebuild the program for the image's C library.",
        Severity.ERROR,
    ),
    FindingKind.MISSING_LIBRARY: RuleText(
        "MissingLibrary",
        "A needed library is not found by the loader's search",
        "A DT_NEEDED name is found nowhere the loader looks (DT_RPATH, LD_LIBRARY_PATH, "
        "DT_RUNPATH, ld.so.cache, default directories); the program stops at start with "
        "'cannot open shared object file'.",
        "Install the package that provides the library or fix RPATH, RUNPATH or "
        "LD_LIBRARY_PATH. The result's properties list every path tried and its rule.",
        Severity.ERROR,
    ),
    FindingKind.INCOMPATIBLE_LIBRARY: RuleText(
        "IncompatibleLibrary",
        "The search reaches an unloadable file before a usable library",
        "The first candidate for a needed library is fatal where it sits (truncated, wrong "
        "byte order, not ELF); the loader stops instead of trying further directories.",
        "Remove or replace the broken file, or make the search reach the right library first.",
        Severity.ERROR,
    ),
    FindingKind.MISSING_SYMBOL_VERSION: RuleText(
        "MissingSymbolVersion",
        "A required symbol version is not defined by its library",
        "A version need such as GLIBC_2.34 names a version the providing library does not "
        "define; the loader refuses to start the program ('version ... not found'). Weak "
        "needs only warn.",
        "Build against the libraries of the runtime image (the classic cause is a multi-stage "
        "build whose build stage is newer than its runtime stage), or use a newer base.",
        Severity.ERROR,
    ),
    FindingKind.UNDEFINED_SYMBOL: RuleText(
        "UndefinedSymbol",
        "A symbol is defined by no object the loader loads",
        "A non-weak undefined symbol that no object in scope defines. Data references and "
        "objects bound at start (-z now, BIND_NOW, LD_BIND_NOW) fail at start; lazily bound "
        "function calls fail when first called.",
        "Ship the library version that defines the symbol, or relink against the libraries "
        "the image has.",
        Severity.ERROR,
    ),
    FindingKind.DT_RELR_WITHOUT_VERSION: RuleText(
        "DtRelrWithoutVersion",
        "DT_RELR relocations without the GLIBC_ABI_DT_RELR version need",
        "An object uses DT_RELR but does not need GLIBC_ABI_DT_RELR; a glibc whose libc "
        "defines that version (2.36 and later) refuses to load it.",
        "Relink with a toolchain that records the GLIBC_ABI_DT_RELR need, or without "
        "-z pack-relative-relocs.",
        Severity.ERROR,
    ),
    FindingKind.STALE_LD_CACHE: RuleText(
        "StaleLdCache",
        "ld.so.cache disagrees with ld.so.conf",
        "The loader's cache was not rebuilt after libraries or its configuration changed: a "
        "library is reachable only through the configuration, or an entry names a deleted "
        "file.",
        "Run ldconfig in the image build after installing libraries.",
        Severity.WARNING,
    ),
    FindingKind.FRAGILE_DEPENDENCY: RuleText(
        "FragileDependency",
        "A library is found only because another object loaded it first",
        "A needed name is satisfied only by a library of that name already loaded for another "
        "object; a change in load order breaks it.",
        "Give the object its own way to the library (DT_NEEDED, RUNPATH or a cache entry).",
        Severity.WARNING,
    ),
    FindingKind.PRELOAD_MISSING: RuleText(
        "PreloadMissing",
        "A preloaded library cannot be opened",
        "A library named by LD_PRELOAD or /etc/ld.so.preload cannot be opened; the loader "
        "prints an error and ignores it.",
        "Remove the preload entry or install the library.",
        Severity.WARNING,
    ),
    FindingKind.CONFIG_NOT_READ: RuleText(
        "ConfigNotRead",
        "A file the loader reads was too large to judge",
        "The image holds a configuration file the loader reads (ld.so.conf and what it "
        "includes, ld.so.cache, ld.so.preload, a musl path file) beyond imagescan's size "
        "budget: the verdicts that depend on it could not be checked.",
        "Shrink or remove the file; a real image's loader configuration is a few kilobytes.",
        Severity.ERROR,
    ),
    FindingKind.NOT_JUDGED: RuleText(
        "NotJudged",
        "ELF files were left unjudged by the bound on work",
        "The image's processes together would load far more objects than any real image's "
        "(a dependency chain thousands of libraries deep): imagescan judged the programs "
        "first and left the remaining files unjudged rather than run without a bound.",
        "Flatten the dependency chain; each object should need the libraries it uses.",
        Severity.ERROR,
    ),
    FindingKind.CPU_DEPENDENT: RuleText(
        "CpuDependent",
        "Whether the program starts depends on the CPU",
        "The loader picks libraries by CPU (glibc-hwcaps subdirectories, $PLATFORM, legacy "
        "hwcaps subdirectories): on some CPU models this file loads a different library and "
        "fails.",
        "Ship a working copy in the plain directory (the baseline), or fix the copy in the "
        "CPU-specific subdirectory; --cpu MODEL judges for one CPU.",
        Severity.WARNING,
    ),
    FindingKind.NO_VERSION_INFORMATION: RuleText(
        "NoVersionInformation",
        "A library that should define symbol versions defines none",
        "The program needs symbol versions from a library without version definitions; the "
        "loader only prints 'no version information available'.",
        "Usually harmless; rebuild the library with its version script to be sure the "
        "program gets the ABI it expects.",
        Severity.NOTE,
    ),
    FindingKind.PROTECTED_COPY_RELOCATION: RuleText(
        "ProtectedCopyRelocation",
        "The program copies a library's protected data",
        "The program's copy relocation binds to a protected symbol of a library; the loader "
        "warns, and refuses to start the program when the library is marked "
        "GNU_PROPERTY_1_NEEDED_INDIRECT_EXTERN_ACCESS (gcc -mno-direct-extern-access).",
        "Rebuild the program as PIE with -fPIC or -mno-direct-extern-access, or give the "
        "symbol default visibility in the library.",
        Severity.ERROR,
    ),
    FindingKind.VERSION_CEILING: RuleText(
        "VersionCeiling",
        "A required symbol version is above the policy's ceiling",
        "The file needs a symbol version (e.g. GLIBC_2.34) newer than the ceiling the policy "
        "declares for that prefix; it will not start on systems that only offer the ceiling.",
        "Build against an older C library (an older build image), or raise the ceiling in the "
        "policy if the oldest supported runtime allows it.",
        Severity.ERROR,
    ),
    FindingKind.RPATH_HYGIENE: RuleText(
        "RpathHygiene",
        "An RPATH or RUNPATH element the policy does not allow",
        "A DT_RPATH or DT_RUNPATH element is empty or relative (both searched from the "
        "working directory), outside the policy's trusted directories, or writable by anyone; "
        "the loader searches it anyway, so what is found there can change or be planted.",
        "Relink with $ORIGIN-relative or absolute trusted directories (patchelf --set-rpath "
        "can rewrite it), or waive the finding in the policy.",
        Severity.WARNING,
    ),
    FindingKind.PLUGIN_HOST_MISSING: RuleText(
        "PluginHostMissing",
        "The program declared to load a plugin is not in the image",
        "The policy names a host program for this plugin, but the image has no such "
        "program; the plugin is judged on its own, where its host's symbols are missing.",
        "Fix the host path in the policy, or add the program to the image.",
        Severity.WARNING,
    ),
    FindingKind.NSS_MODULE_MISSING: RuleText(
        "NssModuleMissing",
        "A service named in nsswitch.conf has no module",
        "glibc loads libnss_<service>.so.2 for each service /etc/nsswitch.conf names, at run "
        "time; a missing module is skipped silently, so user, group or host lookups can "
        "fail without an error.",
        "Install the module's package, or remove the service from /etc/nsswitch.conf.",
        Severity.WARNING,
    ),
    FindingKind.DLOPEN_CANDIDATE_MISSING: RuleText(
        "DlopenCandidateMissing",
        "A library a program may dlopen by name cannot be found",
        "The program imports dlopen and names this library in a string literal; searched "
        "as the loader would from that program, it is not in the image.",
        "Install the library if the program needs it at run time; otherwise waive the finding.",
        Severity.WARNING,
    ),
    FindingKind.GO_PLUGIN_MISMATCH: RuleText(
        "GoPluginMismatch",
        "A Go plugin was built differently from the program that opens it",
        "plugin.Open fails when the plugin and the host were built by different Go "
        "toolchains or with different versions of a package they share.",
        "Build the plugin and the host together, with the same Go toolchain and go.sum.",
        Severity.ERROR,
    ),
}


def rule_text(kind: FindingKind) -> RuleText:
    """The text of a kind; a kind added without text still renders (tests demand text)."""
    if kind in RULES:
        return RULES[kind]
    words = str(kind).replace("-", " ")
    name = "".join(w.capitalize() for w in words.split())
    return RuleText(
        name, words.capitalize(), words.capitalize(), words.capitalize(), Severity.ERROR
    )


def rule_dict(kind: FindingKind) -> dict[str, Any]:
    text = rule_text(kind)
    return {
        "id": str(kind),
        "name": text.name,
        "shortDescription": {"text": text.short},
        "fullDescription": {"text": text.full},
        "help": {"text": text.help},
        "defaultConfiguration": {"level": str(text.level)},
        "properties": {"tags": ["dynamic-loader", "container-image"]},
    }


def image_uri(path: str) -> str:
    """A path inside the image as a relative URI reference (no leading slash).

    ':' is escaped so a first segment never reads as a scheme (RFC 3986 section 4.2);
    bytes that are not UTF-8 (kept as surrogates) are percent-encoded as they were.
    """
    return quote(path.lstrip("/"), safe="/!$&'()*+,;=@", errors="surrogateescape")


def physical_location(path: str) -> dict[str, Any]:
    return {"artifactLocation": {"uri": image_uri(path), "uriBaseId": IMAGE_ROOT}}


def fingerprint(finding: Finding, path: str) -> str:
    """Stable across runs: depends on what is wrong and where, never on order or time."""
    parts = (str(finding.kind), path, finding.subject, finding.required_by or "")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def layer_properties(report: Report, layer: int | None) -> dict[str, Any]:
    """The image reference, the layer index and its diff_id (when the image names one)."""
    out: dict[str, Any] = {"image": report.image.reference, "layer": layer}
    layers = report.image.layers
    if layer is not None and 0 <= layer < len(layers) and layers[layer] is not None:
        out["layerDiffId"] = layers[layer]
    return out


def finding_properties(finding: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": finding.subject}
    if finding.fatal_at is not None:
        out["fatalAt"] = str(finding.fatal_at)
    for key, value in (
        ("requiredBy", finding.required_by),
        ("provider", finding.provider),
        ("version", finding.version),
    ):
        if value is not None:
            out[key] = value
    if finding.symbols:
        out["symbols"] = list(finding.symbols)
    if finding.tried:
        out["tried"] = [{"path": p, "rule": r} for p, r in finding.tried]
    if finding.caused_by is not None:
        out["causedBy"] = finding.caused_by
    if finding.symbols_cut:
        out["symbolsCut"] = finding.symbols_cut
    return out


def related_locations(finding: Finding, path: str) -> list[dict[str, Any]]:
    """The requiring object (when another than the file) and the providing object."""
    related: list[dict[str, Any]] = []
    for role, other in (("required by", finding.required_by), ("provider", finding.provider)):
        if other and other.startswith("/") and other != path:
            related.append(
                {
                    "id": len(related) + 1,
                    "physicalLocation": physical_location(other),
                    "message": {"text": f"{role}: {other}"},
                }
            )
    return related


def waiver_reason(finding: Finding) -> str | None:
    """The reason of the policy waiver that waived the finding, if one did."""
    return finding.waiver


def file_result(report: Report, verdict: FileVerdict, finding: Finding) -> dict[str, Any]:
    """One finding about one ELF file of the image."""
    result = _result(finding)
    result["locations"] = [{"physicalLocation": physical_location(verdict.path)}]
    related = related_locations(finding, verdict.path)
    if related:
        result["relatedLocations"] = related
    result["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(finding, verdict.path)}
    properties = layer_properties(report, verdict.layer)
    properties["status"] = str(verdict.status)
    if verdict.gate is not None:
        properties["gate"] = verdict.gate
    if verdict.findings_cut:
        properties["findingsCut"] = verdict.findings_cut
    if verdict.host:
        properties["host"] = verdict.host
    result["properties"] = properties | finding_properties(finding)
    sarif_fix(result, report, verdict.path, finding)
    return result


def image_location(finding: Finding) -> str:
    """Where an image-wide finding points: its requiring file, the file its kind is about, its
    provider, else the image root (GitHub code scanning refuses results without a file)."""
    for candidate in (finding.required_by, IMAGE_FINDING_FILE.get(finding.kind), finding.provider):
        if candidate and candidate.startswith("/"):
            return candidate
    return "/"


def image_result(report: Report, finding: Finding) -> dict[str, Any]:
    """A finding about the image as a whole rather than one ELF file."""
    result = _result(finding)
    where = image_location(finding)
    location = physical_location(where)
    if where == "/":
        location["artifactLocation"]["uri"] = "./"
    result["locations"] = [{"physicalLocation": location}]
    related = related_locations(finding, where)
    if related:
        result["relatedLocations"] = related
    identity = finding.provider or ""
    result["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(finding, f"{where}\0{identity}")}
    result["properties"] = {"image": report.image.reference} | finding_properties(finding)
    sarif_fix(result, report, "", finding)
    return result


def _result(finding: Finding) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": str(finding.kind),
        "ruleIndex": list(FindingKind).index(finding.kind),
        "level": str(finding.severity),
        "message": {"text": finding.message},
    }
    reason = waiver_reason(finding)
    if reason is not None:
        # an external suppression (the policy file); no status means accepted (SARIF 2.1.0
        # suppression object; GitLab and sarif-sdk read it so),
        # and the schema revisions disagree on the property's name (state/status)
        result["suppressions"] = [{"kind": "external", "justification": reason}]
    return result


def skipped_notification(report: Report, item: Skipped) -> dict[str, Any]:
    """A file the scan could not use, reported as a tool notification, not a result."""
    return {
        "level": "warning",
        "message": {"text": f"{item.path}: skipped: {item.reason}"},
        "locations": [{"physicalLocation": physical_location(item.path)}],
        "descriptor": {"id": "skipped-file"},
        "properties": layer_properties(report, item.layer),
    }


def run_properties(report: Report) -> dict[str, Any]:
    image = report.image
    return {
        "image": {
            "reference": image.reference,
            "source": image.source,
            "manifestDigest": image.manifest_digest,
            "architecture": image.architecture,
            "os": image.os,
            "layers": list(image.layers),
        },
        "summary": {
            "files": len(report.files),
            "byStatus": report.status_counts(),
            # the loader's failures the policy does not pass (its gate): what a gate reads
            "failing": len(report.failing()),
            "skipped": len(report.not_judged()),
        },
        "config": {"policy": report.policy, "configFile": report.config_file},
    }


def driver_dict(report: Report) -> dict[str, Any]:
    return {
        "name": "imagescan",
        "version": report.tool_version,
        "informationUri": INFORMATION_URI,
        "rules": [rule_dict(kind) for kind in FindingKind],
    }


def base_ids(report: Report) -> dict[str, Any]:
    """IMAGE_ROOT has no URI on this host: the image is read, never unpacked."""
    text = (
        f"The root directory of the image's squashed filesystem ({report.image.reference}); "
        "paths are inside the image, not on this host."
    )
    return {IMAGE_ROOT: {"description": {"text": text}}}


def sarif_dict(report: Report) -> dict[str, Any]:
    """The SARIF log as plain data (one run)."""
    results = [file_result(report, v, f) for v in report.files for f in v.findings]
    results += [image_result(report, f) for f in report.image_findings]
    notifications = [skipped_notification(report, s) for s in report.skipped]
    run = {
        "tool": {"driver": driver_dict(report)},
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "originalUriBaseIds": base_ids(report),
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": run_properties(report),
    }
    add_rule_help(run, report)
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(report: Report) -> str:
    """The report as a SARIF 2.1.0 log (JSON text)."""
    return json.dumps(sarif_dict(report), indent=2) + "\n"
