"""imagescan.checks.reuse: verdicts carried from one image to the next that shares its
base are the verdicts a fresh analysis gives (issue 12), on the corpus images in a row and
on images whose top layer changes what the base's files load."""

from __future__ import annotations

from pathlib import Path

from imagescan.analyze import analyze
from imagescan.checks.reuse import Carry
from imagescan.image.model import SourceOptions
from imagescan.scan import ScanOptions, read_image
from tests.conftest import CORPUS, CORPUS_IMAGES
from tests.hostile import dependency_chain, synthetic_loader
from tests.imagebuilder import Dir, File, ImageSpec, Member, write_oci_dir


def _read(reference: str, carry: Carry | None = None):  # type: ignore[no-untyped-def]
    return read_image(reference, ScanOptions(source=SourceOptions()), carry=carry)


def test_the_corpus_audited_in_a_row_gives_each_image_its_fresh_verdicts() -> None:
    carry = Carry()
    carried_any = False
    for name in CORPUS_IMAGES:
        image, rootfs = _read(f"oci-dir:{CORPUS / 'oci'}:{name}", carry)
        before = carry.judged
        again = analyze(rootfs, image.config, carry=carry)
        fresh = analyze(rootfs, image.config)
        assert again.verdicts == fresh.verdicts, name
        assert again.image_findings == fresh.image_findings, name
        carried_any |= before is not None and any(
            again.processes[p] is before.files[p][1] for p in again.processes if p in before.files
        )
    assert carried_any  # the corpus shares Debian 12's base: something was carried


def _chain_image(tmp: Path, name: str, top: list[File]) -> str:
    chain = dependency_chain(3, "/usr/lib64")
    base = [synthetic_loader(), *(File(path, data, 0o755) for path, data in chain)]
    return f"oci-dir:{write_oci_dir(tmp / name, ImageSpec([base, top]))}"


def test_a_top_layer_that_replaces_a_searched_library_is_judged_again(tmp_path: Path) -> None:
    """The second image replaces libchain2.so with a file that is not ELF: the program and
    the libraries that load it must not keep the first image's ok."""
    first = _chain_image(tmp_path, "a", [File("/etc/a", b"a")])
    second = _chain_image(tmp_path, "b", [File("/usr/lib64/libchain2.so", b"not an ELF")])
    carry = Carry()
    image, rootfs = _read(first, carry)
    analyze(rootfs, image.config, carry=carry)
    image, rootfs = _read(second, carry)
    assert carry.judged is not None  # the same base layer: the judging was kept
    again = analyze(rootfs, image.config, carry=carry)
    fresh = analyze(rootfs, image.config)
    assert again.verdicts == fresh.verdicts
    assert again.verdicts["/usr/bin/chain"].status == "broken"
    image, rootfs = _read(first)
    assert analyze(rootfs, image.config).verdicts["/usr/bin/chain"].status == "ok"  # stale


def test_an_image_on_another_base_drops_the_carry_before_its_layers_are_read(
    tmp_path: Path,
) -> None:
    carry = Carry()
    image, rootfs = _read(_chain_image(tmp_path, "a", [File("/etc/a", b"a")]), carry)
    analyze(rootfs, image.config, carry=carry)
    other = f"oci-dir:{write_oci_dir(tmp_path / 'c', ImageSpec([[File('/etc/c', b'c')]]))}"
    _read(other, carry)
    assert carry.judged is None


def _private_libdir_image(tmp: Path, name: str, top: list[Member]) -> str:
    chain = [File(path, data, 0o755) for path, data in dependency_chain(2, "/usr/lib64")]
    base: list[Member] = [Dir("/usr/lib64", 0o700), synthetic_loader(), *chain]
    spec = ImageSpec([base, top], user="1000")
    return f"oci-dir:{write_oci_dir(tmp / name, spec)}"


def test_a_directory_made_searchable_on_top_is_judged_again(tmp_path: Path) -> None:
    """As User 1000 the base's /usr/lib64 (0700, root's) cannot be searched: open() fails
    with EACCES before any entry of the library is looked at. The second image makes the
    directory 0755: what depended on that denial must be judged again."""
    first = _private_libdir_image(tmp_path, "a", [File("/etc/a", b"a")])
    second = _private_libdir_image(tmp_path, "b", [Dir("/usr/lib64", 0o755)])
    carry = Carry()
    image, rootfs = _read(first, carry)
    assert analyze(rootfs, image.config, carry=carry).verdicts["/usr/bin/chain"].status != "ok"
    image, rootfs = _read(second, carry)
    assert carry.judged is not None
    again = analyze(rootfs, image.config, carry=carry)
    assert again.verdicts == analyze(rootfs, image.config).verdicts
    assert again.verdicts["/usr/bin/chain"].status == "ok"
