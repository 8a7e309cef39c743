"""Layer facts as plain JSON, checked field by field on the way back (issue 12, issue 15).

No pickle: an entry read back is data, never code. The schema is the dataclasses
themselves: a `Codec` walks the type hints of `LayerIndex` once, down to `ElfFacts` and its
parts, and builds one encoder and one validating decoder per type. A dataclass is written
as the list of its field values in field order; `bytes` as base64; enums as their value;
tuples as lists; mappings as objects with string keys (names to tuples of plain values as
a table: `_table_mapping_pair`). Each ELF file's facts is a JSON text of its own, ended by
a NUL byte, and the texts come before the envelope that numbers them (`_Writer`). The
fingerprint of that walk (field names and types) is part of `FACTS_VERSION`, so a change
to the facts' shape invalidates old entries by itself (as trivy and Clair key their layer
caches by analyzer version).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import dataclasses
import enum
import hashlib
import itertools
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from imagescan import __version__
from imagescan.elf.model import ElfFacts, UndefinedSymbol
from imagescan.elf.symtab import reference
from imagescan.image.compression import entry_compressor, entry_inflate
from imagescan.parallel import collector_paused
from imagescan.rootfs.model import LayerIndex

# Bump when what a field *means* changes without its type changing (the ELF reader starts
# to record something else in the same field); shape changes are caught by the fingerprint.
FACTS_SCHEMA = 7  # 3: package databases kept (issue 11); 4: ElfFacts.sha256/sha1 (issue 13)
# 5: UndefinedSymbol.canonical (issue 9); 6: each ELF file's text after the envelope (issue 14)
# 7: the entry a zstd frame, not zlib (issue 14)
FORMAT = "imagescan-layer-facts"

Fields = tuple[str, str]  # an envelope's names for its tag and its value
Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


class EntryError(Exception):
    """A stored entry is not what this version writes: it is ignored and the layer re-read."""


@dataclasses.dataclass(frozen=True)
class _Pair:
    """How one type is written and read back. `scalars` is set for plain JSON values (the
    exact Python types allowed): a whole column of them is then checked at C speed."""

    encode: Encode
    decode: Decode
    shape: str
    scalars: frozenset[type] | None = None
    column: Callable[[list[Any]], list[Any]] | None = None
    names: bool = False  # text values, interned when many are read at once

    def decode_column(self, column: list[Any]) -> list[Any]:
        """Many values of this type at once (a field of every item of a tuple)."""
        if self.column is not None:
            return self.column(column)
        if self.scalars is not None:
            kinds = set(map(type, column))
            if not kinds <= self.scalars:
                raise EntryError(f"expected {self.shape} values")
            return _interned(column, kinds) if self.names else column
        return _consumed(column, self.decode)


def _interned(column: list[Any], kinds: set[type]) -> list[Any]:
    """A column of text (or of text and None) with every text interned, as the ELF reader
    interns the names it keeps: json.loads makes one object per occurrence, and an XL
    layer read back held 200,000 more strings (13 MiB) than the same layer read from its
    blob: references' names, their versions and files (issue 14)."""
    if kinds <= {str}:
        return list(map(sys.intern, column))
    return [v if v is None else sys.intern(v) for v in column]


@dataclasses.dataclass(frozen=True, slots=True)
class _Deferred:
    """A value to be written as a JSON text of its own (`_nested_pair`), made into that
    text only when the entry's encoder reaches it: the entry's tree then never holds every
    ELF file's text at once (a first scan of /usr with --cache peaked at 308 MiB)."""

    inner: _Pair
    value: Any

    def text(self) -> bytes:
        # ASCII (ensure_ascii): no NUL byte, which ends each text in the entry (_Writer)
        return json.dumps(self.inner.encode(self.value), separators=(",", ":")).encode()


