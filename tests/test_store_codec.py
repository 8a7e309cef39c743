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
    return dict(json.loads(zlib.decompress(codec.dumps(layer))))


def packed(doc: Any) -> bytes:
    return zlib.compress(json.dumps(doc).encode())


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
    for data in (pickle.dumps(Payload()), zlib.compress(pickle.dumps(Payload()))):
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
        lambda text: text[:-1],  # cut short: not JSON
        lambda text: json.loads(text),  # the tree itself, not its text
        lambda text: json.dumps(json.loads(text)[:-1]),  # a field too few
    ],
)
def test_each_elf_files_facts_is_a_text_checked_on_its_own(
    layers: list[LayerIndex], damage: Any
) -> None:
    """One JSON text per ELF file's facts (issue 14: a large layer's tree is then never
    built whole); a damaged one refuses the entry like any other field."""
    codec = Codec()
    layer = next(x for x in layers if any(e.elf for e in x.entries))
    assert layer.diff_id is not None
    doc = envelope(codec, layer)
    column = _elf_column(doc)
    at = next(i for i, text in enumerate(column) if text is not None)
    assert isinstance(column[at], str)
    column[at] = damage(column[at])
    with pytest.raises(EntryError):
        codec.loads(packed(doc), layer.diff_id)


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


def _text(codec: Codec, layer: LayerIndex) -> str:
    """The one ELF file's facts of `layer` as the entry holds them: a JSON text."""
    text = next(t for t in _elf_column(envelope(codec, layer)) if t is not None)
    assert isinstance(text, str)
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
