"""One layer blob -> LayerIndex, in one streaming pass that keeps facts only.

The tar is read with tarfile in stream mode ("r|"): nothing is spooled, seeks only go
forward, and only the first bytes of each regular file are read unless it is an ELF file
(parsed on the spot) or one of the few small files kept verbatim. Member names are
normalised as a runtime extracting the layer would see them; a name that climbs out of the
root ("../../etc/passwd") is never trusted and becomes a Skipped entry.
"""

from __future__ import annotations

import hashlib
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO, BinaryIO, cast

from imagescan.elf.reader import header_problem, is_elf, parse_elf
from imagescan.errors import ImageReadError, MalformedElf
from imagescan.image.compression import open_decompressed
from imagescan.rootfs.model import Entry, EntryType, LayerIndex, Skipped

HEAD_SIZE = 64  # sizeof(Elf64_Ehdr): what open_verify (elf/dl-load.c) reads first
MAX_ELF_SIZE = 1 << 30
MAX_KEPT_SIZE = 8 << 20
MAX_MEMBER_SIZE = 1 << 36  # 64 GiB: a larger declared size is a broken or hostile archive
MAX_MEMBERS = 4_000_000
CAPABILITY_XATTR = "SCHILY.xattr.security.capability"  # PAX form of the file capability xattr
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

KEPT_PATHS = frozenset(
    {
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.preload",
        "/etc/os-release",
        "/usr/lib/os-release",  # Debian's /etc/os-release is a symlink to it
        "/etc/nsswitch.conf",
        "/var/lib/dpkg/status",
        "/lib/apk/db/installed",
        "/usr/lib/apk/db/installed",
    }
)
KEPT_PREFIXES = ("/etc/ld.so.conf.d/", "/var/lib/dpkg/status.d/")

Hidden = Callable[[str], bool]

_SPECIAL = {
    tarfile.DIRTYPE: EntryType.DIR,
    tarfile.SYMTYPE: EntryType.SYMLINK,
    tarfile.CHRTYPE: EntryType.CHAR,
    tarfile.BLKTYPE: EntryType.BLOCK,
    tarfile.FIFOTYPE: EntryType.FIFO,
}


@dataclass(frozen=True)
class LayerScan:
    """A LayerIndex plus the hidden (unread) files that a visible hard link of the same
    layer points to: the reader must read the layer again with those not hidden."""

    index: LayerIndex
    unread_link_targets: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What reading one regular file produced: its entry, kept bytes, and any trouble."""

    entry: Entry
    kept: bytes | None = None
    skipped: Skipped | None = None


def index_layer(
    blob: BinaryIO,
    index: int,
    diff_id: str | None,
    *,
    hidden: Hidden | None = None,
    compute_diff_id: bool = False,
) -> LayerIndex:
    """The facts of one layer blob (gzip, zstd or plain tar), read once to its end.

    `hidden(path)` True means an upper layer deletes or replaces `path`: that regular file
    is not read at all and is left out. With `compute_diff_id`, the sha256 of the
    uncompressed tar is computed and checked against `diff_id` when one is given.
    """
    return scan_layer(blob, index, diff_id, hidden=hidden, compute_diff_id=compute_diff_id).index


def scan_layer(
    blob: BinaryIO,
    index: int,
    diff_id: str | None,
    *,
    hidden: Hidden | None = None,
    compute_diff_id: bool = False,
) -> LayerScan:
    """`index_layer`, also telling which hidden files a visible hard link needs."""
    builder = _LayerBuilder(index, hidden)
    digest = _read_layer(blob, builder, _layer_name(index, diff_id), compute_diff_id)
    if digest is not None and diff_id is not None and digest != diff_id:
        raise ImageReadError(
            f"{_layer_name(index, diff_id)}: its content has digest {digest}, "
            "not the diff_id the image config lists"
        )
    return builder.result(digest or diff_id)


def normalise(name: str) -> str | None:
    """The absolute path a member name stands for; None when ".." climbs above the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif not parts:
            return None
        else:
            parts.pop()
    return "/" + "/".join(parts)


