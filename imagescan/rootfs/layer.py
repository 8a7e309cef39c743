"""One layer blob -> LayerIndex, in one streaming pass that keeps facts only.

The tar is walked forward once (`tarstream`): nothing is spooled, and only the first bytes
of each regular file are read unless it is an ELF file (parsed on the spot) or one of the
few small files kept verbatim. Member names are normalised as a runtime extracting the
layer would see them; a name that climbs out of the root ("../../etc/passwd") is never
trusted and becomes a Skipped entry.
"""

from __future__ import annotations

import hashlib
import mmap
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from imagescan.elf.model import ElfFacts
from imagescan.elf.reader import header_problem, is_elf, parse_elf
from imagescan.errors import ImageReadError, MalformedElf
from imagescan.image.compression import open_decompressed
from imagescan.rootfs import tarstream
from imagescan.rootfs.model import Entry, EntryType, LayerIndex, Skipped
from imagescan.rootfs.tarstream import TarFormatError, TarMember, TarStream

HEAD_SIZE = 64  # sizeof(Elf64_Ehdr): what open_verify (elf/dl-load.c) reads first
MAX_ELF_SIZE = 1 << 30
# Above this an ELF file is written to an unlinked temporary file and parsed through a
# read-only mapping: only the pages of the tables the parser reads become resident, not
# the whole file (issue 14: libLLVM's 112 MiB were a third of the /usr image's peak).
SPOOL_SIZE = 16 << 20
MAX_KEPT_SIZE = 8 << 20
MAX_MEMBER_SIZE = 1 << 36  # 64 GiB: a larger declared size is a broken or hostile archive
MAX_MEMBERS = 4_000_000
CAPABILITY_XATTR = "SCHILY.xattr.security.capability"  # PAX form of the file capability xattr
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
FILE_ID_BITS = 32  # file_id = layer << 32 | ordinal of the regular file in its layer
# `verify` of a regular file left unread because an upper layer hides it: such an entry
# keeps the tree's shape (its parent directories) and never shows in a squashed image.
NOT_READ = "not read: an upper layer hides it"

KEPT_PATHS = frozenset(
    {
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.preload",
        "/etc/os-release",
        "/usr/lib/os-release",  # Debian's /etc/os-release is a symlink to it
        "/etc/nsswitch.conf",
        "/etc/passwd",  # the image's User, by name
        "/etc/group",
        "/var/lib/dpkg/status",
        "/lib/apk/db/installed",
        "/usr/lib/apk/db/installed",
        "/var/lib/rpm/rpmdb.sqlite",  # issue 11: package owners and versions
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/etc/apt/sources.list",  # issue 11: the image's own package sources, for fix hints
        "/etc/apk/repositories",
    }
)
KEPT_PREFIXES = ("/etc/ld.so.conf.d/", "/var/lib/dpkg/status.d/")
# issue 11: package file lists and package sources, each kept under limits of their own.
DPKG_INFO = "/var/lib/dpkg/info/"
SOURCE_PREFIXES = ("/etc/apt/sources.list.d/", "/etc/yum.repos.d/")
MAX_RPMDB_SIZE = 64 << 20  # rpmdb.sqlite of a full Fedora is ~40 MiB
DPKG_LISTS_BUDGET = 16 << 20  # a layer's dpkg info/*.list files together (~2000 packages)
# Small *.conf files anywhere are kept too: an /etc/ld.so.conf.d entry may be a symlink to
# one (update-alternatives does that), and which one is known only after squashing.
MAX_CONF_SIZE = 64 << 10
# All kept bytes of one image (or one layer read alone): 20,000 small *.conf files or 150
# files of 8 MiB in /etc/ld.so.conf.d/ once held 1.3 GB (issue 15). Past it a file is not
# kept; checks.kept then says which of the files the loader reads are missing.
MAX_KEPT_TOTAL = 64 << 20
NOT_KEPT = f"not kept: the image's kept files pass {MAX_KEPT_TOTAL >> 20} MiB"

