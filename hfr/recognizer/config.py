"""The recipe of `hfr train-recognizer`: data, network, optimizer, fine-tuning and engine settings.

Defaults follow the official LightCNN training script (AlfredXiangWu/LightCNN, train.py):
SGD, lr 0.01, momentum 0.9, weight decay 1e-4; the classifier (`fc2`) at 10x the learning
rate and biases at 2x without weight decay (`official_lr_groups`); the learning rate times
0.457305 every `step_size` steps (the official code does it every 10 epochs). The fine-tune
recipe follows DVG-Face's released train_lightcnn.py: a classifier-only warm-up, then the whole
network at lr 0.001 with weight decay 2e-4, and the contrastive term on generated pairs at
weight 0.001, margin 0.5, negative weight 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hfr.data.augment import AugmentConfig
from hfr.engine.trainconfig import TrainConfig
from hfr.errors import ConfigError

#: The learning-rate decay factor of the official LightCNN and DVG-Face scripts.
OFFICIAL_LR_SCALE = 0.457305051927326


@dataclass
class RecognizerData:
    """Which images train and evaluate the recognizer."""

    train: str = ""  #: manifest (or its folder) of the training images
    extra_train: list[str] = field(default_factory=list)
    """More training manifests (their `split` and `modalities` rows join; paths made absolute,
    subject names kept: SynthFace presets never share one)."""
    split: str = "train"  #: rows of this split train ("" = every row)
    modalities: list[str] = field(default_factory=list)  #: modalities to train on ([] = all)
    size: int = 64  #: input size in pixels (LightCNN: a multiple of 16)
    channels: int = 1  #: 1 grayscale (LightCNN), 3 RGB
    generated: str | None = None  #: generated NIR-VIS pairs (manifest) for the contrastive term
    eval: str | None = None  #: manifest evaluated every train.eval_every steps
    eval_protocol: Literal["cross-pose", "cross-modal"] = "cross-pose"  #: protocol run on `eval`


@dataclass
class RecognizerNet:
    """The network."""

    arch: str = "lightcnn9"  #: lightcnn9 | lightcnn29 | lightcnn29v2 | hfr's lightcnn9bn[-w<width>]
    pretrained: str | None = None  #: recognizer.pt of hfr, or an official LightCNN checkpoint
    dropout: float = 0.5  #: dropout before the classifier (official value; the softmax head only)
    head: Literal["softmax", "cosface", "arcface"] = "softmax"
    """Identity head: `softmax` (the official LightCNN classifier, linear with bias), `cosface`
    (Wang et al., CVPR 2018) or `arcface` (Deng et al., CVPR 2019): cosines to normalised class
    weights with an additive margin (`hfr.recognizer.losses.margin_logits`)."""
    head_scale: float | None = None  #: s of a margin head (None: the paper's, 64)
    head_margin: float | None = None  #: m of a margin head (None: the paper's, 0.35 CosFace, 0.5 ArcFace)


@dataclass
class RecognizerOptim:
    """Optimizer and learning-rate schedule."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False  #: Nesterov momentum (SGD; the shared recognizer's recipe uses it)
    weight_decay: float = 1e-4
    official_lr_groups: bool = True  #: fc2 x10 (bias x20), other biases x2, no decay on biases
    schedule: Literal["step", "cosine"] = "step"
    """`step`: the lr times `gamma` every `step_size` steps (the official LightCNN script); `cosine`:
    half a cosine from lr to 0 over the run (SGDR, Loshchilov & Hutter, ICLR 2017), the schedule of
    the strong shared recognizer."""
    step_size: int = 0  #: decay the lr every this many steps (0 = constant; schedule `step`)
    gamma: float = OFFICIAL_LR_SCALE  #: decay factor (schedule `step`)
    warmup_steps: int = 0  #: linear warm-up of the lr from 0 over this many steps (as insightface's arcface_torch)


@dataclass
class RecognizerFinetune:
    """Fine-tuning on NIR-VIS data (mode: finetune)."""

    warmup_steps: int = 0  #: classifier-only stage (DVG-Face stage I) before the whole net
    warmup_lr: float | None = None  #: learning rate of that stage (None: optim.lr)
    contrastive_weight: float = 0.001  #: weight of L_ct on generated pairs (released DVG-Face)
    margin: float = 0.5  #: cosine margin of the negative term
    negative_weight: float = 0.1  #: weight of the negative term inside L_ct
    pairs_per_batch: int = 32  #: generated pairs per step


@dataclass
class RecognizerConfig:
    """A `hfr train-recognizer` recipe."""

    model: str = "recognizer"
    mode: Literal["pretrain", "finetune"] = "pretrain"
    batch_size: int = 64
    data: RecognizerData = field(default_factory=RecognizerData)
    net: RecognizerNet = field(default_factory=RecognizerNet)
    optim: RecognizerOptim = field(default_factory=RecognizerOptim)
    finetune: RecognizerFinetune = field(default_factory=RecognizerFinetune)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Raise ConfigError for impossible values (naming the key)."""
        from hfr.models.lightcnn import ARCHITECTURES, VARIANTS, is_architecture

        if not is_architecture(self.net.arch):
            raise ConfigError(f"net.arch: unknown {self.net.arch!r}; use one of {', '.join(ARCHITECTURES + VARIANTS)}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.data.size < 16 or self.data.size % 16:
            raise ConfigError(f"data.size must be a multiple of 16 (LightCNN), got {self.data.size}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.data.channels}")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
        if self.finetune.warmup_steps < 0 or self.finetune.pairs_per_batch < 2:
            raise ConfigError("finetune.warmup_steps must be >= 0 and finetune.pairs_per_batch >= 2")
        from hfr.recognizer.losses import HEADS

        if self.net.head not in HEADS:
            raise ConfigError(f"net.head: unknown {self.net.head!r}; use one of {', '.join(HEADS)}")
        if (self.net.head_scale is not None and self.net.head_scale <= 0) or (
            self.net.head_margin is not None and not 0 <= self.net.head_margin < 1.5
        ):
            raise ConfigError("net.head_scale must be > 0 and net.head_margin in [0, 1.5)")
        if self.mode == "pretrain" and self.data.generated:
            raise ConfigError("data.generated (generated pairs) is used by mode: finetune only")