def is_kept(path: str) -> bool:
    """True for the small files kept verbatim (loader configuration, release, packages)."""
    if path in KEPT_PATHS or path.startswith(KEPT_PREFIXES):
        return True
    return path.startswith("/etc/ld-musl-") and path.endswith(".path")


def read_regular_file(entry: Entry, stream: IO[bytes]) -> FileFacts:
    """Facts of a regular file whose content `stream` reads from its first byte.

    ELF files are parsed whole; others give open_verify's verdict from the first bytes.
    """
    head = stream.read(HEAD_SIZE)
    if is_elf(head):
        return _elf_file(entry, head, stream)
    verified = replace(entry, verify=header_problem(head, entry.size))
    if not is_kept(entry.path):
        return FileFacts(verified)
    if entry.size > MAX_KEPT_SIZE:
        return FileFacts(verified, skipped=_skip(entry, f"too large to keep ({entry.size} bytes)"))
    return FileFacts(verified, kept=head + stream.read(max(entry.size - len(head), 0)))


def _elf_file(entry: Entry, head: bytes, stream: IO[bytes]) -> FileFacts:
    verify = header_problem(head, entry.size)
    if entry.size > MAX_ELF_SIZE:
        reason = f"too large to parse ({entry.size} bytes)"
        return FileFacts(replace(entry, verify=verify), skipped=_skip(entry, reason))
    data = head + stream.read(entry.size - len(head))
    try:
        facts = parse_elf(data, entry.path)
    except MalformedElf as exc:
        reason = str(exc) or "malformed ELF file"
        return FileFacts(replace(entry, verify=reason), skipped=_skip(entry, reason))
    return FileFacts(replace(entry, verify=verify, elf=facts))


def _skip(entry: Entry, reason: str) -> Skipped:
    return Skipped(entry.path, reason, entry.layer)


# ---------------------------------------------------------------- the tar stream


