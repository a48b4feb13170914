"""Image value ranges and channel conversions: one convention for the whole package.

The convention: images travel between modules in [0, 1] (datasets, recognizers, `hfr.viz`, the
engine's sample grids, files on disk as uint8 / 255). A network that works in [-1, 1] (DR-GAN's
and TSGAN's tanh generators) converts at its boundary with this pair of helpers:

- `to_signed(x)`: [0, 1] -> [-1, 1], x * 2 - 1 (exact inverse of `to_unit` inside the range).
- `to_unit(x)`: [-1, 1] -> [0, 1], x * 0.5 + 0.5, clamped to [0, 1].

DVG-Face's decoder ends in a sigmoid and works in [0, 1] throughout.

Channels: `rgb_to_gray` is ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B
(`kornia.color.rgb_to_grayscale`), what LightCNN's gray input and the released DVG-Face code's
`rgb2gray` use; `to_channels` turns a batch into 1 or 3 channels (gray -> RGB repeats the channel).
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_grayscale

from hfr.errors import ImageError


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] as [-1, 1]: x * 2 - 1 (the input of a tanh generator)."""
    return x * 2 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as [0, 1]: x * 0.5 + 0.5, clamped to [0, 1] (a tanh generator's output, for viewing)."""
    return (x * 0.5 + 0.5).clamp(0.0, 1.0)


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """RGB images (..., 3, H, W) as gray (..., 1, H, W): Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601)."""
    return rgb_to_grayscale(x)


def to_channels(x: torch.Tensor, channels: int, what: str = "the model's") -> torch.Tensor:
    """A batch (B, C, H, W) with C in {1, 3} as `channels` channels: RGB -> gray by `rgb_to_gray`, gray -> RGB by
    repeating the channel (an expanded view); unchanged when C == channels.

    Raises ImageError when C cannot be converted (e.g. 2 or 4 channels); `what` names whose channel
    count it is in the message ("the recognizer's", "the generator's").
    """
    c = x.shape[1]
    if c == channels:
        return x
    if c == 3 and channels == 1:
        return rgb_to_gray(x)
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    raise ImageError(
        f"cannot convert {c}-channel images to {what} {channels} channels; give gray (1-channel) or "
        f"RGB (3-channel) images"
    )
