"""From validated documents (an `extends` chain) to one resolved `Policy`.

Later documents extend earlier ones: lists add up (exclude, host_provided, plugin_hosts,
waivers), mappings override key by key (severity, max_versions; a severity rule by moment),
and `include`, `rpath.trusted` and `description` replace the parent's when given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from imagescan.policy.model import ByFatalAt, PolicyDocument, Rpath
from imagescan.policy.model import Waiver as WaiverDocument
from imagescan.policy.rules import (
    PluginHost,
    Policy,
    RpathRules,
    SeverityRule,
    Waiver,
    level_of,
)


def merge_documents(documents: Sequence[tuple[str, PolicyDocument]]) -> Policy:
    """The policy of `documents`, ordered from the root of the chain to the extending one."""
    policy = Policy()
    for label, document in documents:
        policy = extend(policy, label, document)
    return policy


def extend(parent: Policy, label: str, doc: PolicyDocument) -> Policy:
    """`doc` (from `label`) applied over `parent`."""
    return Policy(
        sources=(label, *parent.sources),
        description=doc.description if doc.description is not None else parent.description,
        severity=_severity(parent, doc),
        include=tuple(doc.include) if doc.include is not None else parent.include,
        exclude=parent.exclude + tuple(doc.exclude),
        max_versions={**parent.max_versions, **doc.max_versions},
        host_provided=parent.host_provided + tuple(doc.host_provided),
        plugin_hosts=parent.plugin_hosts
        + tuple(PluginHost(h.plugins, h.host) for h in doc.plugin_hosts),
        rpath=_rpath(parent.rpath, doc.rpath),
        waivers=parent.waivers + tuple(_waiver(w, label) for w in doc.waivers),
    )


def _severity(parent: Policy, doc: PolicyDocument) -> dict[str, SeverityRule]:
    merged = dict(parent.severity)
    for key, value in doc.severity.items():
        rule = _rule(value)
        previous = merged.get(str(key))
        merged[str(key)] = rule.over(previous) if previous is not None else rule
    return merged


def _rule(value: str | ByFatalAt) -> SeverityRule:
    if isinstance(value, str):
        level = level_of(value)
        return SeverityRule(level, level, level)
    return SeverityRule(level_of(value.startup), level_of(value.call), level_of(value.other))


def _rpath(parent: RpathRules, doc: Rpath | None) -> RpathRules:
    if doc is None:
        return parent
    changes: dict[str, object] = {}
    for name in ("empty", "relative", "untrusted", "missing", "world_writable"):
        value = getattr(doc, name)
        if value is not None:
            changes[name] = level_of(value)
    if doc.trusted is not None:
        changes["trusted"] = tuple(doc.trusted)
    return dataclasses.replace(parent, **changes)  # type: ignore[arg-type]


def _waiver(waiver: WaiverDocument, label: str) -> Waiver:
    kind = str(waiver.kind) if waiver.kind is not None else None
    return Waiver(waiver.path, waiver.reason.strip(), kind, waiver.subject, waiver.expires, label)
