"""`imagescan inspect`: readelf- and nm-like facts of one file inside the image."""

from __future__ import annotations

from collections.abc import Iterator

from imagescan.elf.model import VERSYM_HIDDEN, ElfFacts
from imagescan.rootfs.model import Entry


def inspect_lines(entry: Entry, facts: ElfFacts, *, symbols: bool = True) -> Iterator[str]:
    """The dynamic facts the loader uses, in readelf's vocabulary."""
    yield f"{entry.path}  (layer {entry.layer}, mode {entry.mode & 0o7777:04o}, {entry.size} bytes)"
    order = "LSB" if facts.little_endian else "MSB"
    yield f"  ELF{facts.elf_class} {order} e_machine {facts.machine} OSABI {facts.osabi}"
    yield from _dynamic(facts)
    yield from _versions(facts)
    if facts.go is not None:
        yield from _go(facts)
    if symbols:
        yield from _symbols(facts)


def _dynamic(facts: ElfFacts) -> Iterator[str]:
    yield f"  kind: {facts.kind}"
    if facts.interpreter:
        yield f"  interpreter: {facts.interpreter}"
    if facts.soname:
        yield f"  SONAME: {facts.soname}"
    for name in facts.needed:
        yield f"  NEEDED: {name}"
    if facts.rpath is not None:
        yield f"  RPATH: {facts.rpath}"
    if facts.runpath is not None:
        yield f"  RUNPATH: {facts.runpath}"
    flags = [
        n
        for n, on in (
            ("BIND_NOW", facts.bind_now),
            ("NODEFLIB", facts.nodeflib),
            ("RELR", facts.has_relr),
        )
        if on
    ]
    if flags:
        yield f"  flags: {' '.join(flags)}"


def _versions(facts: ElfFacts) -> Iterator[str]:
    for vd in facts.version_defs:
        yield f"  version defined: {vd.name}" + (" (base)" if vd.base else "")
    for need in facts.version_needs:
        yield f"  version needed: {need.name} from {need.file}" + (" (weak)" if need.weak else "")


def _go(facts: ElfFacts) -> Iterator[str]:
    go = facts.go
    assert go is not None
    yield f"  Go: {go.go_version}, module {go.main_module or '?'} {go.main_version or ''}".rstrip()
    yield f"  Go build: -buildmode={go.build_mode or '?'} CGO_ENABLED={go.cgo_enabled}" + (
        " (stripped)" if go.stripped else ""
    )
    for path, version in go.deps:
        yield f"  Go dep: {path} {version}"


def _symbols(facts: ElfFacts) -> Iterator[str]:
    names = {vd.index: vd.name for vd in facts.version_defs if not vd.base}
    for name in sorted(facts.defined):
        for versym in facts.defined[name]:
            version = names.get(versym & ~VERSYM_HIDDEN)
            sep = "@" if versym & VERSYM_HIDDEN else "@@"
            yield f"  T {name}{sep + version if version else ''}"
    for ref in sorted(facts.undefined, key=lambda r: r.name):
        bind = "w" if ref.weak else "U"
        version = f"@{ref.version}" if ref.version else ""
        when = "start" if ref.bound_at_start else ("lazy" if ref.lazy else "unused")
        yield f"  {bind} {ref.name}{version}  ({when})"
