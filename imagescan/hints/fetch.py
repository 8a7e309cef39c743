"""Fetching a distribution's package index from the image's own sources, and the cache.

The only I/O of the hints: HTTP GETs to the URLs the image's configuration names, only
when asked (`imagescan hints update REF`, `--hints-online`); the result is cut to library
names and stored as JSON under CACHE/hints/, where later scans find it offline.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from imagescan.errors import ImagescanError
from imagescan.hints.index import (
    PackageIndex,
    apkindex_text,
    contents_lines,
    make_index,
    primary_xml,
)
from imagescan.hints.sources import IndexSource

TIMEOUT = 60.0
MAX_DOWNLOAD = 512 << 20  # a Contents index is ~12 MiB compressed; stop far above that
CACHE_FORMAT = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class IndexFetchError(ImagescanError):
    """No configured source of the image answered with an index."""


def cache_file(cache_dir: Path, distro: str, architecture: str) -> Path:
    """Where the index of one distribution release and architecture is cached."""
    return cache_dir / "hints" / f"{_SAFE.sub('_', distro)}-{_SAFE.sub('_', architecture)}.json"


def load_cached(path: Path) -> PackageIndex | None:
    """The cached index, None when absent or not of this format (then fetch again)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
        return None
    providers = {
        name: [(str(where), str(package)) for where, package in pairs]
        for name, pairs in doc.get("providers", {}).items()
    }
    return make_index(str(doc.get("distro")), str(doc.get("origin")), providers)


def store(path: Path, index: PackageIndex) -> None:
    """Write the index to the cache (atomically: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": CACHE_FORMAT,
        "distro": index.distro,
        "origin": index.origin,
        "providers": {k: [list(p) for p in v] for k, v in sorted(index.providers.items())},
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(doc), encoding="utf-8")
    temporary.replace(path)


def fetch_index(sources: Sequence[IndexSource], distro: str) -> PackageIndex:
    """The index from the first source that answers; IndexFetchError naming what failed."""
    failures: list[str] = []
    for source in sources:
        for url in source.urls:
            try:
                return make_index(distro, url, _parse(source.kind, url))
            except (OSError, ValueError, tarfile.TarError, EOFError, lzma.LZMAError) as err:
                failures.append(f"{url}: {err}")
    if not sources:
        raise IndexFetchError("the image configures no package sources (apt, apk or yum)")
    raise IndexFetchError("no package index could be fetched: " + "; ".join(failures[:3]))


def _parse(kind: str, url: str) -> dict[str, list[tuple[str, str]]]:
    if kind == "contents":
        with _get(url) as raw, gzip.open(raw, "rt", encoding="utf-8", errors="replace") as text:
            return contents_lines(text)
    if kind == "apkindex":
        with _get(url) as raw, tarfile.open(fileobj=raw, mode="r:gz") as archive:
            member = archive.extractfile("APKINDEX")
            if member is None:
                raise ValueError("APKINDEX.tar.gz has no APKINDEX")
            return apkindex_text(_bounded(member).decode("utf-8", "replace"))
    base = url.rsplit("/repodata/", 1)[0]
    with _get(url) as raw:
        href = _primary_href(_bounded(raw))
    with _get(f"{base}/{href}") as raw:
        return primary_xml(_decompressed(href, _bounded(raw)))


def _primary_href(repomd: bytes) -> str:
    match = re.search(rb'<data type="primary">.*?<location href="([^"]+)"', repomd, re.S)
    if match is None:
        raise ValueError("repomd.xml names no primary metadata")
    return match.group(1).decode()


def _decompressed(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    return data


def _get(url: str) -> IO[bytes]:
    if not url.startswith(("http://", "https://")):
        raise ValueError("only http and https sources are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "imagescan"})
    response: IO[bytes] = urllib.request.urlopen(request, timeout=TIMEOUT)
    return io.BufferedReader(_Limited(response))


def _bounded(stream: IO[bytes]) -> bytes:
    return b"".join(_chunks(stream))


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(1 << 20):
        yield chunk


class _Limited(io.RawIOBase):
    """A response that refuses to give more than MAX_DOWNLOAD bytes."""

    def __init__(self, response: IO[bytes]) -> None:
        self.response, self.read_so_far = response, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.response.read(len(buffer))
        self.read_so_far += len(data)
        if self.read_so_far > MAX_DOWNLOAD:
            raise ValueError(f"index larger than {MAX_DOWNLOAD >> 20} MiB")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.response.close()
        super().close()
