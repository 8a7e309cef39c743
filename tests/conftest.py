"""Shared test fixtures: where the shared corpus lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(
    __import__("os").environ.get("IMAGESCAN_SHARED", str(REPO.parent / "shared"))
).resolve()
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus (OCI layout + verdicts); skips when the checkout has none beside it."""
    if not (CORPUS / "oci" / "index.json").exists():
        pytest.skip(f"no shared corpus at {CORPUS}")
    return CORPUS
