"""`TrainConfig`: the `train:` section every training recipe embeds in its own config.

    @dataclass
    class RecognizerConfig:
        model: str = "recognizer"
        lr: float = 1e-3
        train: TrainConfig = field(default_factory=TrainConfig)

Every field is a plain type so `hfr.config` loads it from YAML and `--set train.steps=500`
overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from hfr.errors import ConfigError


@dataclass
class TrainConfig:
    """How the engine runs a task: length, logging, checkpoints, hooks, device and precision.

    Attributes:
        steps: total training steps (one `train_step` call, one batch, per step); a resumed
            run continues until this many steps are done.
        log_every: write one `metrics.jsonl` line (the mean of each log over the window) every
            this many steps, and at the last step.
        checkpoint_every: write `checkpoints/step-NNNNNNN.pt` every this many steps (and at the
            end of the run); 0 = only at the end.
        keep_checkpoints: keep the newest N step checkpoints (older ones are deleted); `best.pt`
            is kept besides them.
        best_metric: an `evaluate()` key (without the `eval/` prefix) whose best value is kept
            in `checkpoints/best.pt`; None = no best checkpoint.
        best_mode: "max" when a larger `best_metric` is better, "min" when smaller is.
        eval_every: call the task's `evaluate()` every N steps and at the end; 0 = only at the
            end; -1 = never.
        sample_every: write `samples/step-NNNNNNN.png` from the task's `sample_grid()` every N
            steps and at the end; 0 = only at the end; -1 = never.
        seed: the seed of every random generator (python, numpy, torch, the task generator,
            the samplers through `ctx.seed`); each distributed rank derives its own stream.
        device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
        amp: mixed precision: "auto" (bf16 autocast on CUDA, fp32 on CPU), "bf16" (same; on
            CPU it falls back to fp32) or "off" (fp32 everywhere). YAML reads a bare `off` as
            false and `on` as true: false means "off", true means "bf16".
        channels_last: store image models and batches in channels_last memory format;
            "auto" = on CUDA only.
        deterministic: ask torch for deterministic algorithms (slower on CUDA; CPU training
            is deterministic without it).
        num_workers: DataLoader worker processes a task should use (`ctx.num_workers`).
        progress: show a progress bar on stderr (only on rank 0 and only on a terminal).
    """

    steps: int = 1000
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    best_metric: str | None = None
    best_mode: Literal["max", "min"] = "max"
    eval_every: int = 0
    sample_every: int = 0
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool | Literal["auto", "bf16", "off"] = "auto"
    channels_last: bool | Literal["auto"] = "auto"
    deterministic: bool = False
    num_workers: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        if self.amp is True:
            self.amp = "bf16"
        elif self.amp is False:
            self.amp = "off"

    def validate(self) -> None:
        """Raise ConfigError naming the first field with an impossible value."""
        checks = (
            ("steps", self.steps >= 1, "a positive number of steps"),
            ("log_every", self.log_every >= 1, "a positive number of steps"),
            ("checkpoint_every", self.checkpoint_every >= 0, "0 (only at the end) or a positive number"),
            ("keep_checkpoints", self.keep_checkpoints >= 1, "at least 1"),
            ("eval_every", self.eval_every >= -1, "-1 (never), 0 (at the end) or a positive number"),
            ("sample_every", self.sample_every >= -1, "-1 (never), 0 (at the end) or a positive number"),
            ("num_workers", self.num_workers >= 0, "0 (load in the main process) or more"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"train.{name}: {getattr(self, name)!r} is invalid; expected {expected}")
        if self.best_metric is not None and not self.best_metric.strip():
            raise ConfigError("train.best_metric: empty name; give an evaluate() key such as 'rank1', or null")
        if self.best_metric is not None and self.eval_every == -1:
            raise ConfigError(
                f"train.best_metric is {self.best_metric!r} but train.eval_every is -1 "
                f"(never evaluate); set eval_every >= 0 or best_metric to null"
            )


@dataclass
class AdamConfig:
    """Adam's settings, as a recipe's `optim:` section; the defaults are the GAN convention
    (Radford et al. 2016) that DR-GAN and DVG-Face use: lr 2e-4, betas (0.5, 0.999)."""

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def make(self, params: Any) -> torch.optim.Adam:
        """An Adam optimizer over `params` with these settings."""
        return torch.optim.Adam(params, lr=self.lr, betas=(self.beta1, self.beta2))
