"""Tiny learnable face-like datasets for tests: each subject is a fixed random
pattern, each image that pattern plus noise (so a few steps of training do learn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record


def write_patterns(
    root: Path,
    subjects: int,
    per_subject: int,
    size: int = 32,
    seed: int = 0,
    modalities: tuple[str, ...] = ("vis",),
    split: str = "train",
    prefix: str = "s",
) -> Manifest:
    """Write `subjects` x `per_subject` x modalities images and a manifest under `root`."""
    rng = np.random.default_rng(seed)
    recs = []
    for s in range(subjects):
        pattern = np.kron(rng.uniform(0, 255, size=(size // 4, size // 4)), np.ones((4, 4)))
        for m in modalities:
            for k in range(per_subject):
                img = pattern * (0.6 if m == "nir" else 1.0) + rng.normal(0, 12, size=(size, size))
                name = f"{prefix}{s:03d}/{m}_{k}.png"
                write_png(root / name, np.clip(img, 0, 255).astype(np.uint8))
                recs.append(make_record(name, f"{prefix}{s:03d}", m, 0.0, split))
    Manifest(recs, root).write(root)
    return Manifest.read(root)
