"""What the common base images ship at their release: the versions of glibc, libstdc++
(GLIBCXX_ and CXXABI_ nodes, from the release's GCC) and OpenSSL (OPENSSL_ nodes).

Each family oldest first. Alpine is musl: it has no GLIBC_ versions at all, so it never
answers a glibc version need. From each distribution's glibc/libc6, libstdc++6 and
openssl package versions at release (point releases may update, never downgrade).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Base:
    """One release of a base image family and the library versions it ships."""

    family: str
    release: str
    image: str
    glibc: str
    glibcxx: str
    cxxabi: str
    openssl: str

    def ships(self, library: str) -> str:
        """The version this base ships of "glibc", "glibcxx", "cxxabi" or "openssl"."""
        return str(getattr(self, library))


BASES = (
    Base("Debian", "10 (buster)", "debian:10", "2.28", "3.4.25", "1.3.11", "1.1.1"),
    Base("Debian", "11 (bullseye)", "debian:11", "2.31", "3.4.28", "1.3.12", "1.1.1"),
    Base("Debian", "12 (bookworm)", "debian:12", "2.36", "3.4.30", "1.3.13", "3.0.0"),
    Base("Debian", "13 (trixie)", "debian:13", "2.41", "3.4.33", "1.3.15", "3.5.0"),
    Base("Ubuntu", "18.04 (bionic)", "ubuntu:18.04", "2.27", "3.4.25", "1.3.11", "1.1.1"),
    Base("Ubuntu", "20.04 (focal)", "ubuntu:20.04", "2.31", "3.4.28", "1.3.12", "1.1.1"),
    Base("Ubuntu", "22.04 (jammy)", "ubuntu:22.04", "2.35", "3.4.30", "1.3.13", "3.0.0"),
    Base("Ubuntu", "24.04 (noble)", "ubuntu:24.04", "2.39", "3.4.33", "1.3.15", "3.0.0"),
    Base("RHEL/UBI/Rocky", "7", "centos:7", "2.17", "3.4.19", "1.3.7", "1.0.2"),
    Base("RHEL/UBI/Rocky", "8", "ubi8 or rockylinux:8", "2.28", "3.4.25", "1.3.11", "1.1.1"),
    Base("RHEL/UBI/Rocky", "9", "ubi9 or rockylinux:9", "2.34", "3.4.29", "1.3.13", "3.0.0"),
    Base("RHEL/UBI/Rocky", "10", "ubi10 or rockylinux:10", "2.39", "3.4.33", "1.3.15", "3.2.0"),
    Base("Amazon Linux", "2", "amazonlinux:2", "2.26", "3.4.24", "1.3.11", "1.0.2"),
    Base("Amazon Linux", "2023", "amazonlinux:2023", "2.34", "3.4.29", "1.3.13", "3.0.0"),
)

# Version node prefixes -> the table's column. OpenSSL 1.1 spells its nodes OPENSSL_1_1_1.
LIBRARIES = {"GLIBC": "glibc", "GLIBCXX": "glibcxx", "CXXABI": "cxxabi", "OPENSSL": "openssl"}
_NODE = re.compile(r"^(GLIBCXX|GLIBC|CXXABI|OPENSSL)_(\d+(?:[._]\d+)*)[a-z]?$")


def parse_node(node: str) -> tuple[str, tuple[int, ...]] | None:
    """ "GLIBC_2.34" -> ("glibc", (2, 34)); "OPENSSL_1_1_1d" -> ("openssl", (1, 1, 1));
    None for a node the table does not know."""
    match = _NODE.match(node)
    if not match:
        return None
    numbers = tuple(int(part) for part in re.split(r"[._]", match.group(2)))
    return LIBRARIES[match.group(1)], numbers


def version_tuple(text: str) -> tuple[int, ...]:
    """ "2.36" -> (2, 36)."""
    return tuple(int(part) for part in text.split("."))


def oldest_shipping(library: str, needed: tuple[int, ...]) -> list[Base]:
    """Per family, the oldest base whose `library` is at least `needed`."""
    chosen: dict[str, Base] = {}
    for base in BASES:
        if base.family not in chosen and version_tuple(base.ships(library)) >= needed:
            chosen[base.family] = base
    return list(chosen.values())
