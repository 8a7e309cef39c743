"""Building the LoaderContext of an image from its RootFS and config (reads kept files)."""

from __future__ import annotations

import re

from imagescan.elf.model import ElfFacts, LdsoDefaults
from imagescan.errors import UsageError
from imagescan.image.model import ImageConfig
from imagescan.loader.context import LoaderContext
from imagescan.loader.hwcaps import hwcaps_subdirs, legacy_subdirs
from imagescan.loader.ldcache import LdCache, LegacyHwcap, legacy_hwcap_x86_64, parse_ld_so_cache
from imagescan.loader.model import Target
from imagescan.machines import (
    DEFAULT,
    EM_X86_64,
    CpuModel,
    Machine,
    baseline_cpu,
    by_elf,
    by_oci,
    cpu_models,
    find_cpu,
)
from imagescan.rootfs.model import RootFS

LD_SO_CACHE = "/etc/ld.so.cache"
LD_SO_PRELOAD = "/etc/ld.so.preload"


def make_target(config: ImageConfig, cpu: str | None = None) -> Target:
    """The CPU the verdict is for: a model or level name of machines.CPU_MODELS (`haswell`,
    `x86-64-v3`, `v3`, `zen4`, `z15`...), default the architecture's baseline."""
    row = by_oci(config.architecture) or DEFAULT
    return target_for(row, cpu_model(row, cpu))


def target_for(row: Machine, model: CpuModel) -> Target:
    """The Target of one architecture on one CPU model."""
    levels = hwcaps_subdirs(model.level, row.e_machine, row.little_endian) if model.level else ()
    return Target(
        row.e_machine, row.elf_class, row.little_endian, levels, model.platform,
        model.legacy_hwcaps, model.name,
    )  # fmt: skip


def cpu_model(row: Machine, name: str | None) -> CpuModel:
    """The named CPU model of `row`'s architecture; a usage error names the known ones."""
    if name is None:
        return baseline_cpu(row)
    found = find_cpu(row, name)
    if found is None:
        known = ", ".join(m.name for m in cpu_models(row.name)) or "none"
        raise UsageError(f"unknown CPU {name!r} for {row.name} (known: {known})")
    return found


def other_cpus(config: ImageConfig) -> tuple[str, ...]:
    """The CPU models of the image's architecture besides its baseline, one per distinct
    loader outcome (hwcaps level, platform, legacy hwcaps)."""
    row = by_oci(config.architecture) or DEFAULT
    seen = {_loader_view(baseline_cpu(row))}
    names = []
    for model in cpu_models(row.name):
        if _loader_view(model) not in seen:
            seen.add(_loader_view(model))
            names.append(model.name)
    return tuple(names)


def _loader_view(model: CpuModel) -> tuple[str, str | None, tuple[str, ...]]:
    return model.level, model.platform, model.legacy_hwcaps


def target_machine(ctx: LoaderContext, target: Target | None = None) -> Machine:
    """The machines-table row of `target` (default: the image's)."""
    run_as = target or ctx.target
    return by_elf(run_as.machine, run_as.elf_class, run_as.little_endian) or DEFAULT


def compat_target(ctx: LoaderContext, facts: ElfFacts) -> Target | None:
    """The target an ELF file of another architecture runs as where the image's platform runs
    it natively (machines.Machine.runs: i386 on x86-64), else None (foreign)."""
    image = target_machine(ctx)
    row = by_elf(facts.machine, facts.elf_class, facts.little_endian)
    if row is None or row.name not in image.runs:
        return None
    return target_for(row, baseline_cpu(row))


def make_context(rootfs: RootFS, config: ImageConfig, cpu: str | None = None) -> LoaderContext:
    """Everything about the image that every search needs."""
    env = dict(item.split("=", 1) for item in config.env if "=" in item)
    ctx = LoaderContext(
        rootfs=rootfs,
        target=make_target(config, cpu),
        env=env,
        run_ids=run_ids(config.user, rootfs),
        run_groups=run_groups(config.user, rootfs),
        working_dir=config.working_dir or "/",
        preload_file=_preload_file(rootfs.kept.get(LD_SO_PRELOAD)),
    )
    ctx.cache = _cache(rootfs.kept.get(LD_SO_CACHE), ctx.target.little_endian)
    return ctx


def _cache(data: bytes | None, little_endian: bool) -> LdCache | None:
    if data is None:
        return None
    parsed = parse_ld_so_cache(data, little_endian=little_endian)
    return parsed if isinstance(parsed, LdCache) else None


