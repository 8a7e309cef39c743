"""The forward-only tar reader, differential against tarfile, and on broken headers."""

from __future__ import annotations

import io
import tarfile

import pytest

from imagescan.rootfs import tarstream
from imagescan.rootfs.tarstream import TarFormatError, TarMember, TarStream, parse_pax

LONG = "usr/lib/" + "/".join(["a-rather-long-directory-name"] * 8) + "/libfoo.so.1"


def sample_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    def info(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.type = kind
        for key, value in attrs.items():
            setattr(member, key, value)
        return member

    return [
        (info("etc/", tarfile.DIRTYPE, mode=0o755), b""),
        (info("etc/passwd", mode=0o644, uid=0, gid=0), b"root:x:0:0\n"),
        (info("usr/bin/su", mode=0o4755, uid=1, gid=2), b"\x7fELF" + bytes(3000)),
        (info(LONG, mode=0o755), b"lib"),
        (info("lib", tarfile.SYMTYPE, linkname="usr/lib"), b""),
        (info("usr/bin/su2", tarfile.LNKTYPE, linkname="usr/bin/su"), b""),
        (info("link-with-long-target", tarfile.SYMTYPE, linkname=LONG), b""),
        (info("big-ids", uid=3_000_000, gid=2_500_000), b"x"),
        (info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (info("run/fifo", tarfile.FIFOTYPE), b""),
    ]


def archive(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for member, data in members if members is not None else sample_members():
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def walk(data: bytes) -> list[tuple[TarMember, bytes]]:
    stream = io.BytesIO(data)
    tar = TarStream(stream.read, 1 << 30)
    return [(member, tar.read_data(5)) for member in tar.members()]


Summary = tuple[str, bytes, int, int, int, int, str]


def summary(name: str, kind: bytes, mode: int, uid: int, gid: int, size: int, link: str) -> Summary:
    return (name.rstrip("/"), kind, mode, uid, gid, size, link)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
def test_same_members_as_tarfile(fmt: int) -> None:
    data = archive(fmt)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [
            summary(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname)
            for m in tar.getmembers()
        ]
    got = [summary(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname) for m, _ in walk(data)]
    assert got == expected
    assert [data for _, data in walk(data)][1:3] == [b"root:", b"\x7fELF\0"]


def test_ustar_prefix_holds_leading_directories() -> None:
    name = "usr/share/" + "d" * 90 + "/file"  # longer than 100: split into prefix + name
    data = archive(tarfile.USTAR_FORMAT, [(tarfile.TarInfo(name), b"abc")])
    assert data[345:355] == b"usr/share\0"
    ((member, content),) = walk(data)
    assert (member.name, content) == (name, b"abc")


def test_pax_records_are_kept_for_the_member() -> None:
    member = tarfile.TarInfo("ping")
    member.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
    ((got, _), (plain, _)) = walk(
        archive(tarfile.PAX_FORMAT, [(member, b""), (tarfile.TarInfo("plain"), b"")])
    )
    assert "SCHILY.xattr.security.capability" in got.pax
    assert plain.pax == {}


def test_old_style_directory_by_trailing_slash() -> None:
    member = tarfile.TarInfo("olddir/")
    member.type = tarfile.AREGTYPE
    ((got, _),) = walk(archive(tarfile.USTAR_FORMAT, [(member, b"")]))
    assert got.type == tarstream.DIRECTORY


def test_data_is_read_only_within_the_member() -> None:
    data = archive(
        tarfile.PAX_FORMAT, [(tarfile.TarInfo("a"), b"12345678"), (tarfile.TarInfo("b"), b"x")]
    )
    stream = io.BytesIO(data)
    tar = TarStream(stream.read, 100)
    members = tar.members()
    assert next(members).name == "a"
    assert tar.read_data(3) == b"123"
    assert tar.read_data(100) == b"45678"
    assert tar.read_data(100) == b""
    assert next(members).name == "b"  # the rest of "a" and its padding were skipped
    assert list(members) == []


def test_declared_size_is_checked_before_use() -> None:
    data = archive(tarfile.PAX_FORMAT, [(tarfile.TarInfo("a"), b"x" * 1000)])
    with pytest.raises(TarFormatError, match="declares 1000 bytes"):
        list(TarStream(io.BytesIO(data).read, 999).members())


def pax_member() -> tarfile.TarInfo:
    member = tarfile.TarInfo("a")
    member.pax_headers = {"comment": "x" * 600}
    return member


def corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"x" * 1024, "invalid header"),
        (corrupt(archive(tarfile.GNU_FORMAT), 0, b"E"), "invalid header"),
        (corrupt(archive(tarfile.GNU_FORMAT), 512, b"E"), "corrupt member header"),
        (archive(tarfile.GNU_FORMAT)[:700], "unexpected end of data"),
        (archive(tarfile.GNU_FORMAT)[: 512 * 3 + 100], "unexpected end of data"),
        (archive(tarfile.PAX_FORMAT, [(pax_member(), b"")])[:1536], "after an extended header"),
    ],
    ids=[
        "empty",
        "garbage",
        "first-checksum",
        "second-checksum",
        "cut-in-data",
        "cut-in-header",
        "cut-after-pax",
    ],
)
def test_broken_archives(data: bytes, message: str) -> None:
    with pytest.raises(TarFormatError, match=message):
        list(TarStream(io.BytesIO(data).read, 1 << 30).members())


