"""Seeding and RNG state: seed every generator, capture and restore their states exactly.

The captured state holds only plain types and tensors, so it survives a checkpoint loaded
with `torch.load(..., weights_only=True)`: python's `random` state as a list, numpy's legacy
global state with its key array as an int64 tensor, torch's CPU (and current CUDA device's)
state as uint8 tensors, and a task generator's state.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def derive_seed(seed: int, *streams: int) -> int:
    """A 63-bit seed mixed from `seed` and stream numbers (e.g. the rank); stable across runs."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *(int(s) for s in streams)])
    return int(state.generate_state(1, np.uint64)[0]) >> 1


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed python `random`, numpy's global RNG and torch (CPU and CUDA) for `rank`; returns the seed used.

    Rank 0 uses `seed` itself; other ranks use a seed derived from (seed, rank), so ranks draw
    different dropout masks and augmentations.
    """
    value = int(seed) if rank == 0 else derive_seed(seed, rank)
    random.seed(value)
    np.random.seed(value % (1 << 32))
    torch.manual_seed(value)
    return value


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels (warn-only) and fix cuDNN's algorithm choice; off: cuDNN autotunes."""
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and torch.cuda.is_available()


def get_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state of this process (and of `generator`) as weights_only-safe values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(version), [int(x) for x in internal], gauss],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore the states captured by `get_rng_state` (CUDA and generator only when present)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    npy = state["numpy"]
    keys = np.asarray(npy["keys"].cpu().numpy() if torch.is_tensor(npy["keys"]) else npy["keys"], np.int64)
    np.random.set_state(
        (npy["kind"], keys.astype(np.uint32), int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"]))
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"].cpu())


@contextlib.contextmanager
def preserved_rng(generator: torch.Generator | None = None) -> Iterator[None]:
    """Run a block without disturbing any RNG: states are captured before and restored after.

    The engine wraps evaluation, sample grids and DataLoader-iterator creation in it, so how
    often they run never changes the training trajectory (and a resumed run matches).
    """
    saved = get_rng_state(generator)
    try:
        yield
    finally:
        set_rng_state(saved, generator)
