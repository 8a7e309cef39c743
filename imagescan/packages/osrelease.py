"""/etc/os-release (os-release(5)): the distribution an image says it is."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")  # os-release(5): in this order
# os-release ID -> purl namespace (purl-spec PURL-TYPES: deb, rpm, apk examples).
_NAMESPACES = {"rhel": "redhat", "amzn": "amazon", "sles": "suse", "opensuse-leap": "opensuse"}


@dataclass(frozen=True, slots=True)
class OsRelease:
    """What os-release says: `id` ("debian"), `version_id` ("12"), `pretty_name`,
    `version_codename` ("bookworm"), `id_like` (("rhel", "fedora"))."""

    id: str
    version_id: str | None = None
    pretty_name: str | None = None
    version_codename: str | None = None
    id_like: tuple[str, ...] = ()

    @property
    def namespace(self) -> str:
        """The purl namespace of the distribution's packages."""
        return _NAMESPACES.get(self.id, self.id)

    @property
    def distro(self) -> str:
        """ "ID-VERSION_ID", the purl `distro` qualifier ("debian-12")."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id


def parse_os_release(text: str) -> OsRelease | None:
    """The fields of an os-release file; None without an ID (or an unparsable file)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue  # an unbalanced quote: os-release(5) says such a line is ignored
        fields[key] = " ".join(words)
    if not fields.get("ID"):
        return None
    return OsRelease(
        id=fields["ID"].lower(),
        version_id=fields.get("VERSION_ID") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        version_codename=fields.get("VERSION_CODENAME") or None,
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
    )


def read_os_release(kept: Mapping[str, bytes]) -> OsRelease | None:
    """The image's os-release from its kept files, the first of the two paths that exists."""
    for path in OS_RELEASE_PATHS:
        if path in kept:
            return parse_os_release(kept[path].decode("utf-8", "replace"))
    return None
