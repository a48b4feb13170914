"""Shared inputs of the gallery tests: random features without ties and subject labels."""

from __future__ import annotations

import numpy as np

from hfr.gallery.index import l2_normalize

DIM = 16


def feats(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Random float features (not normalised) without ties."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def subjects_of(n: int, per: int = 3) -> list[str]:
    return [f"s{i // per:03d}" for i in range(n)]


CLUSTER_DIM = 32


def clustered(identities: int, per: int, spread: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around `identities` random centres, `per` each: face-like (near neighbours share a subject)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, CLUSTER_DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres.repeat(per, axis=0) + spread * rng.normal(size=(identities * per, CLUSTER_DIM))
    return l2_normalize(x), [f"s{i}" for i in range(identities) for _ in range(per)]
