"""What one package database reader found: packages, (path, package) pairs, problems."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from imagescan.packages.model import Package


@dataclass(frozen=True, slots=True)
class PackageFacts:
    """What every package of the image shares: the purl namespace and distro qualifier."""

    namespace: str | None = None
    distro: str | None = None

    def package(
        self,
        *,
        name: str,
        version: str,
        arch: str,
        manager: str,
        source: str | None = None,
        license: str | None = None,
    ) -> Package:
        """A Package of this image."""
        return Package(name, version, arch, manager, source, license, self.namespace, self.distro)


@dataclass
class Found:
    """A reader's result under construction."""

    packages: list[Package] = field(default_factory=list)
    files: list[tuple[str, Package]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add_files(self, package: Package, paths: Iterable[str]) -> None:
        """Record that `package` owns `paths` (absolute, as its database spells them)."""
        self.files.extend((path, package) for path in paths)
