"""The facts codec: a real layer round-trips; anything else is refused, never executed."""

from __future__ import annotations

import dataclasses
import json
import pickle
import tracemalloc
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from imagescan.elf.model import ElfFacts
from imagescan.image.compression import entry_compressor, entry_inflate
from imagescan.image.model import SourceOptions
from imagescan.image.sources import open_image
from imagescan.rootfs.model import LayerIndex
from imagescan.rootfs.reader import read_with_cache
from imagescan.store.codec import FORMAT, Codec, EntryError
from tests.fleet_support import programs
from tests.imagebuilder import File, ImageSpec, glibc_base, write_oci_dir


class Keep:
    """A cache that only keeps what the reader puts."""

    def __init__(self) -> None:
        self.layers: list[LayerIndex] = []

    def get(self, diff_id: str) -> LayerIndex | None:
        return None

    def put(self, layer: LayerIndex) -> None:
        self.layers.append(layer)

    def retain(self, diff_ids: Sequence[str]) -> None:
        pass


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> list[LayerIndex]:
    """The complete indexes of a glibc base and a top layer with real programs."""
    tmp = tmp_path_factory.mktemp("codec")
    elves = programs(tmp / "build")
    top = [File(f"/usr/local/bin/{n}", data, 0o755) for n, data in elves.items()]
    top.append(File("/etc/os-release", b"ID=test\n"))
    layout = write_oci_dir(tmp / "oci", ImageSpec([glibc_base(), top]))
    image = open_image(f"oci-dir:{layout}", SourceOptions())
    assert image.access is not None
    keep = Keep()
    read_with_cache(image, image.access, keep)
    image.close()
    return keep.layers


def test_a_real_layer_comes_back_equal(layers: list[LayerIndex]) -> None:
    codec = Codec()
    for layer in layers:
        assert layer.diff_id is not None
        assert codec.loads(codec.dumps(layer), layer.diff_id) == layer
    elves = [e for layer in layers for e in layer.entries if e.elf is not None]
    assert any(e.elf.undefined and e.elf.version_needs for e in elves if e.elf)
    assert any(layer.kept for layer in layers)  # bytes (ld.so.cache) go through base64


def envelope(codec: Codec, layer: LayerIndex) -> dict[str, Any]:
    """The entry's envelope, without the texts written before it."""
    return dict(json.loads(entry_inflate(codec.dumps(layer)).split(b"\0")[-1]))


def texts(codec: Codec, layer: LayerIndex) -> list[bytes]:
    """The texts written before the envelope, each ELF file's facts (issue 14)."""
    return entry_inflate(codec.dumps(layer)).split(b"\0")[:-1]


def packed(doc: Any, nested: Sequence[bytes] = ()) -> bytes:
    """An entry of this envelope and texts, as the codec lays them out."""
    compressor = entry_compressor()
    data = b"".join(t + b"\0" for t in nested) + json.dumps(doc).encode()
    return compressor.compress(data) + compressor.flush()


def test_entries_of_another_version_or_layer_are_refused(layers: list[LayerIndex]) -> None:
    codec, layer = Codec(), layers[0]
    assert layer.diff_id is not None
    doc = envelope(codec, layer)
    with pytest.raises(EntryError, match="another version"):
        codec.loads(packed({**doc, "version": "0.0.1/facts-1/x"}), layer.diff_id)
    with pytest.raises(EntryError, match="another layer"):
        codec.loads(codec.dumps(layer), "sha256:" + "0" * 64)
    with pytest.raises(EntryError, match="not an imagescan entry"):
        codec.loads(packed({**doc, "format": "x"}), layer.diff_id)


def test_a_pickle_is_not_an_entry(tmp_path: Path, layers: list[LayerIndex]) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    diff_id = layers[0].diff_id
    assert diff_id is not None
    compressor = entry_compressor()
    inside = compressor.compress(pickle.dumps(Payload())) + compressor.flush()
    for data in (pickle.dumps(Payload()), zlib.compress(pickle.dumps(Payload())), inside):
        with pytest.raises(EntryError):
            Codec().loads(data, diff_id)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda facts: facts.__setitem__(0, "1"),  # index: a string for an int
        lambda facts: facts.__setitem__(0, True),  # a bool is no int
        lambda facts: facts.append([]),  # a field too many
        lambda facts: facts[2][1].__setitem__(0, "pipe"),  # an EntryType that does not exist
        lambda facts: facts[2].__setitem__(0, facts[2][0][:-1]),  # columns of unequal length
        lambda facts: facts.__setitem__(5, {"/etc/os-release": "%%%"}),  # bad base64
    ],
)
def test_a_field_of_the_wrong_type_is_refused(layers: list[LayerIndex], damage: Any) -> None:
    codec = Codec()
    layer = next(x for x in layers if x.kept)
    assert layer.diff_id is not None
    doc = envelope(codec, layer)
    damage(doc["layer"])
    with pytest.raises(EntryError):
        codec.loads(packed(doc), layer.diff_id)


