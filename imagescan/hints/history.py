"""The image config's `history` aligned with its layers: the build step of each layer."""

from __future__ import annotations

from collections.abc import Sequence

from imagescan.image.model import HistoryEntry

MAX_STEP = 200  # characters of a created_by shown; a RUN line can be a whole script


def layer_steps(history: Sequence[HistoryEntry], layers: int) -> tuple[str | None, ...]:
    """`created_by` of the history entry behind each layer, bottom first.

    Entries with `empty_layer` (ENV, CMD, ...) made no layer and are skipped (OCI
    image-spec config.md). When the non-empty entries do not match the layer count the
    history was edited or squashed: nothing is aligned then, rather than aligned wrongly.
    """
    steps = [entry.created_by for entry in history if not entry.empty_layer]
    if len(steps) != layers:
        return (None,) * layers
    return tuple(_shown(step) for step in steps)


def _shown(step: str | None) -> str | None:
    if not step:
        return None
    text = " ".join(step.split())
    # The classic builder writes COPY/ADD/ENV steps as a no-op shell command.
    text = text.removeprefix("/bin/sh -c #(nop) ").strip()
    return text if len(text) <= MAX_STEP else text[: MAX_STEP - 1] + "…"
