"""Building the LoaderContext of an image from its RootFS and config (reads kept files)."""

from __future__ import annotations

import re

from imagescan.elf.model import ElfFacts, LdsoDefaults
from imagescan.image.model import ImageConfig
from imagescan.loader.context import (
    FALLBACK_LDSO,
    GLIBC_LOADERS,
    MACHINES,
    MUSL_ARCH,
    LoaderContext,
    Target,
)
from imagescan.loader.hwcaps import hwcaps_subdirs, legacy_subdirs
from imagescan.loader.ldcache import LdCache, LegacyHwcap, legacy_hwcap_x86_64, parse_ld_so_cache
from imagescan.rootfs.model import RootFS

LD_SO_CACHE = "/etc/ld.so.cache"
LD_SO_PRELOAD = "/etc/ld.so.preload"


def make_target(config: ImageConfig, cpu_level: str | None = None) -> Target:
    """The CPU the verdict is for. `cpu_level` picks glibc-hwcaps (default: baseline)."""
    machine, elf_class = MACHINES.get(config.architecture, (62, 64))
    levels = hwcaps_subdirs(cpu_level, machine) if cpu_level else ()
    platform = _platform(machine, levels)
    return Target(machine, elf_class, machine not in (22,), levels, platform)


def _platform(machine: int, levels: tuple[str, ...]) -> str | None:
    # sysdeps/x86/cpu-features.c: AT_PLATFORM is overridden to "haswell" on v3-class CPUs.
    if machine == 62:
        return "haswell" if "x86-64-v3" in levels else "x86_64"
    return {183: "aarch64", 3: "i686", 40: "v7l"}.get(machine)


def make_context(
    rootfs: RootFS, config: ImageConfig, cpu_level: str | None = None
) -> LoaderContext:
    """Everything about the image that every search needs."""
    env = dict(item.split("=", 1) for item in config.env if "=" in item)
    ctx = LoaderContext(
        rootfs=rootfs,
        target=make_target(config, cpu_level),
        env=env,
        run_ids=run_ids(config.user, rootfs),
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


def default_loader(ctx: LoaderContext) -> str | None:
    """The image's own loader for its architecture: glibc's first, then musl's."""
    machine = ctx.target.machine
    candidates = list(GLIBC_LOADERS.get(machine, ()))
    if machine in MUSL_ARCH:
        candidates.append(f"/lib/ld-musl-{MUSL_ARCH[machine]}.so.1")
    for path in candidates:
        if ctx.regular_file(path) is not None:
            return path
    return None


def ldso_defaults(ctx: LoaderContext, loader: ElfFacts | None) -> LdsoDefaults:
    """Search defaults compiled into the image's ld.so, else the distribution's known ones."""
    if loader is not None and loader.ldso is not None:
        return loader.ldso
    return FALLBACK_LDSO.get(ctx.target.machine, LdsoDefaults(("/lib", "/usr/lib"), "lib"))


LAST_LEGACY_HWCAPS = (2, 36)  # glibc 2.37 removed the legacy hwcaps subdirs and cache entries


def legacy_hwcaps(
    ctx: LoaderContext, ldso: LdsoDefaults
) -> tuple[tuple[str, ...], LegacyHwcap | None]:
    """The legacy subdirectories and cache-entry filter of an x86_64 glibc <= 2.36 ld.so
    for the target CPU (dl-hwcaps.c `_dl_important_hwcaps`); nothing for other loaders."""
    if ctx.target.machine != 62 or ldso.version is None or ldso.version > LAST_LEGACY_HWCAPS:
        return (), None
    platform = ctx.target.platform
    subdirs = legacy_subdirs(platform, ("x86_64",))
    return subdirs, legacy_hwcap_x86_64(("x86_64",), platform if platform != "x86_64" else None)
