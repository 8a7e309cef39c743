"""A resolved policy (its `extends` chain merged) as frozen values, free of pydantic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from imagescan.checks.model import FatalAt, Finding, FindingKind, Severity
from imagescan.globs import path_matches

OFF = "off"
# Findings the policy itself makes: their level comes from the policy section that asks for
# them (rpath, max_versions), so a "default" severity rule does not touch them.
POLICY_KINDS = frozenset({FindingKind.VERSION_CEILING, FindingKind.RPATH_HYGIENE})
# A level is a Severity or OFF (the finding is dropped); None keeps the finding's own severity.
Level = Severity | str


def level_of(text: str | None) -> Level | None:
    """A document's level word as a Severity, OFF, or None."""
    if text is None or text == OFF:
        return text
    return Severity(text)


@dataclass(frozen=True)
class SeverityRule:
    """Levels by when the finding makes the program fail (FatalAt), None = keep."""

    startup: Level | None = None
    call: Level | None = None
    other: Level | None = None

    def for_finding(self, finding: Finding) -> Level | None:
        if finding.fatal_at == FatalAt.STARTUP:
            return self.startup
        if finding.fatal_at == FatalAt.CALL:
            return self.call
        return self.other

    def over(self, parent: SeverityRule) -> SeverityRule:
        """This rule where it says something, the parent's elsewhere."""
        return SeverityRule(
            self.startup if self.startup is not None else parent.startup,
            self.call if self.call is not None else parent.call,
            self.other if self.other is not None else parent.other,
        )


@dataclass(frozen=True)
class Waiver:
    """Accepts findings of `kind` (None: any) whose file or requirer matches `path` and whose
    subject matches `subject` (None: any), for `reason`, up to and including `expires`."""

    path: str
    reason: str
    kind: str | None = None
    subject: str | None = None
    expires: date | None = None
    source: str = ""  # the policy file (or built-in name) that declared it

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires


@dataclass(frozen=True)
class PluginHost:
    """Plugins matching `plugins` are loaded by the program `host`."""

    plugins: str
    host: str


@dataclass(frozen=True)
class RpathRules:
    """Levels per DT_RPATH/DT_RUNPATH problem (OFF or None: not checked) and trusted dirs."""

    empty: Level | None = None
    relative: Level | None = None
    untrusted: Level | None = None
    missing: Level | None = None
    world_writable: Level | None = None
    trusted: tuple[str, ...] = ()

    def checked(self) -> bool:
        levels = (self.empty, self.relative, self.untrusted, self.missing, self.world_writable)
        return any(level not in (None, OFF) for level in levels)


@dataclass(frozen=True)
class Policy:
    """What to report and how severely. `sources` names the files merged, the extending first.

    `severity` maps a finding kind (or "default") to its rule; `include` empty means every
    file; `max_versions` maps a version prefix (GLIBC) to its ceiling ("2.28").
    """

    sources: tuple[str, ...] = ()
    description: str | None = None
    severity: Mapping[str, SeverityRule] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_versions: Mapping[str, str] = field(default_factory=dict)
    host_provided: tuple[str, ...] = ()
    plugin_hosts: tuple[PluginHost, ...] = ()
    rpath: RpathRules = field(default_factory=RpathRules)
    waivers: tuple[Waiver, ...] = ()

    def level_for(self, finding: Finding) -> Level | None:
        """The level this policy gives `finding`: its kind's rule, then "default" (for the
        loader's findings), else None (keep its severity)."""
        kind = str(finding.kind)
        keys = (kind,) if finding.kind in POLICY_KINDS else (kind, "default")
        for key in keys:
            rule = self.severity.get(key)
            level = rule.for_finding(finding) if rule is not None else None
            if level is not None:
                return level
        return None


def hosts_for(policy: Policy, path: str) -> tuple[str, ...]:
    """The programs the policy says load the plugin at `path`, in declaration order."""
    return tuple(h.host for h in policy.plugin_hosts if path_matches(path, (h.plugins,)))


def describe(policy: Policy, *, today: date) -> str:
    """One line for `imagescan policy validate`: what was read and what it asks for."""
    parts = [f"valid: {' <- '.join(policy.sources)}"]
    if policy.max_versions:
        parts.append("ceilings " + ", ".join(f"{k} {v}" for k, v in policy.max_versions.items()))
    expired = [w for w in policy.waivers if w.expired(today)]
    if policy.waivers:
        note = f" ({len(expired)} expired)" if expired else ""
        parts.append(f"{len(policy.waivers)} waiver(s){note}")
    for name, values in (("include", policy.include), ("exclude", policy.exclude)):
        if values:
            parts.append(f"{name} {len(values)} glob(s)")
    if policy.host_provided:
        parts.append("host provides " + ", ".join(policy.host_provided))
    return "; ".join(parts)
