"""Go build information (what `go version -m` prints) from a Go binary's `.go.buildinfo`.

Layout (Go's debug/buildinfo, runtime/debug.ParseBuildInfo): a 32-byte header starting with
the magic "\\xff Go buildinf:", then the pointer size and a flags byte (bit 0 big endian,
bit 1 "inline strings"). Go >= 1.18 stores two uvarint-prefixed strings after the header
(version, modinfo); older Go stores two pointers to Go string headers {data, len}.
Modinfo is framed by 16-byte sentinels and holds tab-separated lines: path, mod, dep, =>,
build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from imagescan.elf.model import GoBuildInfo

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_ALIGN = 16
_FLAG_BIG_ENDIAN, _FLAG_INLINE = 0x1, 0x2

# (p_vaddr, p_offset, p_filesz, writable) of each PT_LOAD
Segment = tuple[int, int, int, bool]


def parse_go_buildinfo(
    data: bytes,
    *,
    section: tuple[int, int] | None,
    segments: Sequence[Segment],
    stripped: bool,
) -> GoBuildInfo | None:
    """Build info of a Go binary, or None for anything else (or unreadable build info).

    `section` is the file range of `.go.buildinfo` when section headers exist; otherwise
    the magic is searched, 16-byte aligned, in the writable PT_LOADs, as debug/buildinfo does.
    """
    start = _find_header(data, section, segments)
    if start is None:
        return None
    header = data[start : start + _HEADER_SIZE]
    strings = (
        _inline_strings(data, start + _HEADER_SIZE)
        if header[15] & _FLAG_INLINE
        else _pointer_strings(data, header, segments)
    )
    if strings is None or not strings[0].startswith(b"go"):
        return None
    version, modinfo = (s.decode("utf-8", "replace") for s in strings)
    return _build_info(version, modinfo, stripped)


def _find_header(
    data: bytes, section: tuple[int, int] | None, segments: Sequence[Segment]
) -> int | None:
    if section is not None:
        off, size = section
        fits = size >= _HEADER_SIZE and off + _HEADER_SIZE <= len(data)
        # A slice, not startswith: a mapped file (rootfs.layer's spool) has no such method.
        return off if fits and data[off : off + len(BUILDINFO_MAGIC)] == BUILDINFO_MAGIC else None
    for vaddr, off, size, writable in segments:
        end = min(off + size, len(data))
        pos = data.find(BUILDINFO_MAGIC, off, end) if writable else -1
        while pos >= 0:
            if (vaddr + pos - off) % _ALIGN == 0 and pos + _HEADER_SIZE <= end:
                return pos
            pos = data.find(BUILDINFO_MAGIC, pos + 1, end)
    return None


def _uvarint(data: bytes, pos: int) -> tuple[int, int] | None:
    """encoding/binary.Uvarint: (value, next position), None when truncated or too long."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    return None


def _inline_strings(data: bytes, pos: int) -> tuple[bytes, bytes] | None:
    out: list[bytes] = []
    for _ in range(2):
        read = _uvarint(data, pos)
        if read is None or read[1] + read[0] > len(data):
            return None
        length, pos = read
        out.append(data[pos : pos + length])
        pos += length
    return out[0], _strip_sentinels(out[1])


def _pointer_strings(
    data: bytes, header: bytes, segments: Sequence[Segment]
) -> tuple[bytes, bytes] | None:
    """Go < 1.18: two pointers to string headers {data pointer, length}."""
    ptr_size = header[14]
    if ptr_size not in (4, 8):
        return None
    order: Literal["big", "little"] = "big" if header[15] & _FLAG_BIG_ENDIAN else "little"

    def word(raw: bytes) -> int:
        return int.from_bytes(raw, order)

    out: list[bytes] = []
    for field in (16, 16 + ptr_size):
        string_header = _read_at(
            data, segments, word(header[field : field + ptr_size]), 2 * ptr_size
        )
        if string_header is None:
            return None
        text = _read_at(
            data, segments, word(string_header[:ptr_size]), word(string_header[ptr_size:])
        )
        if text is None:
            return None
        out.append(text)
    return out[0], _strip_sentinels(out[1])


def _read_at(data: bytes, segments: Sequence[Segment], vaddr: int, size: int) -> bytes | None:
    """`size` file bytes at virtual address `vaddr`, if one PT_LOAD holds them all."""
    for seg_vaddr, off, filesz, _w in segments:
        if seg_vaddr <= vaddr and vaddr + size <= seg_vaddr + filesz:
            start = off + vaddr - seg_vaddr
            return data[start : start + size] if start + size <= len(data) else None
    return None


def _strip_sentinels(modinfo: bytes) -> bytes:
    # debug/buildinfo: modinfo is framed by 16 bytes on each side when it is long enough.
    if len(modinfo) >= 33 and modinfo[-17] == 0x0A:
        return modinfo[16:-16]
    return modinfo


def _build_info(version: str, modinfo: str, stripped: bool) -> GoBuildInfo:
    main_path = main_module = main_version = None
    deps: list[tuple[str, str]] = []
    settings: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        key, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if key == "path":
            main_path = rest
        elif key == "mod" and fields:
            main_module, main_version = fields[0], fields[1] if len(fields) > 1 else None
        elif key == "dep" and len(fields) >= 2:
            deps.append((fields[0], fields[1]))
        elif key == "=>" and deps and len(fields) >= 2:
            deps[-1] = (deps[-1][0], f"{fields[0]} {fields[1]}".strip())  # the replacement
        elif key == "build":
            name, _, value = rest.partition("=")
            settings.append((name, value))
    return _with_settings(version, main_module or main_path, main_version, stripped, deps, settings)


def _with_settings(
    version: str,
    main_module: str | None,
    main_version: str | None,
    stripped: bool,
    deps: list[tuple[str, str]],
    settings: list[tuple[str, str]],
) -> GoBuildInfo:
    named = dict(settings)
    cgo = named.get("CGO_ENABLED")
    return GoBuildInfo(
        go_version=version,
        main_module=main_module,
        main_version=main_version,
        build_mode=named.get("-buildmode"),
        cgo_enabled=None if cgo is None else cgo == "1",
        stripped=stripped,
        deps=tuple(deps),
        settings=tuple(settings),
    )
