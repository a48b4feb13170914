"""Reusable layers of the LightCNN family and weight-initialisation helpers.

- `MFM` (max-feature-map, Wu et al. 2018): a convolution or linear layer with twice the
  wanted outputs followed by the elementwise maximum of the two halves. It is the
  activation of every LightCNN layer (a competitive, learned "ReLU" that halves channels).
- `Group`: a 1x1 MFM convolution (same width) followed by a kxk MFM convolution.
- `ResBlock`: two 3x3 MFM convolutions and an identity shortcut.
- `init_weights`: re-initialise the conv/linear (and norm) layers of a module with one of
  the schemes the methods use (Xavier, Kaiming, or N(0, 0.02) as in DCGAN / DR-GAN).

The attribute names (`filter`, `conv_a`, `conv`, `conv1`, `conv2`) are those of the
official LightCNN code, so released checkpoints map onto these modules key for key.
"""

from __future__ import annotations

import torch
from torch import nn

from hfr.errors import ArgumentError

INIT_KINDS = ("xavier", "kaiming", "normal002")


class MFM(nn.Module):
    """Max-feature-map: a conv (or linear) layer with 2*out outputs, then max of the two halves.

    `MFM(in_ch, out_ch, kernel_size, stride, padding)` wraps `nn.Conv2d(in_ch, 2*out_ch, ...)`;
    `MFM(in_f, out_f, linear=True)` wraps `nn.Linear(in_f, 2*out_f)`. The output has
    `out_channels` channels (features): element i is `max(y[i], y[i + out_channels])` where
    `y` is the wrapped layer's output, as in the paper.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        linear: bool = False,
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.filter: nn.Module
        if linear:
            self.filter = nn.Linear(in_channels, 2 * out_channels, bias=not norm)
        else:
            self.filter = nn.Conv2d(
                in_channels, 2 * out_channels, kernel_size=kernel_size, stride=stride, padding=padding, bias=not norm
            )
        #: with `norm`, BatchNorm of the 2*out outputs before the max (the layer then has no bias)
        self.norm: nn.Module | None = None
        if norm:
            self.norm = nn.BatchNorm1d(2 * out_channels) if linear else nn.BatchNorm2d(2 * out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the wrapped layer (and BatchNorm) and return the elementwise max of the two output halves."""
        y = self.filter(x)
        if self.norm is not None:
            y = self.norm(y)
        c = self.out_channels
        # narrow() gives views: no copy of the halves, one fused elementwise kernel.
        return torch.maximum(y.narrow(1, 0, c), y.narrow(1, c, c))


class Group(nn.Module):
    """LightCNN "group": a 1x1 MFM conv keeping the width, then a kxk MFM conv to `out_channels`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.conv_a = MFM(in_channels, in_channels, 1, 1, 0, norm=norm)
        self.conv = MFM(in_channels, out_channels, kernel_size, stride, padding, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the 1x1 then the kxk MFM convolution."""
        return self.conv(self.conv_a(x))


class ResBlock(nn.Module):
    """LightCNN residual block: two 3x3 MFM convolutions plus the identity (no normalisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = MFM(channels, channels, 3, 1, 1)
        self.conv2 = MFM(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return `x + conv2(conv1(x))`."""
        # In place on the fresh MFM output (autograd keeps the max's inputs, not its result):
        # one large allocation fewer per block.
        return self.conv2(self.conv1(x)).add_(x)


_CONV_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


@torch.no_grad()
def init_weights(module: nn.Module, kind: str = "xavier") -> nn.Module:
    """Re-initialise every conv, transposed-conv and linear layer inside `module`; return it.

    kind:
    - "xavier": Xavier/Glorot normal weights, zero biases.
    - "kaiming": Kaiming normal weights (fan_in, ReLU gain), zero biases.
    - "normal002": weights ~ N(0, 0.02), zero biases; affine norm layers get scale ~ N(1, 0.02)
      and zero shift (the DCGAN convention that DR-GAN follows).
    With "xavier" and "kaiming", affine norm layers are reset to scale 1, shift 0.
    Raises ArgumentError for another kind.
    """
    if kind not in INIT_KINDS:
        raise ArgumentError(f"init kind {kind!r} is unknown; use one of {', '.join(INIT_KINDS)}")
    for m in module.modules():
        if isinstance(m, _CONV_LINEAR):
            if kind == "xavier":
                nn.init.xavier_normal_(m.weight)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            if kind == "normal002":
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
