"""TSGAN networks: the de-occlusion pair (G_d, D_d), the frontalization pair (G_f, D_f), the mask-attention module.

TSGAN restores an occluded, non-frontal face in two stages: G_d removes the occlusion
(it sees the occluded image and its occlusion mask), then G_f rotates the restored face to
the front. Both generators are U-shaped encoder-decoders whose skip connections pass through
a mask-attention module (MAM). Images are (B, C, S, S) in [-1, 1] (C = 3 by default, 1
allowed); both generators end in tanh, so their outputs are in [-1, 1] too. Masks are
(B, 1, S, S) with 1 = occluded, 0 = visible (soft values in [0, 1] are allowed).

Where each detail comes from. The paper's text was not reachable from this workplace (the
search corpora hold no copy), so everything below except the facts listed first is our
choice, documented here and configurable:

- Paper (as described in the project's brief): two stages (de-occlusion, then
  frontalization), U-Net generators with the MAM on the U-shaped connections, the occlusion
  mask as the attention prior, two 1-D convolutions giving K and Q in R^{B x C}, the
  attention map A = softmax(K Q^T) in R^{B x B} re-weighting the feature map, the result
  merged with the input by element-wise sum; 128 x 128 images.
- Ours, the U-Net: the pix2pix U-Net (Isola et al., CVPR 2017) trimmed to a 4 x 4
  bottleneck: n = log2(S) - 2 stride-2 4x4 convolutions with 64-128-256-512-512-... channels
  at `width=1` (capped at 512; no norm on the first, then instance norm; LeakyReLU 0.2),
  and n stride-2 4x4 transposed convolutions back up (norm, ReLU; the last one to C channels
  and tanh), each decoder stage concatenating the encoder feature of its resolution (the skip,
  passed through a MAM when `mam=True`). S = 64: 4 stages (skips at 32, 16, 8 px); S = 128:
  5 stages. S must be a power of two >= 32. `dropout` (default 0) is pix2pix's dropout in
  the three innermost decoder stages. G_d's input is [x, mask] (C + 1 channels).
- Ours, the MAM (`MaskAttention`): X_m (B, C, H, W) and the mask resized to H x W by area
  averaging (the fraction of each feature cell that is occluded), m. K and Q come from the
  global average pool of the (prior-weighted) feature map, p in R^{B x C}, each through its
  own 1-D convolution over the channel axis (one input and one output channel, kernel
  `kernel_size`, default 3, no bias: the ECA-Net form), so K, Q in R^{B x C}.
  A = softmax(K Q^T / sqrt(C)) over the last dim (the 1/sqrt(C) scale is ours, to keep the
  softmax out of saturation at C = 512), so each row sums to one. The re-weighted term
  R = A @ X (X flattened to (B, C*H*W)) mixes each sample's feature map with those of the
  other samples of the batch that A finds similar; the output is X_m + R (element-wise sum,
  no learned scale: the brief's form). The prior (`prior=`):
  - "gate" (default): the features are gated by visibility, X_v = X_m * (1 - m), before K
    and Q are taken and as the values, so occluded cells neither steer the attention nor
    get copied: out = X_m + A(X_v) X_v. With a batch of one (A = [[1]]) this is
    X_m + X_m * (1 - m): the prior changes the output only where the mask is on.
  - "scale": K, Q and R from X_m unchanged; the re-weighted term is added only where the
    face is occluded: out = X_m + m * (A X_m).
  - "none": out = X_m + A X_m (no prior; also what every mode does when no mask is given).
  Because A is taken over the batch, a sample's output depends on the other samples of its
  batch; a batch of one has A = [[1]] (out = 2 X_m with no prior). Evaluate with batches like
  the training ones when comparing numbers.
- Ours, G_f's prior: G_f has no mask input channel. `G_f(x, mask=None)` accepts an optional
  mask for its MAMs' prior; the task may pass the stage-1 occlusion mask (the cells G_d had
  to invent) or nothing, in which case G_f's MAMs run without a prior (the "none" form).
- Ours, the discriminators: the pix2pix 70 x 70 PatchGAN (`hfr.nn.gan.PatchGAN` with the
  `PIX2PIX_70` layout: 4x4 convolutions, 64-128-256 stride 2, 512 stride 1, then one output
  channel stride 1; affine instance norm after all but the first; LeakyReLU 0.2) giving raw
  scores (B, 1, P, P) (P = 6 at 64 px, 14 at 128 px); the loss form is the config's
  `loss.adv_kind` (`hfr.nn.gan.ADV_KINDS`). `d_norm="spectral"` uses spectral normalisation
  instead of instance norm. Unconditional by default (D sees only the image, so D_f can
  judge any real frontal face); `d_conditional=True` makes them pix2pix-conditional: D_d
  sees [x_occluded, mask, image] and D_f sees [its input, image], and `forward(x, cond)`
  then needs `cond`.
- Ours, initialisation: N(0, 0.02) (`hfr.nn.init_weights` kind "normal002", pix2pix's);
  for spectral-normalised discriminators the weights are initialised before the spectral
  normalisation is attached (init_weights cannot reach the hidden raw weight afterwards).

`width` multiplies every channel count (at least 4 each); 1.0 is the widths above. The CPU
recipes use 64 px and width 0.25-0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfr.errors import ConfigError
from hfr.nn.gan import D_NORMS, PIX2PIX_70, PatchGAN
from hfr.nn.layers import init_weights
from hfr.nn.sizing import check_choice, check_width, count_parameters, scaled
from hfr.nn.sizing import check_size as _check_size

#: Mask-attention priors understood by `MaskAttention`.
PRIORS: tuple[str, ...] = ("gate", "scale", "none")
#: Generator normalisation layers.
G_NORMS: tuple[str, ...] = ("instance", "batch", "none")
#: U-Net channels per encoder stage at width 1 (stages past the list keep the last value).
UNET_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)
#: Decoder stages (counted from the bottleneck) that get dropout when `dropout` > 0 (pix2pix).
DROPOUT_STAGES = 3


def check_size(size: int) -> int:
    """`size` if it is a power of two >= 32 (the U-Net halves it down to a 4 x 4 bottleneck), else ConfigError."""
    return _check_size(
        size, "TSGAN image size", minimum=32, power_of_two=True, why="64 for the CPU recipes, 128 as the paper"
    )


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The mask (B, 1, S, S) averaged down to (B, 1, height, width): the occluded fraction of each cell."""
    if mask.shape[-2:] == (height, width):
        return mask
    return F.adaptive_avg_pool2d(mask, (height, width))


