"""The `recognizer` training task: LightCNN pretraining and NIR-VIS fine-tuning on the engine.

- mode `pretrain`: softmax cross-entropy over the identities of the training set (a VIS set
  such as the SynthFace `webface` preset, or a real one); `net.head` `cosface` / `arcface`
  put an additive margin on the cosines to normalised class weights instead (the strong shared
  recognizer's recipe, configs/recognizer/synth-judge.yaml).
- mode `finetune` (DVG-Face's released train_lightcnn.py): stage I, for
  `finetune.warmup_steps` steps, updates only the classifier `fc2` on real images; stage II
  updates the whole network with cross-entropy on real images plus, when
  `data.generated` names a generated-pairs dataset, `finetune.contrastive_weight * L_ct`
  (see `hfr.recognizer.losses`). Real images and generated pairs go through the network in
  one forward pass, so distributed training sees one graph per step.

The learning rate of stage II follows `optim` (`step_size`, `gamma`), counted from the start
of that stage; it is computed from the step, so resuming needs no scheduler state.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from hfr.data.augment import augment
from hfr.data.datasets import ManifestDataset, NirVisPairSampler, ShuffleBatchSampler
from hfr.data.manifest import Manifest, concat_manifests, read_training_rows
from hfr.engine.task import TrainContext, parameter_summary, unwrap_model
from hfr.errors import ConfigError
from hfr.models.lightcnn import LightCNN, build_lightcnn
from hfr.recognizer.config import RecognizerConfig
from hfr.recognizer.export import Recognizer, export_recognizer
from hfr.recognizer.losses import HEAD_DEFAULTS, margin_logits, pair_contrastive_loss


class _WithLogits(nn.Module):
    """Wraps a LightCNN so that one forward returns (logits, features) (what DDP wraps).

    With a margin head the "logits" are the cosines between the normalised feature and the
    normalised rows of `fc2` (no bias, no dropout); the margin and scale are applied to them.
    """

    def __init__(self, net: LightCNN, head: str = "softmax") -> None:
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.head == "softmax":
            return self.net.forward_with_logits(x)
        feat = self.net(x)
        assert self.net.fc2 is not None
        cosine = F.linear(F.normalize(feat.float(), dim=1), F.normalize(self.net.fc2.weight.float(), dim=1))
        return cosine, feat


def training_manifest(cfg: RecognizerConfig) -> Manifest:
    """The training rows of `cfg.data.train` and `cfg.data.extra_train` (their split and modalities)."""
    sets = [read_training_rows(cfg.data.train, cfg.data.split, cfg.data.modalities, example="data/webface")]
    for extra in cfg.data.extra_train:
        sets.append(
            read_training_rows(extra, cfg.data.split, cfg.data.modalities, example="data/multipie", min_subjects=1)
        )
    return concat_manifests(sets)


def load_pretrained(net: LightCNN, path: str) -> None:
    """Copy the body weights of a recognizer.pt or an official LightCNN checkpoint into `net`.

    The classifier is not copied (the identities differ). Shapes must agree: an official
    128 px checkpoint does not fit a 64 px network's feature layer.
    """
    from hfr.models.lightcnn import load_official
    from hfr.recognizer.export import FORMAT, load_recognizer

    p = Path(path)
    try:  # an hfr recognizer file? (anything else goes to load_official, which explains failures)
        head = torch.load(p, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError):
        head = None
    if isinstance(head, dict) and head.get("format") == FORMAT:
        source = load_recognizer(p).model.state_dict()
    else:
        source = load_official(p, arch=net.arch, num_classes=0).state_dict()
    own = net.state_dict()
    body = {k: v for k, v in source.items() if not k.startswith("fc2")}
    bad = [
        f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in body.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad:
        raise ConfigError(
            f"net.pretrained {p}: shapes do not fit this {net.arch} at "
            f"{net.input_size}px: {'; '.join(bad[:4])}; use data.size matching the checkpoint"
        )
    result = net.load_state_dict(body, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fc2")]
    if missing or result.unexpected_keys:
        raise ConfigError(f"net.pretrained {p}: missing {missing[:6]}, unexpected {result.unexpected_keys[:6]}")


def _param_groups(net: nn.Module, cfg: RecognizerConfig, only_classifier: bool = False) -> list[dict]:
    groups = []
    for name, param in net.named_parameters():
        is_fc2 = name.startswith("fc2") or ".fc2." in name
        if only_classifier and not is_fc2:
            continue
        mult, decay = 1.0, cfg.optim.weight_decay
        if cfg.optim.official_lr_groups and not only_classifier:
            if "bias" in name:
                mult, decay = (20.0 if is_fc2 else 2.0), 0.0
            elif is_fc2:
                mult = 10.0
        groups.append({"params": [param], "lr_mult": mult, "weight_decay": decay, "name": name})
    return groups


def _optimizer(groups: list[dict], cfg: RecognizerConfig, lr: float) -> torch.optim.Optimizer:
    for g in groups:
        g["lr"] = lr * g["lr_mult"]
    if cfg.optim.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.optim.momentum, nesterov=cfg.optim.nesterov)


class RecognizerTask:
    """LightCNN training on the engine (see the module docstring)."""

    config_class = RecognizerConfig
    artifact_description = "a LightCNN recognizer"
    sample_columns = 8

    def build(self, cfg: RecognizerConfig, ctx: TrainContext) -> None:
        """Data, network, optimizers."""
        self.cfg, self.ctx = cfg, ctx
        self.manifest = training_manifest(cfg)
        self.subjects = self.manifest.subjects()
        labels = {s: i for i, s in enumerate(self.subjects)}
        net = build_lightcnn(
            cfg.net.arch, num_classes=len(self.subjects), input_size=cfg.data.size, in_channels=cfg.data.channels
        )
        net.dropout = cfg.net.dropout
        if cfg.net.head != "softmax":  # a margin head's class weights have no bias
            net.fc2 = nn.Linear(net.feature_dim, len(self.subjects), bias=False)
        if cfg.net.pretrained:
            load_pretrained(net, cfg.net.pretrained)
        self.net = net
        self.head = cfg.net.head
        scale, margin = HEAD_DEFAULTS.get(cfg.net.head, (1.0, 0.0))
        self.head_scale = cfg.net.head_scale if cfg.net.head_scale is not None else scale
        self.head_margin = cfg.net.head_margin if cfg.net.head_margin is not None else margin
        self.model = ctx.wrap_model(_WithLogits(net, cfg.net.head))
        self.optimizer = _optimizer(_param_groups(net, cfg), cfg, cfg.optim.lr)
        self.warmup_steps = cfg.finetune.warmup_steps if cfg.mode == "finetune" else 0
        self.warmup_optimizer = (
            _optimizer(_param_groups(net, cfg, only_classifier=True), cfg, cfg.finetune.warmup_lr or cfg.optim.lr)
            if self.warmup_steps
            else None
        )
        dataset = ManifestDataset(self.manifest, size=cfg.data.size, channels=cfg.data.channels, labels=labels)
        sampler = ShuffleBatchSampler(
            len(dataset), cfg.batch_size, seed=ctx.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        self.loader = DataLoader(
            dataset, batch_sampler=sampler, num_workers=ctx.num_workers, persistent_workers=ctx.num_workers > 0
        )
        self.pairs = None
        if cfg.mode == "finetune" and cfg.data.generated:
            gen = Manifest.read(cfg.data.generated)
            pair_sampler = NirVisPairSampler(
                gen, cfg.finetune.pairs_per_batch, seed=ctx.seed + 1, rank=ctx.rank, world_size=ctx.world_size
            )
            pair_data = ManifestDataset(gen, size=cfg.data.size, channels=cfg.data.channels)
            self.pairs = _Stream(DataLoader(pair_data, batch_sampler=pair_sampler, num_workers=0))
        self.eval_manifest = Manifest.read(cfg.data.eval) if cfg.data.eval else None
        self._preview: torch.Tensor | None = None
        ctx.logger.info(
            "recognizer (%s): %s, %d images of %d subjects at %d px, %d channel(s); parameters: %s",
            cfg.mode,
            cfg.net.arch,
            len(dataset),
            len(self.subjects),
            cfg.data.size,
            cfg.data.channels,
            parameter_summary(net=net),
        )

    def train_loader(self) -> DataLoader:
        """Real training images, reshuffled every epoch."""
        return self.loader

    def images_per_step(self) -> int:
        """Real images plus generated pair images per step."""
        return self.cfg.batch_size + (2 * self.cfg.finetune.pairs_per_batch if self.pairs else 0)

    def _lr(self, step: int) -> float:
        """The learning rate of stage II at `step` (counted from its start): warm-up, then the schedule."""
        o = self.cfg.optim
        t = step - self.warmup_steps
        scale = min(1.0, (t + 1) / o.warmup_steps) if o.warmup_steps > 0 else 1.0
        if o.schedule == "cosine":
            total = max(1, self.cfg.train.steps - self.warmup_steps)
            return o.lr * scale * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t / total)))
        if o.step_size <= 0:
            return o.lr * scale
        return o.lr * scale * o.gamma ** (t // o.step_size)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """One SGD step: stage I (classifier only) or stage II (whole network, + L_ct)."""
        ctx, cfg = self.ctx, self.cfg
        images, labels = batch["image"], batch["label"]
        images, _ = augment(images, cfg.augment, generator=ctx.generator)
        if self._preview is None and ctx.is_main:
            self._preview = images[:16].detach().cpu()
        n_real = images.shape[0]
        warm = step < self.warmup_steps
        use_pairs = self.pairs is not None and not warm
        if self.pairs is not None and use_pairs:
            gen = ctx.to_device(self.pairs.next())["image"]
            images = torch.cat([images, gen])
        if ctx.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.net.train()
        with ctx.autocast():
            logits, feats = self.model(images)
        logits, feats = logits.float(), feats.float()
        hits = (logits[:n_real].argmax(1) == labels).float().mean().detach()  # before any margin
        if self.head != "softmax":
            logits = margin_logits(
                logits,
                torch.cat([labels, labels.new_zeros(len(logits) - n_real)]),
                self.head,
                self.head_scale,
                self.head_margin,
            )
        loss_ce = F.cross_entropy(logits[:n_real], labels)
        loss = loss_ce
        logs = {"loss_ce": loss_ce.detach(), "acc": hits}
        if use_pairs:
            gen_feats = feats[n_real:]
            loss_ct = pair_contrastive_loss(
                gen_feats[0::2], gen_feats[1::2], cfg.finetune.margin, cfg.finetune.negative_weight, generator=None
            )
            loss = loss + cfg.finetune.contrastive_weight * loss_ct
            logs["loss_ct"] = loss_ct.detach()
        optimizer = self.warmup_optimizer if warm and self.warmup_optimizer is not None else self.optimizer
        if not warm:
            lr = self._lr(step)
            for g in optimizer.param_groups:
                g["lr"] = lr * g["lr_mult"]
        self.optimizer.zero_grad(set_to_none=True)
        if self.warmup_optimizer is not None:
            self.warmup_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        logs["lr"] = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["lr_mult"]
        logs["stage"] = 1.0 if warm else 2.0
        return logs

    def state_dict(self) -> dict:
        """Network (unwrapped), both optimizers, the generated-pairs stream position, subjects."""
        state = {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "subjects": list(self.subjects),
        }
        if self.warmup_optimizer is not None:
            state["warmup_optimizer"] = self.warmup_optimizer.state_dict()
        if self.pairs is not None:
            state["pairs"] = self.pairs.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        if list(state.get("subjects", [])) != list(self.subjects):
            raise ConfigError(
                "the checkpoint was trained on other identities than data.train holds; "
                "resume with the same training data"
            )
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.warmup_optimizer is not None and "warmup_optimizer" in state:
            self.warmup_optimizer.load_state_dict(state["warmup_optimizer"])
        if self.pairs is not None and "pairs" in state:
            self.pairs.load_state_dict(state["pairs"])

    def recognizer(self) -> Recognizer:
        """The current network as a Recognizer (shares weights; eval mode is set by `embed`)."""
        from hfr.artifacts import fingerprint

        state = {k: v for k, v in self.net.state_dict().items() if not k.startswith("fc2")}
        fp = fingerprint("lightcnn", self.net.arch, self.net.input_size, self.net.in_channels, state)
        return Recognizer(self.net, "lightcnn", self.net.arch, self.net.input_size, self.net.in_channels, fp, {})

    def evaluate(self) -> dict[str, float]:
        """Run `data.eval_protocol` on `data.eval` with the current weights (rank 0 computes)."""
        if self.eval_manifest is None:
            return {}
        from hfr.embed import embed_manifest
        from hfr.eval.protocols import training_metrics

        self.net.eval()
        try:
            feats = embed_manifest(self.recognizer(), self.eval_manifest, batch_size=128)
        finally:
            self.net.train()
        return training_metrics(self.eval_manifest, feats, self.cfg.data.eval_protocol)

    def eval_metrics(self) -> set[str]:
        """The names `evaluate` returns under this config (none without `data.eval`)."""
        from hfr.eval.protocols import training_metric_names

        if self.eval_manifest is None:
            return set()
        return training_metric_names(self.eval_manifest, self.cfg.data.eval_protocol)

    def sample_grid(self) -> torch.Tensor:
        """The first augmented training images (what the network sees), in [0, 1]."""
        if self._preview is None:
            return torch.zeros(1, self.cfg.data.channels, self.cfg.data.size, self.cfg.data.size)
        return self._preview

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write `recognizer.pt` (no classifier) into `run_dir`."""
        path = Path(run_dir) / "recognizer.pt"
        net = unwrap_model(self.net)
        export_recognizer(
            net,
            path,
            kind="lightcnn",
            meta={
                "mode": self.cfg.mode,
                "train": str(self.cfg.data.train),
                "subjects": len(self.subjects),
                **(meta or {}),
            },
        )
        return {"recognizer": path}


class _Stream:
    """An endless iterator over a DataLoader whose batch sampler has set_epoch(epoch, start)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.epoch = 0
        self.consumed = 0
        self._it: Iterator[Any] | None = None

    def next(self) -> Any:
        """The next batch, moving to the next epoch when one ends."""
        sampler: Any = self.loader.batch_sampler
        while True:
            if self._it is None:
                sampler.set_epoch(self.epoch, start=self.consumed)
                self._it = iter(self.loader)
            try:
                batch = next(self._it)
                self.consumed += 1
                return batch
            except StopIteration:
                self._it = None
                self.epoch += 1
                self.consumed = 0

    def state_dict(self) -> dict[str, int]:
        """Where the stream is: epoch and batches consumed in it."""
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a `state_dict()` position."""
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        self._it = None
