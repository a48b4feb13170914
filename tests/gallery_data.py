"""Shared inputs of the gallery tests: random features without ties and subject labels."""

from __future__ import annotations

import numpy as np

DIM = 16


def feats(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Random float features (not normalised) without ties."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def subjects_of(n: int, per: int = 3) -> list[str]:
    return [f"s{i // per:03d}" for i in range(n)]
