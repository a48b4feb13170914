"""The `yaw` task: train `YawNet` to estimate head yaw on real faces, as a judge of generated ones.

Training: rows of `data.train` (split, modalities) that have a yaw (rows with an empty yaw are
skipped, and the log says how many); each batch is augmented (`augment`, flips on by default)
and a flipped face's label is negated (`augment_with_yaw`); the loss is smooth L1 between the
prediction and yaw / 90; AdamW with a cosine (or constant) learning rate computed from the step,
so resuming needs no scheduler state.

Evaluation (`evaluate`): the rows of `data.eval` in `data.eval_split` that have a yaw, estimated
as the exported file will estimate them (`hfr.pose.model.predict_degrees`: eval mode, mirror
averaging per `net.mirror_eval`): `yaw_mae` (mean absolute error, degrees) and `yaw_bin_acc`
(how often the estimate's nearest `data.yaw_bins` bin is the label's). `export` writes
`yaw_estimator.pt` (`hfr.pose.export`) with that evaluation in its `meta["eval"]`: the floor a
generated-face pose protocol reports beside a generator's error.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from hfr.data.augment import AugmentConfig, augment
from hfr.data.datasets import ManifestDataset, ShuffleBatchSampler
from hfr.data.manifest import Manifest, read_training_rows
from hfr.engine.task import TrainContext, parameter_summary
from hfr.errors import DataError
from hfr.pose.config import YawConfig
from hfr.pose.export import FILE_NAME, export_yaw_estimator
from hfr.pose.model import SCALE, YawNet, predict_degrees

METRICS = ("yaw_mae", "yaw_bin_acc")


def augment_with_yaw(
    images: torch.Tensor, yaw: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(augmented images, their yaw labels): a horizontally flipped face gets its yaw negated."""
    images, flipped = augment(images, config, generator=generator)
    return images, torch.where(flipped.to(yaw.device), -yaw, yaw)


def rows_with_yaw(manifest: Manifest, what: str, key: str) -> tuple[Manifest, int]:
    """(the rows of `manifest` that have a yaw, how many had none); DataError naming the manifest when none has.

    `what` describes the rows ("training rows of split 'train'"), `key` the config key that names the manifest.
    """
    kept = manifest.filter(lambda r: r.yaw is not None)
    if len(kept) == 0:
        raise DataError(
            f"{manifest.source or manifest.root}: none of its {len(manifest)} {what} has a yaw "
            f"(the yaw column is empty); a yaw estimator needs yaw labels: give {key} a manifest with yaws"
        )
    return kept, len(manifest) - len(kept)


def nearest_bin(yaw: torch.Tensor, bins: list[float]) -> torch.Tensor:
    """The index of the bin nearest to each yaw (ties go to the lower bin)."""
    centres = torch.tensor(bins, dtype=torch.float32)
    return (yaw.float().cpu()[:, None] - centres[None, :]).abs().argmin(dim=1)


def yaw_metrics(pred: torch.Tensor, target: torch.Tensor, bins: list[float]) -> dict[str, float]:
    """`yaw_mae` (degrees) and `yaw_bin_acc` (nearest bins agree) of estimates against labels."""
    pred, target = pred.float().cpu(), target.float().cpu()
    return {
        "yaw_mae": float((pred - target).abs().mean()),
        "yaw_bin_acc": float((nearest_bin(pred, bins) == nearest_bin(target, bins)).float().mean()),
    }


