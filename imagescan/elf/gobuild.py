"""Go build information (`go version -m`) from `.go.buildinfo`."""

from __future__ import annotations

from collections.abc import Sequence

from imagescan.elf.model import GoBuildInfo


def parse_go_buildinfo(
    data: bytes,
    *,
    section: tuple[int, int] | None,
    segments: Sequence[tuple[int, int, int, bool]],
    little_endian: bool,
    ptr_size: int,
    stripped: bool,
) -> GoBuildInfo | None:
    """Build info of a Go binary, or None for anything else."""
    return None
