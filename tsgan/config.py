"""The recipe of a TSGAN run (`hfr train-generator --config configs/tsgan/synth-occluded.yaml`).

Sections: `data` (occluded training set, image size, the frozen recognizer F), `net` (what
`tsgan.models.build_tsgan` takes, plus how the two stages are chained), `optim` (Adam),
`loss` (`tsgan.losses.TSGANLossWeights`, λ1..λ6) and the engine's `train` section.

Where the values come from:

- Paper (as relayed by the project brief): Adam with learning rate 1e-4, batch size 6,
  128 x 128 images, the six loss weights (see `tsgan.losses`).
- Ours: Adam's betas (0.5, 0.999), the GAN convention (Radford et al. 2016) the other
  generators here use; the brief gives no betas. Batches of `batch_size / data.per_subject`
  subjects with `data.per_subject` images each (default 2; batch 6 = 3 subjects x 2), so the
  dual triplet loss finds in-batch negatives for every anchor (its positives also come from
  the real targets' features). `net.end_to_end: true`: the stage-2 losses also train G_d
  (gradients flow through x_d into G_d); false detaches x_d before G_f, so each generator
  learns from its own stage's terms only. `net.f_mask: true`: G_f's mask-attention modules
  get the stage-1 occlusion mask as their prior (the cells G_d had to invent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hfr.engine.trainconfig import AdamConfig, TrainConfig
from hfr.errors import ConfigError
from tsgan.losses import TSGANLossWeights
from tsgan.models import D_NORMS, G_NORMS, PRIORS


@dataclass
class TSGANData:
    """The occluded training set (SynthFace `occluded` layout) and the frozen recognizer F."""

    train: str = ""  #: manifest (or folder) with occlusion, mask_path, clean_path, frontal_path
    split: str = "train"  #: rows of this split ("" = every row)
    size: int = 64  #: image size S (a power of two >= 32; the paper: 128)
    channels: int = 3  #: 3 (RGB) or 1 (grayscale)
    per_subject: int = 2  #: images of one subject per batch (batch_size must be a multiple)
    recognizer: str = ""  #: recognizer.pt of F ("" = identity and triplet terms off)
    synthesize_masks: bool = False  #: build a missing mask from |image - clean| > mask_threshold
    mask_threshold: float = 0.05  #: synthesize_masks: occluded where max-over-channels |image - clean| > this


@dataclass
class TSGANNet:
    """G_d, G_f, D_d, D_f (`tsgan.models.build_tsgan`) and how the stages are chained."""

    width: float = 1.0  #: generator channel multiplier (1 = the U-Net widths of tsgan.models)
    mam: bool = True  #: mask attention on the U-Net skips
    prior: str = "gate"  #: G_d's MAM prior: gate | scale | none
    f_prior: str | None = None  #: G_f's MAM prior (None = prior)
    norm: str = "instance"  #: generator norm: instance | batch | none
    dropout: float = 0.0  #: pix2pix dropout in the three innermost decoder stages
    attention_kernel: int = 3  #: the MAM's 1-D convolution kernel (odd)
    composite: bool = False  #: G_d keeps the visible input pixels (out = m G + (1 - m) x)
    d_width: float | None = None  #: discriminators' multiplier (None = width)
    d_norm: str = "instance"  #: instance | spectral | none
    d_conditional: bool = False  #: pix2pix-conditional D_d ([x_occ, mask]) and D_f (G_f's input)
    end_to_end: bool = True  #: stage-2 losses also train G_d (false: x_d detached before G_f)
    f_mask: bool = True  #: G_f's MAMs get the occlusion mask as prior


def _default_optim() -> AdamConfig:
    return AdamConfig(lr=1e-4, beta1=0.5, beta2=0.999)


@dataclass
class TSGANConfig:
    """A TSGAN recipe (see the module docstring for where each value comes from)."""

    model: str = "tsgan"
    batch_size: int = 6  #: images per step (the paper: 6)
    data: TSGANData = field(default_factory=TSGANData)
    net: TSGANNet = field(default_factory=TSGANNet)
    optim: AdamConfig = field(default_factory=_default_optim)  #: Adam for G_d + G_f and for D_d + D_f
    loss: TSGANLossWeights = field(default_factory=TSGANLossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise ConfigError naming the key of an impossible value."""
        s = self.data.size
        if s < 32 or s & (s - 1):
            raise ConfigError(f"data.size must be a power of two >= 32 (the U-Net halves it to 4x4), got {s}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.data.channels}")
        if self.data.per_subject < 1:
            raise ConfigError(f"data.per_subject must be >= 1, got {self.data.per_subject}")
        if self.batch_size < 2 or self.batch_size % self.data.per_subject:
            raise ConfigError(
                f"batch_size must be >= 2 and a multiple of data.per_subject "
                f"({self.data.per_subject}), got {self.batch_size}"
            )
        if self.batch_size // self.data.per_subject < 2 and self.loss.triplet > 0:
            raise ConfigError(
                f"batch_size {self.batch_size} with data.per_subject {self.data.per_subject} gives one "
                f"subject per batch: the triplet loss needs negatives; raise batch_size or lower "
                f"data.per_subject"
            )
        if not 0.0 < self.data.mask_threshold < 1.0:
            raise ConfigError(f"data.mask_threshold must be in (0, 1), got {self.data.mask_threshold}")
        n = self.net
        if n.width <= 0 or (n.d_width is not None and n.d_width <= 0):
            raise ConfigError("net.width and net.d_width must be > 0")
        for key, value, choices in (
            ("net.prior", n.prior, PRIORS),
            ("net.norm", n.norm, G_NORMS),
            ("net.d_norm", n.d_norm, D_NORMS),
        ):
            if value not in choices:
                raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        if n.f_prior is not None and n.f_prior not in PRIORS:
            raise ConfigError(f"net.f_prior must be null or one of {', '.join(PRIORS)}, got {n.f_prior!r}")
        if not 0.0 <= n.dropout < 1.0:
            raise ConfigError(f"net.dropout must be in [0, 1), got {n.dropout}")
        if n.attention_kernel < 1 or n.attention_kernel % 2 == 0:
            raise ConfigError(f"net.attention_kernel must be odd and >= 1, got {n.attention_kernel}")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
        self.loss.validate()