Hidden = Callable[[str], bool]
Read = Callable[[int], bytes]

_SPECIAL = {
    tarstream.DIRECTORY: EntryType.DIR,
    tarstream.SYMLINK: EntryType.SYMLINK,
    tarstream.CHAR: EntryType.CHAR,
    tarstream.BLOCKDEV: EntryType.BLOCK,
    tarstream.FIFO: EntryType.FIFO,
}


@dataclass(frozen=True)
class LayerScan:
    """A LayerIndex plus the hidden (unread) files that a visible hard link of the same
    layer points to: the reader must read the layer again with those not hidden."""

    index: LayerIndex
    unread_link_targets: frozenset[str] = frozenset()


class KeptBudget:
    """What is left of MAX_KEPT_TOTAL: one per image read, or per layer read alone."""

    def __init__(self, total: int = MAX_KEPT_TOTAL) -> None:
        self.left = total

    def take(self, size: int) -> bool:
        """True, and the bytes are counted, when `size` more bytes may be kept."""
        if size > self.left:
            return False
        self.left -= size
        return True


@dataclass(frozen=True, slots=True)
class FileContent:
    """What the content of one regular file told: open_verify's verdict, ELF facts, the
    bytes when it is a kept file, and why it could not be used."""

    verify: str | None
    elf: ElfFacts | None = None
    kept: bytes | None = None
    skip_reason: str | None = None


def index_layer(
    blob: BinaryIO,
    index: int,
    diff_id: str | None,
    *,
    hidden: Hidden | None = None,
    compute_diff_id: bool = False,
    symbols: bool = True,
    digests: bool = True,
) -> LayerIndex:
    """The facts of one layer blob (gzip, zstd or plain tar), read once to its end.

    `hidden(path)` True means an upper layer deletes or replaces `path`: that regular file
    is not read at all; its entry has `verify=NOT_READ` and no facts (so such an index is
    not the layer's complete, cacheable one). With `compute_diff_id`, the sha256 of the
    uncompressed tar is computed and checked against `diff_id` when one is given. Without
    `symbols`, ELF files are parsed without their symbol tables (enough for `ls`); without
    `digests`, their SHA-256 and SHA-1 are not computed (only the SBOMs show them).
    """
    scan = scan_layer(
        blob,
        index,
        diff_id,
        hidden=hidden,
        compute_diff_id=compute_diff_id,
        symbols=symbols,
        digests=digests,
    )
    return scan.index


