"""What the layer reader needs of a layer cache (DESIGN.md "Performance rules").

Images share base layers, and a layer's facts depend only on its content: a nightly audit
of many images, or a second scan of one, reads each layer once. The cache itself is the
store (`imagescan.store`: SQLite or PostgreSQL, plain JSON entries validated on read, no
pickle); the reader sees only this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from imagescan.rootfs.model import LayerIndex


class LayerCache(Protocol):
    """diff_id -> the complete LayerIndex of that layer (read with symbols, no hiding)."""

    def get(self, diff_id: str) -> LayerIndex | None:
        """The cached index, or None (also for an entry that cannot be used)."""
        ...

    def put(self, layer: LayerIndex) -> None:
        """Keep a complete index (callers pass only those read in full, with symbols)."""
        ...

    def retain(self, diff_ids: Sequence[str]) -> None:
        """The image about to be read has these layers: what the cache holds decoded in
        memory for others may go (an audit's memory stays one image's, issue 8)."""
        ...