class MaskAttention(nn.Module):
    """MAM: batch attention A = softmax(K Q^T / sqrt(C)) on a skip feature map, with the mask as prior.

    forward(x (B, C, H, W), mask (B, 1, h, w) or None) -> (B, C, H, W); with
    `return_attention=True` it returns (output, A) where A is (B, B) and each row sums to one.
    See the module docstring for the three priors ("gate", "scale", "none").
    """

    def __init__(self, channels: int, kernel_size: int = 3, prior: str = "gate") -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"TSGAN mask-attention kernel size must be odd and >= 1, got {kernel_size}")
        self.channels = channels
        self.prior = check_choice(prior, PRIORS, "TSGAN mask-attention prior")
        self.key = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.query = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """A (B, B) of a feature map x (B, C, H, W), in float32: softmax over the last dim."""
        pooled = x.float().mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C): C is the 1-D convolution's axis
        with torch.autocast(device_type=x.device.type, enabled=False):
            k = F.conv1d(pooled, self.key.weight.float(), padding=self.key.padding).squeeze(1)
            q = F.conv1d(pooled, self.query.weight.float(), padding=self.query.padding).squeeze(1)
            return torch.softmax(k @ q.transpose(0, 1) / math.sqrt(self.channels), dim=-1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """X_m + the attention-re-weighted term (and A when `return_attention`)."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"MaskAttention: expected (B, {self.channels}, H, W) features, got {tuple(x.shape)}")
        m = None
        if mask is not None and self.prior != "none":
            if mask.ndim != 4 or mask.shape[0] != x.shape[0] or mask.shape[1] != 1:
                raise ValueError(
                    f"MaskAttention: expected a (B, 1, H, W) mask for {x.shape[0]} samples, got {tuple(mask.shape)}"
                )
            m = resize_mask(mask.to(x.dtype), x.shape[2], x.shape[3])
        if m is not None and self.prior == "gate":
            values = x * (1.0 - m)
        else:
            values = x
        a = self.attention(values)
        mixed = (a.to(x.dtype) @ values.flatten(1)).view_as(x)
        if m is not None and self.prior == "scale":
            mixed = m * mixed
        out = x + mixed
        return (out, a) if return_attention else out


class _Down(nn.Sequential):
    """Encoder stage: 4x4 stride-2 convolution, norm (none on the first stage), LeakyReLU 0.2."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 4, 2, 1, bias=norm == "none"), _norm2d(norm, cout), nn.LeakyReLU(0.2, inplace=True)
        )


