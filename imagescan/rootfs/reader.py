"""An opened image -> its squashed RootFS, reading each layer blob once.

Random-access sources are read top layer first, so that what an upper layer deletes or
replaces is never parsed. One-pass sources (an engine export) are read in the order they
come; a layer that only its diff_id can place is placed by hashing its uncompressed tar.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace

from imagescan.errors import ImageReadError
from imagescan.image.model import DirectoryLayers, LayerAccess, OpenedImage
from imagescan.rootfs.cache import LayerCache
from imagescan.rootfs.dirwalk import index_directory
from imagescan.rootfs.layer import (
    FILE_ID_BITS,
    NOT_READ,
    KeptBudget,
    LayerScan,
    file_id,
    scan_layer,
)
from imagescan.rootfs.model import Entry, LayerIndex, RootFS
from imagescan.rootfs.squash import HiddenPaths, LowerTree, squash

Progress = Callable[[str], None]


# A layer blob below this many bytes is inflated here: a fork costs more than it saves.
FORK_MIN_SIZE = 16 << 20


@dataclass(frozen=True)
class ReadWhat:
    """How much of each ELF file a read takes (its symbol tables, its digests), and whether
    a forked child may inflate a large layer while this process walks and parses it."""

    symbols: bool = True
    digests: bool = True
    fork: bool = False


def read_rootfs(
    image: OpenedImage,
    *,
    progress: Progress | None = None,
    symbols: bool = True,
    cache: LayerCache | None = None,
    digests: bool = True,
    lower: LowerTree | None = None,
    jobs: int = 1,
) -> RootFS:
    """The root filesystem of `image`: every visible path with its facts.

    Without `symbols`, ELF facts leave out the symbol tables (`ls` needs no more); without
    `digests`, their SHA-256 and SHA-1 (only SBOMs show them). With a `cache`, layers are
    looked up by diff_id first and read whole (no hiding, symbols and digests) when not
    there, so that what is stored is each layer's complete index; `lower` then keeps the
    tree of the layers below the top one for the next image (squash). With `jobs` over 1,
    a large layer of a source on this machine is inflated by a forked child while this
    process walks its tar and parses its ELF files (issue 14: image.inflater)."""
    fork = jobs > 1 and image.access is not None and image.access.forkable
    if cache is not None and image.access is not None:
        what = ReadWhat(symbols, fork=fork)
        return squash(read_with_cache(image, image.access, cache, progress, what), lower)
    if image.access is None:
        raise ImageReadError(f"{image.reference}: the image has no layers to read")
    read = ReadWhat(symbols, digests, fork)
    if not image.access.random_access:
        return squash(read_stream(image, image.access, progress, read))
    rootfs = squash(read_top_down(image, image.access, progress, what=read))
    if any(entry.verify == NOT_READ for entry in rootfs.entries.values()):
        # A file left unread is visible after all (a hard link reached it by a path the
        # upper layers spell differently): read every file instead of guessing again.
        _tell(progress, "reading all layers again, every file")
        rootfs = squash(read_top_down(image, image.access, progress, False, read))
    return rootfs


def read_with_cache(
    image: OpenedImage,
    access: LayerAccess,
    cache: LayerCache,
    progress: Progress | None = None,
    what: ReadWhat = ReadWhat(),
) -> list[LayerIndex]:
    """Cached layers from the cache (a registry blob is then not even fetched); the rest
    read whole, with symbols and digests, and stored. An engine export is one stream: it
    is skipped only when every layer is cached, else read as usual (with `what.symbols`)."""
    diff_ids = _all_diff_ids(image)
    cache.retain([d for d in diff_ids if d])
    cached = {i: c for i, d in enumerate(diff_ids) if d and (c := cache.get(d)) is not None}
    complete = True
    if len(cached) == len(diff_ids) or access.random_access:
        layers = [
            _cached_or_read(image, access, i, d, cached.get(i), len(diff_ids), progress, what.fork)
            for i, d in enumerate(diff_ids)
        ]
    else:
        read = ReadWhat(what.symbols)
        layers, complete = read_stream(image, access, progress, read), what.symbols
    for index, layer in enumerate(layers):
        if complete and index not in cached:
            cache.put(layer)
    return [layer if layer.index == i else relayer(layer, i) for i, layer in enumerate(layers)]


def _cached_or_read(
    image: OpenedImage,
    access: LayerAccess,
    index: int,
    diff_id: str | None,
    cached: LayerIndex | None,
    count: int,
    progress: Progress | None,
    fork: bool,
) -> LayerIndex:
    if cached is not None:
        _tell(progress, f"layer {index + 1}/{count} from the cache")
        return cached
    _tell(progress, f"reading layer {index + 1}/{count} whole, for the cache")
    return _scan(image, access, index, diff_id, None, ReadWhat(fork=fork)).index


def read_top_down(
    image: OpenedImage,
    access: LayerAccess,
    progress: Progress | None = None,
    hide: bool = True,
    what: ReadWhat = ReadWhat(),
) -> list[LayerIndex]:
    """Every layer's index, read top first; with `hide`, the files that upper layers hide
    are left unread (entries with verify=NOT_READ)."""
    hidden = HiddenPaths()
    count = len(image.layers)
    layers: list[LayerIndex] = []
    budget = KeptBudget()  # kept bytes of the whole image (issue 15)
    for index in reversed(range(count)):
        _tell(progress, f"reading layer {count - index}/{count}")
        left = budget.left
        hide_now = hidden.hidden if hide else None
        scan = _scan(image, access, index, _diff_id(image, index), hide_now, what, budget)
        if scan.unread_link_targets:
            # A visible hard link of this layer points at a file we left unread: read again.
            needed = scan.unread_link_targets
            budget.left = left
            hide_except = _except(hidden, needed)
            scan = _scan(image, access, index, scan.index.diff_id, hide_except, what, budget)
        hidden.add(scan.index)
        layers.append(scan.index)
    layers.reverse()
    return layers


def _scan(
    image: OpenedImage,
    access: LayerAccess,
    index: int,
    diff_id: str | None,
    hidden: Callable[[str], bool] | None,
    what: ReadWhat = ReadWhat(),
    budget: KeptBudget | None = None,
) -> LayerScan:
    symbols, digests = what.symbols, what.digests
    if isinstance(access, DirectoryLayers):  # read whole: hiding only ever saves work
        directory = access.directory(index)
        return LayerScan(index_directory(directory, index, symbols=symbols, digests=digests))
    fork = what.fork and _size(image, index) >= FORK_MIN_SIZE
    with closing(access.open_layer(index)) as blob:
        return scan_layer(
            blob,
            index,
            diff_id,
            hidden=hidden,
            symbols=symbols,
            budget=budget,
            digests=digests,
            fork=fork,
        )


def _size(image: OpenedImage, index: int) -> int:
    """The stored size of layer `index`; FORK_MIN_SIZE (large enough to fork) when the
    image does not say."""
    size = image.layers[index].size if index < len(image.layers) else None
    return FORK_MIN_SIZE if size is None else size


def _except(hidden: HiddenPaths, needed: frozenset[str]) -> Callable[[str], bool]:
    return lambda path: path not in needed and hidden.hidden(path)


def read_stream(
    image: OpenedImage,
    access: LayerAccess,
    progress: Progress | None = None,
    what: ReadWhat = ReadWhat(),
) -> list[LayerIndex]:
    """Every layer's index, in the order a one-pass source yields them."""
    symbols, digests = what.symbols, what.digests
    diff_ids = _all_diff_ids(image)
    placed: dict[int, LayerIndex] = {}
    budget = KeptBudget()  # kept bytes of the whole image (issue 15)
    for number, (index, blob) in enumerate(access.iter_layers(), start=1):
        _tell(progress, f"reading layer {number}/{len(diff_ids)}")
        with closing(blob):
            if index is None:
                name = f"{image.reference}: layer {number} of the stream"
                scan = scan_layer(
                    blob,
                    0,
                    None,
                    compute_diff_id=True,
                    name=name,
                    symbols=symbols,
                    budget=budget,
                    digests=digests,
                )
                layer = scan.index
                placed.update(_place_by_diff_id(layer, diff_ids, placed, name))
            else:
                diff_id = _diff_id(image, index)
                layer_scan = scan_layer(
                    blob, index, diff_id, symbols=symbols, budget=budget, digests=digests
                )
                placed[index] = layer_scan.index
    missing = [index for index in range(len(diff_ids)) if index not in placed]
    if missing:
        raise ImageReadError(f"{image.reference}: layer {missing[0]} is missing from the image")
    return [placed[index] for index in sorted(placed)]