class YawTask:
    """A head-yaw regressor on the engine (see the module docstring)."""

    config_class = YawConfig
    artifact_description = "a head-yaw estimator (the judge of generated faces' poses)"
    sample_columns = 8

    def build(self, cfg: YawConfig, ctx: TrainContext) -> None:
        """Data, network, optimizer."""
        self.cfg, self.ctx = cfg, ctx
        split = f"split {cfg.data.split!r}" if cfg.data.split else "any split"
        rows = read_training_rows(
            cfg.data.train, cfg.data.split, cfg.data.modalities, example="data/multipie", min_subjects=1
        )
        self.manifest, skipped = rows_with_yaw(rows, f"training rows ({split})", "data.train")
        if skipped:
            ctx.logger.warning(
                "yaw: skipped %d of %d training rows of %s without a yaw", skipped, len(rows), rows.source
            )
        self.net = YawNet(cfg.data.channels, cfg.net.widths)
        self.model = ctx.wrap_model(self.net)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        dataset = ManifestDataset(self.manifest, size=cfg.data.size, channels=cfg.data.channels)
        sampler = ShuffleBatchSampler(
            len(dataset), cfg.batch_size, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        self.loader = DataLoader(
            dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self.eval_manifest: Manifest | None = None
        if cfg.data.eval:
            full = Manifest.read(cfg.data.eval)
            where = f"split {cfg.data.eval_split!r}" if cfg.data.eval_split else "any split"
            chosen = full.filter(lambda r: not cfg.data.eval_split or r.split == cfg.data.eval_split)
            if len(chosen) == 0:
                raise DataError(f"{full.source}: no rows of {where}; check data.eval_split")
            self.eval_manifest, eval_skipped = rows_with_yaw(chosen, f"evaluation rows ({where})", "data.eval")
            if eval_skipped:
                ctx.logger.warning(
                    "yaw: skipped %d of %d evaluation rows of %s without a yaw", eval_skipped, len(chosen), full.source
                )
        self._eval_images: tuple[torch.Tensor, torch.Tensor] | None = None
        self._preview: torch.Tensor | None = None
        self._steps_done = 0
        self._last_eval: tuple[int, dict[str, float]] | None = None
        yaws = sorted({float(r.yaw) for r in self.manifest if r.yaw is not None})
        ctx.logger.info(
            "yaw: %d training faces of %d subjects (yaw %g..%g, %d distinct) at %d px, %d channel(s); "
            "%s evaluation faces; parameters: %s",
            len(dataset),
            len(self.manifest.subjects()),
            yaws[0],
            yaws[-1],
            len(yaws),
            cfg.data.size,
            cfg.data.channels,
            len(self.eval_manifest) if self.eval_manifest is not None else "no",
            parameter_summary(net=self.net),
        )

    def train_loader(self) -> DataLoader:
        """Training faces, reshuffled every epoch."""
        return self.loader

    def images_per_step(self) -> int:
        """Faces per step on one rank."""
        return self.cfg.batch_size

    def _lr(self, step: int) -> float:
        o = self.cfg.optim
        if o.schedule == "constant":
            return o.lr
        total = max(1, self.ctx.train_cfg.steps)
        return o.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        """One AdamW step of smooth L1 on yaw / 90."""
        ctx, cfg = self.ctx, self.cfg
        images, yaw = augment_with_yaw(batch["image"], batch["yaw"].float(), cfg.augment, generator=ctx.generator)
        if self._preview is None and ctx.is_main:
            self._preview = images[:16].detach().cpu()
        if ctx.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.net.train()
        with ctx.autocast():
            pred = self.model(images)
        pred = pred.float()
        loss = F.smooth_l1_loss(pred, yaw / SCALE, beta=cfg.optim.smooth_l1_beta)
        lr = self._lr(step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._steps_done = step + 1
        return {
            "loss": loss.detach(),
            "mae": ((pred.detach() * SCALE - yaw).abs().mean()),
            "lr": lr,
        }

    def state_dict(self) -> dict:
        """Network (unwrapped) and optimizer."""
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def _eval_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every evaluation face (N, C, S, S) and its yaw (N,), loaded once."""
        if self._eval_images is None:
            assert self.eval_manifest is not None
            data = ManifestDataset(self.eval_manifest, size=self.cfg.data.size, channels=self.cfg.data.channels)
            images, yaws = [], []
            for batch in DataLoader(data, batch_size=256, num_workers=0):
                images.append(batch["image"])
                yaws.append(batch["yaw"].float())
            self._eval_images = (torch.cat(images), torch.cat(yaws))
        return self._eval_images

    def evaluate(self) -> dict[str, float]:
        """`yaw_mae` and `yaw_bin_acc` on the evaluation faces, as the exported file estimates them."""
        if self.eval_manifest is None:
            return {}
        images, yaw = self._eval_data()
        pred = predict_degrees(self.net, images, self.cfg.data.size, batch_size=256, mirror=self.cfg.net.mirror_eval)
        result = yaw_metrics(pred, yaw, self.cfg.data.yaw_bins)
        self._last_eval = (self._steps_done, result)
        return result

    def eval_metrics(self) -> set[str]:
        """The names `evaluate` returns under this config (none without `data.eval`)."""
        return set(METRICS) if self.eval_manifest is not None else set()

    def sample_grid(self) -> torch.Tensor:
        """The first augmented training faces (what the network sees), in [0, 1]."""
        if self._preview is None:
            return torch.zeros(1, self.cfg.data.channels, self.cfg.data.size, self.cfg.data.size)
        return self._preview

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write `yaw_estimator.pt` into `run_dir`, with the evaluation on `data.eval` in its meta."""
        cfg = self.cfg
        info: dict[str, Any] = {
            "train": str(cfg.data.train),
            "split": cfg.data.split,
            "train_rows": len(self.manifest),
            "subjects": len(self.manifest.subjects()),
        }
        if self.eval_manifest is not None:
            if self._last_eval is None or self._last_eval[0] != self._steps_done:
                self.evaluate()
            assert self._last_eval is not None
            info["eval"] = {
                "manifest": str(cfg.data.eval),
                "split": cfg.data.eval_split,
                "rows": len(self.eval_manifest),
                "yaw_bins": [float(b) for b in cfg.data.yaw_bins],
                **self._last_eval[1],
            }
        path = Path(run_dir) / FILE_NAME
        export_yaw_estimator(self.net, path, cfg.data.size, mirror=cfg.net.mirror_eval, meta={**info, **(meta or {})})
        return {"yaw_estimator": path}