def scan_layer(
    blob: BinaryIO,
    index: int,
    diff_id: str | None,
    *,
    hidden: Hidden | None = None,
    compute_diff_id: bool = False,
    name: str | None = None,
    symbols: bool = True,
    budget: KeptBudget | None = None,
    digests: bool = True,
    fork: bool = False,
) -> LayerScan:
    """`index_layer`, also telling which hidden files a visible hard link needs.

    `name` is how messages call the layer (default: "layer INDEX (DIFF_ID…)"). `budget` is
    shared by the layers of one image read together (default: this layer's own). With
    `fork`, a forked child inflates the blob (one that is a file of its own on this
    machine: the child reads it) while this process walks and parses.
    """
    name = name or _layer_name(index, diff_id)
    builder = _LayerBuilder(index, hidden, symbols, budget, digests)
    digest = _read_layer(blob, builder, name, compute_diff_id, fork)
    if digest is not None and diff_id is not None and digest != diff_id:
        raise ImageReadError(
            f"{name}: its content has digest {digest}, not the diff_id the image config lists"
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
    if is_dpkg_list(path) or path.startswith(SOURCE_PREFIXES):
        return True
    return is_musl_path_file(path)


def is_musl_path_file(path: str) -> bool:
    """True for musl's search path file (/etc/ld-musl-ARCH.path)."""
    return path.startswith("/etc/ld-musl-") and path.endswith(".path")


def is_dpkg_list(path: str) -> bool:
    """True for a dpkg file list (/var/lib/dpkg/info/PACKAGE[:ARCH].list)."""
    return path.startswith(DPKG_INFO) and path.endswith(".list")


def _keep_limit(path: str) -> int:
    return MAX_RPMDB_SIZE if path.endswith("/rpmdb.sqlite") else MAX_KEPT_SIZE


@dataclass
class DpkgListBudget:
    """What is left of one layer's budget for dpkg file lists: past it, lists are not kept
    (the package database then says which packages have no file list)."""

    left: int = DPKG_LISTS_BUDGET

    def admit(self, path: str, data: bytes) -> bool:
        """True when `data` (kept under `path`) fits; dpkg lists use up the budget."""
        if not is_dpkg_list(path):
            return True
        if len(data) > self.left:
            self.left = 0  # the lists kept are a prefix of the layer's, not a random subset
            return False
        self.left -= len(data)
        return True


READ_CHUNK = 1 << 20


def file_id(layer: int, ordinal: int) -> int:
    """A regular file's identity: unique across layers, shared later by its hard links."""
    return layer << FILE_ID_BITS | ordinal


def read_content(
    path: str,
    size: int,
    read: Read,
    *,
    symbols: bool = True,
    budget: KeptBudget | None = None,
    digests: bool = True,
) -> FileContent:
    """What a regular file's content says; `read(n)` reads it from its first byte.

    ELF files are parsed whole (and hashed, with `digests` and `symbols`); others give
    open_verify's verdict from the first bytes. Kept files count against `budget`
    (default: one of their own).
    """
    head = read(HEAD_SIZE)
    verify = header_problem(head, size)
    if verify is None and is_elf(head):
        return _elf_content(path, size, head, read, symbols, digests)
    if is_kept(path):
        if size > _keep_limit(path):
            return FileContent(verify, skip_reason=f"too large to keep ({size} bytes)")
        if not (budget or KeptBudget()).take(size):
            return FileContent(verify, skip_reason=NOT_KEPT)
    elif not (path.endswith(".conf") and size <= MAX_CONF_SIZE):
        return FileContent(verify)
    elif not (budget or KeptBudget()).take(size):
        return FileContent(verify)  # any *.conf: checks.kept names it if ld.so.conf includes it
    return FileContent(verify, kept=_read_kept(head, size, read))


def _read_kept(head: bytes, size: int, read: Read) -> bytes:
    data = bytearray(head)
    while len(data) < size:
        chunk = read(min(READ_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _read_whole(head: bytes, size: int, read: Read) -> bytearray:
    """The whole file in one buffer, filled a chunk at a time: a large library (libLLVM is
    over 100 MiB) is then held once, not once more for joining the head to the rest. The
    buffer grows as bytes arrive: a member declaring 1 GiB and holding 64 KiB once had
    1 GiB allocated before its first byte was read (issue 15)."""
    data = bytearray()
    for chunk in _elf_chunks(head, size, read):
        data += chunk
    return data


def _elf_chunks(head: bytes, size: int, read: Read) -> Iterator[bytes]:
    """An ELF file's `size` bytes, `head` first, then a chunk at a time; MalformedElf when
    the member ends before."""
    yield head
    got = len(head)
    while got < size:
        chunk = read(min(READ_CHUNK, size - got))
        if not chunk:
            raise MalformedElf(f"file ends after {got} of {size} bytes")
        got += len(chunk)
        yield chunk


def _elf_content(
    path: str, size: int, head: bytes, read: Read, symbols: bool, digests: bool = True
) -> FileContent:
    if size > MAX_ELF_SIZE:
        return FileContent(None, skip_reason=f"too large to parse ({size} bytes)")
    try:
        if size > SPOOL_SIZE:
            return FileContent(None, elf=_spooled_facts(path, size, head, read, symbols, digests))
        data = _read_whole(head, size, read)
        facts = parse_elf(data, path, symbols=symbols)
        # Only the SBOMs show digests: hashing every ELF byte twice was 40% of `imagescan
        # ls` and a third of a scan's reading (issue 14). A stored layer is always hashed.
        return FileContent(None, elf=with_digests(facts, data) if symbols and digests else facts)
    except MalformedElf as exc:
        reason = str(exc) or "malformed ELF file"
        return FileContent(reason, skip_reason=reason)


def _spooled_facts(
    path: str, size: int, head: bytes, read: Read, symbols: bool, digests: bool
) -> ElfFacts:
    """parse_elf of a large file through a mapping of its spooled copy (SPOOL_SIZE); the
    digests hashed as the bytes go by."""
    hashes = (hashlib.sha256(), hashlib.sha1()) if symbols and digests else ()
    with tempfile.TemporaryFile() as spool:
        for chunk in _elf_chunks(head, size, read):
            spool.write(chunk)
            for sha in hashes:
                sha.update(chunk)
        spool.flush()
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            facts = parse_elf(mapped, path, symbols=symbols)  # type: ignore[arg-type]
    if not hashes:
        return facts
    return replace(facts, sha256=hashes[0].hexdigest(), sha1=hashes[1].hexdigest())


def with_digests(facts: ElfFacts, data: bytes | bytearray) -> ElfFacts:
    """The facts with the SHA-256 and SHA-1 of the file's bytes, hashed from the buffer the
    parser read (no second read; only ELF files are hashed)."""
    return replace(
        facts, sha256=hashlib.sha256(data).hexdigest(), sha1=hashlib.sha1(data).hexdigest()
    )


# ---------------------------------------------------------------- the tar stream


class _LayerBuilder:
    """Collects the facts of one layer, member by member, in stream order."""

    def __init__(
        self,
        index: int,
        hidden: Hidden | None,
        symbols: bool = True,
        budget: KeptBudget | None = None,
        digests: bool = True,
    ) -> None:
        self.index = index
        self.hidden = hidden
        self.symbols = symbols
        self.digests = digests
        self.budget = budget or KeptBudget()
        self.entries: list[Entry] = []
        self.whiteouts: list[str] = []
        self.opaque_dirs: list[str] = []
        self.kept: dict[str, bytes] = {}
        self.skipped: list[Skipped] = []
        self.files = 0
        self.unread: set[str] = set()
        self.unread_link_targets: set[str] = set()
        self.list_budget = DpkgListBudget()  # issue 11: dpkg file lists, per layer

    def add(self, member: TarMember, tar: TarStream) -> None:
        """Record one tar member."""
        path = normalise(member.name)
        if path is None:
            reason = "member name leads outside the image root"
            self.skipped.append(Skipped(member.name, reason, self.index))
        elif path == "/":
            return
        elif path.rpartition("/")[2].startswith(WHITEOUT):
            self._whiteout(path)
        elif member.type == tarstream.REGULAR:
            self._regular(path, member, tar)
        elif member.type == tarstream.HARDLINK:
            self._hardlink(path, member)
        elif member.type in _SPECIAL:
            self.entries.append(self._entry(path, _SPECIAL[member.type], member))
        elif member.type == tarstream.GNU_SPARSE:
            self.skipped.append(Skipped(path, "GNU sparse file: not read", self.index))

    def _whiteout(self, path: str) -> None:
        # OCI image-spec layer.md "Whiteouts": .wh..wh..opq hides the directory's lower
        # children; .wh.NAME hides NAME; other .wh..wh. names are aufs metadata, ignored.
        parent, _, name = path.rpartition("/")
        if name == OPAQUE:
            self.opaque_dirs.append(parent or "/")
        elif name != WHITEOUT and not name.startswith(WHITEOUT + WHITEOUT):
            self.whiteouts.append(f"{parent}/{name[len(WHITEOUT) :]}")

    def _entry(self, path: str, kind: EntryType, member: TarMember) -> Entry:
        link = member.linkname if kind is EntryType.SYMLINK else None
        return Entry(
            path=path,
            type=kind,
            layer=self.index,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            link_target=link,
        )

    def _regular(self, path: str, member: TarMember, tar: TarStream) -> None:
        self.files += 1
        if self.hidden is not None and self.hidden(path):
            # Recorded without reading it: it still creates its parent directories.
            self.unread.add(path)
            content = FileContent(NOT_READ)
        else:
            content = read_content(
                path,
                member.size,
                tar.read_data,
                symbols=self.symbols,
                budget=self.budget,
                digests=self.digests,
            )
        entry = Entry(
            path=path,
            type=EntryType.FILE,
            layer=self.index,
            size=member.size,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            file_id=file_id(self.index, self.files),
            has_caps=CAPABILITY_XATTR in member.pax,
            verify=content.verify,
            elf=content.elf,
        )
        self.entries.append(entry)
        if content.kept is not None and self.list_budget.admit(path, content.kept):
            self.kept[path] = content.kept
        if content.skip_reason is not None:
            self.skipped.append(Skipped(path, content.skip_reason, self.index))

    def _hardlink(self, path: str, member: TarMember) -> None:
        target = normalise(member.linkname)
        if target is None:
            reason = "hard link target leads outside the image root"
            self.skipped.append(Skipped(path, reason, self.index))
            return
        if target in self.unread and not (self.hidden is not None and self.hidden(path)):
            self.unread_link_targets.add(target)
        self.entries.append(
            Entry(path=path, type=EntryType.HARDLINK, layer=self.index, link_target=target)
        )

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

    def __init__(self, read: Read) -> None:
        self._read = read
        self.sha256 = hashlib.sha256()

    def read(self, size: int) -> bytes:
        data = self._read(size)
        self.sha256.update(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


_READ_ERRORS = (TarFormatError, OSError, EOFError)


def _read_layer(
    blob: BinaryIO, builder: _LayerBuilder, name: str, hashed: bool, fork: bool = False
) -> str | None:
    """Walk the layer's tar once, feeding `builder`; the diff_id when `hashed`."""
    try:
        # Inflating runs on a thread ahead of the walk, or in a forked child with `fork`
        # (issue 14); closing stops it.
        with open_decompressed(blob, name, read_ahead=True, fork=fork) as stream:
            # Only through `direct` (TarStream reads exactly, short reads and all): no
            # copy of each byte into the stream's buffer (issue 14).
            hasher = _HashingReader(stream.direct) if hashed else None
            read = hasher.read if hasher is not None else stream.direct
            _walk_tar(read, builder)
            while read(1 << 20):  # the rest of the tar (padding) counts for the diff_id
                pass
            _drain(stream)  # checks the gzip CRC, then the blob digest, at EOF
    except _READ_ERRORS as exc:
        raise ImageReadError(f"{name} cannot be read: {_describe(exc)}") from None
    return hasher.digest() if hasher is not None else None


def _walk_tar(read: Read, builder: _LayerBuilder) -> None:
    tar = TarStream(read, MAX_MEMBER_SIZE)
    for count, member in enumerate(tar.members(), start=1):
        if count > MAX_MEMBERS:
            raise TarFormatError(f"more than {MAX_MEMBERS} members")
        builder.add(member, tar)


def _drain(stream: BinaryIO) -> None:
    drain = getattr(stream, "drain", None)
    if callable(drain):
        drain()
        return
    while stream.read(1 << 20):
        pass


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if text in ("empty file", "invalid header"):
        return f"not a tar archive ({text})"
    return text


def _layer_name(index: int, diff_id: str | None) -> str:
    short = f" ({diff_id[:19]}…)" if diff_id else ""
    return f"layer {index}{short}"
