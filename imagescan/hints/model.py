"""Values of provenance and fix hints: where a file came from, and how to fix a cause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagescan.checks.model import Finding
from imagescan.packages.model import Package

SHORT_DIGEST = 12  # hex digits of a diff_id shown, as `docker history` shows image ids


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one file came from: the layer (bottom = 0) that added it, that layer's short
    diff_id and build step (the image config history's `created_by`), and the package of
    the image's package database that owns it (None: not from a package)."""

    layer: int | None
    diff_id: str | None = None
    created_by: str | None = None
    package: Package | None = None

    @property
    def summary(self) -> str:
        """One line: "libc6 2.36-9 (layer 0)" or "added by layer 1, not from a package"."""
        layer = f"layer {self.layer}" if self.layer is not None else "an unknown layer"
        step = f": {self.created_by}" if self.created_by else ""
        if self.package is not None:
            return f"package {self.package.name} {self.package.version} ({layer}{step})"
        return f"added by {layer}{step}, not from a package"


@dataclass(frozen=True, slots=True)
class CLibrary:
    """The image's C library: `name` "glibc" or "musl", `version` ("2.36", None when not
    known) and `source`, how it was told (a package, version definitions, a loader name)."""

    name: str
    version: str | None
    path: str
    source: str


@dataclass(frozen=True, slots=True)
class ImageProvenance:
    """Image-wide facts for the hints: C library, distribution, package database."""

    libc: CLibrary | None = None
    distro_id: str | None = None
    distro_version: str | None = None
    distro_name: str | None = None
    package_managers: tuple[str, ...] = ()
    packages: int = 0
    package_problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fix:
    """How to fix one cause.

    `cause` is a stable identifier of the diagnosis ("built-against-newer-glibc"),
    `why` says in a sentence why the image is like that, `steps` are the concrete fixes
    (alternatives, best first), `facts` the values the diagnosis rests on (name, value)."""

    cause: str
    why: str
    steps: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()


FindingKey = tuple[str, str, str, str | None, str | None]


def finding_key(path: str, finding: Finding) -> FindingKey:
    """What identifies a finding across the policy step (which may waive or re-rate it):
    the judged file ("" for image findings), kind, subject, requester and version."""
    return (path, str(finding.kind), finding.subject, finding.required_by, finding.version)


@dataclass(frozen=True)
class Hints:
    """Provenance of every judged file and a fix for every finding that has one."""

    image: ImageProvenance = field(default_factory=ImageProvenance)
    files: Mapping[str, Provenance] = field(default_factory=dict)
    fixes: Mapping[FindingKey, Fix] = field(default_factory=dict)

    def fix_for(self, path: str, finding: Finding) -> Fix | None:
        """The fix of `finding` about file `path` ("" for an image finding), if any."""
        return self.fixes.get(finding_key(path, finding))
