"""The `drgan-cnn` task: DR-GAN's own baseline, a plain CNN with G_enc's architecture.

Tran, Yin, Liu (CVPR 2017, Sec. 4.2; TPAMI 2018, Sec. 5.2) compare DR-GAN's identity feature
f(x) with "a CNN with the same architecture as G_enc, trained with softmax on the same data": the
CASIA-Net trunk (`drgan.models.Encoder`, same width and image size) and one linear layer of N_d
identity logits, cross-entropy on the identity labels only, no decoder, no D, no pose label.
Everything else is the DR-GAN recipe's (`DRGANConfig`: data, width, Adam, batch, augmentation,
steps), so a recipe with `base: synth-multipie.yaml` and `model: drgan-cnn` trains it on the same
images for the same budget. It writes `recognizer.pt` of kind `drgan` (the trunk as G_enc), which
every recognizer command and `benchmarks/cross_pose.py` read as they read a DR-GAN's G_enc.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from drgan.config import DRGANConfig
from drgan.models import Encoder
from drgan.recognizer import KIND, EncoderFeatures, encoder_arch
from drgan.task import training_rows
from hfr.data.augment import augment
from hfr.data.datasets import ManifestDataset, ShuffleBatchSampler
from hfr.data.manifest import Manifest
from hfr.engine.task import TrainContext, parameter_summary
from hfr.errors import ConfigError
from hfr.nn.layers import init_weights
from hfr.nn.ranges import to_signed
from hfr.recognizer.export import export_recognizer


class EncoderClassifier(nn.Module):
    """G_enc's trunk and a linear softmax layer: images in [-1, 1] -> (identity logits, f(x))."""

    def __init__(self, channels: int, width: float, num_identities: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = Encoder(channels, width, confidence=False, dropout=dropout)
        self.classifier = nn.Linear(self.encoder.feature_dim, num_identities)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, _ = self.encoder(x)
        return self.classifier(f), f


class DRGANCNNTask:
    """The plain-CNN baseline (module docstring)."""

    config_class = DRGANConfig
    artifact_description = "a CASIA-Net softmax classifier (DR-GAN's plain-CNN baseline)"

    def build(self, cfg: DRGANConfig, ctx: TrainContext) -> None:
        """Data, the classifier, Adam."""
        if cfg.net.multi_image:
            raise ConfigError("the drgan-cnn baseline is single-image: set net.multi_image=0")
        self.cfg, self.ctx = cfg, ctx
        self.manifest = training_rows(cfg)
        self.subjects = self.manifest.subjects()
        labels = {s: i for i, s in enumerate(self.subjects)}
        net = EncoderClassifier(cfg.data.channels, cfg.net.width, len(self.subjects), cfg.net.dropout)
        init_weights(net, cfg.net.init)
        self.net = net
        self.model = ctx.wrap_model(net)
        self.opt = cfg.optim.make(net.parameters())
        self.dataset = ManifestDataset(self.manifest, size=cfg.data.size, channels=cfg.data.channels, labels=labels)
        sampler = ShuffleBatchSampler(
            len(self.dataset), cfg.batch_size, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        self.loader = DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self.eval_manifest = Manifest.read(cfg.data.eval) if cfg.data.eval else None
        ctx.logger.info(
            "drgan-cnn: %d images of %d subjects; parameters: %s",
            len(self.manifest),
            len(self.subjects),
            parameter_summary(net=net),
        )

    def train_loader(self) -> DataLoader:
        """Shuffled training images."""
        return self.loader

    def images_per_step(self) -> int:
        """Images per step."""
        return self.cfg.batch_size

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Any]:
        """Softmax cross-entropy on the identity labels."""
        images, _ = augment(batch["image"], self.cfg.augment, generator=self.ctx.generator)
        x = to_signed(images)
        if self.ctx.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.net.train()
        with self.ctx.autocast():
            logits, _ = self.model(x)
        loss = F.cross_entropy(logits.float(), batch["label"])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        acc = (logits.argmax(1) == batch["label"]).float().mean()
        return {"loss_ce": loss.detach(), "acc": acc.detach()}

    def state_dict(self) -> dict:
        """The network, Adam, the identity list."""
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "subjects": list(self.subjects)}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        if list(state.get("subjects", [])) != list(self.subjects):
            raise ConfigError("the checkpoint was trained on other identities; resume with the same training data")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])

    def _features(self) -> EncoderFeatures:
        cfg = self.cfg
        return EncoderFeatures(self.net.encoder, encoder_arch(cfg.net.width, False), cfg.data.size, cfg.data.channels)

    def evaluate(self) -> dict[str, float]:
        """Cross-pose rank-1 of the trunk's features on `data.eval` (when set)."""
        if self.eval_manifest is None:
            return {}
        from hfr.artifacts import fingerprint
        from hfr.embed import embed_manifest
        from hfr.eval.protocols import training_metrics
        from hfr.recognizer.export import Recognizer

        net = self._features()
        fp = fingerprint(KIND, net.arch, net.input_size, net.in_channels, net.state_dict())
        rec = Recognizer(net, KIND, net.arch, net.input_size, net.in_channels, fp, {})
        self.net.eval()
        try:
            feats = embed_manifest(rec, self.eval_manifest, batch_size=128)
        finally:
            self.net.train()
        return training_metrics(self.eval_manifest, feats, "cross-pose")

    def eval_metrics(self) -> set[str]:
        """The names `evaluate` returns under this config (none without `data.eval`)."""
        from hfr.eval.protocols import training_metric_names

        return set() if self.eval_manifest is None else training_metric_names(self.eval_manifest, "cross-pose")

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write recognizer.pt (kind `drgan`: the trunk as G_enc) into `run_dir`."""
        path = Path(run_dir) / "recognizer.pt"
        info = {"method": "drgan-cnn", "train": str(self.cfg.data.train), "subjects": len(self.subjects)}
        info.update(meta or {})
        export_recognizer(self._features(), path, kind=KIND, meta=info)
        return {"recognizer": path}