class _Writer:
    """One entry as it is written: each nested text, as the encoder reaches it, compressed
    at once and ended by a NUL byte, its number in the envelope in its place; the envelope
    last. The texts are not strings inside the envelope: unescaping 25 MB of them took
    0.1 s of the 0.8 s that reading the large image's layer back took (issue 14)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.count = 0
        self._compressor = entry_compressor()

    def nested(self, value: Any) -> int:
        """The encoder's hook for what it cannot write itself: a _Deferred's text."""
        if type(value) is not _Deferred:
            raise TypeError(f"cannot store a {type(value).__name__}")
        self.out += self._compressor.compress(value.text() + b"\0")
        self.count += 1
        return self.count - 1

    def finish(self, envelope: str) -> bytearray:
        self.out += self._compressor.compress(envelope.encode())
        self.out += self._compressor.flush()
        return self.out


# The texts of the entry being read, by number: _nested_pair's decoder takes them from here
_TEXTS: contextvars.ContextVar[list[bytes | None]] = contextvars.ContextVar("texts")


def _consumed(column: list[Any], decode: Decode) -> list[Any]:
    """[decode(v) for v in column], each raw value let go once decoded: the JSON tree of
    a large layer shrinks as its objects are made, instead of both being held whole
    (issue 14: a 2,380-ELF layer read back peaked at twice its facts). The column is the
    decoder's own, fresh from json.loads."""
    out = []
    for i, raw in enumerate(column):
        column[i] = None
        out.append(decode(raw))
    return out


class TypedCodec:
    """Encoder and validating decoder of one dataclass type, built once from its type
    hints; an entry is an envelope (format, version, tag) around the value, so that an
    entry of another kind, version or key is refused before its value is read."""

    def __init__(self, root: type, entry_format: str, version: str, fields: Fields) -> None:
        self._pair = _for_type(root)
        self._root = root
        self.format = entry_format
        self._tag, self._value = fields
        shape = hashlib.sha256(self._pair.shape.encode()).hexdigest()[:12]
        self.version = f"{version}/{shape}"

    def dumps(self, value: Any, tag: str) -> bytearray:
        """The entry of `value`, written for `tag` (a diff_id, a result key)."""
        doc = {"format": self.format, "version": self.version, self._tag: tag}
        doc[self._value] = self._pair.encode(value)
        # One growing buffer, compressed as the texts are made: a list of pieces joined at
        # the end, or the whole text, held the entry two more times (issue 14). The
        # envelope without the texts is small, and the C encoder writes it at once.
        writer = _Writer()
        encoder = json.JSONEncoder(separators=(",", ":"), default=writer.nested)
        return writer.finish(encoder.encode(doc))

    def loads(self, data: bytes, tag: str) -> Any:
        """The value back, or EntryError saying why the entry cannot be used."""
        try:
            *texts, envelope = entry_inflate(data).split(b"\0")
            doc = json.loads(envelope)
        except (ValueError, RecursionError) as err:  # entry_inflate: ValueError
            raise EntryError(f"not an imagescan entry ({type(err).__name__})") from err
        if not isinstance(doc, dict) or doc.get("format") != self.format:
            raise EntryError("not an imagescan entry")
        if doc.get("version") != self.version or doc.get(self._tag) != tag:
            raise EntryError(f"written by another version or for another {self._value}")
        token = _TEXTS.set(texts)  # type: ignore[arg-type]  # list[bytes] is one of those
        # A large layer's entry makes a million objects and no cycle: the collector's
        # passes over them, four full ones, were a tenth of reading it back (issue 14).
        try:
            with collector_paused():
                value = self._pair.decode(doc.pop(self._value, None))  # the tree is ours
        finally:
            _TEXTS.reset(token)
        assert isinstance(value, self._root)
        return value


class Codec(TypedCodec):
    """Encoder and validating decoder of `LayerIndex`, tagged by its diff_id."""

    def __init__(self) -> None:
        version = f"{__version__}/facts-{FACTS_SCHEMA}"
        super().__init__(LayerIndex, FORMAT, version, ("diff_id", "layer"))

    def dumps(self, value: Any, tag: str | None = None) -> bytearray:
        """The layer's entry (tagged by its own diff_id)."""
        return super().dumps(value, tag or value.diff_id)

    def loads(self, data: bytes, tag: str) -> LayerIndex:
        layer = super().loads(data, tag)
        assert isinstance(layer, LayerIndex)
        if layer.diff_id != tag:
            raise EntryError("written for another layer")
        return layer


