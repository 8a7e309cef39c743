"""Shared test fixtures: where the shared corpus lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(
    __import__("os").environ.get("IMAGESCAN_SHARED", str(REPO.parent / "shared"))
).resolve()
CORPUS = SHARED / "corpus"
# The nine images of ../shared/corpus (its README): named here, not discovered, so that a
# missing one fails loudly instead of quietly running fewer tests.
CORPUS_IMAGES = (
    "deb12-base",
    "deb11",
    "glibc-too-new",
    "runpath-vs-rpath",
    "missing-symbol",
    "missing-interpreter",
    "env-ld-library-path",
    "env-ld-library-path-unset",
    "go",
)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus (OCI layout + verdicts); skips when the checkout has none beside it."""
    if not (CORPUS / "oci" / "index.json").exists():
        pytest.skip(f"no shared corpus at {CORPUS}")
    return CORPUS
