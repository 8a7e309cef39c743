"""Platforms: host default, parsing, containerd-style normalisation and choosing from an index."""

from __future__ import annotations

import platform as host

import pytest

from imagescan.errors import PlatformError, UsageError
from imagescan.image.model import Platform
from imagescan.image.platform import (
    Candidate,
    choose,
    host_platform,
    matches,
    normalize,
    parse_platform,
)

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
ARMV7 = Platform("linux", "arm", "v7")


def test_host_platform_is_this_machine() -> None:
    expected = {"x86_64": "amd64", "aarch64": "arm64"}[host.machine()]
    assert host_platform().architecture == expected
    assert host_platform().os == "linux"


def test_parse_platform_with_and_without_variant() -> None:
    assert parse_platform("linux/arm64/v8") == ARM64
    assert parse_platform("Linux/AMD64") == AMD64


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", ""])
def test_parse_platform_refuses_malformed_text(text: str) -> None:
    with pytest.raises(UsageError, match="os/arch"):
        parse_platform(text)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (Platform("linux", "x86_64"), AMD64),
        (Platform("linux", "amd64", "v1"), AMD64),
        (Platform("linux", "aarch64"), Platform("linux", "arm64")),
        (Platform("linux", "arm64", "v8"), Platform("linux", "arm64")),
        (Platform("linux", "arm64", "8"), Platform("linux", "arm64")),
        (Platform("linux", "arm"), ARMV7),
        (Platform("linux", "armhf"), ARMV7),
        (Platform("linux", "armel"), Platform("linux", "arm", "v6")),
        (Platform("linux", "i686"), Platform("linux", "386")),
        (Platform("linux", "amd64", "v3"), Platform("linux", "amd64", "v3")),
    ],
)
def test_normalize_like_containerd(given: Platform, canonical: Platform) -> None:
    assert normalize(given) == canonical


def test_matches_uses_default_variants() -> None:
    assert matches(parse_platform("linux/arm64"), ARM64)
    assert matches(parse_platform("linux/arm"), ARMV7)
    assert not matches(parse_platform("linux/arm/v6"), ARMV7)
    assert not matches(AMD64, ARM64)
    assert not matches(AMD64, Platform("windows", "amd64"))


def test_choose_picks_the_matching_entry() -> None:
    entries = [Candidate(ARM64, "arm"), Candidate(AMD64, "amd")]
    assert choose(AMD64, entries, "index") == "amd"
    assert choose(parse_platform("linux/aarch64"), entries, "index") == "arm"


def test_choose_lists_the_choices_when_nothing_matches() -> None:
    entries = [Candidate(ARM64, 1), Candidate(Platform("linux", "s390x"), 2)]
    with pytest.raises(PlatformError) as caught:
        choose(AMD64, entries, "oci-dir /x")
    assert caught.value.message == (
        "oci-dir /x has no image for platform linux/amd64;"
        " available: linux/arm64/v8, linux/s390x (choose one with --platform)"
    )


def test_choose_refuses_an_ambiguous_choice() -> None:
    entries = [Candidate(AMD64, 1), Candidate(Platform("linux", "x86_64"), 2)]
    with pytest.raises(PlatformError, match=r"2 images for platform linux/amd64.*ambiguous"):
        choose(AMD64, entries, "index")


def test_choose_ignores_attestation_entries() -> None:
    entries = [Candidate(AMD64, "image"), Candidate(Platform("unknown", "unknown"), "att")]
    assert choose(AMD64, entries, "index") == "image"
    with pytest.raises(PlatformError, match=r"available: linux/amd64 \(choose"):
        choose(ARM64, entries, "index")


def test_choose_takes_a_lone_entry_without_platform() -> None:
    assert choose(ARM64, [Candidate(None, "only")], "index") == "only"
    with pytest.raises(PlatformError):
        choose(ARM64, [Candidate(None, 1), Candidate(None, 2)], "index")
