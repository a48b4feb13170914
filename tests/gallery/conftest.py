"""Fixtures of the gallery tests: a small flat gallery with metadata, and its saved folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from gallery_data import feats, subjects_of

from hfr.gallery import Gallery


@pytest.fixture
def flat() -> Gallery:
    x = feats(60)
    return Gallery.build(
        x,
        subjects_of(60),
        "fp-a",
        modalities=["vis", "nir"] * 30,
        paths=[f"img/{i}.png" for i in range(60)],
        use_gpu=False,
    )


@pytest.fixture
def saved(tmp_path, flat) -> Path:
    return flat.save(tmp_path / "gal")
