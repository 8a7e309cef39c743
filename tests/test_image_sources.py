"""The source registry is complete: every reference prefix has its source class."""

from __future__ import annotations

import pytest

from imagescan.image.model import SourceKind
from imagescan.image.sources import SOURCES, source_for


def test_every_source_kind_has_its_class() -> None:
    assert set(SOURCES) == set(SourceKind)


@pytest.mark.parametrize("kind", list(SourceKind))
def test_each_class_is_the_source_of_its_kind(kind: SourceKind) -> None:
    source = source_for(kind)
    assert source.kind is kind
    assert callable(source.open)