def test_the_version_follows_the_shape_of_the_facts() -> None:
    version = Codec().version
    assert version.count("/") == 2 and FORMAT == "imagescan-layer-facts"
    assert Codec().version == version  # the same shape, the same version, in any process


def _elf_column(doc: dict[str, Any]) -> list[Any]:
    """The `elf` column of the layer's entries, as written (LayerIndex field 2: entries),
    the entry's own list."""
    from dataclasses import fields

    from imagescan.rootfs.model import Entry

    names = [f.name for f in fields(Entry)]
    column: list[Any] = doc["layer"][2][names.index("elf")]
    return column


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc, nested, at: nested.__setitem__(at, nested[at][:-1]),  # cut: not JSON
        lambda doc, nested, at: nested.__setitem__(
            at, json.dumps(json.loads(nested[at])[:-1]).encode()
        ),  # a field too few
        lambda doc, nested, at: _elf_column(doc).__setitem__(
            _elf_column(doc).index(at), json.loads(nested[at])
        ),  # the tree itself in the envelope, not the number of its text
        lambda doc, nested, at: _elf_column(doc).__setitem__(
            _elf_column(doc).index(at), len(nested)
        ),  # the number of no text
        lambda doc, nested, at: _elf_column(doc).__setitem__(
            _elf_column(doc).index(at), True
        ),  # a bool is no number
        lambda doc, nested, at: _elf_column(doc).__setitem__(
            _elf_column(doc).index(at), next(n for n in _elf_column(doc) if n not in (None, at))
        ),  # two files' facts one text
        lambda doc, nested, at: nested.__setitem__(at, nested[at] + b"\0[]"),  # a NUL inside
    ],
)
def test_each_elf_files_facts_is_a_text_checked_on_its_own(
    layers: list[LayerIndex], damage: Any
) -> None:
    """One JSON text per ELF file's facts, after the envelope (issue 14: a large layer's
    tree is then never built whole, nor its texts unescaped); a damaged one, or a number
    that names no text or one text twice, refuses the entry like any other field."""
    codec = Codec()
    layer = next(x for x in layers if sum(1 for e in x.entries if e.elf) > 1)
    assert layer.diff_id is not None
    doc, nested = envelope(codec, layer), texts(codec, layer)
    numbers = [n for n in _elf_column(doc) if n is not None]
    assert sorted(numbers) == list(range(len(nested))) and len(nested) > 1
    damage(doc, nested, numbers[0])
    with pytest.raises(EntryError):
        codec.loads(packed(doc, nested), layer.diff_id)


@pytest.mark.parametrize(
    "damage",
    [
        lambda table, names, numbers: numbers.__setitem__(0, len(table)),  # no such value
        lambda table, names, numbers: numbers.__setitem__(0, -1),
        lambda table, names, numbers: numbers.__setitem__(0, False),  # a bool is no number
        lambda table, names, numbers: numbers.pop(),  # a name without a number
        lambda table, names, numbers: names.__setitem__(0, 1),  # a name that is no text
        lambda table, names, numbers: table.__setitem__(0, "1"),  # versyms that are no list
    ],
)
def test_defined_symbols_are_a_table_checked_on_the_way_back(
    layers: list[LayerIndex], damage: Any
) -> None:
    """A file's defined names and the few distinct versym tuples they share, each name's
    tuple by its number in the table (issue 14); a number that names no tuple refuses the
    entry."""
    codec = Codec()
    layer = next(x for x in layers if any(e.elf and e.elf.defined for e in x.entries))
    assert layer.diff_id is not None
    doc, nested = envelope(codec, layer), texts(codec, layer)
    at = next(i for i, t in enumerate(nested) if json.loads(t)[_DEFINED][1])
    facts = json.loads(nested[at])
    table, names, numbers = facts[_DEFINED]
    assert len(table) < len(names) and set(numbers) == set(range(len(table)))
    damage(table, names, numbers)
    nested[at] = json.dumps(facts).encode()
    with pytest.raises(EntryError):
        codec.loads(packed(doc, nested), layer.diff_id)


