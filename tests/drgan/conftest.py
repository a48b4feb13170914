"""Fixtures of the DR-GAN tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfr.data.synth import SynthConfig, write_preset


@pytest.fixture(scope="module")
def multipie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 SynthFace multipie subjects at 32 px."""
    out = tmp_path_factory.mktemp("multipie")
    write_preset(SynthConfig(preset="multipie", subjects=8, size=32, seed=0, workers=1), out)
    return out
