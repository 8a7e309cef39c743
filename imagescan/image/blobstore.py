"""Where local image files live: a directory, or a tar archive read in place.

Both hand out independent streams of their files by relative path ("index.json",
"blobs/sha256/<hex>", "<id>/layer.tar"). A tar archive is indexed once (headers only) and
each member is then read through its own file handle at its data offset, so several layers can
be read at once and nothing is ever extracted.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Protocol

from imagescan.errors import ImageReadError
from imagescan.image.compression import GZIP_MAGIC, ZSTD_MAGIC, parse_digest

MAX_JSON_BYTES = 16 << 20  # manifests, indexes and configs are kilobytes; refuse absurd ones
MAX_ARCHIVE_MEMBERS = 1_000_000
MAX_LINK_HOPS = 40  # as the kernel's symlink limit


class BlobStore(Protocol):
    """Files of a local image by relative path."""

    where: str  # names the store in messages, e.g. "oci-archive /x/img.tar"

    def size_of(self, path: str) -> int | None:
        """The size of the regular file at `path`, None when there is none."""
        ...

    def open(self, path: str) -> BinaryIO:
        """A fresh stream of the file at `path`; ImageReadError when missing."""
        ...

    def close(self) -> None: ...


def clean_path(path: str, where: str) -> str:
    """`path` relative and normalised; ImageReadError when it escapes the store ("..")."""
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    if not path or ".." in path.split("/") or not cleaned or cleaned == ".":
        raise ImageReadError(f"{where}: refusing path {path[:200]!r} (empty or outside the image)")
    return cleaned


def blob_path(digest: str, what: str) -> str:
    """The layout path of a blob, "blobs/<alg>/<hex>", after validating the digest."""
    algorithm, hexdigest = parse_digest(digest, what)
    return f"blobs/{algorithm}/{hexdigest}"


def read_small(store: BlobStore, path: str, what: str) -> bytes:
    """The whole of a small file (JSON document); ImageReadError when missing or absurd."""
    size = store.size_of(path)
    if size is None:
        raise ImageReadError(f"{what} is missing from {store.where}")
    if size > MAX_JSON_BYTES:
        raise ImageReadError(f"{what} in {store.where} is {size} bytes, too large to be metadata")
    with store.open(path) as stream:
        return stream.read(MAX_JSON_BYTES + 1)


def parse_json(data: bytes, what: str) -> object:
    """A JSON document; one-line ImageReadError when it is not one."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImageReadError(
            f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise ImageReadError(f"{what} is not valid JSON ({type(exc).__name__})") from exc


class DirStore:
    """Files under a directory (an OCI layout directory)."""

    def __init__(self, root: Path, where: str) -> None:
        self.root, self.where = root, where

    def _path(self, path: str) -> Path:
        return self.root / clean_path(path, self.where)

    def size_of(self, path: str) -> int | None:
        try:
            st = self._path(path).stat()
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def open(self, path: str) -> BinaryIO:
        if self.size_of(path) is None:
            raise ImageReadError(f"{path} is missing from {self.where}")
        try:
            return self._path(path).open("rb")
        except OSError as exc:
            raise ImageReadError(f"cannot read {path} in {self.where}: {exc.strerror}") from exc

    def close(self) -> None:
        return None


class _SectionRaw(io.RawIOBase):
    """`size` bytes at `offset` of a file, through a handle of its own."""

    def __init__(self, file: Path, offset: int, size: int) -> None:
        super().__init__()
        self._handle = file.open("rb")
        self._handle.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = self._handle.read(want)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


def _index_archive(tar: tarfile.TarFile, where: str, file_size: int) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for count, info in enumerate(tar, start=1):
        if count > MAX_ARCHIVE_MEMBERS:
            raise ImageReadError(f"{where} has more than {MAX_ARCHIVE_MEMBERS} members")
        if info.offset_data + info.size > file_size:
            # tarfile seeks past member data, so a cut-off archive ends "cleanly" here.
            raise ImageReadError(f"{where} is truncated: {info.name[:200]} ends past its end")
        name = posixpath.normpath("/" + info.name).lstrip("/")
        members[name] = info  # a later member of the same name replaces the earlier one
    return members


def _open_tar(path: Path, where: str) -> tarfile.TarFile:
    with path.open("rb") as probe:
        head = probe.read(4)
    if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
        raise ImageReadError(
            f"{where} is a compressed archive; imagescan reads archives in place,"
            " decompress it first (e.g. gunzip)"
        )
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, EOFError) as exc:
        raise ImageReadError(f"{where} is not a tar archive ({exc})") from exc


class TarStore:
    """Members of a tar archive, read in place."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = path, where
        self._tar = _open_tar(path, where)
        self._file_size = path.stat().st_size
        try:
            self._members = _index_archive(self._tar, where, self._file_size)
        except (tarfile.TarError, EOFError, OSError) as exc:
            self._tar.close()
            raise ImageReadError(f"{where} is a damaged tar archive ({exc})") from exc
        except ImageReadError:
            self._tar.close()
            raise

    def _resolve(self, path: str) -> tarfile.TarInfo | None:
        """The regular-file member at `path`, following symlinks and hardlinks in the archive.

        Legacy `docker save` writes repeated layers as symlinks to ../<id>/layer.tar.
        """
        name = posixpath.normpath("/" + path).lstrip("/")
        for _ in range(MAX_LINK_HOPS):
            info = self._members.get(name)
            if info is None or info.isreg():
                return info
            if info.issym():
                target = posixpath.join(posixpath.dirname(name), info.linkname)
            elif info.islnk():
                target = info.linkname
            else:
                return None
            name = posixpath.normpath("/" + target).lstrip("/")
        return None

    def names(self) -> list[str]:
        """All member names, normalised."""
        return list(self._members)

    def size_of(self, path: str) -> int | None:
        info = self._resolve(path)
        return None if info is None else info.size

    def open(self, path: str) -> BinaryIO:
        info = self._resolve(path)
        if info is None:
            raise ImageReadError(f"{path} is missing from {self.where}")
        if info.offset_data + info.size > self._file_size:
            raise ImageReadError(f"{self.where} is truncated: {path} ends past the end of the file")
        raw = _SectionRaw(self.path, info.offset_data, info.size)
        return io.BufferedReader(raw, buffer_size=1 << 20)

    def close(self) -> None:
        self._tar.close()


def open_store(path: Path, where: str) -> DirStore | TarStore:
    """A store for a directory or an archive file; ImageReadError when it is neither."""
    if path.is_dir():
        return DirStore(path, where)
    if path.is_file():
        return TarStore(path, where)
    raise ImageReadError(f"{where}: {os.fspath(path)} is neither a directory nor a file")