_DEFINED = [f.name for f in dataclasses.fields(ElfFacts)].index("defined")


def test_the_layout_read_back_is_the_one_written(layers: list[LayerIndex]) -> None:
    """The test's own packing of an entry is the codec's: the damage tests above refuse
    damage, not a layout of their own."""
    codec = Codec()
    layer = next(x for x in layers if any(e.elf for e in x.entries))
    assert layer.diff_id is not None
    again = packed(envelope(codec, layer), texts(codec, layer))
    assert codec.loads(again, layer.diff_id) == layer


def test_equal_references_and_versym_tuples_read_back_as_one_object(
    layers: list[LayerIndex],
) -> None:
    """As the ELF reader shares them (issue 14: a layer read back from the store took twice
    the memory of one read from its blob)."""
    codec = Codec()
    for layer in layers:
        assert layer.diff_id is not None
        back = codec.loads(codec.dumps(layer), layer.diff_id)
        facts = [e.elf for e in back.entries if e.elf is not None]
        refs = [r for f in facts for r in f.undefined]
        assert len({id(r) for r in refs}) == len(set(refs))
        versyms = [v for f in facts for v in f.defined.values()]
        assert len({id(v) for v in versyms}) == len(set(versyms))
    assert len(refs) > len(set(refs))  # the programs share references: something to share


def test_the_facts_texts_are_made_as_the_entry_is_written(layers: list[LayerIndex]) -> None:
    """Writing an entry holds one ELF file's text at a time, and the compressed entry:
    not the text of every ELF file at once (a first scan of /usr with --cache peaked at
    308 MiB with those; issue 14)."""
    codec = Codec()
    layer = next(x for x in layers if any(e.elf for e in x.entries))
    elves = [e for e in layer.entries if e.elf is not None]
    many = tuple(dataclasses.replace(e, path=f"/copy{n}{e.path}") for n in range(40) for e in elves)
    big = dataclasses.replace(layer, entries=many)
    texts = 40 * sum(len(_text(codec, dataclasses.replace(layer, entries=(e,)))) for e in elves)
    tracemalloc.start()
    try:
        data = codec.dumps(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) + texts, (peak, len(data), texts)
    assert codec.loads(data, layer.diff_id or "") == big


def _text(codec: Codec, layer: LayerIndex) -> bytes:
    """The one ELF file's facts of `layer` as the entry holds them: a JSON text."""
    (text,) = texts(codec, layer)
    return text


def test_a_name_many_files_define_reads_back_as_one_object(layers: list[LayerIndex]) -> None:
    """Interned as the ELF reader interns them: /usr's names read back took 86 MiB of
    text instead of 50 (issue 14)."""
    codec = Codec()
    keys: dict[str, list[str]] = {}
    for layer in layers:
        assert layer.diff_id is not None
        back = codec.loads(codec.dumps(layer), layer.diff_id)
        for entry in back.entries:
            for name in entry.elf.defined if entry.elf is not None else ():
                keys.setdefault(name, []).append(name)
    shared = [same for same in keys.values() if len(same) > 1]
    assert shared and all(name is same[0] for same in shared for name in same)


def test_names_versions_and_files_read_back_as_one_object_each(
    layers: list[LayerIndex],
) -> None:
    """A reference's name, its version and file, a version need's file and name: equal
    texts are one object across files and fields, as the ELF reader keeps them (an XL
    layer read back held 200,000 more strings than read from its blob; issue 14)."""
    codec = Codec()
    texts: dict[str, set[int]] = {}
    kinds: dict[str, set[str]] = {}
    for layer in layers:
        assert layer.diff_id is not None
        back = codec.loads(codec.dumps(layer), layer.diff_id)
        for kind, text in _names(back):
            texts.setdefault(text, set()).add(id(text))
            kinds.setdefault(text, set()).add(kind)
    assert any(len(k) > 1 for k in kinds.values())  # a name both defined and referenced
    assert all(len(ids) == 1 for ids in texts.values())


def _names(layer: LayerIndex) -> Iterator[tuple[str, str]]:
    for elf in (e.elf for e in layer.entries if e.elf is not None):
        yield from (("defined", name) for name in elf.defined)
        for ref in elf.undefined:
            yield from (("referenced", t) for t in (ref.name, ref.version, ref.version_file) if t)
        for need in elf.version_needs:
            yield from (("needed", need.file), ("needed", need.name))
