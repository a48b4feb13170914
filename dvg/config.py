"""The recipe of a DVG-Face generator run (`hfr train-generator --config configs/dvg/synth-nirvis.yaml`).

Optimiser from the paper's setting (Adam, lr 2e-4, betas (0.5, 0.999)); loss weights in
`dvg.losses.DVGLossWeights` (released-code values where it has them, documented choices for
the rest). The identity extractor F is a frozen recognizer (`data.recognizer`) whose feature
size must equal the generator's identity size (`net.id_dim`, 256).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dvg.losses import DVGLossWeights
from hfr.engine.trainconfig import AdamConfig, TrainConfig
from hfr.errors import ConfigError
from hfr.nn.gan import D_NORMS
from hfr.nn.sizing import check_choice


@dataclass
class DVGData:
    """Paired NIR-VIS training images and the frozen networks the objective uses."""

    train: str = ""  #: manifest (or folder) with NIR and VIS images of the same subjects
    split: str = "train"  #: rows of this split ("" = every row)
    size: int = 64  #: image size S (a power of two >= 32; the paper: 128)
    recognizer: str = ""  #: recognizer.pt (or run folder) of the frozen identity extractor F
    identity_sampler: str = ""  #: identity_sampler.pt of F_s ("" = no sampled-identity terms)
    unpaired: str = ""  #: VIS images without NIR partners (e.g. data/webface; "" = paired only)
    unpaired_split: str = "train"  #: rows of this split of `unpaired` ("" = every row)
    unpaired_batch: int = 0  #: unpaired VIS images per step (0 = batch_size)


@dataclass
class DVGNet:
    """E_N, E_V, G and the discriminators."""

    width: float = 1.0  #: channel multiplier (1 = the released networks)
    deterministic: bool = False  #: the released unit-norm attribute code instead of the paper's variational one
    id_dim: int = 256  #: identity feature size (must equal the recognizer's)
    d_width: float | None = None  #: discriminators' multiplier (None = width)
    d_norm: str = "instance"  #: instance | spectral | none


@dataclass
class DVGConfig:
    """A DVG-Face generator recipe."""

    model: str = "dvg"
    batch_size: int = 8  #: NIR-VIS pairs per step (the paper: 8)
    data: DVGData = field(default_factory=DVGData)
    net: DVGNet = field(default_factory=DVGNet)
    optim: AdamConfig = field(default_factory=AdamConfig)  #: Adam for G and for D (the paper's values)
    loss: DVGLossWeights = field(default_factory=DVGLossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise ConfigError naming the key of an impossible value."""
        s = self.data.size
        if s < 32 or s & (s - 1):
            raise ConfigError(f"data.size must be a power of two >= 32 (DVG-Face's encoder halves it to 4x4), got {s}")
        if self.batch_size < 2:
            raise ConfigError(
                f"batch_size must be >= 2 pairs (the swapped-identity term needs another pair), got {self.batch_size}"
            )
        if self.data.unpaired_batch < 0:
            raise ConfigError(f"data.unpaired_batch must be >= 0 (0 = batch_size), got {self.data.unpaired_batch}")
        if self.net.width <= 0 or (self.net.d_width is not None and self.net.d_width <= 0):
            raise ConfigError("net.width and net.d_width must be > 0")
        check_choice(self.net.d_norm, D_NORMS, "net.d_norm")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
        self.loss.validate()
