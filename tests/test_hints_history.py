"""The config history aligned with the layers."""

from __future__ import annotations

from imagescan.hints.history import MAX_STEP, layer_steps
from imagescan.image.configjson import parse_image_config
from imagescan.image.model import HistoryEntry


def test_empty_layer_entries_are_skipped() -> None:
    config = parse_image_config(
        {
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
            "history": [
                {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                {"created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True},
                {"created_by": "COPY --from=builder /out/app /usr/local/bin/app # buildkit"},
            ],
        },
        "config",
    )
    assert layer_steps(config.history, 2) == (
        "ADD file:abc in /",
        "COPY --from=builder /out/app /usr/local/bin/app # buildkit",
    )


def test_a_history_that_does_not_match_the_layers_aligns_nothing() -> None:
    history = (HistoryEntry("RUN a"), HistoryEntry("RUN b"))
    assert layer_steps(history, 3) == (None, None, None)
    assert layer_steps((), 1) == (None,)


def test_a_malformed_history_reads_as_none_and_long_steps_are_cut() -> None:
    config = parse_image_config({"history": "not a list"}, "config")
    assert config.history == ()
    config = parse_image_config({"history": [{"created_by": 7}, {"empty_layer": "yes"}]}, "c")
    assert config.history == (HistoryEntry(None, False), HistoryEntry(None, False))
    (step,) = layer_steps((HistoryEntry("RUN " + "x" * 500),), 1)
    assert step is not None and len(step) == MAX_STEP and step.endswith("…")