def test_a_tar_without_its_end_of_archive_block_ends_at_the_member_boundary() -> None:
    """Issue 10 item 3: what docker load and GNU tar accept (umoci writes such layers)."""
    whole = archive(tarfile.GNU_FORMAT)
    cut = whole.rstrip(b"\0")
    cut += bytes(-len(cut) % 512)
    assert len(cut) < len(whole) and cut[-512:] != bytes(512)
    names = [m.name for m, _ in walk(cut)]
    assert names == [m.name for m, _ in walk(whole)]
    assert len(names) == len(sample_members())


def test_pax_record_without_length_is_an_error_not_a_hang() -> None:
    """Issue 15 reproducer: "10 path=a\\nx" read the trailing "x" as a 0-length record."""
    with pytest.raises(TarFormatError, match="corrupt PAX"):
        parse_pax(b"10 path=a\nx")
    for bad in (b"x", b" path=a\n", b"\xb2 path=a\n"):
        with pytest.raises(TarFormatError):
            parse_pax(bad)


def test_pax_parsing() -> None:
    assert parse_pax(b"12 path=a/b\n10 uid=42\n") == {"path": "a/b", "uid": "42"}
    for bad in (b"99 path=a\n", b"x path=a\n", b"9 patha\n\n", b"10 path=ab"):
        with pytest.raises(TarFormatError):
            parse_pax(bad)


def test_bad_pax_number_is_an_error() -> None:
    member = tarfile.TarInfo("a")
    member.pax_headers = {"uid": "12x"}
    with pytest.raises(TarFormatError, match="invalid PAX uid"):
        walk(archive(tarfile.PAX_FORMAT, [(member, b"")]))


def test_hostile_extension_size_is_refused() -> None:
    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = tarstream.MAX_META_SIZE + 1
    data = header.tobuf(tarfile.GNU_FORMAT) + bytes(4096)
    with pytest.raises(TarFormatError, match="extended header"):
        walk(data)


def test_old_signed_checksum_is_accepted() -> None:
    data = bytearray(archive(tarfile.GNU_FORMAT, [(tarfile.TarInfo("caf\u00e9"), b"x")]))
    header = bytes(data[:512])
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    assert signed != sum(header[:148] + header[156:]) + 256  # the name has bytes >= 0x80
    data[148:156] = b"%06o\0 " % signed
    ((member, content),) = walk(bytes(data))
    assert (member.name, content) == ("caf\u00e9", b"x")


def with_checksum(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def test_gnu_sparse_extension_blocks_are_skipped() -> None:
    sparse = tarfile.TarInfo("sparse")
    sparse.type = tarfile.GNUTYPE_SPARSE
    sparse.size = 10
    header = bytearray(sparse.tobuf(tarfile.GNU_FORMAT))
    header[482] = 1  # isextended: one extension block follows
    extension = bytearray(512)  # its own isextended (byte 504) is 0: the last one
    data = b"0123456789" + bytes(502)
    tail = archive(tarfile.GNU_FORMAT, [(tarfile.TarInfo("next"), b"n")])
    members = walk(with_checksum(header) + bytes(extension) + data + tail)
    assert [(m.name, m.type, content) for m, content in members] == [
        ("sparse", tarstream.GNU_SPARSE, b"01234"),
        ("next", tarstream.REGULAR, b"n"),
    ]


def test_endless_extended_headers_are_refused() -> None:
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    bodies = [b" k%d=v\n" % i for i in range(100, 110)]
    records = b"".join(b"%d" % (len(body) + 2) + body for body in bodies)  # 2-digit lengths
    assert parse_pax(records)  # well formed: only their number is hostile
    pax.size = len(records)
    one = pax.tobuf(tarfile.GNU_FORMAT) + records + bytes(-len(records) % 512)
    ok = one * tarstream.MAX_EXTENSIONS + archive(tarfile.GNU_FORMAT, [(tarfile.TarInfo("a"), b"")])
    assert [m.name for m, _ in walk(ok)] == ["a"]
    with pytest.raises(TarFormatError, match="extended headers in a row"):
        walk(one * (tarstream.MAX_EXTENSIONS + 1))


def test_short_reads_are_completed() -> None:
    data = archive(tarfile.PAX_FORMAT)
    stream = io.BytesIO(data)
    tar = TarStream(lambda size: stream.read(min(size, 7)), 1 << 30)  # a trickling source
    names = [(member.name, tar.read_data(5)) for member in tar.members()]
    assert names == [(m.name, content) for m, content in walk(data)]


def test_negative_base256_number_is_refused() -> None:
    data = bytearray(archive(tarfile.GNU_FORMAT, [(tarfile.TarInfo("a"), b"")]))
    data[108:116] = b"\xff" * 8  # uid: GNU base-256, negative
    with pytest.raises(TarFormatError, match="negative number"):
        walk(with_checksum(data[:512]) + bytes(data[512:]))
