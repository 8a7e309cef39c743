"""A forward-only tar reader for layer streams: headers parsed by slicing, data read or skipped.

tarfile's stream mode re-buffers every read through a 10 KiB window and remembers every
member it saw; a layer walk needs neither. This reader understands what image layers
contain (POSIX ustar, PAX extended headers, GNU long names; see POSIX.1-2008 pax "ustar
Interchange Format" and "pax Extended Header"), checks every header's checksum and every
declared size before use, and raises TarFormatError for anything else that is broken.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
SKIP_CHUNK = 1 << 20
MAX_META_SIZE = 1 << 20  # a PAX header or GNU long name above 1 MiB is hostile
MAX_EXTENSIONS = 16  # extended headers before one member (writers use one or two)

REGULAR = b"0"
REGULAR_TYPES = frozenset({b"0", b"\0", b"7"})  # REGTYPE, AREGTYPE, CONTTYPE
HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
PAX, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = b"x", b"g", b"L", b"K", b"S"

_SIGNED = struct.Struct("148b8x356b")


class TarFormatError(ValueError):
    """The stream is not a (complete) tar archive."""


@dataclass(frozen=True, slots=True)
class TarMember:
    """One member header, PAX and GNU extensions applied. `type` is the typeflag byte."""

    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    linkname: str = ""
    pax: Mapping[str, str] = field(default_factory=dict)


class TarStream:
    """Members of a tar read from `read`; `read_data` reads the current member's data."""

    def __init__(self, read: Callable[[int], bytes], max_size: int) -> None:
        self._read = read
        self._max_size = max_size
        self._remaining = 0  # unread data bytes of the current member
        self._padding = 0

    def members(self) -> Iterator[TarMember]:
        """Every member, in stream order, up to the end-of-archive block.

        A stream that ends cleanly at a member boundary without that block ends the archive
        too, as docker load, GNU tar and the engines accept it (umoci writes such layers;
        issue 10); a stream cut inside a header or a member's data stays an error.
        """
        pending: dict[str, str] = {}
        first, extensions = True, 0
        while True:
            self._skip_rest()
            block = self._exact(BLOCK, allow_eof=True)
            if not block and first:
                raise TarFormatError("empty file")
            if not block and extensions:
                raise TarFormatError("the tar ends after an extended header, before its member")
            if not block or block == ZERO_BLOCK:
                return
            member = _parse_header(block, first)
            first = False
            self._start(member.size, member.name)
            if member.type in (PAX, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK):
                extensions += 1
                if extensions > MAX_EXTENSIONS:
                    raise TarFormatError(f"more than {MAX_EXTENSIONS} extended headers in a row")
                self._extension(member, pending)
                continue
            if member.type == GNU_SPARSE and block[482]:
                self._skip_sparse_extensions()
            member = _extended(member, pending)
            pending, extensions = {}, 0
            self._start(member.size, member.name)
            yield member

    def read_data(self, size: int) -> bytes:
        """Up to `size` bytes of the current member's data (fewer only at its end)."""
        size = min(size, self._remaining)
        data = self._exact(size)
        self._remaining -= size
        return data

    def _start(self, size: int, name: str) -> None:
        if not 0 <= size <= self._max_size:
            raise TarFormatError(f"member {name!r} declares {size} bytes")
        self._remaining, self._padding = size, -size % BLOCK

    def _extension(self, member: TarMember, pending: dict[str, str]) -> None:
        """Records that apply to the next member: PAX headers, GNU long names."""
        if member.size > MAX_META_SIZE:
            raise TarFormatError(f"extended header of {member.size} bytes")
        data = self.read_data(member.size)
        if member.type == PAX:
            pending.update(parse_pax(data))
        elif member.type == GNU_LONGNAME:
            pending["path"] = _text(data)
        elif member.type == GNU_LONGLINK:
            pending["linkpath"] = _text(data)
        # PAX_GLOBAL: global defaults; layer writers do not use them, nothing here needs them.

    def _skip_sparse_extensions(self) -> None:
        # Old GNU sparse: extension blocks follow while their byte 504 ("isextended") is set.
        while self._exact(BLOCK)[504]:
            pass

    def _skip_rest(self) -> None:
        left = self._remaining + self._padding
        while left:
            left -= len(self._exact(min(left, SKIP_CHUNK)))
        self._remaining = self._padding = 0

    def _exact(self, size: int, allow_eof: bool = False) -> bytes:
        data = self._read(size)
        while len(data) < size:
            more = self._read(size - len(data))
            if not more:
                if allow_eof and not data:
                    return b""
                raise TarFormatError("unexpected end of data")
            data += more
        return data


def _parse_header(block: bytes, first: bool) -> TarMember:
    """A ustar/GNU/v7 header block; TarFormatError when its checksum is wrong."""
    if not _checksum_ok(block):
        raise TarFormatError("invalid header" if first else "corrupt member header")
    name = _text(block[0:100])
    if block[257:263] == b"ustar\0":  # POSIX ustar: a prefix holds the leading directories
        prefix = _text(block[345:500])
        name = f"{prefix}/{name}" if prefix else name
    kind = block[156:157]
    if kind in REGULAR_TYPES and name.endswith("/"):
        kind = DIRECTORY  # old tars mark directories by the trailing slash only
    return TarMember(
        name=name,
        type=REGULAR if kind in REGULAR_TYPES else kind,
        mode=_number(block[100:108]),
        uid=_number(block[108:116]),
        gid=_number(block[116:124]),
        size=_number(block[124:136]),
        linkname=_text(block[157:257]) if block[157] else "",
    )


def _checksum_ok(block: bytes) -> bool:
    # The checksum field counts as eight spaces; old tars summed signed chars.
    field = block[148:156]
    try:
        expected = _number(field)
    except TarFormatError:
        return False
    if expected == sum(block) - sum(field) + 256:
        return True
    signed: int = sum(_SIGNED.unpack(block))
    return expected == signed + 256


def _number(field: bytes) -> int:
    """An octal field (NUL/space padded), or GNU base-256 when the high bit is set."""
    if field[:1] and field[0] & 0x80:
        if field[0] == 0xFF:
            raise TarFormatError("negative number in header")
        return int.from_bytes(field[1:], "big") + ((field[0] & 0x7F) << (8 * (len(field) - 1)))
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError("invalid number in header") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def parse_pax(data: bytes) -> dict[str, str]:
    """PAX records, `"%d %s=%s\\n" % (length, key, value)`, as a dict."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        digits = data[pos:space] if space > pos else b""
        # A record without "LENGTH " would read as length 0 and never advance (issue 15).
        if not (digits.isascii() and digits.isdigit()):
            raise TarFormatError("corrupt PAX extended header")
        length = int(digits)
        end = pos + length
        if length <= space - pos or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarFormatError("corrupt PAX extended header")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise TarFormatError("corrupt PAX extended header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


def _extended(member: TarMember, pending: Mapping[str, str]) -> TarMember:
    """`member` with the PAX / GNU records that precede it applied."""
    if not pending:
        return member
    return TarMember(
        name=pending.get("path", member.name),
        type=member.type,
        mode=member.mode,
        uid=_pax_number(pending, "uid", member.uid),
        gid=_pax_number(pending, "gid", member.gid),
        size=_pax_number(pending, "size", member.size),
        linkname=pending.get("linkpath", member.linkname),
        pax=pending,
    )


def _pax_number(records: Mapping[str, str], key: str, default: int) -> int:
    value = records.get(key)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise TarFormatError(f"invalid PAX {key} {value[:30]!r}")
    return int(value)
