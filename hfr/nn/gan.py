"""Pieces every GAN here shares: the PatchGAN discriminator, the adversarial loss kinds, the L1 pixel loss.

(And `check_feature_pair`, the shape check of the identity terms on recognizer features.)

Symbols: x a real image, x^ = G(...) a generated one, D(.) the discriminator's raw score (a
logit: no sigmoid), averaged over every element, so a PatchGAN score map (B, 1, P, P) counts
each patch once and a vector (B,) each image once.

Adversarial loss kinds (`ADV_KINDS`; one error type, ConfigError, for any other kind):

| kind    | D's loss (`adversarial_d`)                    | G's loss (`adversarial_g`) |
| ------- | --------------------------------------------- | -------------------------- |
| `lsgan` | 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(x^)^2)    | 1/2 mean((D(x^) - 1)^2)    |
| `bce`   | mean(softplus(-D(x))) + mean(softplus(D(x^))) | mean(softplus(-D(x^)))     |
| `hinge` | mean(relu(1 - D(x))) + mean(relu(1 + D(x^)))  | -mean(D(x^))               |

Sources: `lsgan` least squares (Mao et al. 2017, targets a=0, b=1, c=1); `bce` the cross-entropy
GAN with the non-saturating generator loss (Goodfellow et al. 2014); `hinge` (Lim & Ye 2017;
Miyato et al. 2018).
`bce`'s softplus(-D(x)) is -log sigmoid(D(x)) and softplus(D(x^)) is -log(1 - sigmoid(D(x^))),
computed without overflow. DVG-Face's and TSGAN's objectives both use these (which kind is a
config value, `loss.adv_kind`); DR-GAN's D is a classifier with its own cross-entropy
objective (`drgan.losses`).

`PatchGAN` is the PatchGAN discriminator of pix2pix (Isola et al., CVPR 2017) in the two forms
the methods use (neither paper's released code has one; both are this project's choices, and
each form is kept exactly because trained checkpoints hold its weights):

- TSGAN's D_d, D_f (`PIX2PIX_70`): pix2pix's 70 x 70 PatchGAN: 4x4 convolutions with 64, 128,
  256 channels at stride 2 and 512 at stride 1, then a 4x4 stride-1 convolution to one channel;
  affine instance norm after every convolution but the first; raw scores (B, 1, S/8 - 2, S/8 - 2).
  It may be conditional (pix2pix's form): forward(x, cond) scores cat([cond, x]).
- DVG-Face's D_N, D_V (`FOUR_STRIDE_2`): four 4x4 stride-2 convolutions (64-128-256-512), then a
  3x3 stride-1 convolution to one channel; instance norm without affine parameters; raw scores
  (B, 1, S/16, S/16).

Both: LeakyReLU(0.2) after every convolution but the last, no norm after the first; `norm`
"instance", "spectral" (spectral normalisation of every convolution instead of a norm layer,
Miyato et al. 2018) or "none"; `width` multiplies the channel counts (`hfr.nn.sizing.scaled`).
Every loss computes in float32, so bf16 autocast scores are safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfr.nn.layers import init_weights
from hfr.nn.sizing import check_choice, check_width, scaled

#: Adversarial loss forms understood by `adversarial_d` / `adversarial_g`.
ADV_KINDS: tuple[str, ...] = ("lsgan", "bce", "hinge")
#: Discriminator normalisations understood by `PatchGAN`.
D_NORMS: tuple[str, ...] = ("instance", "spectral", "none")


def check_adv_kind(kind: str, what: str = "adversarial loss kind (loss.adv_kind)") -> str:
    """`kind` if it is one of `ADV_KINDS`, else ConfigError naming `what` and the kinds."""
    return check_choice(kind, ADV_KINDS, what)


def adversarial_d(real: torch.Tensor, fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """L_adv for D: its loss on raw scores D(x) of real images and D(x^) of generated ones (detach x^ first).

    `real`, `fake`: scores of any shape (a vector or a patch map), each element counted once in
    its mean. `kind`: "lsgan", "bce" or "hinge" (module docstring's table).
    """
    check_adv_kind(kind)
    real, fake = real.float(), fake.float()
    if kind == "lsgan":
        return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()
    if kind == "bce":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def adversarial_g(fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """L_adv for G: its loss on D's raw scores D(x^) of generated images (module docstring's table)."""
    check_adv_kind(kind)
    fake = fake.float()
    if kind == "lsgan":
        return 0.5 * (fake - 1.0).pow(2).mean()
    if kind == "bce":
        return F.softplus(-fake).mean()
    return -fake.mean()


def l1(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference |x^ - x| over every element (torch's L1Loss), in float32.

    ValueError when the shapes differ (no broadcasting: a (B, 1, S, S) against a (B, 3, S, S)
    image is a bug, not a loss).
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"l1: shapes differ: {tuple(x_hat.shape)} and {tuple(x.shape)}")
    return (x_hat.float() - x.float()).abs().mean()


def check_feature_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """ValueError naming `what` unless `a` and `b` are two (B, D) feature batches of one shape.

    The identity terms of the objectives compare recognizer features F(x^) and F(x) row by row.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"{what}: expected two (B, D) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")


