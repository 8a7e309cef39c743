"""Platforms: the host's, parsing "os/arch[/variant]", and choosing from an image index.

Matching follows containerd's `platforms` package: both sides are normalised (aliases such as
x86_64 -> amd64, aarch64 -> arm64, and default variants: arm64 "v8" and amd64 "v1" are the
same as no variant, arm without a variant is "v7") and then compared for equality.
"""

from __future__ import annotations

import platform as _host
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from imagescan.errors import PlatformError, UsageError
from imagescan.image.model import Platform

T = TypeVar("T")

# platform.machine() / uname -m spellings -> (GOARCH, variant), as containerd's cpuinfo maps them.
_MACHINES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64", None),
    "loongarch64": ("loong64", None),
}


def host_platform() -> Platform:
    """This machine's platform (linux/amd64 here), the default for `--platform`."""
    machine = _host.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, None))
    return Platform(os="linux", architecture=arch, variant=variant)


def parse_platform(text: str) -> Platform:
    """ "linux/arm64/v8" -> Platform; UsageError when it is not os/arch[/variant]."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"platform {text!r} is not os/arch[/variant] (e.g. linux/arm64/v8)")
    os_name, arch = parts[0].lower(), parts[1].lower()
    variant = parts[2].lower() if len(parts) == 3 else None
    return Platform(os=os_name, architecture=arch, variant=variant)


# Variant spellings that mean the same thing, per architecture (containerd normalizeArch).
_VARIANT_ALIASES: dict[str, dict[str, str | None]] = {
    "amd64": {"": None, "v1": None},
    "arm64": {"": None, "8": None, "v8": None, "v8.0": None, "9": "v9", "9.0": "v9", "v9.0": "v9"},
    "arm": {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"},
    "386": {},
}
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}


def _normalize_arch(arch: str, variant: str | None) -> tuple[str, str | None]:
    """containerd platforms.normalizeArch: aliases and default variants."""
    if arch in _ARCH_ALIASES:
        arch, implied = _ARCH_ALIASES[arch]
        variant = implied or variant
    v = variant or ""
    if arch == "386":
        return arch, None
    aliases = _VARIANT_ALIASES.get(arch, {"": None})
    return arch, aliases.get(v, v)


def normalize(platform: Platform) -> Platform:
    """The canonical spelling of `platform`, for comparison."""
    arch, variant = _normalize_arch(platform.architecture.lower(), platform.variant)
    os_name = platform.os.lower()
    return Platform(
        os="darwin" if os_name == "macos" else os_name, architecture=arch, variant=variant
    )


def matches(wanted: Platform, offered: Platform) -> bool:
    """Whether an image for `offered` is the one `wanted` asks for (containerd's strict match)."""
    return normalize(wanted) == normalize(offered)


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """One entry of an index: its platform (None when the index does not say) and payload."""

    platform: Platform | None
    item: T


def _describe(candidates: Sequence[Candidate[T]]) -> str:
    names = sorted({str(c.platform) if c.platform else "(no platform)" for c in candidates})
    return ", ".join(names) if names else "none"


def choose(wanted: Platform, candidates: Sequence[Candidate[T]], where: str) -> T:
    """The one candidate for `wanted`; PlatformError listing the choices when none or several.

    Entries whose platform is unknown/unknown (buildx attestation manifests) are not images.
    An entry without a platform is taken only when it is the only image in the index.
    """
    images = [c for c in candidates if c.platform is None or c.platform.os != "unknown"]
    hits = [c for c in images if c.platform is not None and matches(wanted, c.platform)]
    if not hits and len(images) == 1 and images[0].platform is None:
        hits = images
    if len(hits) == 1:
        return hits[0].item
    if not hits:
        raise PlatformError(
            f"{where} has no image for platform {wanted}; available: {_describe(images)}"
            " (choose one with --platform)"
        )
    raise PlatformError(
        f"{where} has {len(hits)} images for platform {wanted}; the choice is ambiguous"
        f" (available: {_describe(images)})"
    )
