"""Shared fixtures: tiny datasets written on the fly (no SynthFace, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Manifest:
    """3 subjects x (3 yaws vis + 1 nir), 16x16 images whose grey level encodes (subject, yaw)."""
    root = tmp_path / "tiny"
    recs = []
    for s in range(3):
        for yaw in (-30.0, 0.0, 30.0):
            name = f"s{s}/vis_{int(yaw)}.png"
            write_png(root / name, np.full((16, 16, 3), 40 * s + int(yaw) + 60, np.uint8))
            recs.append(make_record(name, f"s{s}", "vis", yaw, "train" if s < 2 else "test"))
        name = f"s{s}/nir_0.png"
        write_png(root / name, np.full((16, 16), 200 - 40 * s, np.uint8))
        recs.append(make_record(name, f"s{s}", "nir", 0.0, "train" if s < 2 else "test"))
    Manifest(recs, root).write(root)
    return Manifest.read(root)