@dataclass(frozen=True)
class PatchLayout:
    """A `PatchGAN`'s layout: channels and strides of its 4x4 convolutions, the last kernel, affine norms or not."""

    channels: tuple[int, ...]  #: output channels of each 4x4 convolution at width 1
    strides: tuple[int, ...]  #: the stride of each of them
    last_kernel: int  #: kernel of the final stride-1 convolution to one channel (padding 1)
    affine: bool  #: whether the instance norms have a learned scale and shift

    def __post_init__(self) -> None:
        if not self.channels or len(self.channels) != len(self.strides):
            raise ValueError(f"PatchLayout: {len(self.channels)} channel counts but {len(self.strides)} strides")


#: TSGAN's D_d / D_f: pix2pix's 70 x 70 PatchGAN, scores (B, 1, S/8 - 2, S/8 - 2).
PIX2PIX_70 = PatchLayout(channels=(64, 128, 256, 512), strides=(2, 2, 2, 1), last_kernel=4, affine=True)
#: DVG-Face's D_N / D_V: four stride-2 stages and a 3x3 head, scores (B, 1, S/16, S/16).
FOUR_STRIDE_2 = PatchLayout(channels=(64, 128, 256, 512), strides=(2, 2, 2, 2), last_kernel=3, affine=False)


class PatchGAN(nn.Module):
    """PatchGAN discriminator: image (B, C, S, S) -> raw scores (B, 1, P, P), higher = more real (module docstring).

    `layout`: `PIX2PIX_70` (TSGAN) or `FOUR_STRIDE_2` (DVG-Face). `cond_channels` > 0 makes it
    conditional: forward(x, cond) scores cat([cond, x]) with cond (B, cond_channels, S, S).
    `norm`: "instance", "spectral" or "none". `init`: None (PyTorch's default) or an
    `hfr.nn.init_weights` kind, applied to each convolution before spectral normalisation
    (which hides the raw weight). The layers live in `net` (an nn.Sequential), so the
    state-dict keys are `net.<i>.weight` (`net.<i>.parametrizations.weight.original` when
    spectral).
    """

    def __init__(
        self,
        in_channels: int = 3,
        layout: PatchLayout = PIX2PIX_70,
        width: float = 1.0,
        norm: str = "instance",
        cond_channels: int = 0,
        init: str | None = None,
    ) -> None:
        super().__init__()
        check_width(width, "discriminator width")
        self.norm = check_choice(norm, D_NORMS, "discriminator norm")
        self.in_channels, self.cond_channels, self.layout = in_channels, cond_channels, layout

        def conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
            c = nn.Conv2d(cin, cout, kernel, stride, 1)
            if init is not None:  # before spectral norm, which hides the raw weight
                init_weights(c, init)
            return nn.utils.parametrizations.spectral_norm(c) if norm == "spectral" else c

        layers: list[nn.Module] = []
        cin = in_channels + cond_channels
        for i, (c, stride) in enumerate(zip(layout.channels, layout.strides)):
            cout = scaled(c, width)
            layers.append(conv(cin, cout, 4, stride))
            if i and norm == "instance":
                layers.append(nn.InstanceNorm2d(cout, affine=layout.affine))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        layers.append(conv(cin, 1, layout.last_kernel, 1))
        self.net = nn.Sequential(*layers)

    @property
    def conditional(self) -> bool:
        """Whether forward needs `cond`."""
        return self.cond_channels > 0

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Raw patch scores of x (conditioned on `cond` (B, cond_channels, S, S) when conditional)."""
        name = type(self).__name__
        if self.conditional:
            if cond is None or cond.shape[1] != self.cond_channels or cond.shape[0] != x.shape[0]:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"conditional {name} needs cond of shape (B, {self.cond_channels}, S, S), got {got}")
            x = torch.cat([cond.to(x.dtype), x], dim=1)
        elif cond is not None:
            raise ValueError(f"{name} is unconditional (cond_channels=0) but got cond")
        return self.net(x)
