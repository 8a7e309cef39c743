"""Values of an image's package database: packages, their purls, and who owns a file."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from imagescan.rootfs.model import Entry
from imagescan.rootfs.paths import resolve


class Manager(enum.StrEnum):
    """The package managers whose databases imagescan reads."""

    DPKG = "dpkg"
    APK = "apk"
    RPM = "rpm"


# purl-spec PURL-TYPES: deb, apk and rpm; the namespace is the distribution's vendor.
_PURL_TYPE = {Manager.DPKG: "deb", Manager.APK: "apk", Manager.RPM: "rpm"}


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package.

    `version` is as the manager prints it (dpkg "[epoch:]upstream-revision", apk
    "1.2.4-r2", rpm "[epoch:]version-release"). `source` is the source package's name,
    `license` the license field as the database has it. `namespace` is the distribution's
    purl namespace ("debian", "alpine", "redhat", ...) and `distro` "ID-VERSION_ID" from
    os-release, both None when the image does not say.
    """

    name: str
    version: str
    arch: str
    manager: str
    source: str | None = None
    license: str | None = None
    namespace: str | None = None
    distro: str | None = None

    @property
    def purl(self) -> str:
        """The package URL: pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12."""
        kind = _PURL_TYPE.get(Manager(self.manager), self.manager)
        version, qualifiers = self.version, []
        if self.manager == Manager.RPM and ":" in version:
            epoch, _, version = version.partition(":")  # rpm's epoch is a qualifier
            qualifiers.append(("epoch", epoch))
        if self.arch:
            qualifiers.append(("arch", self.arch))
        if self.distro:
            qualifiers.append(("distro", self.distro))
        namespace = f"{quote(self.namespace, safe='')}/" if self.namespace else ""
        text = f"pkg:{kind}/{namespace}{quote(self.name, safe='')}@{quote(version, safe=':+')}"
        if qualifiers:
            text += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(qualifiers))
        return text


@dataclass(frozen=True)
class PackageDb:
    """The packages of an image and the files they own.

    `problems` says what could not be read ("BerkeleyDB rpm Packages database: not
    readable"); an empty database with no problems means the image has no package manager
    database at all. `owners` maps resolved paths to their package.
    """

    packages: tuple[Package, ...] = ()
    problems: tuple[str, ...] = ()
    owners: Mapping[str, Package] = field(default_factory=dict, repr=False, compare=False)
    entries: Mapping[str, Entry] = field(default_factory=dict, repr=False, compare=False)

    def owner(self, path: str) -> Package | None:
        """The package that owns the file `path` leads to (symlinks followed), if any."""
        resolved = resolve(self.entries, path).path
        found = self.owners.get(resolved) if resolved is not None else None
        return found if found is not None else self.owners.get(path)
