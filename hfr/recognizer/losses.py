"""Recognizer losses beyond cross-entropy: the contrastive loss on generated NIR-VIS pairs.

DVG-Face (Fu et al., TPAMI 2021) fine-tunes LightCNN with cross-entropy on real images plus a
contrastive term on generated pairs. The released code (train_lightcnn.py) computes, for a
batch of B generated pairs with L2-normalised features n_i (NIR) and v_i (VIS):

    L_ct = -(1/B) sum_i cos(n_i, v_i) + w_neg * (1/B) sum_i max(0, cos(n_i, v_pi(i)) - m)

where pi is a random derangement (no pair is its own negative), m = 0.5 is the cosine margin
and w_neg = 0.1; the total loss is L_ce + 0.001 * L_ct. Positives are the NIR and VIS image
of one generated identity; negatives are images of different pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_derangement(
    n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A random permutation of range(n) with no fixed point (n >= 2), by rejection sampling."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    ar = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=generator)
        if not (perm == ar).any():
            return perm.to(device)


def pair_contrastive_loss(
    nir: torch.Tensor,
    vis: torch.Tensor,
    margin: float = 0.5,
    negative_weight: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DVG-Face's contrastive loss L_ct on (B, D) features of B generated NIR-VIS pairs.

    Features are L2-normalised here, so the terms are cosines. Pulls each pair together
    (-mean cos) and pushes each NIR feature away from another pair's VIS feature when their
    cosine exceeds `margin` (hinge, weighted by `negative_weight`).
    """
    if nir.shape != vis.shape or nir.ndim != 2:
        raise ValueError(
            f"expected two (B, D) feature batches of one shape, got {tuple(nir.shape)} and {tuple(vis.shape)}"
        )
    n = F.normalize(nir.float(), dim=1)
    v = F.normalize(vis.float(), dim=1)
    positive = (n * v).sum(dim=1).mean()
    perm = random_derangement(n.shape[0], generator, device=n.device)
    negative = F.relu((n * v[perm]).sum(dim=1) - margin).mean()
    return -positive + negative_weight * negative


#: Identity heads of the recognizer: the official softmax classifier and two additive-margin heads.
HEADS: tuple[str, ...] = ("softmax", "cosface", "arcface")
#: Default (scale s, margin m) of the margin heads, from their papers: CosFace (Wang et al., CVPR 2018)
#: s = 64, m = 0.35 at 512-d; ArcFace (Deng et al., CVPR 2019) s = 64, m = 0.5.
HEAD_DEFAULTS: dict[str, tuple[float, float]] = {"cosface": (64.0, 0.35), "arcface": (64.0, 0.5)}


def margin_logits(cosine: torch.Tensor, labels: torch.Tensor, kind: str, scale: float, margin: float) -> torch.Tensor:
    """Logits of an additive-margin head from (B, N) cosines cos(theta_j) between the normalised
    feature and the normalised class weights W_j.

    - `cosface` (large margin cosine loss): s * (cos(theta_j) - m * [j = y]);
    - `arcface` (additive angular margin): s * cos(theta_y + m) for the true class, s * cos(theta_j)
      otherwise; where theta_y + m would pass pi the logit continues as cos(theta_y) - m sin(m)
      (the "easy margin" correction of the ArcFace code, keeping the logit decreasing in theta).

    Cross-entropy of these logits is the head's loss.
    """
    if kind not in HEAD_DEFAULTS:
        raise ValueError(f"unknown margin head {kind!r}; use one of {', '.join(HEAD_DEFAULTS)}")
    cos = cosine.float().clamp(-1.0, 1.0)
    onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
    if kind == "cosface":
        return scale * (cos - margin * onehot)
    sin = (1.0 - cos * cos).clamp_min(0.0).sqrt()
    shifted = cos * math.cos(margin) - sin * math.sin(margin)  # cos(theta + m)
    threshold = math.cos(math.pi - margin)
    shifted = torch.where(cos > threshold, shifted, cos - margin * math.sin(margin))
    return scale * torch.where(onehot.bool(), shifted, cos)
