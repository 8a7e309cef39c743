"""Go plugins that `plugin.Open` would refuse in a Go program of the image (issue 5).

runtime/plugin.go plugin_lastmoduleinit compares, for every package a plugin shares with
the program that opens it, the plugin's link-time fingerprint with the program's
(`go.link.pkghashbytes.<package>`, which the program exports), and fails with "plugin was
built with a different version of package P". A different Go toolchain shows first as a
different `runtime` package. Build information (`go version -m`) names the module versions
when both files carry it (Go does not write it into plugins: cmd/link buildinfo).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imagescan.checks.model import Finding, FindingKind, Severity
from imagescan.elf.model import ElfFacts, FileKind

_PKGHASH = "go.link.pkghash."
_PKGHASHBYTES = "go.link.pkghashbytes."
_PROGRAMS = (FileKind.EXEC, FileKind.PIE_EXEC)
_TOOLCHAIN = ("runtime", "runtime/internal/sys", "internal/abi")


@dataclass(frozen=True, slots=True)
class GoMismatch:
    """Why `plugin.Open` fails: a package (or the toolchain) and what each side has."""

    package: str
    plugin_has: str
    host_has: str


def is_go_plugin(facts: ElfFacts) -> bool:
    """A Go `-buildmode=plugin` object: a shared object exporting package fingerprints."""
    if facts.kind != FileKind.SHARED:
        return False
    if facts.go is not None and facts.go.build_mode == "plugin":
        return True
    # every Go plugin links package runtime (one dict lookup, not a scan of the symbols)
    return f"{_PKGHASHBYTES}runtime" in facts.defined


def can_open_plugins(facts: ElfFacts) -> bool:
    """A Go program linked with package plugin: it exports its packages' fingerprints for
    the plugins it opens (cmd/link, DynlinkingGo)."""
    return facts.kind in _PROGRAMS and f"{_PKGHASH}runtime" in facts.defined


def compare(plugin: ElfFacts, host: ElfFacts) -> GoMismatch | None:
    """The first reason plugin.Open(plugin) fails inside `host`, or None."""
    versions = _go_versions(plugin, host)
    if versions is not None:
        return versions
    return next(_module_mismatches(plugin, host), None) or _hash_mismatch(plugin, host)


def _go_versions(plugin: ElfFacts, host: ElfFacts) -> GoMismatch | None:
    if plugin.go is None or host.go is None or plugin.go.go_version == host.go.go_version:
        return None
    return GoMismatch("Go toolchain", plugin.go.go_version, host.go.go_version)


def _module_mismatches(plugin: ElfFacts, host: ElfFacts) -> Iterator[GoMismatch]:
    mine, theirs = _modules(plugin), _modules(host)
    for module in sorted(mine.keys() & theirs.keys()):
        if mine[module] != theirs[module]:
            yield GoMismatch(module, mine[module], theirs[module])


def _modules(facts: ElfFacts) -> dict[str, str]:
    if facts.go is None:
        return {}
    return dict(facts.go.deps)


def _hash_mismatch(plugin: ElfFacts, host: ElfFacts) -> GoMismatch | None:
    theirs = dict(host.go_pkghashes)
    differing = [
        (pkg, value) for pkg, value in plugin.go_pkghashes if theirs.get(pkg, value) != value
    ]
    if not differing:
        return None
    toolchain = [d for d in differing if d[0] in _TOOLCHAIN]
    if toolchain:
        host_go = host.go.go_version if host.go else "another"
        return GoMismatch("Go toolchain", "another Go toolchain", f"{host_go} toolchain")
    package, value = differing[0]
    return GoMismatch(package, f"fingerprint {value}", _host_side(host, package, theirs[package]))


def _host_side(host: ElfFacts, package: str, fingerprint: str) -> str:
    """The host's version of the module holding `package`, when its build info says."""
    modules = _modules(host)
    owners = [m for m in modules if package == m or package.startswith(m + "/")]
    if not owners:
        return f"fingerprint {fingerprint}"
    module = max(owners, key=len)
    return f"{module} {modules[module]} (fingerprint {fingerprint})"


def go_plugin_findings(files: Iterable[tuple[str, ElfFacts]]) -> list[Finding]:
    """`go-plugin-mismatch` for every (Go plugin, Go program that opens plugins) pair of
    the image whose packages or toolchains differ."""
    listed = list(files)
    plugins = [(p, f) for p, f in listed if is_go_plugin(f)]
    hosts = [(p, f) for p, f in listed if can_open_plugins(f)]
    findings: list[Finding] = []
    for plugin_path, plugin in plugins:
        for host_path, host in hosts:
            mismatch = compare(plugin, host)
            if mismatch is not None:
                findings.append(_finding(plugin_path, host_path, mismatch))
    return findings


def _finding(plugin: str, host: str, mismatch: GoMismatch) -> Finding:
    if mismatch.package == "Go toolchain":
        what = "a different Go toolchain"
    else:
        what = f"a different version of package {mismatch.package}"
    return Finding(
        FindingKind.GO_PLUGIN_MISMATCH,
        Severity.WARNING,
        mismatch.package,
        f'plugin.Open("{plugin}") in {host} fails: plugin was built with {what} '
        f"(plugin: {mismatch.plugin_has}; {host}: {mismatch.host_has})",
        required_by=host,
        provider=plugin,
    )