class _LayerBuilder:
    """Collects the facts of one layer, member by member, in stream order."""

    def __init__(self, index: int, hidden: Hidden | None) -> None:
        self.index = index
        self.hidden = hidden
        self.entries: list[Entry] = []
        self.whiteouts: list[str] = []
        self.opaque_dirs: list[str] = []
        self.kept: dict[str, bytes] = {}
        self.skipped: list[Skipped] = []
        self.unread: set[str] = set()
        self.unread_link_targets: set[str] = set()

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        """Record one tar member."""
        path = normalise(member.name)
        if path is None:
            reason = "member name leads outside the image root"
            self.skipped.append(Skipped(member.name, reason, self.index))
        elif path == "/":
            return
        elif path.rpartition("/")[2].startswith(WHITEOUT):
            self._whiteout(path)
        elif member.isreg():
            self._regular(path, member, tar)
        elif member.islnk():
            self._hardlink(path, member)
        elif member.type in _SPECIAL:
            self.entries.append(self._entry(path, _SPECIAL[member.type], member))

    def _whiteout(self, path: str) -> None:
        # OCI image-spec layer.md "Whiteouts": .wh..wh..opq hides the directory's lower
        # children; .wh.NAME hides NAME; other .wh..wh. names are aufs metadata, ignored.
        parent, _, name = path.rpartition("/")
        if name == OPAQUE:
            self.opaque_dirs.append(parent or "/")
        elif not name.startswith(WHITEOUT + WHITEOUT):
            self.whiteouts.append(f"{parent}/{name[len(WHITEOUT) :]}")

    def _entry(self, path: str, kind: EntryType, member: tarfile.TarInfo) -> Entry:
        link = member.linkname if kind is EntryType.SYMLINK else None
        return Entry(
            path=path,
            type=kind,
            layer=self.index,
            size=member.size if kind is EntryType.FILE else 0,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            link_target=link,
            has_caps=CAPABILITY_XATTR in member.pax_headers,
        )

    def _regular(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        if self.hidden is not None and self.hidden(path):
            self.unread.add(path)
            return
        stream = tar.extractfile(member)
        if stream is None:  # cannot happen for a regular member; tarfile's API allows it
            return
        facts = read_regular_file(self._entry(path, EntryType.FILE, member), stream)
        self.entries.append(facts.entry)
        if facts.kept is not None:
            self.kept[path] = facts.kept
        if facts.skipped is not None:
            self.skipped.append(facts.skipped)

    def _hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        target = normalise(member.linkname)
        if target is None:
            reason = "hard link target leads outside the image root"
            self.skipped.append(Skipped(path, reason, self.index))
            return
        if self.hidden is not None and self.hidden(path):
            return
        if target in self.unread:
            self.unread_link_targets.add(target)
        entry = self._entry(path, EntryType.HARDLINK, member)
        self.entries.append(replace(entry, link_target=target, size=0))

    def result(self, diff_id: str | None) -> LayerScan:
        index = LayerIndex(
            index=self.index,
            diff_id=diff_id,
            entries=tuple(self.entries),
            whiteouts=tuple(self.whiteouts),
            opaque_dirs=tuple(self.opaque_dirs),
            kept=self.kept,
            skipped=tuple(self.skipped),
        )
        return LayerScan(index, frozenset(self.unread_link_targets))


class _HashingReader:
    """Passes reads through and hashes what went by (the diff_id of the uncompressed tar)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


class _LayerProblem(Exception):
    """The layer cannot be read; becomes ImageReadError naming the layer."""


_READ_ERRORS = (_LayerProblem, tarfile.TarError, OSError, EOFError, ValueError, zlib.error)


def _read_layer(blob: BinaryIO, builder: _LayerBuilder, name: str, hashed: bool) -> str | None:
    """Walk the layer's tar once, feeding `builder`; the diff_id when `hashed`."""
    try:
        stream = open_decompressed(blob, name)
        source = _HashingReader(stream) if hashed else stream
        _walk_tar(cast(BinaryIO, source), builder)
        _drain(source)  # the rest of the tar counts for the diff_id
        _drain(stream)  # checks the gzip CRC, then the blob digest, at EOF
    except _READ_ERRORS as exc:
        raise ImageReadError(f"{name} cannot be read: {_describe(exc)}") from None
    return source.digest() if isinstance(source, _HashingReader) else None


def _walk_tar(stream: BinaryIO, builder: _LayerBuilder) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        remembered: list[tarfile.TarInfo] = vars(tar)["members"]
        count = 0
        while (member := tar.next()) is not None:
            count += 1
            if count > MAX_MEMBERS:
                raise _LayerProblem(f"more than {MAX_MEMBERS} members")
            if not 0 <= member.size <= MAX_MEMBER_SIZE:
                raise _LayerProblem(f"member {member.name!r} declares {member.size} bytes")
            builder.add(member, tar)
            remembered.clear()  # tarfile keeps every member it read: memory would grow
        _check_end(tar)


def _check_end(tar: tarfile.TarFile) -> None:
    # In stream mode tarfile takes a missing end-of-archive block for the end: a tar cut
    # at a member boundary looks complete. The end block is read when the position moved
    # past the last member's data.
    position = getattr(tar.fileobj, "pos", None)
    if isinstance(position, int) and position < tar.offset + tarfile.BLOCKSIZE:
        raise _LayerProblem("the tar ends without its end-of-archive block (truncated?)")


def _drain(stream: object) -> None:
    drain = getattr(stream, "drain", None)
    if callable(drain):
        drain()
        return
    read = cast(BinaryIO, stream).read
    while read(1 << 20):
        pass


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, tarfile.ReadError) and text in ("empty file", "invalid header"):
        return f"not a tar archive ({text})"
    return text


def _layer_name(index: int, diff_id: str | None) -> str:
    short = f" ({diff_id[:19]}…)" if diff_id else ""
    return f"layer {index}{short}"
