"""A toy task for the engine tests: a tiny MLP classifier over a real DataLoader.

It uses every source of randomness a real task does (dropout, random flips from torch's
global RNG, noise from the task generator, python `random` and numpy jitter), Adam and a
step LR schedule, so exact resume fails if any piece of state is not restored.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from hfr.data.datasets import IdentityBalancedSampler, ManifestDataset
from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record
from hfr.engine.task import TrainContext, unwrap_model
from hfr.engine.trainconfig import TrainConfig

SIZE = 8


def write_toy_dataset(root: Path, subjects: int = 3, per_subject: int = 4) -> Path:
    """`subjects` x `per_subject` 8x8 grey images with subject-dependent patterns; returns the folder."""
    rng = np.random.default_rng(0)
    recs = []
    for s in range(subjects):
        base = rng.integers(0, 256, (SIZE, SIZE))
        for i in range(per_subject):
            name = f"s{s}/img{i}.png"
            img = np.clip(base + rng.integers(-20, 21, (SIZE, SIZE)), 0, 255).astype(np.uint8)
            write_png(root / name, img)
            recs.append(make_record(name, f"s{s}", "vis", 0.0, "train"))
    Manifest(recs, root).write(root)
    return root


@dataclass
class ToyConfig:
    """The toy recipe: data folder, model width, learning rate, failure injection, train section."""

    model: str = "toy"
    data: str = ""
    width: int = 8
    lr: float = 0.05
    batches_per_epoch: int = 0
    nan_at: int = -1
    train: TrainConfig = field(default_factory=TrainConfig)


class ToyTask:
    """Classify subjects from 8x8 images with Flatten-Linear-ReLU-Dropout-Linear."""

    config_class = ToyConfig
    artifact_description = "a toy subject classifier"

    def build(self, cfg: ToyConfig, ctx: TrainContext) -> None:
        """Dataset, sampler, loader, model (wrapped), Adam and StepLR."""
        self.cfg, self.ctx = cfg, ctx
        manifest = Manifest.read(cfg.data)
        self.dataset = ManifestDataset(manifest, size=SIZE, channels=1)
        classes = len(self.dataset.labels)
        net = nn.Sequential(
            nn.Flatten(), nn.Linear(SIZE * SIZE, cfg.width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(cfg.width, classes)
        )
        self.model = ctx.wrap_model(net)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=3, gamma=0.5)
        self.sampler = IdentityBalancedSampler(
            manifest,
            p=2,
            k=2,
            seed=ctx.seed,
            num_batches=cfg.batches_per_epoch or None,
            rank=ctx.rank,
            world_size=ctx.world_size,
        )
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=ctx.num_workers)
        self.probe = torch.stack([self.dataset[i]["image"] for i in range(4)]).to(ctx.device)

    def train_loader(self) -> DataLoader:
        """The loader over the identity-balanced sampler."""
        return self.loader

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        """Augment (flip, noise, jitter), one Adam step, one scheduler step."""
        x, y = batch["image"], batch["label"]
        flip = torch.rand(x.shape[0]) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = x + 0.1 * torch.randn(x.shape, generator=self.ctx.generator)
        x = x + 0.05 * random.random() - 0.05 * float(np.random.rand())
        with self.ctx.autocast():
            logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        value = math.nan if step == self.cfg.nan_at else loss.item()
        return {"loss": value, "acc": (logits.argmax(1) == y).float().mean(), "lr": self.sched.get_last_lr()[0]}

    def evaluate(self) -> dict[str, float]:
        """Accuracy on the probe images plus a random draw (the engine must keep it from training)."""
        self.model.eval()
        with torch.no_grad():
            noisy = self.probe + 0.01 * torch.randn(self.probe.shape)
            torch.randn(3, generator=self.ctx.generator)
            random.random()
            score = float(self.model(noisy).softmax(1).max(1).values.mean())
        self.model.train()
        return {"confidence": score}

    def sample_grid(self) -> torch.Tensor:
        """The probe images with generator noise, (4, 1, 8, 8)."""
        return (self.probe + 0.05 * torch.randn(self.probe.shape, generator=self.ctx.generator)).clamp(0, 1)

    def images_per_step(self) -> int:
        """P*K = 4 images per step."""
        return 4

    def state_dict(self) -> dict:
        """Model, optimizer and scheduler states."""
        return {
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s output."""
        unwrap_model(self.model).load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])

    def export(self, run_dir: str | os.PathLike, meta: dict | None = None) -> dict[str, Path]:
        """Write the model's weights as toy.pt into `run_dir`."""
        path = Path(run_dir) / "toy.pt"
        torch.save({"state_dict": unwrap_model(self.model).state_dict(), "meta": meta or {}}, path)
        return {"toy": path}


def weights_hash(task: ToyTask) -> str:
    """SHA-256 of the model's parameters (bitwise)."""
    h = hashlib.sha256()
    for name, t in sorted(unwrap_model(task.model).state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