def _preload_file(data: bytes | None) -> tuple[str, ...]:
    """rtld.c: /etc/ld.so.preload entries are separated by blanks, tabs, newlines or ':'."""
    if not data:
        return ()
    text = data.decode("utf-8", "replace")
    return tuple(part for part in re.split(r"[\s:]+", text) if part)


def env_preloads(value: str | None, secure: bool) -> tuple[str, ...]:
    """LD_PRELOAD entries (split on ' ' and ':'); in secure mode only slash-free ones."""
    if not value:
        return ()
    parts = [p for p in re.split(r"[ :]+", value) if p]
    return tuple(p for p in parts if not (secure and "/" in p))


def run_ids(user: str | None, rootfs: RootFS) -> tuple[int, int]:
    """The uid/gid the image's `User` runs as (names looked up in the image's passwd)."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid, gid = _passwd_ids(name, rootfs.kept.get("/etc/passwd"))
    if group:
        gid = int(group) if _decimal(group) else (gid if gid >= 0 else 65534)
    return uid, gid


def run_groups(user: str | None, rootfs: RootFS) -> frozenset[int]:
    """The supplementary groups runc gives the image's `User`: every /etc/group entry that
    lists its passwd name, only when `User` names no group (libcontainer/user
    GetExecUser: "Supplementary group ids only make sense if in the implicit form")."""
    if not user or ":" in user:
        return frozenset()
    name = _passwd_name(user, rootfs.kept.get("/etc/passwd"))
    groups = set()
    for line in _lines(rootfs.kept.get("/etc/group")):
        fields = line.split(":")
        if len(fields) > 3 and _decimal(fields[2]) and name in fields[3].split(","):
            groups.add(int(fields[2]))
    return frozenset(groups) if name else frozenset()


def _passwd_name(user: str, passwd: bytes | None) -> str:
    """The passwd name of `user` (a name, or a uid found in passwd); "" when none."""
    for line in _lines(passwd):
        fields = line.split(":")
        if len(fields) > 3 and (fields[0] == user or (_decimal(user) and fields[2] == user)):
            return fields[0]
    return ""


def _lines(data: bytes | None) -> list[str]:
    return (data or b"").decode("utf-8", "replace").splitlines()


def _passwd_ids(name: str, passwd: bytes | None) -> tuple[int, int]:
    if _decimal(name):
        return int(name), int(name)
    for line in (passwd or b"").decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == name and _decimal(fields[2]):
            return int(fields[2]), int(fields[3]) if _decimal(fields[3]) else 0
    return (0, 0) if name == "root" else (65534, 65534)


def _decimal(text: str) -> bool:
    """ASCII decimal digits only: str.isdigit() also accepts "²", which int() refuses (issue 15)."""
    return text.isascii() and text.isdigit()


def ldso_defaults(
    ctx: LoaderContext, loader: ElfFacts | None, target: Target | None = None
) -> LdsoDefaults:
    """Search defaults compiled into the image's ld.so, else the distribution's known ones
    (for `target`, default the image's)."""
    if loader is not None and loader.ldso is not None:
        return loader.ldso
    triplet = target_machine(ctx, target).fallback_multiarch
    if triplet is None:
        return LdsoDefaults(("/lib", "/usr/lib"), "lib")
    return LdsoDefaults(
        (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib"), f"lib/{triplet}"
    )


LAST_LEGACY_HWCAPS = (2, 36)  # glibc 2.37 removed the legacy hwcaps subdirs and cache entries


def legacy_hwcaps(
    ctx: LoaderContext, ldso: LdsoDefaults, target: Target | None = None
) -> tuple[tuple[str, ...], LegacyHwcap | None]:
    """The legacy subdirectories and cache-entry filter of an x86_64 glibc <= 2.36 ld.so
    for the target CPU (dl-hwcaps.c `_dl_important_hwcaps`); nothing for other loaders
    (their legacy names are not modelled: an i386 process in an amd64 image gets none)."""
    run_as = target or ctx.target
    old = ldso.version is None or ldso.version > LAST_LEGACY_HWCAPS
    if run_as.machine != EM_X86_64 or run_as.elf_class != 64 or old:
        return (), None
    platform = run_as.platform
    names = run_as.legacy_hwcaps
    subdirs = legacy_subdirs(platform, names)
    return subdirs, legacy_hwcap_x86_64(names, platform if platform != "x86_64" else None)
