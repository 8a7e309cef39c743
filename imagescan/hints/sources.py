"""The package sources an image configures: apt's sources.list(.d), apk's repositories,
yum/dnf's repos.d. Pure: from the kept files to where each index lives."""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass

from imagescan.packages.dpkg import paragraphs
from imagescan.packages.osrelease import OsRelease

_OPTIONS = re.compile(r"\[[^\]]*\]")  # sources.list(5): "deb [arch=amd64 signed-by=...] URI"
APT_LIST, APT_DIR = "/etc/apt/sources.list", "/etc/apt/sources.list.d/"
APK_REPOSITORIES, YUM_DIR = "/etc/apk/repositories", "/etc/yum.repos.d/"
# image config architecture -> each manager's name for it
_ARCH = {
    "apt": {"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf"},
    "apk": {"amd64": "x86_64", "arm64": "aarch64", "386": "x86", "arm": "armv7"},
    "rpm": {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"},
}


@dataclass(frozen=True, slots=True)
class IndexSource:
    """Where one index is: `kind` "contents", "apkindex" or "repodata"; `urls` to try in
    order (the first that answers is used)."""

    kind: str
    urls: tuple[str, ...]


def index_sources(
    kept: Mapping[str, bytes], release: OsRelease | None, architecture: str
) -> list[IndexSource]:
    """Every index the image's own configuration points at, apt first."""
    return _apt(kept, architecture) + _apk(kept, architecture) + _yum(kept, release, architecture)


def _text(kept: Mapping[str, bytes], path: str) -> str:
    return kept.get(path, b"").decode("utf-8", "replace")


def _apt_entries(kept: Mapping[str, bytes]) -> list[tuple[str, str, list[str]]]:
    """(uri, suite, components) of every `deb` entry, one-line and deb822 forms."""
    entries: list[tuple[str, str, list[str]]] = []
    lists = [APT_LIST, *sorted(p for p in kept if p.startswith(APT_DIR) and p.endswith(".list"))]
    for path in lists:
        for line in _text(kept, path).splitlines():
            words = _OPTIONS.sub(" ", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2], words[3:]))
    for path in sorted(p for p in kept if p.startswith(APT_DIR) and p.endswith(".sources")):
        for fields in paragraphs(_text(kept, path)):
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled") != "no":
                for uri in fields.get("URIs", "").split():
                    for suite in fields.get("Suites", "").split():
                        entries.append((uri, suite, fields.get("Components", "").split()))
    return entries


def _apt(kept: Mapping[str, bytes], architecture: str) -> list[IndexSource]:
    arch = _ARCH["apt"].get(architecture, architecture)
    found = []
    for uri, suite, components in _apt_entries(kept):
        base = f"{uri.rstrip('/')}/dists/{suite}"
        # Debian >= 10 has one Contents per component; Ubuntu one per suite.
        urls = [f"{base}/{c}/Contents-{arch}.gz" for c in components] + [
            f"{base}/Contents-{arch}.gz"
        ]
        found.append(IndexSource("contents", tuple(urls)))
    return found


def _apk(kept: Mapping[str, bytes], architecture: str) -> list[IndexSource]:
    arch = _ARCH["apk"].get(architecture, architecture)
    lines = [line.strip() for line in _text(kept, APK_REPOSITORIES).splitlines()]
    repos = [line for line in lines if line and not line.startswith(("#", "@"))]
    return [IndexSource("apkindex", (f"{r.rstrip('/')}/{arch}/APKINDEX.tar.gz",)) for r in repos]


def _yum(
    kept: Mapping[str, bytes], release: OsRelease | None, architecture: str
) -> list[IndexSource]:
    arch = _ARCH["rpm"].get(architecture, architecture)
    version = (release.version_id or "").split(".")[0] if release else ""
    found = []
    for path in sorted(p for p in kept if p.startswith(YUM_DIR) and p.endswith(".repo")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(_text(kept, path))
        except configparser.Error:
            continue  # a repo file yum would refuse too
        for section in parser.sections():
            repo = parser[section]
            if repo.get("enabled", "1").strip() in ("0", "false") or not repo.get("baseurl"):
                continue
            url = (
                repo["baseurl"]
                .split()[0]
                .replace("$basearch", arch)
                .replace("$releasever", version)
            )
            found.append(IndexSource("repodata", (f"{url.rstrip('/')}/repodata/repomd.xml",)))
    return found
