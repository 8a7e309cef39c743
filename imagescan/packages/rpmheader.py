"""An rpm header blob, as rpmdb stores it (rpm's lib/header.c headerImport, without the
8-byte header magic): il and dl (big-endian int32), il index entries of 16 bytes
(tag, type, offset, count), then dl bytes of data."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

# rpmtag.h
NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH = 1000, 1001, 1002, 1003, 1014, 1022
OLDFILENAMES, SOURCERPM = 1027, 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
# rpmTagType
INT32, STRING, STRING_ARRAY, I18NSTRING = 4, 6, 8, 9
WANTED = frozenset(
    {NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, OLDFILENAMES, SOURCERPM}
    | {DIRINDEXES, BASENAMES, DIRNAMES}
)
MAX_TAGS = 0xFFFF  # header.c HEADER_TAGS_MAX
MAX_DATA = 256 << 20  # header.c HEADER_DATA_MAX

Value = tuple[str, ...] | tuple[int, ...]


class BadHeader(ValueError):
    """A header blob that does not follow the format."""


@dataclass(frozen=True, slots=True)
class Header:
    """The wanted tags of one header: tag -> strings or integers."""

    tags: Mapping[int, Value]

    def string(self, tag: int) -> str | None:
        """The first value of a string tag, None when absent."""
        value = self.tags.get(tag, ())
        return value[0] if value and isinstance(value[0], str) else None

    def strings(self, tag: int) -> tuple[str, ...]:
        """A string array tag's values."""
        value = self.tags.get(tag, ())
        return tuple(v for v in value if isinstance(v, str))

    def integers(self, tag: int) -> tuple[int, ...]:
        """An int32 array tag's values."""
        value = self.tags.get(tag, ())
        return tuple(v for v in value if isinstance(v, int))

    def files(self) -> list[str]:
        """The package's file paths: DIRNAMES[DIRINDEXES[i]] + BASENAMES[i], or the old
        OLDFILENAMES of packages built before rpm 4 compressed file names."""
        basenames, dirnames = self.strings(BASENAMES), self.strings(DIRNAMES)
        indexes = self.integers(DIRINDEXES)
        if not basenames:
            return list(self.strings(OLDFILENAMES))
        if len(indexes) != len(basenames) or any(i >= len(dirnames) for i in indexes):
            raise BadHeader("file name tags do not match")
        return [dirnames[i] + base for i, base in zip(indexes, basenames, strict=True)]


def parse_header(blob: bytes) -> Header:
    """The wanted tags of a header blob; BadHeader when it is malformed."""
    if len(blob) < 8:
        raise BadHeader("shorter than its 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob)
    if il > MAX_TAGS or dl > MAX_DATA or 8 + 16 * il + dl > len(blob):
        raise BadHeader(f"index of {il} entries and {dl} data bytes exceed the blob")
    data = memoryview(blob)[8 + 16 * il : 8 + 16 * il + dl]
    tags: dict[int, Value] = {}
    for tag, kind, offset, count in struct.iter_unpack(">iIiI", blob[8 : 8 + 16 * il]):
        if tag in WANTED:
            tags[tag] = _value(data, kind, offset, count)
    return Header(tags)


def _value(data: memoryview, kind: int, offset: int, count: int) -> Value:
    if offset < 0 or offset > len(data) or count > len(data):
        raise BadHeader(f"entry at offset {offset} with {count} values is outside the data")
    if kind == INT32:
        if offset + 4 * count > len(data):
            raise BadHeader("int32 array past the data")
        return struct.unpack_from(f">{count}i", data, offset)
    if kind in (STRING, STRING_ARRAY, I18NSTRING):
        return _strings(data, offset, count if kind != STRING else 1)
    return ()


def _strings(data: memoryview, offset: int, count: int) -> tuple[str, ...]:
    raw = bytes(data[offset:])
    parts = raw.split(b"\0", count)
    if len(parts) <= count:
        raise BadHeader("string not terminated inside the data")
    return tuple(part.decode("utf-8", "replace") for part in parts[:count])
