"""`imagescan inspect`: readelf- and nm-like facts of one file inside the image, and the
verdict `scan` gives it (the same facts: a BIND_NOW program's PLT symbols bind at start)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from imagescan.checks.model import FileVerdict
from imagescan.elf.model import VERSYM_HIDDEN, ElfFacts, UndefinedSymbol
from imagescan.image.progress import short_id
from imagescan.loader.musl import is_musl_interpreter
from imagescan.render.escape import display
from imagescan.rootfs.model import Entry

# readelf's names (`readelf -h`: Machine, OS/ABI), shortened as `file` prints them
MACHINE_NAMES = {
    3: "i386",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}
OSABI_NAMES = {0: "SYSV", 3: "GNU", 6: "Solaris", 9: "FreeBSD", 97: "ARM", 255: "standalone"}


def machine_name(facts: ElfFacts) -> str:
    return MACHINE_NAMES.get(facts.machine, f"e_machine {facts.machine}")


def osabi_name(facts: ElfFacts) -> str:
    return OSABI_NAMES.get(facts.osabi, f"OS/ABI {facts.osabi}")


def inspect_lines(
    entry: Entry,
    facts: ElfFacts,
    verdict: FileVerdict | None = None,
    *,
    symbols: bool = True,
    bind_now_env: bool = False,
    layer_id: str | None = None,
) -> Iterator[str]:
    """The dynamic facts the loader uses, in readelf's vocabulary, then scan's verdict;
    the layer by its index from 0 at the base and its short diff_id."""
    size = f"{entry.size} bytes"
    layer = f"layer {entry.layer} {short_id(layer_id)}"
    yield f"{display(entry.path)}  ({layer}, mode {entry.mode & 0o7777:04o}, {size})"
    order = "LSB" if facts.little_endian else "MSB"
    yield f"  ELF{facts.elf_class} {order} {machine_name(facts)} {osabi_name(facts)}"
    yield from _dynamic(facts)
    yield from _versions(facts)
    if facts.go is not None:
        yield from _go(facts)
    if symbols:
        yield from _symbols(facts, bind_now_env)
    if verdict is not None:
        yield f"  verdict: {verdict.status}" + (f", gate {verdict.gate}" if verdict.gate else "")
        for finding in verdict.findings:
            yield f"    {finding.severity}: {display(finding.message)}"


def binding_time(facts: ElfFacts, ref: UndefinedSymbol, bind_now_env: bool = False) -> str:
    """When the loader looks the symbol up, as `scan` decides it (checks.symbols `when`)."""
    if ref.bound_at_start:
        return "start"
    if not ref.lazy:
        return "unused"
    if facts.bind_now:
        return "start, BIND_NOW"
    if bind_now_env:
        return "start, LD_BIND_NOW"
    if facts.interpreter and is_musl_interpreter(facts.interpreter):
        return "start, musl binds every symbol at start"
    return "lazy"


def inspect_dict(
    entry: Entry,
    facts: ElfFacts,
    verdict: FileVerdict | None = None,
    *,
    symbols: bool = True,
    bind_now_env: bool = False,
) -> dict[str, Any]:
    """`inspect -o json`: the same facts as data (strings exact)."""
    out: dict[str, Any] = {
        "path": entry.path,
        "layer": entry.layer,
        "size": entry.size,
        "class": facts.elf_class,
        "machine": machine_name(facts),
        "osabi": osabi_name(facts),
        "kind": str(facts.kind),
        "interpreter": facts.interpreter,
        "soname": facts.soname,
        "needed": list(facts.needed),
        "rpath": facts.rpath,
        "runpath": facts.runpath,
        "bind_now": facts.bind_now,
        "versions_needed": [{"name": n.name, "file": n.file} for n in facts.version_needs],
    }
    if symbols:
        out["undefined"] = [
            {"name": r.name, "version": r.version, "bound": binding_time(facts, r, bind_now_env)}
            for r in sorted(facts.undefined, key=lambda r: r.name)
        ]
    if verdict is not None:
        out["status"] = str(verdict.status)
        out["gate"] = verdict.gate
    return out


def _dynamic(facts: ElfFacts) -> Iterator[str]:
    yield f"  kind: {facts.kind}"
    if facts.interpreter:
        yield f"  interpreter: {display(facts.interpreter)}"
    if facts.soname:
        yield f"  SONAME: {display(facts.soname)}"
    for name in facts.needed:
        yield f"  NEEDED: {display(name)}"
    if facts.rpath is not None:
        yield f"  RPATH: {display(facts.rpath)}"
    if facts.runpath is not None:
        yield f"  RUNPATH: {display(facts.runpath)}"
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
        yield f"  version defined: {display(vd.name)}" + (" (base)" if vd.base else "")
    for need in facts.version_needs:
        yield f"  version needed: {display(need.name)} from {display(need.file)}" + (
            " (weak)" if need.weak else ""
        )


def _go(facts: ElfFacts) -> Iterator[str]:
    go = facts.go
    assert go is not None
    yield f"  Go: {go.go_version}, module {go.main_module or '?'} {go.main_version or ''}".rstrip()
    yield f"  Go build: -buildmode={go.build_mode or '?'} CGO_ENABLED={go.cgo_enabled}" + (
        " (stripped)" if go.stripped else ""
    )
    for path, version in go.deps:
        yield f"  Go dep: {path} {version}"


def _symbols(facts: ElfFacts, bind_now_env: bool) -> Iterator[str]:
    names = {vd.index: vd.name for vd in facts.version_defs if not vd.base}
    for name in sorted(facts.defined):
        for versym in facts.defined[name]:
            version = names.get(versym & ~VERSYM_HIDDEN)
            sep = "@" if versym & VERSYM_HIDDEN else "@@"
            yield f"  T {display(name)}{sep + display(version) if version else ''}"
    for ref in sorted(facts.undefined, key=lambda r: r.name):
        bind = "w" if ref.weak else "U"
        version = f"@{display(ref.version)}" if ref.version else ""
        yield f"  {bind} {display(ref.name)}{version}  ({binding_time(facts, ref, bind_now_env)})"
