"""glibc-hwcaps subdirectory names per CPU level, and the legacy hwcaps subdirectories.

glibc >= 2.33 searches `DIR/glibc-hwcaps/NAME/` for every NAME the CPU supports, best
first, before `DIR/` itself; the names are compiled into ld.so (sysdeps/*/dl-hwcaps-subdirs.c,
`_dl_hwcaps_subdirs`, most preferred first) and `_dl_hwcaps_subdirs_active` says which of
them the CPU supports: always a contiguous tail of that list, so a level names its set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from imagescan.errors import UsageError

EM_PPC64, EM_S390, EM_X86_64, EM_AARCH64 = 21, 22, 62, 183

# _dl_hwcaps_subdirs, most preferred first (glibc master, 2026). z16 came with glibc 2.36 and
# z17 with 2.42; an older ld.so simply never lists them. ppc64 big-endian and aarch64 use
# elf/dl-hwcaps-subdirs.c, which has no names.
HWCAPS_SUBDIRS: Mapping[int, tuple[str, ...]] = {
    EM_X86_64: ("x86-64-v4", "x86-64-v3", "x86-64-v2"),
    EM_PPC64: ("power10", "power9"),  # powerpc64le only
    EM_S390: ("z17", "z16", "z15", "z14", "z13"),
    EM_AARCH64: (),
}

# Level names that mean "no glibc-hwcaps subdirectory is supported".
BASELINE_LEVELS: Mapping[int, tuple[str, ...]] = {
    EM_X86_64: ("", "baseline", "v1", "x86-64", "x86-64-v1"),
    EM_PPC64: ("", "baseline", "power8"),
    EM_S390: ("", "baseline", "z196", "zEC12"),
    EM_AARCH64: ("", "baseline"),
}


def hwcaps_subdirs(target_level: str, machine: int = EM_X86_64) -> tuple[str, ...]:
    """The glibc-hwcaps names a CPU of `target_level` supports, most preferred first.

    "x86-64-v4" -> ("x86-64-v4", "x86-64-v3", "x86-64-v2"); "v3" is short for "x86-64-v3";
    a baseline level ("x86-64", "v1", "") -> (). Unknown levels are a usage error.
    """
    names = HWCAPS_SUBDIRS.get(machine, ())
    level = _canonical(target_level.strip(), machine)
    if level in BASELINE_LEVELS.get(machine, ("", "baseline")):
        return ()
    if level not in names:
        known = ", ".join((*names, *BASELINE_LEVELS.get(machine, ())[1:])) or "baseline"
        raise UsageError(f"unknown CPU level {target_level!r} (known: {known})")
    return names[names.index(level) :]


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
    path. The defaults give what LD_DEBUG=libs shows for Debian 12 on a plain x86_64 CPU:
    tls/x86_64/x86_64, tls/x86_64, tls, x86_64/x86_64, x86_64. Only for `why` output: these
    directories almost never exist, and glibc 2.37 dropped them.
    """
    parts = [*hwcap_names, *([platform] if platform else []), "tls"]
    result: list[str] = []
    for mask in range((1 << len(parts)) - 1, 0, -1):
        path = "/".join(parts[i] for i in reversed(range(len(parts))) if mask >> i & 1)
        if path not in result:
            result.append(path)
    return tuple(result)
