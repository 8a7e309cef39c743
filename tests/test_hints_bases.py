"""The base image table and version node parsing."""

from __future__ import annotations

from imagescan.hints.bases import BASES, oldest_shipping, parse_node, version_tuple


def test_version_nodes_of_the_four_libraries() -> None:
    assert parse_node("GLIBC_2.34") == ("glibc", (2, 34))
    assert parse_node("GLIBC_2.2.5") == ("glibc", (2, 2, 5))
    assert parse_node("GLIBCXX_3.4.30") == ("glibcxx", (3, 4, 30))
    assert parse_node("CXXABI_1.3.13") == ("cxxabi", (1, 3, 13))
    assert parse_node("OPENSSL_3.0.0") == ("openssl", (3, 0, 0))
    assert parse_node("OPENSSL_1_1_1d") == ("openssl", (1, 1, 1))
    assert parse_node("GLIBC_PRIVATE") is None and parse_node("LIBFOO_1.0") is None


def test_oldest_base_per_family_that_ships_a_version() -> None:
    chosen = {b.family: b.release for b in oldest_shipping("glibc", (2, 34))}
    assert chosen == {
        "Debian": "12 (bookworm)",
        "Ubuntu": "22.04 (jammy)",
        "RHEL/UBI/Rocky": "9",
        "Amazon Linux": "2023",
    }
    assert oldest_shipping("glibc", (2, 99)) == []
    assert {b.family for b in oldest_shipping("openssl", (1, 1, 1))} >= {"Debian", "Ubuntu"}


def test_the_table_is_ordered_oldest_first_within_each_family() -> None:
    for family in {b.family for b in BASES}:
        rows = [b for b in BASES if b.family == family]
        for column in ("glibc", "glibcxx", "cxxabi", "openssl"):
            versions = [version_tuple(b.ships(column)) for b in rows]
            assert versions == sorted(versions), (family, column)
