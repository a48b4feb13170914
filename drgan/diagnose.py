"""Why a DR-GAN does or does not rotate faces: figures measured on one training checkpoint.

`diagnose(checkpoint, data)` rebuilds G and D from a run's checkpoint (its config and both
networks) and measures, in eval mode, on training and test images of `data`:

- **D on real images**: identity accuracy on training images (argmax over all N_d + 1 classes,
  and over the N_d real ones: D may know the identity yet call the image synthesized), how often
  it calls a real image synthesized, pose accuracy on training and on unseen test subjects (does
  D's pose head know pose, or only the training faces?);
- **D on syntheses** x_hat = G(x, c_t, z) at random target bins y_t: how often D calls them
  synthesized (class N_d), how often its pose head says y_t, and, with a yaw estimator, how
  often an independent estimator puts them in the target bin. D's pose head agreeing far more
  often than the estimator means G fools the pose head without rotating the face;
- **what G's output depends on**: the mean absolute pixel change when only the pose code c,
  only the identity feature f (another input) or only z changes (the pose code moves N_p // 2
  bins), beside the same change between two real images (same subject and light N_p // 2 bins
  apart; two subjects at one pose);
- **gradient magnitudes at G_dec's input**: for each G loss term (adversarial identity L_G^d,
  adversarial pose L_G^p, L1 to the ground truth at the target pose, the identity loss through a
  frozen recognizer F when given), the mean per-image L2 norm of its gradient with respect to
  the pose code c and to f(x): which term tells G to use its pose input at all.

All figures are means over `batches` batches of `batch_size`; the result is a flat dict.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from drgan.export import load_training_checkpoint
from drgan.losses import identity_loss
from drgan.task import yaw_to_bins
from hfr.data.datasets import ManifestDataset
from hfr.data.manifest import Manifest
from hfr.errors import DataError
from hfr.nn.ranges import to_signed, to_unit


def _pairs_at_two_poses(rows: list[Any], pose: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(i, j) of one subject and light at two pose bins `gap` bins apart (G's pose change is measured
    over the same gap), one pair per subject and light."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r.subject, r.get("illumination"))].append(i)
    out = []
    for idx in groups.values():
        by_pose = {int(pose[i]): i for i in idx}
        found = [(by_pose[a], by_pose[a + gap]) for a in sorted(by_pose) if a + gap in by_pose]
        if found:
            out.append(found[0])
    return out


@torch.no_grad()
def _real_differences(ds: ManifestDataset, rows: list[Any], pose: np.ndarray, n: int, gap: int) -> dict[str, float]:
    """Mean |x_a - x_b| (images in [-1, 1]) between real images `gap` pose bins apart and between two subjects."""
    pairs = _pairs_at_two_poses(rows, pose, gap)[:n]
    if not pairs:
        return {}

    def img(i: int) -> torch.Tensor:
        return to_signed(ds[i]["image"])

    pose_diff = float(np.mean([(img(a) - img(b)).abs().mean().item() for a, b in pairs]))
    by_bin: dict[int, list[int]] = defaultdict(list)
    for i in range(len(rows)):
        by_bin[int(pose[i])].append(i)
    ident = []
    for idx in by_bin.values():
        for a, b in zip(idx[: n // 4], idx[1 : n // 4 + 1], strict=False):
            if rows[a].subject != rows[b].subject:
                ident.append((img(a) - img(b)).abs().mean().item())
    return {"real_pose_change": pose_diff, "real_identity_change": float(np.mean(ident)) if ident else float("nan")}


def _grad_norms(loss: torch.Tensor, code: torch.Tensor, f: torch.Tensor) -> tuple[float, float]:
    gc, gf = torch.autograd.grad(loss, [code, f], retain_graph=True, allow_unused=True)
    b = len(code)

    def norm(g: torch.Tensor | None) -> float:
        return 0.0 if g is None else float((g * b).norm(dim=1).mean())

    return norm(gc), norm(gf)


def diagnose(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    recognizer: str | os.PathLike | None = None,
    yaw_estimator: str | os.PathLike | None = None,
    batch_size: int = 64,
    batches: int = 4,
    seed: int = 0,
    batch_statistics: bool = False,
) -> dict[str, float]:
    """The figures of the module docstring for one checkpoint (a flat dict of floats).

    `batch_statistics=True` runs G and D in training mode (BatchNorm normalises each batch with
    its own statistics, as during a training step; running statistics are not kept) instead of
    eval mode (the running statistics, as a user of the generator sees it).
    """
    cfg, g, d, subjects = load_training_checkpoint(checkpoint)
    if batch_statistics:
        for m in (g, d):
            m.train()
            for bn in m.modules():
                if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                    bn.track_running_stats = False
                    bn.running_mean = bn.running_var = None
    manifest = Manifest.read(data)
    bins = list(cfg.data.yaw_bins)
    labels = {s: i for i, s in enumerate(subjects)}
    splits = {
        s: [
            r
            for r in manifest
            if r.split == s and r.yaw is not None and (not cfg.data.modalities or r.modality in cfg.data.modalities)
        ]
        for s in ("train", "test")
    }
    if not splits["train"]:
        raise DataError(f"{manifest.source}: no training rows to diagnose DR-GAN on")
    rec = None
    if recognizer is not None:
        from hfr.recognizer.export import load_recognizer

        rec = load_recognizer(recognizer)
        rec.model.requires_grad_(False)
    yaw = None
    if yaw_estimator is not None:
        from hfr.pose.export import load_yaw_estimator

        yaw = load_yaw_estimator(yaw_estimator)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list[float]] = defaultdict(list)
    n_d = len(subjects)
    for split, rows in splits.items():
        if not rows:
            continue
        known = [r for r in rows if r.subject in labels] if split == "train" else rows
        sub = Manifest(known, manifest.root)
        ds = ManifestDataset(sub, size=cfg.data.size, channels=cfg.data.channels)
        pose = yaw_to_bins(np.array([float(r.yaw or 0.0) for r in known]), bins)[
            0
        ]  # every row has a yaw (filtered above)
        order = torch.randperm(len(known), generator=gen)[: batch_size * batches]
        for chunk in order.split(batch_size):
            idx = chunk.tolist()
            x = to_signed(torch.stack([ds[i]["image"] for i in idx]))
            y_p = torch.as_tensor(pose[idx])
            with torch.no_grad():
                real_id, real_pose = d(x)
            out[f"d_real_pose_acc_{split}"].append(float((real_pose.argmax(1) == y_p).float().mean()))
            if split != "train":
                continue
            y_d = torch.as_tensor([labels[known[i].subject] for i in idx])
            out["d_real_id_acc_train"].append(float((real_id.argmax(1) == y_d).float().mean()))
            out["d_real_id_acc_among_real_train"].append(float((real_id[:, :n_d].argmax(1) == y_d).float().mean()))
            out["d_real_called_fake_train"].append(float((real_id.argmax(1) == n_d).float().mean()))
            y_t = torch.randint(0, len(bins), (len(idx),), generator=gen)
            z = g.noise(len(idx), gen, x.device)
            f, _ = g.encode(x)
            f = f.detach().requires_grad_(True)
            code = g.pose_code(y_t).requires_grad_(True)
            fake = g.decoder(f, code, z)
            fake_id, fake_pose = d(fake)
            out["d_fake_called_fake"].append(float((fake_id.argmax(1) == n_d).float().mean()))
            out["d_fake_pose_says_target"].append(float((fake_pose.argmax(1) == y_t).float().mean()))
            out["d_fake_id_says_input"].append(float((fake_id[:, :n_d].argmax(1) == y_d).float().mean()))
            terms = {
                "adv_id": F.cross_entropy(fake_id.float(), y_d),
                "adv_pose": F.cross_entropy(fake_pose.float(), y_t),
                "l1_input": (fake - x).abs().mean(),
            }
            if rec is not None:
                terms["f_id"] = identity_loss(rec, fake, x)
            for name, loss in terms.items():
                gc, gf = _grad_norms(loss, code, f)
                out[f"grad_c_{name}"].append(gc)
                out[f"grad_f_{name}"].append(gf)
            with torch.no_grad():
                if yaw is not None:
                    est = yaw.estimate(to_unit(fake))
                    got = yaw_to_bins(np.asarray(est, dtype=np.float64), bins)[0]
                    out["yaw_estimator_in_target_bin"].append(float((torch.as_tensor(got) == y_t).float().mean()))
                f0 = f.detach()
                other = torch.roll(f0, 1, 0)
                base = g.decoder(f0, g.pose_code(y_t), z)
                turned = g.decoder(f0, g.pose_code((y_t + len(bins) // 2) % len(bins)), z)
                swapped = g.decoder(other, g.pose_code(y_t), z)
                renoised = g.decoder(f0, g.pose_code(y_t), g.noise(len(idx), gen, x.device))
                out["g_pose_change"].append(float((turned - base).abs().mean()))
                out["g_identity_change"].append(float((swapped - base).abs().mean()))
                out["g_noise_change"].append(float((renoised - base).abs().mean()))
                out["g_output_pixel_std"].append(float(base.std()))
        if split == "train":
            for k, v in _real_differences(ds, known, pose, batch_size, len(bins) // 2).items():
                out[k].append(v)
    return {k: float(np.mean(v)) for k, v in out.items()}