class _Up(nn.Sequential):
    """Decoder stage: 4x4 stride-2 transposed convolution, norm, optional dropout, ReLU."""

    def __init__(self, cin: int, cout: int, norm: str, dropout: float) -> None:
        layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm == "none"), _norm2d(norm, cout)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNetGenerator(nn.Module):
    """U-Net encoder-decoder with a MAM on each skip connection: (B, in, S, S) -> (B, C, S, S) in [-1, 1].

    `in_channels` is what the first convolution sees (C + 1 for G_d's [x, mask]); `channels`
    is the image's C. `mam=False` gives the plain U-Net (skips concatenated as they are).
    """

    def __init__(
        self,
        size: int,
        in_channels: int,
        channels: int = 3,
        width: float = 1.0,
        mam: bool = True,
        prior: str = "gate",
        norm: str = "instance",
        dropout: float = 0.0,
        attention_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.size, self.channels, self.in_channels = check_size(size), channels, in_channels
        check_width(width, "TSGAN width")
        check_choice(norm, G_NORMS, "TSGAN generator norm")
        check_choice(prior, PRIORS, "TSGAN mask-attention prior")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"TSGAN generator dropout must be in [0, 1), got {dropout}")
        self.num_stages = int(math.log2(size)) - 2
        widths = [scaled(UNET_CHANNELS[min(i, len(UNET_CHANNELS) - 1)], width) for i in range(self.num_stages)]
        self.widths = widths
        self.down = nn.ModuleList(
            _Down(in_channels if i == 0 else widths[i - 1], widths[i], "none" if i == 0 else norm)
            for i in range(self.num_stages)
        )
        # up[j] doubles the resolution from stage (n-1-j) to stage (n-2-j); its input is the
        # previous decoder output concatenated with the skip of its resolution (none at the bottleneck).
        up: list[nn.Module] = []
        for j in range(self.num_stages - 1):
            level = self.num_stages - 1 - j
            cin = widths[level] if j == 0 else 2 * widths[level]
            up.append(_Up(cin, widths[level - 1], norm, dropout if j < DROPOUT_STAGES else 0.0))
        self.up = nn.ModuleList(up)
        self.to_image = nn.ConvTranspose2d(2 * widths[0], channels, 4, 2, 1)
        self.mam = (
            nn.ModuleList(MaskAttention(widths[i], attention_kernel, prior) for i in range(self.num_stages - 1))
            if mam
            else None
        )

    def run(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The U-Net on an already assembled input `h`, with `mask` (or None) as the MAMs' prior."""
        skips: list[torch.Tensor] = []
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = skips.pop()  # the bottleneck
        for up in self.up:
            h = up(h)
            skip = skips.pop()
            if self.mam is not None:
                skip = self.mam[len(skips)](skip, mask)
            h = torch.cat([h, skip], dim=1)
        return torch.tanh(self.to_image(h))

    def _check_image(self, x: torch.Tensor, channels: int, what: str) -> None:
        if x.ndim != 4 or x.shape[1] != channels or x.shape[2] != self.size or x.shape[3] != self.size:
            raise ValueError(
                f"{type(self).__name__}: expected {what} of shape (B, {channels}, {self.size}, "
                f"{self.size}), got {tuple(x.shape)}"
            )


class DeocclusionGenerator(UNetGenerator):
    """G_d: (occluded image (B, C, S, S) in [-1, 1], mask (B, 1, S, S), 1 = occluded) -> de-occluded image.

    The mask is both an input channel and the MAMs' prior. `composite=True` keeps the visible
    pixels of the input: out = mask * G + (1 - mask) * x (off by default: the whole image is
    generated, as the pixel loss compares the whole image to the clean one).
    """

    def __init__(
        self,
        size: int,
        channels: int = 3,
        width: float = 1.0,
        mam: bool = True,
        prior: str = "gate",
        norm: str = "instance",
        dropout: float = 0.0,
        attention_kernel: int = 3,
        composite: bool = False,
    ) -> None:
        super().__init__(size, channels + 1, channels, width, mam, prior, norm, dropout, attention_kernel)
        self.composite = composite

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The de-occluded image in [-1, 1]."""
        self._check_image(x, self.channels, "occluded images")
        self._check_image(mask, 1, "occlusion masks")
        mask = mask.to(x.dtype)
        y = self.run(torch.cat([x, mask], dim=1), mask)
        return mask * y + (1.0 - mask) * x if self.composite else y


class FrontalizationGenerator(UNetGenerator):
    """G_f: de-occluded (profile) image (B, C, S, S) in [-1, 1] -> frontal image in [-1, 1].

    `mask` (optional, (B, 1, S, S)) is only the MAMs' prior (e.g. the stage-1 occlusion mask);
    without it the MAMs run with no prior.
    """

    def __init__(
        self,
        size: int,
        channels: int = 3,
        width: float = 1.0,
        mam: bool = True,
        prior: str = "gate",
        norm: str = "instance",
        dropout: float = 0.0,
        attention_kernel: int = 3,
    ) -> None:
        super().__init__(size, channels, channels, width, mam, prior, norm, dropout, attention_kernel)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The frontalized image in [-1, 1]."""
        self._check_image(x, self.channels, "images")
        if mask is not None:
            self._check_image(mask, 1, "prior masks")
            mask = mask.to(x.dtype)
        return self.run(x, mask)


class PatchDiscriminator(PatchGAN):
    """D_d or D_f: the pix2pix 70 x 70 PatchGAN giving raw scores (B, 1, P, P), higher = more real.

    `hfr.nn.gan.PatchGAN` with the `PIX2PIX_70` layout (module docstring); `cond_channels` > 0
    makes it conditional: forward(x, cond) scores cat([cond, x]).
    """

    def __init__(
        self,
        size: int,
        channels: int = 3,
        width: float = 1.0,
        cond_channels: int = 0,
        norm: str = "instance",
        init: str | None = "normal002",
    ) -> None:
        size = check_size(size)
        check_width(width, "TSGAN discriminator width")
        check_choice(norm, D_NORMS, "TSGAN discriminator norm")
        super().__init__(channels, PIX2PIX_70, width, norm, cond_channels, init)
        self.size, self.channels = size, channels


@dataclass
class TSGANModels:
    """Every TSGAN network: stage 1 (g_d, d_d, de-occlusion) and stage 2 (g_f, d_f, frontalization)."""

    g_d: DeocclusionGenerator
    d_d: PatchDiscriminator
    g_f: FrontalizationGenerator
    d_f: PatchDiscriminator

    def to(self, device: torch.device | str) -> TSGANModels:
        """Move every network to `device`; return self."""
        for m in (self.g_d, self.d_d, self.g_f, self.d_f):
            m.to(device)
        return self

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per network: {"g_d", "d_d", "g_f", "d_f"}."""
        return {
            "g_d": count_parameters(self.g_d),
            "d_d": count_parameters(self.d_d),
            "g_f": count_parameters(self.g_f),
            "d_f": count_parameters(self.d_f),
        }


def build_tsgan(
    size: int = 128,
    width: float = 1.0,
    channels: int = 3,
    mam: bool = True,
    prior: str = "gate",
    f_prior: str | None = None,
    norm: str = "instance",
    dropout: float = 0.0,
    attention_kernel: int = 3,
    composite: bool = False,
    d_width: float | None = None,
    d_norm: str = "instance",
    d_conditional: bool = False,
    init: str | None = "normal002",
) -> TSGANModels:
    """Build G_d, D_d, G_f, D_f.

    size: power of two >= 32 (128 = the paper). width: generator channel multiplier (1 = the
    widths in the module docstring); d_width: the discriminators' (default `width`).
    mam: mask attention on the U-Net skips; prior: G_d's MAM prior ("gate", "scale", "none");
    f_prior: G_f's (default `prior`; used only when G_f is given a mask). d_conditional:
    D_d sees [x_occluded, mask, image] (cond = C + 1 channels), D_f [input, image] (cond = C).
    init: an `hfr.nn.init_weights` kind ("normal002" = pix2pix's N(0, 0.02)) or None for
    PyTorch's default.
    """
    check_size(size)
    check_width(width, "TSGAN width")
    dw = width if d_width is None else check_width(d_width, "TSGAN discriminator width")
    if channels not in (1, 3):
        raise ConfigError(f"TSGAN images have 1 or 3 channels, got {channels}")
    g_d = DeocclusionGenerator(size, channels, width, mam, prior, norm, dropout, attention_kernel, composite)
    g_f = FrontalizationGenerator(
        size, channels, width, mam, prior if f_prior is None else f_prior, norm, dropout, attention_kernel
    )
    d_d = PatchDiscriminator(size, channels, dw, channels + 1 if d_conditional else 0, d_norm, init)
    d_f = PatchDiscriminator(size, channels, dw, channels if d_conditional else 0, d_norm, init)
    if init is not None:
        init_weights(g_d, init)
        init_weights(g_f, init)
    return TSGANModels(g_d=g_d, d_d=d_d, g_f=g_f, d_f=d_f)
