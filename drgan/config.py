"""The recipe of a DR-GAN run (`hfr train-generator --config configs/drgan/*.yaml`).

Defaults are the paper's objective and optimiser (Tran, Yin, Liu, CVPR 2017, Sec. 4):
Adam, lr 2e-4, beta1 0.5; weights ~ N(0, 0.02); batch 64; N_z = 50; N_p = 9 pose bins
-60..+60 in steps of 15 (Multi-PIE Setting 2). The options under `loss` are off by default;
each names its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drgan.models import D_HEADS, Discriminator, Generator, build_models
from hfr.data.augment import AugmentConfig
from hfr.engine.trainconfig import AdamConfig, TrainConfig
from hfr.errors import ConfigError
from hfr.nn.sizing import check_choice

#: Multi-PIE Setting 2's 9 yaw bins (degrees).
MULTIPIE_YAW_BINS = [-60.0, -45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0, 60.0]


@dataclass
class DRGANData:
    """Training (and evaluation) images."""

    train: str = ""  #: manifest (or its folder) with a yaw on every row
    split: str = "train"  #: rows of this split train ("" = every row)
    modalities: list[str] = field(default_factory=lambda: ["vis"])  #: modalities to train on ([] = all)
    size: int = 64  #: image size S (a multiple of 16; the paper: 96)
    channels: int = 3  #: 3 RGB (the paper), 1 grayscale
    yaw_bins: list[float] = field(default_factory=lambda: list(MULTIPIE_YAW_BINS))  #: pose bins; N_p = len
    eval: str | None = None  #: manifest for the cross-pose protocol every train.eval_every steps
    recognizer: str | None = None  #: frozen recognizer F for loss.identity_weight (recognizer.pt or run folder)
    #: frozen yaw estimator P for loss.pose_weight (yaw_estimator.pt or run folder); never the one that judges G
    pose_estimator: str | None = None


@dataclass
class DRGANNet:
    """G and D."""

    width: float = 1.0  #: channel multiplier (1 = the paper's CASIA-Net; N_f = 320 * width)
    noise_dim: int = 50  #: N_z
    multi_image: int = 0  #: n images per subject fused by omega (0 = single-image DR-GAN)
    dropout: float = 0.0  #: dropout on f(x), the decoder projection and D's feature (released code: 0.4)
    init: str = "normal002"  #: weight initialisation (the paper: N(0, 0.02))
    d_heads: str = (
        "shared"  #: D's identity/pose heads: shared (the paper) | separate (released code: own Conv52-53 each)
    )


@dataclass
class DRGANLoss:
    """Options beside the paper's objective (all off by default)."""

    label_smoothing: float = 0.0  #: smooth D's targets (Salimans et al. 2016); 0 = off
    l1_weight: float = 0.0  #: L1 to the ground truth at the target pose where the data has it (TPAMI, Multi-PIE)
    d_skip_accuracy: float = 0.0  #: skip D's update while its accuracy exceeds this (adaptive D/G ratio); 0 = off
    switch_every: int = 0  #: copy D's trunk into G_enc every this many steps (TPAMI model switching); 0 = off
    #: weight of 1 - cos(F(x_hat), F(x_ref)) through the frozen recognizer F (`data.recognizer`): the
    #: identity-preserving loss of TP-GAN (Huang et al., ICCV 2017, Eq. 6) and DVG-Face's L_ip; x_ref is
    #: the ground truth at the target pose where the L1 table has one, else the input; 0 = off
    identity_weight: float = 0.0
    #: weight of G's adversarial terms (L_G's identity and pose cross-entropies through D); 1 = the paper.
    #: TP-GAN (Huang et al., ICCV 2017, Eq. 9) weighs its adversarial term 1e-3 beside the pixel loss
    adversarial_weight: float = 1.0
    #: weight of the smooth L1 between a frozen yaw estimator P's yaw of x_hat and the target bin's yaw
    #: (`data.pose_estimator`, both / 90 as P was trained): the issue's "pose loss from a frozen pose
    #: estimator", in the spirit of FF-GAN's and TP-GAN's frozen-network losses. It supervises the pose
    #: D's pose head does in Eq. 4, but through a network G cannot move (D's head, trained on real faces
    #: only, is fooled by noise: benchmarks/results/drgan_diagnosis.md); 0 = off
    pose_weight: float = 0.0


