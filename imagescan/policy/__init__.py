"""Policies: what to report, how severely, and what to accept (DESIGN.md "Policies").

`load_policy(NAME|FILE)` reads a built-in or a YAML/TOML/JSON file and what it extends into a
`Policy`; `apply_policy(report, policy, today=..., rootfs=...)` returns the report as that
policy judges it. pydantic stays inside this package (`model`); the rest are plain values.
"""

from __future__ import annotations

from imagescan.policy.apply import apply_policy
from imagescan.policy.load import PolicyError, builtin_names, load_policy
from imagescan.policy.rules import PluginHost, Policy, describe, hosts_for

DEFAULT_POLICY = "default"

__all__ = [
    "DEFAULT_POLICY",
    "PluginHost",
    "Policy",
    "PolicyError",
    "apply_policy",
    "builtin_names",
    "describe",
    "hosts_for",
    "load_policy",
]
