"""DR-GAN objectives (Tran, Yin, Liu, CVPR 2017, Eq. 3-4; TPAMI 2018, Eq. 5-6).

D has N_d + 1 identity logits (class N_d means "synthesized") and N_p pose logits.

- D maximises log D^d_{y_d}(x) + log D^p_{y_p}(x) on real images x with identity y_d and pose
  y_p, and log D^d_{N_d+1}(x_hat) on synthesized images x_hat = G(x, c, z): as losses,
  L_D = CE(D^d(x), y_d) + CE(D^p(x), y_p) + CE(D^d(x_hat), N_d)   (classes counted from 0).
- G maximises log D^d_{y_d}(x_hat) + log D^p_{y_t}(x_hat) for the input's identity y_d and
  the target pose y_t: L_G = CE(D^d(x_hat), y_d) + CE(D^p(x_hat), y_t). In the multi-image
  variant the same is applied to each single-image synthesis and to the one decoded from the
  fused feature.

Each cross-entropy is the mean over its images. `label_smoothing` (default 0, the paper)
smooths D's targets (Salimans et al., 2016, "Improved techniques for training GANs"; an
option, not part of DR-GAN). `target_l1` is the optional L1 to a ground-truth image at the
target pose (used by TPAMI's Multi-PIE experiments where such an image exists; not in the
CVPR objective). `identity_loss` is the optional identity-preserving loss through a frozen
recognizer F (TP-GAN, Huang et al., ICCV 2017, Eq. 6; DVG-Face's L_ip): not in DR-GAN either.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from hfr.nn.gan import l1
from hfr.nn.ranges import to_unit


def d_loss(
    real_id: torch.Tensor,
    real_pose: torch.Tensor,
    y_d: torch.Tensor,
    y_p: torch.Tensor,
    fake_id: torch.Tensor,
    label_smoothing: float = 0.0,
) -> dict[str, torch.Tensor]:
    """L_D and its parts: `id` (real identity), `pose` (real pose), `fake` (synthesized -> N_d).

    real_id, fake_id: (B, N_d + 1) logits; real_pose: (B, N_p) logits; y_d, y_p: (B,) labels.
    """
    n_d = real_id.shape[1] - 1
    fake_class = torch.full((fake_id.shape[0],), n_d, dtype=torch.long, device=fake_id.device)
    parts = {
        "id": F.cross_entropy(real_id.float(), y_d, label_smoothing=label_smoothing),
        "pose": F.cross_entropy(real_pose.float(), y_p, label_smoothing=label_smoothing),
        "fake": F.cross_entropy(fake_id.float(), fake_class, label_smoothing=label_smoothing),
    }
    parts["total"] = parts["id"] + parts["pose"] + parts["fake"]
    return parts


def g_loss(
    fake_id: torch.Tensor, fake_pose: torch.Tensor, y_d: torch.Tensor, y_t: torch.Tensor
) -> dict[str, torch.Tensor]:
    """L_G and its parts: `id` (synthesized -> input identity y_d), `pose` (-> target pose y_t)."""
    parts = {"id": F.cross_entropy(fake_id.float(), y_d), "pose": F.cross_entropy(fake_pose.float(), y_t)}
    parts["total"] = parts["id"] + parts["pose"]
    return parts


def target_l1(fake: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |x_hat - x_t| over the images whose ground truth exists (`valid`, (B,) bool); 0 if none."""
    if not bool(valid.any()):
        return fake.new_zeros(())
    return l1(fake[valid], target[valid])


def identity_loss(recognizer: Any, fake: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """mean_b (1 - cos(F(x_hat_b), F(x_ref_b))) through a frozen recognizer F.

    `recognizer` is a loaded `hfr.recognizer.export.Recognizer` (its `prepare` resizes and converts
    channels, its `model` gives features); fake and reference are (B, C, S, S) in [-1, 1]. The
    gradient reaches `fake` only: F's weights are expected frozen and the reference is detached.
    """
    f_fake = recognizer.model(recognizer.prepare(to_unit(fake))).float()
    with torch.no_grad():
        f_ref = recognizer.model(recognizer.prepare(to_unit(reference))).float()
    return (1.0 - F.cosine_similarity(f_fake, f_ref, dim=1)).mean()


def pose_loss(estimator: Any, fake: torch.Tensor, target_yaw: torch.Tensor, beta: float = 0.05) -> torch.Tensor:
    """Smooth L1 between a frozen yaw estimator P's yaw of x_hat and the target yaw, both / 90.

    `estimator` is a loaded `hfr.pose.export.YawEstimator`; its network runs in eval mode (its
    BatchNorm statistics stay those of real faces) and, when the file says so, averages each face with
    its negated mirror estimate, as `estimate` does. `fake` is (B, C, S, S) in [-1, 1], `target_yaw`
    (B,) in degrees. The gradient reaches `fake` only (P's weights are expected frozen). `beta` is the
    smooth L1 threshold in yaw / 90 units (0.05 = 4.5 degrees, P's own training loss).
    """
    from hfr.pose.model import SCALE, prepare

    net = estimator.model
    was_training = net.training
    net.eval()
    try:
        x = prepare(to_unit(fake), estimator.size, net.channels)
        y = net(x)
        if estimator.mirror:
            y = (y - net(x.flip(-1))) / 2
    finally:
        net.train(was_training)
    return F.smooth_l1_loss(y.float(), target_yaw.to(y.device, torch.float32) / SCALE, beta=beta)


def d_accuracy(
    real_id: torch.Tensor, real_pose: torch.Tensor, y_d: torch.Tensor, y_p: torch.Tensor, fake_id: torch.Tensor
) -> dict[str, float]:
    """D's accuracies: real identity, real pose, and synthesized images classified as class N_d."""
    n_d = real_id.shape[1] - 1
    return {
        "acc_id": float((real_id.argmax(1) == y_d).float().mean()),
        "acc_pose": float((real_pose.argmax(1) == y_p).float().mean()),
        "acc_fake": float((fake_id.argmax(1) == n_d).float().mean()),
    }
