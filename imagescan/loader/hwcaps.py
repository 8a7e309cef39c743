"""glibc-hwcaps subdirectory names per CPU level, and the legacy hwcaps subdirectories.

glibc >= 2.33 searches `DIR/glibc-hwcaps/NAME/` for every NAME the CPU supports, best
first, before `DIR/` itself; the names are compiled into ld.so (sysdeps/*/dl-hwcaps-subdirs.c,
`_dl_hwcaps_subdirs`, most preferred first) and `_dl_hwcaps_subdirs_active` says which of
them the CPU supports: always a contiguous tail of that list, so a level names its set.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagescan.errors import UsageError
from imagescan.machines import EM_X86_64, MACHINES, Machine


def hwcaps_subdirs(
    target_level: str, machine: int = EM_X86_64, little_endian: bool | None = None
) -> tuple[str, ...]:
    """The glibc-hwcaps names a CPU of `target_level` supports, most preferred first.

    "x86-64-v4" -> ("x86-64-v4", "x86-64-v3", "x86-64-v2"); "v3" is short for "x86-64-v3";
    a baseline level ("x86-64", "v1", "") -> (). Unknown levels are a usage error. The names
    and levels are the machines table's (`Machine.hwcaps`, `Machine.baseline_levels`).
    """
    row = _row(machine, little_endian)
    names = row.hwcaps if row else ()
    baseline = row.baseline_levels if row else ("", "baseline")
    level = _canonical(target_level.strip(), machine)
    if level in baseline:
        return ()
    if level not in names:
        known = ", ".join((*names, *baseline[1:])) or "baseline"
        raise UsageError(f"unknown CPU level {target_level!r} (known: {known})")
    return names[names.index(level) :]


def _row(machine: int, little_endian: bool | None) -> Machine | None:
    rows = [m for m in MACHINES if m.e_machine == machine]
    exact = [m for m in rows if little_endian is None or m.little_endian == little_endian]
    found = exact or rows
    return found[0] if found else None


def _canonical(level: str, machine: int) -> str:
    if machine == EM_X86_64 and level.startswith("v") and level[1:].isdigit():
        return f"x86-64-{level}"
    return level


def legacy_subdirs(
    platform: str | None = "x86_64", hwcap_names: Sequence[str] = ("x86_64",)
) -> tuple[str, ...]:
    """The pre-2.37 subdirectories ld.so tries in each search directory before the base.

    Power set of [hwcap names in bit order, platform, "tls"] as glibc 2.36
    `_dl_important_hwcaps` builds it: "tls" is the most significant member and leads the
    path. Equal paths are not merged: with platform "x86_64" and hwcap "x86_64" (Debian 12
    on a CPU without the haswell platform) LD_DEBUG=libs shows tls/x86_64/x86_64,
    tls/x86_64, tls/x86_64, tls, x86_64/x86_64, x86_64, x86_64. These directories almost
    never exist, and glibc 2.37 dropped them.
    """
    parts = [*hwcap_names, *([platform] if platform else []), "tls"]
    return tuple(
        "/".join(parts[i] for i in reversed(range(len(parts))) if mask >> i & 1)
        for mask in range((1 << len(parts)) - 1, 0, -1)
    )
