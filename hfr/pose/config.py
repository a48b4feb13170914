"""The recipe of the `yaw` task (`hfr train-generator --config configs/judge/synth-yaw.yaml`).

The yaw estimator is trained on real (rendered) training faces and judges generated ones; its
own error on real test faces (`evaluate`: `yaw_mae`, `yaw_bin_acc` on `data.eval`'s
`data.eval_split` rows) is the floor any generator's pose error is read against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hfr.data.augment import AugmentConfig
from hfr.engine.trainconfig import TrainConfig
from hfr.errors import ConfigError

#: The poses of SynthFace multipie (`hfr.data.synth.MULTIPIE_YAWS`): -60..60 step 15.
MULTIPIE_YAW_BINS: tuple[float, ...] = (-60.0, -45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0)


@dataclass
class YawData:
    """Which faces train and evaluate the estimator."""

    train: str = ""  #: manifest (or its folder) of the training faces; rows with an empty yaw are skipped
    split: str = "train"  #: rows of this split train ("" = every row)
    modalities: list[str] = field(default_factory=list)  #: modalities to train on ([] = all)
    size: int = 32  #: input size in pixels (faces of any size are resized to it)
    channels: int = 1  #: 1 grayscale, 3 RGB
    eval: str | None = None  #: manifest evaluated every train.eval_every steps (and written into the export)
    eval_split: str = "test"  #: rows of `eval` evaluated ("" = every row)
    yaw_bins: list[float] = field(default_factory=lambda: list(MULTIPIE_YAW_BINS))  #: for yaw_bin_acc


@dataclass
class YawNetConfig:
    """The network (`hfr.pose.model.YawNet`)."""

    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  #: channels of the conv blocks
    mirror_eval: bool = True  #: evaluate as the mean of a face's estimate and its negated mirror's


@dataclass
class YawOptim:
    """AdamW and its learning-rate schedule."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: Literal["constant", "cosine"] = "cosine"  #: cosine: down to 0 at train.steps
    smooth_l1_beta: float = 0.05  #: smooth L1 threshold on yaw / 90 (0.05 = 4.5 degrees)


@dataclass
class YawConfig:
    """A `yaw` recipe: a head-yaw estimator used as an independent judge of generated faces."""

    model: str = "yaw"
    batch_size: int = 64
    data: YawData = field(default_factory=YawData)
    net: YawNetConfig = field(default_factory=YawNetConfig)
    optim: YawOptim = field(default_factory=YawOptim)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(flip_p=0.5))
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise ConfigError for impossible values (naming the key)."""
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}")
        depth = len(self.net.widths)
        if depth < 1 or any(w < 1 for w in self.net.widths):
            raise ConfigError(f"net.widths must be one or more positive channel counts, got {self.net.widths}")
        if self.data.size < 2**depth:
            raise ConfigError(
                f"data.size must be >= {2**depth} ({depth} max-pool stages of net.widths), got {self.data.size}"
            )
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.data.channels}")
        if self.optim.lr <= 0 or self.optim.weight_decay < 0:
            raise ConfigError(f"optim.lr must be > 0 and optim.weight_decay >= 0, got {self.optim}")
        if self.optim.smooth_l1_beta <= 0:
            raise ConfigError(f"optim.smooth_l1_beta must be > 0, got {self.optim.smooth_l1_beta}")
        bins = self.data.yaw_bins
        if len(bins) < 2 or sorted(bins) != list(bins) or len(set(bins)) != len(bins):
            raise ConfigError(f"data.yaw_bins must be at least 2 distinct increasing yaws, got {bins}")
