"""One layer blob -> LayerIndex: names, whiteouts, ELF facts, kept files, broken archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import subprocess
import tarfile
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from imagescan.elf.model import FileKind
from imagescan.elf.reader import parse_elf
from imagescan.errors import ImageReadError, MalformedElf
from imagescan.image import readahead
from imagescan.image.compression import GZIP_INPUT_CHUNK, DigestVerifyingReader
from imagescan.rootfs import layer as layer_module
from imagescan.rootfs.layer import NOT_READ, index_layer, normalise, scan_layer
from imagescan.rootfs.model import EntryType, LayerIndex
from tests.hostile import SyntheticElf, declared_huge_elf_layer, elf_bytes
from tests.imagebuilder import (
    Dir,
    File,
    Hardlink,
    Member,
    Opaque,
    RawMember,
    Symlink,
    Whiteout,
    compress,
    layer_tar,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rootfs"
NOISE = random.Random(0).randbytes(100_000)  # incompressible


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real dynamically linked PIE built by gcc."""
    out = tmp_path_factory.mktemp("hello") / "hello"
    subprocess.run(["gcc", "-O1", "-o", out, FIXTURES / "hello.c"], check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def truncated_elf(hello: bytes) -> bytes:
    """A well-formed header whose DT_NEEDED points past its string table: parse_elf refuses
    it (a file cut short is now judged as the loader maps it, issue 9, not refused)."""
    data = elf_bytes(SyntheticElf(b"\0", needed=[10_000]))
    with pytest.raises(MalformedElf):
        parse_elf(data, "/x")
    return data


def index(*members: Member, compression: str = "gzip", **kwargs: object) -> LayerIndex:
    blob = compress(layer_tar(list(members)), compression)
    return index_layer(io.BytesIO(blob), 3, "sha256:" + "ab" * 32, **kwargs)  # type: ignore[arg-type]


def raw(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> RawMember:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return RawMember(info, b"data" if kind == tarfile.REGTYPE else b"")


def test_member_names_are_normalised() -> None:
    assert normalise("./usr/./bin/../lib//x") == "/usr/lib/x"
    assert normalise("/etc/passwd") == "/etc/passwd"
    assert normalise("./") == "/"
    assert normalise("../../etc/passwd") is None
    assert normalise("a/../../etc") is None


def test_hostile_names_are_skipped_and_absolute_names_kept() -> None:
    layer = index(
        raw("./", tarfile.DIRTYPE),
        raw("../../etc/passwd"),
        raw("/etc/shadow"),
        raw("evil", tarfile.LNKTYPE, "../../../etc/passwd"),
    )
    assert [e.path for e in layer.entries] == ["/etc/shadow"]
    assert [(s.path, s.layer) for s in layer.skipped] == [("../../etc/passwd", 3), ("/evil", 3)]
    assert "outside the image root" in layer.skipped[0].reason


def test_whiteouts_and_opaque_markers_are_recorded_not_entries() -> None:
    layer = index(
        Dir("/a"),
        Whiteout("/a/gone"),
        Opaque("/a"),
        Whiteout("/top"),
        raw("a/.wh..wh.plnk"),
        raw("a/.wh."),
    )
    assert [e.path for e in layer.entries] == ["/a"]
    assert layer.whiteouts == ("/a/gone", "/top")
    assert layer.opaque_dirs == ("/a",)


def test_metadata_of_every_kind_of_member() -> None:
    fifo = tarfile.TarInfo("run/fifo")
    fifo.type = tarfile.FIFOTYPE
    layer = index(
        Dir("/bin", mode=0o755),
        File("/bin/su", b"#!/bin/sh\n", mode=0o4755, uid=0, gid=42),
        Symlink("/bin/sh", "dash"),
        Hardlink("/bin/su2", "/bin/su"),
        RawMember(fifo),
    )
    by_path = {e.path: e for e in layer.entries}
    su = by_path["/bin/su"]
    assert (su.type, su.mode, su.gid, su.size, su.layer) == (EntryType.FILE, 0o4755, 42, 10, 3)
    assert su.setid
    assert by_path["/bin/sh"].link_target == "dash"
    assert by_path["/bin/su2"].type is EntryType.HARDLINK
    assert by_path["/bin/su2"].link_target == "/bin/su"
    assert by_path["/run/fifo"].type is EntryType.FIFO
    assert layer.diff_id == "sha256:" + "ab" * 32


def test_file_capabilities_from_the_pax_xattr() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, headers in (("ping", {layer_module.CAPABILITY_XATTR: "\x01\x00\x00\x02"}),):
            info = tarfile.TarInfo(name)
            info.pax_headers = headers
            tar.addfile(info, io.BytesIO(b""))
        tar.addfile(tarfile.TarInfo("plain"), io.BytesIO(b""))
    layer = index_layer(io.BytesIO(out.getvalue()), 0, None)
    assert [(e.path, e.has_caps) for e in layer.entries] == [("/ping", True), ("/plain", False)]


def test_elf_files_are_parsed_and_others_verified(hello: bytes) -> None:
    layer = index(
        File("/usr/bin/hello", hello, mode=0o755),
        File("/usr/lib/notes.txt", b"x" * 100),
        File("/usr/lib/tiny", b"\x7fELF"),
    )
    by_path = {e.path: e for e in layer.entries}
    program = by_path["/usr/bin/hello"]
    assert program.elf is not None
    assert program.elf.kind is FileKind.PIE_EXEC
    assert program.verify is None
    assert by_path["/usr/lib/notes.txt"].verify == "invalid ELF header"
    assert by_path["/usr/lib/notes.txt"].elf is None
    assert by_path["/usr/lib/tiny"].verify == "file too short"


def test_malformed_elf_is_skipped_and_a_fatal_candidate(truncated_elf: bytes) -> None:
    layer = index(File("/lib/libbad.so", truncated_elf))
    (entry,) = layer.entries
    (skip,) = layer.skipped
    assert (skip.path, skip.layer) == ("/lib/libbad.so", 3)
    assert entry.verify == skip.reason
    assert entry.elf is None


def test_elf_above_the_size_cap_is_skipped(hello: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layer_module, "MAX_ELF_SIZE", len(hello) - 1)
    layer = index(File("/big", hello))
    assert layer.entries[0].elf is None
    assert "too large" in layer.skipped[0].reason


def test_a_large_elf_file_is_read_through_a_spool(
    hello: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SPOOL_SIZE an ELF file is parsed from a mapped temporary copy (issue 14): the
    same facts and digests as from one buffer; a file cut short is still refused."""
    whole = index(File("/usr/bin/hello", hello), digests=True).entries[0].elf
    monkeypatch.setattr(layer_module, "SPOOL_SIZE", 100)
    spooled = index(File("/usr/bin/hello", hello), digests=True).entries[0].elf
    assert whole is not None and whole.sha256 == hashlib.sha256(hello).hexdigest()
    assert spooled == whole
    assert index(File("/usr/bin/hello", hello), digests=False).entries[0].elf == replace(
        whole, sha256=None, sha1=None
    )
    read = io.BytesIO(hello[64:1000]).read
    content = layer_module._elf_content("/x", len(hello), hello[:64], read, True)
    assert content.elf is None and content.skip_reason is not None
    assert "file ends after 1000" in content.skip_reason


def test_small_configuration_files_are_kept_verbatim() -> None:
    layer = index(
        File("/etc/ld.so.cache", b"glibc-ld.so.cache1.1"),
        File("/etc/ld.so.conf.d/x.conf", b"/opt/x/lib\n"),
        File("/etc/ld-musl-x86_64.path", b"/lib:/usr/lib\n"),
        File("/var/lib/dpkg/status", b"Package: libc6\n"),
        File("/etc/hostname", b"box\n"),
        File("/etc/nsswitch.conf", b"x" * (layer_module.MAX_KEPT_SIZE + 1)),
    )
    assert layer.kept == {
        "/etc/ld.so.cache": b"glibc-ld.so.cache1.1",
        "/etc/ld.so.conf.d/x.conf": b"/opt/x/lib\n",
        "/etc/ld-musl-x86_64.path": b"/lib:/usr/lib\n",
        "/var/lib/dpkg/status": b"Package: libc6\n",
    }
    assert [s.path for s in layer.skipped] == ["/etc/nsswitch.conf"]


def test_hidden_files_are_not_read(truncated_elf: bytes) -> None:
    members = [File("/hidden", truncated_elf), File("/seen", b"ok")]
    layer = index(*members, hidden=lambda path: path == "/hidden")
    hidden, seen = layer.entries
    assert (hidden.path, hidden.verify, hidden.elf) == ("/hidden", NOT_READ, None)
    assert seen.verify == "file too short"
    assert hidden.file_id != seen.file_id
    assert layer.skipped == ()  # the malformed ELF was never parsed
    assert len(index(*members).skipped) == 1


def test_visible_hardlink_to_a_hidden_file_is_reported() -> None:
    blob = layer_tar([File("/a", b"x"), Hardlink("/b", "/a"), Hardlink("/c", "/a")])
    hidden = {"/a", "/c"}.__contains__
    scan = scan_layer(io.BytesIO(blob), 0, None, hidden=hidden)
    assert scan.unread_link_targets == frozenset({"/a"})
    assert [e.path for e in scan.index.entries] == ["/a", "/b", "/c"]


def test_zstd_and_plain_layers() -> None:
    for compression in ("zstd", "none"):
        layer = index(File("/x", b"1"), compression=compression)
        assert [e.path for e in layer.entries] == ["/x"]


def test_diff_id_is_computed_and_checked() -> None:
    tar = layer_tar([File("/x", b"1")])
    expected = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer = index_layer(io.BytesIO(gzip.compress(tar)), 0, None, compute_diff_id=True)
    assert layer.diff_id == expected
    with pytest.raises(ImageReadError, match=r"layer 0 .*not the diff_id"):
        index_layer(io.BytesIO(gzip.compress(tar)), 0, "sha256:" + "0" * 64, compute_diff_id=True)


def test_blob_is_drained_so_its_digest_is_checked() -> None:
    blob = gzip.compress(layer_tar([File("/x", b"1")])) + b"\0" * 4096
    wrong = DigestVerifyingReader(io.BytesIO(blob), "sha256:" + "0" * 64, "blob sha256:0000")
    with pytest.raises(ImageReadError, match="digest mismatch"):
        index_layer(wrong, 0, None)
    right = "sha256:" + hashlib.sha256(blob).hexdigest()
    index_layer(DigestVerifyingReader(io.BytesIO(blob), right, "blob"), 0, None)


def _ustar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_absurd_declared_size_makes_the_layer_unreadable() -> None:
    info = tarfile.TarInfo("huge")
    info.size = 1 << 50
    header = info.tobuf(tarfile.PAX_FORMAT)
    with pytest.raises(ImageReadError, match=r"layer 2 .*declares"):
        index_layer(io.BytesIO(gzip.compress(header + b"x" * 4096)), 2, None)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not a tar"),
        (b"this is not a tar archive at all\n" * 40, "not a tar"),
        (gzip.compress(b"plain text, gzipped, no tar inside\n" * 40), "not a tar"),
        (gzip.compress(layer_tar([File("/x", NOISE)]))[:50_000], r"layer 5.*corrupt gzip"),
        (layer_tar([File("/x", b"y" * 100_000)])[:50_000], "layer 5"),
        (layer_tar([File("/x", b"y" * 512)])[:700], "unexpected end of data"),
    ],
    ids=["empty", "text", "gzipped-text", "truncated-gzip", "truncated-data", "cut-in-member"],
)
def test_broken_layers_raise_one_error_naming_the_layer(blob: bytes, message: str) -> None:
    with pytest.raises(ImageReadError, match=message) as caught:
        index_layer(io.BytesIO(blob), 5, None)
    assert caught.value.message.startswith("layer 5")


def test_small_conf_files_anywhere_are_kept_large_ones_ignored() -> None:
    big = b"#" * (layer_module.MAX_CONF_SIZE + 1)
    layer = index(
        File("/usr/lib/x86_64-linux-gnu/libfakeroot/fakeroot.conf", b"/usr/lib/fr\n"),
        File("/usr/share/big.conf", big),
        File("/etc/passwd", b"app:x:1000:1000::/home/app:/bin/sh\n"),
    )
    assert set(layer.kept) == {
        "/usr/lib/x86_64-linux-gnu/libfakeroot/fakeroot.conf",
        "/etc/passwd",
    }
    assert layer.skipped == ()


class Zeros(io.RawIOBase):
    """`size` zero bytes, produced as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_memory_does_not_grow_with_the_layer(tmp_path: Path) -> None:
    # What is in flight at most: the read-ahead queue, a chunk waiting to join it, the one
    # being parsed, the gzip input, and buffers and bookkeeping; the layer is far larger.
    bound = readahead.CHUNK * (readahead.DEPTH + 2) + GZIP_INPUT_CHUNK + (8 << 20)
    size = 4 * bound
    path = tmp_path / "big.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as out, tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo("var/big.img")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros(size)))
    tracemalloc.start()
    try:
        with path.open("rb") as blob:
            layer = index_layer(blob, 0, None, compute_diff_id=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layer.entries[0].size == size
    assert peak < bound, peak


def test_member_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layer_module, "MAX_MEMBERS", 2)
    index(File("/a"), File("/b"))
    with pytest.raises(ImageReadError, match="more than 2 members"):
        index(File("/a"), File("/b"), File("/c"))


def test_gnu_sparse_member_is_skipped_and_the_layer_read_on() -> None:
    sparse = tarfile.TarInfo("var/sparse.img")
    sparse.type = tarfile.GNUTYPE_SPARSE
    sparse.size = 600
    out = io.BytesIO()
    out.write(sparse.tobuf(tarfile.GNU_FORMAT) + b"s" * 600 + bytes(-600 % 512))
    after = tarfile.TarInfo("after")
    after.size = 1
    out.write(after.tobuf(tarfile.GNU_FORMAT) + b"x" + bytes(511) + bytes(1024))
    layer = index_layer(io.BytesIO(out.getvalue()), 1, None)
    assert [e.path for e in layer.entries] == ["/after"]
    assert [(s.path, s.reason) for s in layer.skipped] == [
        ("/var/sparse.img", "GNU sparse file: not read")
    ]


def test_a_layer_without_its_end_of_archive_block_is_read_whole() -> None:
    """Issue 10 item 3: the engines accept a layer that stops at a member boundary."""
    tar = layer_tar([File("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), File("/x", b"y" * 600)])
    cut = tar.rstrip(b"\0")
    cut += bytes(-len(cut) % 512)
    assert cut[-512:] != bytes(512)
    layer = index_layer(io.BytesIO(gzip.compress(cut)), 1, None, compute_diff_id=True)
    assert {e.path for e in layer.entries} >= {"/etc/passwd", "/x"}
    assert layer.kept["/etc/passwd"].startswith(b"root:")


def test_kept_files_stop_at_the_budget_and_say_so() -> None:
    """Issue 15: 150 x 8 MiB files in /etc/ld.so.conf.d/ were all kept (1.25 GB)."""
    members = [File(f"/etc/ld.so.conf.d/{i:02}.conf", b"#" * 30_000) for i in range(5)]
    members += [File(f"/opt/x/{i}.conf", b"#" * 30_000) for i in range(3)]
    blob = compress(layer_tar(members), "gzip")
    budget = layer_module.KeptBudget(100_000)
    layer = scan_layer(io.BytesIO(blob), 0, None, budget=budget).index
    kept_conf_d = [p for p in layer.kept if p.startswith("/etc/ld.so.conf.d/")]
    assert kept_conf_d == [f"/etc/ld.so.conf.d/{i:02}.conf" for i in range(3)]
    assert not [p for p in layer.kept if p.startswith("/opt/")]  # budget spent: not kept
    reasons = {s.path: s.reason for s in layer.skipped}
    assert reasons == {
        "/etc/ld.so.conf.d/03.conf": layer_module.NOT_KEPT,
        "/etc/ld.so.conf.d/04.conf": layer_module.NOT_KEPT,
    }
    assert budget.left == 100_000 - 3 * 30_000


def test_a_declared_huge_elf_member_is_not_allocated_before_its_bytes_arrive() -> None:
    """Issue 15: a member declaring 1 GiB of ELF allocated 1 GiB before reading a byte."""
    blob = declared_huge_elf_layer(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match="unexpected end of data"):
            index_layer(io.BytesIO(blob), 0, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_dpkg_file_lists_are_kept_within_a_budget_of_their_own() -> None:
    from imagescan.rootfs.layer import DpkgListBudget, is_kept

    assert is_kept("/var/lib/dpkg/info/libc6:amd64.list")
    assert is_kept("/var/lib/rpm/rpmdb.sqlite") and is_kept("/etc/apt/sources.list.d/x.sources")
    assert not is_kept("/var/lib/dpkg/info/libc6:amd64.md5sums")
    budget = DpkgListBudget(left=10)
    assert budget.admit("/var/lib/dpkg/info/a.list", b"12345678")
    assert not budget.admit("/var/lib/dpkg/info/b.list", b"123")
    assert not budget.admit("/var/lib/dpkg/info/c.list", b"1")  # a prefix, not a subset
    assert budget.admit("/etc/os-release", b"x" * 100)  # other kept files are not counted