def _for_type(hint: Any) -> _Pair:
    """The pair for one type hint (recursion over the type tree, a few levels deep)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _nested_pair(_dataclass_pair(hint)) if hint in _NESTED else _dataclass_pair(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_pair(hint)
    if hint in _SCALARS:
        return _SCALARS[hint]
    if origin in (types.UnionType, typing.Union):
        return _optional_pair(hint)
    if origin is tuple:
        return _tuple_pair(typing.get_args(hint))
    if origin is frozenset:
        return _set_pair(_for_type(typing.get_args(hint)[0]))
    if origin in (Mapping, dict):
        key, value = typing.get_args(hint)
        if key is not str:
            return _pairs_pair(_for_type(key), _for_type(value))
        if _scalar_tuple(value):
            return _table_mapping_pair(_for_type(value))
        return _mapping_pair(_for_type(value))
    raise TypeError(f"the facts codec has no rule for {hint!r}")


def _fields(cls: type) -> tuple[list[str], list[_Pair]]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    return names, [_for_type(hints[name]) for name in names]


def _shape(cls: type, names: list[str], pairs: list[_Pair]) -> str:
    return (
        f"{cls.__name__}("
        + ",".join(f"{n}:{p.shape}" for n, p in zip(names, pairs, strict=True))
        + ")"
    )


def _dataclass_pair(cls: type) -> _Pair:
    """One value: the list of its field values, in field order."""
    names, pairs = _fields(cls)

    def encode(value: Any) -> Any:
        return [p.encode(getattr(value, n)) for n, p in zip(names, pairs, strict=True)]

    def decode(raw: Any) -> Any:
        if type(raw) is not list or len(raw) != len(pairs):
            raise EntryError(f"{cls.__name__}: expected {len(pairs)} fields")
        return cls(*[p.decode(v) for p, v in zip(pairs, raw, strict=True)])

    return _Pair(encode, decode, _shape(cls, names, pairs))


def _nested_pair(inner: _Pair) -> _Pair:
    """One value as a JSON text of its own inside the entry: json.loads builds a tree of
    about four times the text's size, so a layer's 63 MiB entry held 244 MiB at once; with
    each ELF file's facts a text, the entry's tree holds those texts, and one file's tree
    is built at a time, decoded and let go (issue 14)."""

    def encode(value: Any) -> Any:
        return _Deferred(inner, value)

    def decode(raw: Any) -> Any:
        texts = _TEXTS.get(None)
        if texts is None or type(raw) is not int or not 0 <= raw < len(texts):
            raise EntryError(f"expected the number of a text of {inner.shape}")
        text, texts[raw] = texts[raw], None  # read once, and let go
        if text is None:
            raise EntryError(f"{inner.shape}: a text read twice")
        try:
            tree = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise EntryError(f"{inner.shape}: not JSON ({type(err).__name__})") from err
        return inner.decode(tree)

    return _Pair(encode, decode, f"json({inner.shape})")


def _columns_pair(cls: type) -> _Pair:
    """Many values (a tuple of dataclasses): one column per field, so that thousands of
    symbols are checked a column at a time and built by one map()."""
    names, pairs = _fields(cls)
    make = _MADE.get(cls, cls)
    if make is not cls:  # its maker interns the texts it keeps: most rows repeat one
        pairs = [dataclasses.replace(p, names=False) for p in pairs]

    def encode(values: Any) -> Any:
        return [
            [p.encode(getattr(v, n)) for v in values] for n, p in zip(names, pairs, strict=True)
        ]

    def decode(raw: Any) -> Any:
        if type(raw) is not list or len(raw) != len(pairs) or set(map(type, raw)) - {list}:
            raise EntryError(f"{cls.__name__}: expected {len(pairs)} columns")
        if len(set(map(len, raw))) > 1:
            raise EntryError(f"{cls.__name__}: columns of different lengths")
        return tuple(map(make, *[_column(p, raw, i) for i, p in enumerate(pairs)]))

    return _Pair(encode, decode, "[" + _shape(cls, names, pairs) + "...]")


def _column(pair: _Pair, raw: list[Any], index: int) -> list[Any]:
    """Column `index` of `raw` decoded, and let go in `raw`."""
    column, raw[index] = raw[index], None
    return pair.decode_column(column)


def _enum_pair(cls: type[enum.Enum]) -> _Pair:
    by_value = {m.value: m for m in cls}

    def decode(raw: Any) -> Any:
        try:
            return by_value[raw]
        except (KeyError, TypeError) as err:  # TypeError: a list or object is unhashable
            raise EntryError(f"{cls.__name__}: unknown value") from err

    return _Pair(lambda v: v.value, decode, f"{cls.__name__}[{'|'.join(map(str, by_value))}]")


def _optional_pair(hint: Any) -> _Pair:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) != 1 or len(typing.get_args(hint)) != 2:
        raise TypeError(f"only `X | None` unions are stored, not {hint!r}")
    inner = _for_type(args[0])

    def encode(value: Any) -> Any:
        return None if value is None else inner.encode(value)

    def decode(raw: Any) -> Any:
        return None if raw is None else inner.decode(raw)

    scalars = inner.scalars | {type(None)} if inner.scalars is not None else None
    return _Pair(encode, decode, f"{inner.shape}?", scalars, names=inner.names)


def _tuple_pair(args: tuple[Any, ...]) -> _Pair:
    if len(args) == 2 and args[1] is Ellipsis:
        if dataclasses.is_dataclass(args[0]) and isinstance(args[0], type):
            return _columns_pair(args[0])
        return _many_pair(_for_type(args[0]))
    items = [_for_type(a) for a in args]

    def decode(raw: Any) -> Any:
        if type(raw) is not list or len(raw) != len(items):
            raise EntryError(f"expected a list of {len(items)}")
        return tuple(p.decode(v) for p, v in zip(items, raw, strict=True))

    def encode(value: Any) -> Any:
        return [p.encode(v) for p, v in zip(items, value, strict=True)]

    return _Pair(encode, decode, "[" + ",".join(p.shape for p in items) + "]")


def _many_pair(item: _Pair) -> _Pair:
    """tuple[X, ...] of anything but dataclasses."""

    def decode(raw: Any) -> Any:
        if type(raw) is not list:
            raise EntryError("expected a list")
        return tuple(item.decode_column(raw))

    def column(raw: list[Any]) -> list[Any]:
        # Lists of plain values (a symbol's versym values): checked all at once.
        if item.scalars is None or set(map(type, raw)) - {list}:
            return [decode(v) for v in raw]
        if not set(map(type, itertools.chain.from_iterable(raw))) <= item.scalars:
            raise EntryError(f"expected {item.shape} values")
        # Equal tuples share one object, as the ELF reader shares them (a name's versym
        # values: 600,000 tuples of one value, a few dozen distinct; issue 14).
        if len(_TUPLES) > _MAX_TUPLES:  # a bound for long-lived processes
            _TUPLES.clear()
        return [_TUPLES.setdefault(t, t) for t in map(tuple, raw)]

    encode = _Pair(lambda v: [item.encode(x) for x in v], decode, "").encode
    return _Pair(encode, decode, f"[{item.shape}...]", None, column)


def _set_pair(item: _Pair) -> _Pair:
    """frozenset[X] of plain values: a sorted list (the same entry for the same set)."""
    many = _many_pair(item)

    def encode(value: Any) -> Any:
        return many.encode(sorted(value))

    def decode(raw: Any) -> Any:
        return frozenset(many.decode(raw))

    return _Pair(encode, decode, f"{{{item.shape}...}}")


def _mapping_pair(value: _Pair) -> _Pair:
    def encode(mapping: Any) -> Any:
        return {k: value.encode(v) for k, v in mapping.items()}

    def decode(raw: Any) -> Any:
        if type(raw) is not dict:
            raise EntryError("expected an object")
        # Symbol and version names, interned as the ELF reader interns them: a name that
        # many files define is one object (issue 14: /usr read back from the store held
        # 86 MiB of text against 50 MiB read from its blob; 0.35 s of its 1.7 s decode).
        names = map(sys.intern, raw)
        return dict(zip(names, value.decode_column(list(raw.values())), strict=True))

    return _Pair(encode, decode, f"{{str:{value.shape}}}", None)


def _scalar_tuple(hint: Any) -> bool:
    """tuple[X, ...] of a plain JSON type: values a mapping may write as a table."""
    args = typing.get_args(hint)
    return (
        typing.get_origin(hint) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and (args[0] in (int, str, bool))
    )


def _table_mapping_pair(value: _Pair) -> _Pair:
    """A mapping of names to tuples of plain values that few distinct tuples make up (a
    file's defined symbols and their versym values: 333,000 names, 149 distinct tuples in
    the large image): [distinct values, names, each name's value as its number there].
    Parsed without a list per name and checked by a few calls in C: the large image's
    defined symbols parsed in 0.06 s instead of 0.11-0.17 (issue 14)."""

    def encode(mapping: Any) -> Any:
        table: dict[Any, int] = {}
        numbers = [table.setdefault(v, len(table)) for v in mapping.values()]
        return [[value.encode(v) for v in table], list(mapping), numbers]

    def decode(raw: Any) -> Any:
        if type(raw) is not list or len(raw) != 3 or set(map(type, raw)) - {list}:
            raise EntryError("expected [values, names, numbers]")
        table, names, numbers = raw
        if len(names) != len(numbers) or set(map(type, names)) - {str}:
            raise EntryError("expected a number for each name")
        values = value.decode_column(table)
        if not _numbers_below(numbers, len(values)):
            raise EntryError("expected numbers of the values")
        # Interned as the ELF reader interns them: a name many files define is one object
        # (issue 14: /usr read back from the store held 86 MiB of text against 50 MiB).
        return dict(zip(map(sys.intern, names), map(values.__getitem__, numbers), strict=True))

    return _Pair(encode, decode, f"{{str:{value.shape}}}#table")


def _numbers_below(numbers: list[Any], count: int) -> bool:
    """Every item an int (no bool) from 0 to count - 1."""
    if set(map(type, numbers)) - {int}:
        return False
    return not numbers or (min(numbers) >= 0 and max(numbers) < count)


def _pairs_pair(key: _Pair, value: _Pair) -> _Pair:
    """A mapping whose keys are not text (tuples, enums): the list of its [key, value]
    pairs, in the mapping's order."""

    def encode(mapping: Any) -> Any:
        return [[key.encode(k), value.encode(v)] for k, v in mapping.items()]

    def decode(raw: Any) -> Any:
        if type(raw) is not list or set(map(type, raw)) - {list} or {len(p) for p in raw} - {2}:
            raise EntryError("expected a list of [key, value] pairs")
        keys = [key.decode(k) for k, _ in raw]
        return dict(zip(keys, value.decode_column([v for _, v in raw]), strict=True))

    return _Pair(encode, decode, f"{{{key.shape}:{value.shape}}}")


def _scalar(kind: type) -> _Pair:
    def decode(raw: Any) -> Any:
        if type(raw) is not kind:  # exact: a bool is no int here, an int no bool
            raise EntryError(f"expected {kind.__name__}")
        return raw

    return _Pair(lambda v: v, decode, kind.__name__, frozenset({kind}), names=kind is str)


def _decode_bytes(raw: Any) -> bytes:
    if type(raw) is not str:
        raise EntryError("expected base64 text")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as err:
        raise EntryError("bad base64") from err


# Values that the ELF reader shares between files (equal ones are one object): decoded,
# they are found or made by the reader's own maker, from their fields, so that a layer read
# back from the store takes the memory of one read from its blob (issue 14: 365 MiB
# against 176 on a /usr image) and a repeated one costs no object.
_MADE: dict[type, Callable[..., Any]] = {UndefinedSymbol: reference}
_TUPLES: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_MAX_TUPLES = 100_000
_NESTED = frozenset({ElfFacts})  # written as a JSON text each (_nested_pair)

_SCALARS: dict[Any, _Pair] = {
    int: _scalar(int),
    str: _scalar(str),
    bool: _scalar(bool),
    bytes: _Pair(lambda v: base64.b64encode(v).decode(), _decode_bytes, "bytes"),
}
