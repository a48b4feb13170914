"""The `drgan` training task: single- and multi-image DR-GAN on the engine.

One engine step = one batch = a D phase then a G phase (the paper alternates them):

1. G synthesizes x_hat = G_dec(G_enc(x), c_t, z) for every input x at a random target pose
   bin y_t (uniform over the N_p bins; with `loss.l1_weight` > 0, over the bins where the data
   holds a ground-truth image of the same subject and illumination). Multi-image
   (`net.multi_image = n`): the batch is runs of n images of one subject; besides the n
   single-image syntheses, each run's fused feature f_bar = sum omega_i f_i / sum omega_i is
   decoded at its own target pose.
2. D phase: D on the real batch and on the synthesized (detached) batch, L_D (see `drgan.losses`),
   Adam step on D. With `loss.d_skip_accuracy` > 0 the step is skipped while D's accuracy
   (mean of real-identity and synthesized-as-fake accuracy on this batch) exceeds it.
3. G phase: D on the synthesized images, `loss.adversarial_weight` * L_G (+ `loss.l1_weight` *
   L1 to the ground truth, + `loss.identity_weight` * (1 - cos(F(x_hat), F(x_ref))) through the
   frozen recognizer F of `data.recognizer`, x_ref the ground truth at the target pose where the
   L1 table has one, else the input; a fused synthesis takes its group's first input), +
   `loss.pose_weight` * smooth L1 between the frozen yaw estimator P's yaw of x_hat and y_t's yaw
   (`data.pose_estimator`), Adam step on G_enc and G_dec (D's, F's and P's weights get no gradient).
4. `loss.switch_every` > 0: every that many steps G_enc's trunk is replaced by D's (TPAMI's
   model switching).

Horizontal flips (`augment.flip_p`) mirror the pose label too. Pose bins come from
`data.yaw_bins`; each row's yaw goes to the nearest bin, and rows farther than half a bin
gap beyond the outermost bins are counted in a warning.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from drgan.config import DRGANConfig
from drgan.losses import d_accuracy, d_loss, g_loss, identity_loss, pose_loss, target_l1
from drgan.models import Generator, copy_trunk, fuse_features
from drgan.recognizer import as_recognizer, export_encoder
from hfr.data.augment import augment
from hfr.data.datasets import ManifestDataset, ShuffleBatchSampler, SubjectGroupSampler
from hfr.data.manifest import Manifest, read_training_rows
from hfr.engine.task import TrainContext, parameter_summary
from hfr.errors import ConfigError, DataError
from hfr.nn.ranges import to_signed, to_unit


def yaw_to_bins(yaws: np.ndarray, bins: list[float]) -> tuple[np.ndarray, int]:
    """(nearest-bin index of each yaw, how many yaws lie beyond half a bin gap outside the bins)."""
    b = np.asarray(bins, dtype=np.float64)
    idx = np.abs(yaws[:, None] - b[None, :]).argmin(1)
    low = b[0] - (b[1] - b[0]) / 2
    high = b[-1] + (b[-1] - b[-2]) / 2
    outside = int(((yaws < low) | (yaws > high)).sum())
    return idx, outside


def mirror_bins(bins: list[float]) -> np.ndarray:
    """For each bin, the bin nearest to its negated yaw (where a flipped face's pose goes)."""
    b = np.asarray(bins, dtype=np.float64)
    return np.abs(-b[:, None] - b[None, :]).argmin(1)


def training_rows(cfg: DRGANConfig) -> Manifest:
    """The training rows (split, modalities); DataError when empty, without yaw or single-pose."""
    rows = read_training_rows(
        cfg.data.train,
        cfg.data.split,
        cfg.data.modalities,
        example="data/multipie",
        why="D's identity classifier needs at least 2",
    )
    source = rows.source
    no_yaw = [r for r in rows if r.yaw is None or not np.isfinite(r.yaw)]
    if no_yaw:
        raise DataError(
            f"{source}: {len(no_yaw)} training row(s) have no yaw (first: row {no_yaw[0].line}, "
            f"{no_yaw[0].path!r}); DR-GAN needs a pose label on every image: fill the yaw column "
            f"or filter those rows out"
        )
    return rows


class DRGANTask:
    """DR-GAN on the engine (see the module docstring)."""

    config_class = DRGANConfig
    artifact_description = "a DR-GAN pose-rotation generator"

    def build(self, cfg: DRGANConfig, ctx: TrainContext) -> None:
        """Data, pose bins, G and D, their optimizers."""
        self.cfg, self.ctx = cfg, ctx
        self.manifest = training_rows(cfg)
        bins = list(cfg.data.yaw_bins)
        pose, outside = yaw_to_bins(np.array([r.yaw for r in self.manifest], dtype=np.float64), bins)
        if outside:
            self.ctx.logger.warning(
                "%d of %d training rows have a yaw beyond the bins %s..%s; mapped to the nearest bin",
                outside,
                len(self.manifest),
                bins[0],
                bins[-1],
            )
        used = sorted(set(pose.tolist()))
        if len(used) < 2:
            raise DataError(
                f"{self.manifest.source}: every training image falls in one pose bin "
                f"({bins[used[0]]:g} deg); DR-GAN learns to rotate between poses and needs at least 2"
            )
        self.outside_bins = outside
        self.num_poses = len(bins)
        self.pose = torch.as_tensor(pose, dtype=torch.long)
        self.mirror = torch.as_tensor(mirror_bins(bins), dtype=torch.long)
        self.subjects = self.manifest.subjects()
        labels = {s: i for i, s in enumerate(self.subjects)}
        self.n = max(1, cfg.net.multi_image)
        g, d = cfg.build_models(len(self.subjects))
        self.G, self.D = g, d
        self.g_model = ctx.wrap_model(_Synthesize(g, self.n))
        self.d_model = ctx.wrap_model(d)
        self.opt_g = cfg.optim.make(g.parameters())
        self.opt_d = cfg.optim.make(d.parameters())
        self.dataset = ManifestDataset(self.manifest, size=cfg.data.size, channels=cfg.data.channels, labels=labels)
        if self.n > 1:
            sampler: Any = SubjectGroupSampler(
                self.manifest, self.n, cfg.batch_size // self.n, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
            )
        else:
            sampler = ShuffleBatchSampler(
                len(self.dataset), cfg.batch_size, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
            )
        self.loader = DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self.targets = self._target_table() if cfg.loss.l1_weight > 0 else None
        self.recognizer = None
        if cfg.loss.identity_weight > 0:
            from hfr.recognizer.export import load_recognizer

            self.recognizer = load_recognizer(str(cfg.data.recognizer), device=ctx.device)
            self.recognizer.model.requires_grad_(False)
        self.pose_estimator = None
        if cfg.loss.pose_weight > 0:
            from hfr.pose.export import load_yaw_estimator

            self.pose_estimator = load_yaw_estimator(str(cfg.data.pose_estimator), device=ctx.device)
            self.pose_estimator.model.requires_grad_(False)
        self.bin_yaws = torch.tensor(bins, dtype=torch.float32, device=ctx.device)
        self.eval_manifest = Manifest.read(cfg.data.eval) if cfg.data.eval else None
        self._preview: torch.Tensor | None = None
        ctx.logger.info(
            "drgan: %d images of %d subjects in %d pose bins, %d image(s) per synthesis; parameters: %s",
            len(self.manifest),
            len(self.subjects),
            self.num_poses,
            self.n,
            parameter_summary(G=g, D=d),
        )

    # ------------------------------------------------------------------ data helpers
    def _target_table(self) -> torch.Tensor:
        """(rows, N_p) row index of the same subject/illumination/session at each bin, -1 when absent."""
        cols = [c for c in ("illumination", "session") if c in self.manifest.columns]
        groups: dict[tuple, dict[int, int]] = defaultdict(dict)
        keys = []
        for i, r in enumerate(self.manifest):
            key = (r.subject, *(r.get(c) for c in cols))
            keys.append(key)
            groups[key].setdefault(int(self.pose[i]), i)
        table = torch.full((len(self.manifest), self.num_poses), -1, dtype=torch.long)
        for i, key in enumerate(keys):
            for b, j in groups[key].items():
                table[i, b] = j
        found = int((table >= 0).any(1).sum())
        self.ctx.logger.info(
            "L1 targets: %d of %d rows have a same-subject image at another pose (by %s)",
            found,
            len(table),
            ", ".join(["subject", *cols]),
        )
        return table

    def _load_targets(self, rows: torch.Tensor) -> torch.Tensor:
        """Images (in [-1, 1]) of the given training rows, on the device."""
        images = torch.stack([self.dataset[int(j)]["image"] for j in rows.tolist()])
        return to_signed(self.ctx.to_device(images))

    # ------------------------------------------------------------------ engine API
    def train_loader(self) -> DataLoader:
        """Training images; subject groups of n in the multi-image variant."""
        return self.loader

    def images_per_step(self) -> int:
        """Real images per step."""
        return self.cfg.batch_size

    def _target_poses(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Target pose bins y_t (B,) and, with L1 on, the ground-truth rows (B,) (-1 = none).

        The ground truth is the unflipped image even when the input was mirrored: the target
        pose is absolute and the L1 term supervises the identity's appearance at that pose.
        """
        ctx, b = self.ctx, len(index)
        if self.targets is None:
            y_t = torch.randint(0, self.num_poses, (b,), generator=ctx.generator, device=ctx.device)
            return y_t, None
        avail = self.targets[index.cpu()]
        has_any = avail.ge(0).any(1, keepdim=True)
        weights = torch.where(has_any, avail.ge(0).float(), torch.ones_like(avail, dtype=torch.float))
        u = torch.rand(b, 1, generator=ctx.generator, device=ctx.device).cpu()
        y_t = (weights.cumsum(1) / weights.sum(1, keepdim=True) < u).sum(1).clamp_max(self.num_poses - 1)
        rows = avail.gather(1, y_t[:, None]).squeeze(1)
        return y_t.to(ctx.device), rows

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """D phase then G phase (module docstring)."""
        ctx, cfg = self.ctx, self.cfg
        images, flipped = augment(batch["image"], cfg.augment, generator=ctx.generator)
        index = batch["index"].cpu()
        y_p = self.pose[index]
        y_p = torch.where(flipped.cpu(), self.mirror[y_p], y_p).to(ctx.device)
        y_d = batch["label"]
        x = to_signed(images)
        if ctx.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self._preview is None and ctx.is_main:
            self._preview = x[:8].detach().cpu()
        y_t, target_rows = self._target_poses(index)
        n_groups = len(x) // self.n
        y_t_fused = (
            torch.randint(0, self.num_poses, (n_groups,), generator=ctx.generator, device=ctx.device)
            if self.n > 1
            else None
        )
        z = (
            torch.rand(
                len(x) + (n_groups if self.n > 1 else 0), self.G.noise_dim, generator=ctx.generator, device=ctx.device
            )
            * 2
            - 1
        )
        self.G.train()
        self.D.train()
        with ctx.autocast():
            fake, omega = self.g_model(x, y_t, y_t_fused, z)
        y_d_all = torch.cat([y_d, y_d[:: self.n]]) if self.n > 1 else y_d
        y_t_all = torch.cat([y_t, y_t_fused]) if y_t_fused is not None else y_t

        # D phase: real and synthesized batches go through D separately, so BatchNorm normalises
        # each with its own statistics (as the released code does for most of the trunk)
        with ctx.autocast():
            real_id, real_pose = self.d_model(x)
            fake_id, _ = self.d_model(fake.detach())
        b = len(x)
        parts_d = d_loss(real_id, real_pose, y_d, y_p, fake_id, cfg.loss.label_smoothing)
        acc = d_accuracy(real_id, real_pose, y_d, y_p, fake_id)
        # every rank must take the same decision, or the replicas' D drift apart: judge the mean over ranks
        d_score = float(ctx.mean_over_ranks(torch.tensor((acc["acc_id"] + acc["acc_fake"]) / 2, device=ctx.device)))
        skip_d = 0 < cfg.loss.d_skip_accuracy < d_score
        self.opt_d.zero_grad(set_to_none=True)
        parts_d["total"].backward()
        if not skip_d:
            self.opt_d.step()

        # G phase
        freeze = not ctx.distributed  # DDP expects every parameter's gradient each backward
        if freeze:
            self.D.requires_grad_(False)
        with ctx.autocast():
            fid, fpose = self.d_model(fake)
        parts_g = g_loss(fid, fpose, y_d_all, y_t_all)
        loss_g = cfg.loss.adversarial_weight * parts_g["total"]
        logs: dict[str, Any] = {}
        reference = x.detach()
        if target_rows is not None:
            valid = target_rows >= 0
            target = self._load_targets(target_rows.clamp_min(0))
            l1 = target_l1(fake[:b], target, valid.to(ctx.device))
            loss_g = loss_g + cfg.loss.l1_weight * l1
            logs["loss_l1"] = l1.detach()
            reference = torch.where(valid.to(ctx.device)[:, None, None, None], target.to(x.dtype), reference)
        if self.recognizer is not None:
            refs = torch.cat([reference, reference[:: self.n]]) if self.n > 1 else reference
            l_id = identity_loss(self.recognizer, fake, refs)
            loss_g = loss_g + cfg.loss.identity_weight * l_id
            logs["loss_f_id"] = l_id.detach()
        if self.pose_estimator is not None:
            l_pose = pose_loss(self.pose_estimator, fake, self.bin_yaws[y_t_all])
            loss_g = loss_g + cfg.loss.pose_weight * l_pose
            logs["loss_p_pose"] = l_pose.detach()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if freeze:
            self.D.requires_grad_(True)
        else:
            self.opt_d.zero_grad(set_to_none=True)
        if cfg.loss.switch_every and (step + 1) % cfg.loss.switch_every == 0:
            copy_trunk(self.D.trunk, self.G.encoder.trunk)

        logs.update(
            {
                "loss_d": parts_d["total"].detach(),
                "loss_d_id": parts_d["id"].detach(),
                "loss_d_pose": parts_d["pose"].detach(),
                "loss_d_fake": parts_d["fake"].detach(),
                "loss_g": parts_g["total"].detach(),
                "loss_g_id": parts_g["id"].detach(),
                "loss_g_pose": parts_g["pose"].detach(),
                **acc,
                "d_skipped": float(skip_d),
            }
        )
        if omega is not None:
            logs["omega_mean"] = omega.detach().float().mean()
        return logs

    def state_dict(self) -> dict:
        """G, D (unwrapped), both optimizers, the identity list."""
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "subjects": list(self.subjects),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        if list(state.get("subjects", [])) != list(self.subjects):
            raise ConfigError(
                "the checkpoint was trained on other identities than data.train holds; "
                "resume with the same training data"
            )
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    # ------------------------------------------------------------------ evaluation and samples
    def evaluate(self) -> dict[str, float]:
        """Cross-pose rank-1 of G_enc features on `data.eval` (when set)."""
        if self.eval_manifest is None:
            return {}
        from hfr.embed import embed_manifest
        from hfr.eval.protocols import training_metrics

        self.G.eval()
        try:
            feats = embed_manifest(as_recognizer(self.G, self.cfg.net.width), self.eval_manifest, batch_size=128)
        finally:
            self.G.train()
        return training_metrics(self.eval_manifest, feats, "cross-pose")

    def eval_metrics(self) -> set[str]:
        """The names `evaluate` returns under this config (none without `data.eval`)."""
        from hfr.eval.protocols import training_metric_names

        return set() if self.eval_manifest is None else training_metric_names(self.eval_manifest, "cross-pose")

    @property
    def sample_columns(self) -> int:
        """Grid width: the input then one column per pose bin."""
        return self.num_poses + 1

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """Pose sweep in [0, 1]: each row is an input face, then G's synthesis at every pose bin (fixed z)."""
        if self._preview is None:
            return torch.zeros(1, self.cfg.data.channels, self.cfg.data.size, self.cfg.data.size)
        return to_unit(pose_sweep(self.G, self._preview.to(self.ctx.device), seed=self.ctx.seed).cpu())

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write generator.pt (G, pose bins) and recognizer.pt (G_enc) into `run_dir`."""
        from drgan.export import export_generator

        run_dir = Path(run_dir)
        info = {"method": "drgan", "train": str(self.cfg.data.train), "subjects": len(self.subjects), **(meta or {})}
        export_generator(self.G, run_dir / "generator.pt", self.cfg, meta=info)
        export_encoder(self.G, self.cfg.net.width, run_dir / "recognizer.pt", meta=info)
        return {"generator": run_dir / "generator.pt", "recognizer": run_dir / "recognizer.pt"}


@torch.no_grad()
def pose_sweep(generator: Generator, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Rows of [input, G(x, c_0), ..., G(x, c_{N_p-1})] in [-1, 1], (B * (N_p + 1), C, S, S).

    Runs G in eval mode with one z per input (drawn from `seed`) and restores its mode.
    """
    was_training = generator.training
    generator.eval()
    try:
        b, p = len(images), generator.num_poses
        f, _ = generator.encode(images)
        gen = torch.Generator(device=images.device).manual_seed(seed)
        z = generator.noise(b, gen, images.device).repeat_interleave(p, 0)
        poses = torch.arange(p, device=images.device).repeat(b)
        out = generator.decode(f.repeat_interleave(p, 0), poses, z).view(b, p, *images.shape[1:])
        return torch.cat([images[:, None].to(out.dtype), out], dim=1).flatten(0, 1)
    finally:
        generator.train(was_training)


class _Synthesize(nn.Module):
    """One forward of G for a training step (what DDP wraps): syntheses and omega.

    Returns (x_hat, omega): x_hat is (B [+ B / n], C, S, S): the single-image syntheses at
    `y_t`, then (multi-image) one synthesis per group of n from the fused feature at `y_t_fused`.
    """

    def __init__(self, generator: Generator, n: int) -> None:
        super().__init__()
        self.generator, self.n = generator, n

    def forward(
        self, x: torch.Tensor, y_t: torch.Tensor, y_t_fused: torch.Tensor | None, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = self.generator
        f, omega = g.encode(x)
        b = len(x)
        if self.n > 1 and omega is not None and y_t_fused is not None:
            f_bar = fuse_features(f, omega, self.n)
            return g.decode(torch.cat([f, f_bar]), torch.cat([y_t, y_t_fused]), z), omega
        return g.decode(f, y_t, z[:b]), omega
