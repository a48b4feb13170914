"""Embedding: run a recognizer over a manifest (or a batch) and get L2-normalised features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from hfr.data.datasets import ManifestDataset
from hfr.data.manifest import Manifest
from hfr.recognizer.export import Recognizer


def embed_manifest(
    recognizer: Recognizer,
    manifest: Manifest,
    batch_size: int = 128,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
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
    out = [recognizer.embed(images[i : i + batch_size]).cpu().numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


@torch.inference_mode()
def embed_subjects(
    recognizer: Recognizer,
    manifest: Manifest,
    batch_size: int = 128,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[str], np.ndarray]:
    """One fused, L2-normalised feature per subject: (subjects in order of first appearance, (S, D) float32).

    A recognizer whose network has `features_and_confidence` (DR-GAN's G_enc) fuses each
    subject's raw features weighted by the confidence omega (Tran et al.'s multi-image
    fusion, sum_i omega_i f_i / sum_i omega_i); for others (LightCNN) the fused feature is
    the mean of the subject's L2-normalised features. Either is L2-normalised at the end, so a
    subject with one image gets exactly that image's normalised feature.
    """
    subjects = manifest.subjects()
    if not subjects:
        return [], np.zeros((0, 0), np.float32)
    row = {s: i for i, s in enumerate(subjects)}
    dataset = ManifestDataset(manifest, size=recognizer.input_size, channels=recognizer.channels)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    weighted = getattr(recognizer.model, "features_and_confidence", None)
    sums: torch.Tensor | None = None
    done = 0
    for batch in loader:
        x = recognizer.prepare(batch["image"])
        if weighted is not None:
            f, omega = weighted(x)
            contrib = f.double() * omega.double()[:, None]
        else:
            contrib = torch.nn.functional.normalize(recognizer.model(x).double(), dim=1)
        if sums is None:
            sums = torch.zeros(len(subjects), contrib.shape[1], dtype=torch.float64, device=contrib.device)
        index = torch.as_tensor([row[s] for s in batch["subject"]], device=contrib.device)
        sums.index_add_(0, index, contrib)
        done += len(x)
        if progress is not None:
            progress(done, len(dataset))
    if sums is None:
        return [], np.zeros((0, 0), np.float32)
    return subjects, torch.nn.functional.normalize(sums, dim=1).float().cpu().numpy()
