"""Fuzz targets (issue 15): one function per parser of hostile input, taking bytes.

A target returns normally, or raises one of the documented errors (`EXPECTED`); anything
else is a crash. The runner (tests/fuzz/run.py) treats an input running longer than its
limit as a hang.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable

from imagescan.elf.reader import parse_elf
from imagescan.errors import ImagescanError, MalformedElf
from imagescan.image.configjson import (
    layer_descriptors,
    parse_image_config,
    parse_index,
    parse_manifest,
)
from imagescan.image.dockerref import parse_reference
from imagescan.image.pathref import split_local_reference
from imagescan.image.platform import parse_platform
from imagescan.loader.ldcache import LdCache, expected_cache_flags, lookup, parse_ld_so_cache
from imagescan.loader.ldconf import parse_ld_so_conf
from imagescan.rootfs.layer import index_layer
from imagescan.rootfs.tarstream import TarFormatError, parse_pax

# Every error a parser documents for bad input; an ImagescanError is a one-line message.
EXPECTED: tuple[type[BaseException], ...] = (ImagescanError, MalformedElf, TarFormatError)
X86_64 = expected_cache_flags(62, 64)


def elf(data: bytes) -> None:
    """The ELF reader; an odd length reads the file as glibc's ld.so (its defaults too)."""
    path = "/lib64/ld-linux-x86-64.so.2" if len(data) % 2 else "/usr/lib/libfuzz.so.1"
    parse_elf(data, path)


def ldcache(data: bytes) -> None:
    """The ld.so.cache parser, then a lookup of the first distinct keys it lists (a lookup
    walks every entry of its key, as search_cache does: one each is enough here)."""
    cache = parse_ld_so_cache(data)
    if isinstance(cache, LdCache):
        for key in list(dict.fromkeys(e.key for e in cache.entries))[:8]:
            lookup(cache, key, machine_flags=X86_64, hwcaps_priority=("x86-64-v2",))


def layer(data: bytes) -> None:
    """The layer reader over a tar, gzip or zstd blob (the tar reader inside)."""
    _each(
        lambda: index_layer(io.BytesIO(data), 0, None, compute_diff_id=True),
        lambda: parse_pax(data[:4096]),
    )


def ldconf(data: bytes) -> None:
    """ld.so.conf and its includes: the first NUL-free line names a second file."""
    files = {"/etc/ld.so.conf": data, "/etc/ld.so.conf.d/a.conf": data[::-1]}
    parse_ld_so_conf(files.get, lambda d: ["a.conf"] if d.endswith("conf.d") else [])


def reference(data: bytes) -> None:
    """Image references (docker's grammar), local references and platforms."""
    text = data.decode("utf-8", "surrogateescape")
    _each(
        lambda: parse_reference(text),
        lambda: split_local_reference(text, "oci-dir"),
        lambda: parse_platform(text),
    )


def manifest(data: bytes) -> None:
    """Manifests, indexes and image configs as JSON."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return  # json's own errors: the sources turn them into ImageReadError
    _each(
        lambda: layer_descriptors(
            parse_manifest(doc, "fuzzed manifest").layers,
            parse_image_config(doc, "fuzzed config"),
            "fuzzed manifest",
        ),
        lambda: parse_manifest(doc, "fuzzed manifest"),
        lambda: parse_index(doc, "fuzzed index"),
    )


def _each(*calls: Callable[[], object]) -> None:
    """Every call, each allowed to fail with a documented error."""
    for call in calls:
        with contextlib.suppress(*EXPECTED):
            call()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "elf": elf,
    "ldcache": ldcache,
    "layer": layer,
    "ldconf": ldconf,
    "reference": reference,
    "manifest": manifest,
}
