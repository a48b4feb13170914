"""Fixtures of the recognizer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pattern_data import write_patterns


@pytest.fixture
def pattern_data(tmp_path: Path) -> Path:
    """8 subjects x 6 VIS images, 32x32."""
    write_patterns(tmp_path / "train", 8, 6)
    return tmp_path / "train"