def _place_by_diff_id(
    layer: LayerIndex, diff_ids: tuple[str | None, ...], placed: dict[int, LayerIndex], name: str
) -> dict[int, LayerIndex]:
    """The positions (not yet filled) whose diff_id is this layer's, each with its copy."""
    positions = [i for i, d in enumerate(diff_ids) if d == layer.diff_id and i not in placed]
    if not positions:
        raise ImageReadError(
            f"{name} has diff_id {layer.diff_id}, which the image config does not list"
            " (or lists fewer times)"
        )
    return {position: relayer(layer, position) for position in positions}


def relayer(layer: LayerIndex, index: int) -> LayerIndex:
    """The same layer placed at position `index`: every entry, file_id and skip says so."""
    return replace(
        layer,
        index=index,
        entries=tuple(_relayered(entry, index) for entry in layer.entries),
        skipped=tuple(replace(skip, layer=index) for skip in layer.skipped),
    )


def _relayered(entry: Entry, index: int) -> Entry:
    if not entry.file_id:
        return replace(entry, layer=index)
    ordinal = entry.file_id & ((1 << FILE_ID_BITS) - 1)
    return replace(entry, layer=index, file_id=file_id(index, ordinal))


def _all_diff_ids(image: OpenedImage) -> tuple[str | None, ...]:
    count = max(len(image.layers), len(image.config.diff_ids))
    return tuple(_diff_id(image, index) for index in range(count))


def _diff_id(image: OpenedImage, index: int) -> str | None:
    # The config's rootfs.diff_ids define the image's content; descriptors may repeat them.
    if index < len(image.config.diff_ids):
        return image.config.diff_ids[index]
    return image.layers[index].diff_id if index < len(image.layers) else None


def _tell(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
