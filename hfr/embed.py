"""Embedding: run a recognizer over a manifest (or a batch) and get L2-normalised features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from hfr.data.datasets import ManifestDataset
from hfr.data.manifest import Manifest
from hfr.recognizer.export import Recognizer


def embed_manifest(recognizer: Recognizer, manifest: Manifest, batch_size: int = 128,
                   num_workers: int = 0, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features (N, D) float32, row i for manifest row i, L2-normalised.

    Images are read at the recognizer's input size and channel count (see
    `hfr.recognizer.export` for the conversion); an unreadable image is an ImageError
    naming the manifest row.
    """
    dataset = ManifestDataset(manifest, size=recognizer.input_size, channels=recognizer.channels)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    chunks: list[np.ndarray] = []
    done = 0
    for batch in loader:
        feats = recognizer.embed(batch["image"])
        chunks.append(feats.cpu().numpy().astype(np.float32))
        done += len(feats)
        if progress is not None:
            progress(done, len(dataset))
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks)


def embed_tensor(recognizer: Recognizer, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Features (B, D) of an in-memory (B, C, H, W) batch in [0, 1], in chunks of `batch_size`."""
    out = [recognizer.embed(images[i:i + batch_size]).cpu().numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