@dataclass
class DRGANConfig:
    """A DR-GAN recipe."""

    model: str = "drgan"
    batch_size: int = 64  #: images per step (multi-image: a multiple of net.multi_image)
    data: DRGANData = field(default_factory=DRGANData)
    net: DRGANNet = field(default_factory=DRGANNet)
    optim: AdamConfig = field(default_factory=AdamConfig)  #: Adam for G and for D (the paper's values)
    loss: DRGANLoss = field(default_factory=DRGANLoss)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def build_models(self, num_identities: int) -> tuple[Generator, Discriminator]:
        """G and D of this recipe for `num_identities` training identities (N_d), initialised by `net.init`."""
        return build_models(
            self.data.size,
            num_identities,
            len(self.data.yaw_bins),
            self.net.noise_dim,
            self.data.channels,
            self.net.width,
            self.net.multi_image >= 2,
            self.net.dropout,
            self.net.init,
            self.net.d_heads,
        )

    def validate(self) -> None:
        """Raise ConfigError naming the key of an impossible value."""
        if self.data.size < 16 or self.data.size % 16:
            raise ConfigError(f"data.size must be a multiple of 16 (four stride-2 stages), got {self.data.size}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {self.data.channels}")
        bins = self.data.yaw_bins
        if len(bins) < 2 or sorted(bins) != list(bins) or len(set(bins)) != len(bins):
            raise ConfigError(f"data.yaw_bins must be at least 2 distinct increasing yaws, got {bins}")
        check_choice(self.net.d_heads, D_HEADS, "net.d_heads")  # shared: the paper; separate: the released code
        if self.net.width <= 0 or self.net.noise_dim < 0:
            raise ConfigError("net.width must be > 0 and net.noise_dim >= 0")
        if self.net.multi_image == 1 or self.net.multi_image < 0:
            raise ConfigError(f"net.multi_image must be 0 (single-image) or n >= 2, got {self.net.multi_image}")
        n = max(1, self.net.multi_image)
        if self.batch_size < 2 or self.batch_size % n:
            raise ConfigError(f"batch_size must be >= 2 and a multiple of net.multi_image={n}, got {self.batch_size}")
        if not 0 <= self.net.dropout < 1 or not 0 <= self.loss.label_smoothing < 1:
            raise ConfigError("net.dropout and loss.label_smoothing must be in [0, 1)")
        if self.loss.l1_weight < 0 or self.loss.switch_every < 0 or not 0 <= self.loss.d_skip_accuracy <= 1:
            raise ConfigError("loss.l1_weight and loss.switch_every must be >= 0, loss.d_skip_accuracy in [0, 1]")
        if self.loss.identity_weight < 0 or self.loss.adversarial_weight < 0 or self.loss.pose_weight < 0:
            raise ConfigError("loss.identity_weight, loss.adversarial_weight and loss.pose_weight must be >= 0")
        if self.loss.identity_weight > 0 and not self.data.recognizer:
            raise ConfigError(
                "loss.identity_weight > 0 needs the frozen recognizer F: set data.recognizer, e.g. "
                "--set data.recognizer=runs/judge/runs/recognizer-F/latest/recognizer.pt"
            )
        if self.loss.pose_weight > 0 and not self.data.pose_estimator:
            raise ConfigError(
                "loss.pose_weight > 0 needs a frozen yaw estimator P: set data.pose_estimator, e.g. "
                "--set data.pose_estimator=runs/P/yaw-estimator-P/latest/yaw_estimator.pt (not the judging one)"
            )
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
