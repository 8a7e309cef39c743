"""Where local image files live: a directory, or a tar archive read in place.

Both hand out independent streams of their files by relative path ("index.json",
"blobs/sha256/<hex>", "<id>/layer.tar"). A tar archive is indexed once (headers only) and
each member is then read through its own file handle at its data offset, so several layers can
be read at once and nothing is ever extracted.
"""

from __future__ import annotations

import io
import json
import posixpath
import stat
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from imagescan.errors import ImageReadError
from imagescan.image.compression import compression_of, open_decompressed, parse_digest
from imagescan.image.pathref import archive_error
from imagescan.image.rawstream import RawStream, buffered

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


def _section(stream: BinaryIO, offset: int, size: int, *, owned: bool = True) -> BinaryIO:
    """`size` bytes at `offset` of a seekable stream; closing the result closes the stream
    when it owns it (a shared one is read on by later sections)."""
    stream.seek(offset)
    left = [size]

    def read(want: int) -> bytes:
        data = stream.read(min(want, left[0])) if left[0] > 0 else b""
        left[0] -= len(data)
        return data

    return buffered(read, stream.close if owned else None)


class _ForwardRaw(RawStream):
    """A decompressed archive made seekable forwards, by reading on.

    Lets tarfile index a `docker save | gzip` archive and read its members without ever
    holding or writing the uncompressed archive; each member read costs a pass up to it.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(self._read_on, stream.close)
        self._stream = stream
        self._position = 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def _read_on(self, size: int) -> bytes:
        data = self._stream.read(size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR):
            raise OSError("a compressed archive cannot seek from its end")
        target = offset if whence == io.SEEK_SET else self._position + offset
        if target < self._position:  # tarfile reads an archive forwards only
            raise OSError("a compressed archive cannot seek backwards")
        while self._position < target:
            chunk = self._stream.read(min(1 << 20, target - self._position))
            if not chunk:
                break
            self._position += len(chunk)
        return self._position


def _index_archive(
    tar: tarfile.TarFile, where: str, file_size: int | None
) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for count, info in enumerate(tar, start=1):
        if count > MAX_ARCHIVE_MEMBERS:
            raise ImageReadError(f"{where} has more than {MAX_ARCHIVE_MEMBERS} members")
        if file_size is not None and info.offset_data + info.size > file_size:
            # tarfile seeks past member data, so a cut-off archive ends "cleanly" here.
            raise ImageReadError(f"{where} is truncated: {info.name[:200]} ends past its end")
        name = posixpath.normpath("/" + info.name).lstrip("/")
        members[name] = info  # a later member of the same name replaces the earlier one
    return members


def _is_compressed(path: Path) -> bool:
    with path.open("rb") as probe:
        return compression_of(probe.read(4)) != "none"


class TarStore:
    """Members of a tar archive, read in place (a compressed archive is decompressed as read)."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = path, where
        try:
            self.compressed = _is_compressed(path)
            self._file_size = None if self.compressed else path.stat().st_size
            with self._seekable() as stream, tarfile.open(fileobj=stream, mode="r:") as tar:
                self._members = _index_archive(tar, where, self._file_size)
        except (tarfile.TarError, EOFError) as exc:
            raise ImageReadError(archive_error(path, exc)) from exc
        except OSError as exc:
            raise ImageReadError(f"cannot read {where}: {exc.strerror or exc}") from exc

    def _seekable(self) -> BinaryIO:
        """A fresh seekable stream of the (uncompressed) archive."""
        if not self.compressed:
            return self.path.open("rb")
        decompressed = open_decompressed(self.path.open("rb"), self.where)
        return io.BufferedReader(_ForwardRaw(decompressed), buffer_size=1 << 20)

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
        try:
            return _section(self._seekable(), info.offset_data, info.size)
        except OSError as exc:
            raise ImageReadError(f"cannot read {path} in {self.where}: {exc.strerror}") from exc

    def open_in_order(self, paths: Sequence[str]) -> Iterator[tuple[int, BinaryIO]]:
        """(position in `paths`, stream) of each member, in archive order: a compressed
        archive is decompressed once for all of them, where `open` starts again from its
        first byte each time (100 layers of a gzipped `docker save` took 92 s; issue 15).
        Each stream must be read to its end, or closed, before the next is taken."""
        infos = [(self._resolve(path), n) for n, path in enumerate(paths)]
        for info, n in infos:
            if info is None:
                raise ImageReadError(f"{paths[n]} is missing from {self.where}")
        ordered = sorted(infos, key=lambda pair: pair[0].offset_data if pair[0] else 0)
        shared = self._seekable()
        try:
            for info, n in ordered:
                assert info is not None
                if shared.tell() > info.offset_data:  # the same member twice: start again
                    yield n, self.open(paths[n])
                    continue
                yield n, _section(shared, info.offset_data, info.size, owned=False)
        finally:
            shared.close()

    def close(self) -> None:
        return None
