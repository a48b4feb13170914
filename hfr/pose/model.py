"""`YawNet`: a small CNN that estimates head yaw (degrees) from a face in [0, 1].

Layout: for each width in `widths` (default 16-32-64-128) a 3x3 convolution, BatchNorm, ReLU and
a 2x2 max-pool; then global average pooling and one linear layer. The input is centred
(x - 0.5). The output is yaw / 90 (`SCALE`): `forward` returns it in those units, what the loss
sees; `degrees` multiplies by 90. We regress yaw directly (smooth L1 on yaw / 90) rather than
classify into bins: generated faces may sit between training poses, and a regressor answers in
degrees for any yaw; on SynthFace multipie the nominal poses are 15 degrees apart, so the bin
accuracy of a good regressor is close to 1 anyway.

`prepare(images, size, channels)` converts any (B, C, H, W) batch in [0, 1] to the network's
input spec as `hfr.recognizer.export` does (RGB -> gray by ITU-R 601, gray -> RGB by
repetition, bilinear antialiased resize). `predict_degrees` runs a network in eval mode without
gradients, in batches, optionally averaging each face with its mirror image
(yaw(x) = (f(x) - f(flip x)) / 2 * 90): the estimate is then exactly antisymmetric under a
horizontal flip, as yaw is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hfr.nn.ranges import to_channels

#: The network predicts yaw / SCALE.
SCALE = 90.0
#: The default channel widths of the four blocks.
DEFAULT_WIDTHS: tuple[int, ...] = (16, 32, 64, 128)


class YawNet(nn.Module):
    """Conv-BN-ReLU-maxpool blocks, global average pooling, linear: (B, C, S, S) in [0, 1] -> yaw / 90 (B,)."""

    def __init__(self, channels: int = 1, widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        self.channels = int(channels)
        self.widths = [int(w) for w in widths]
        layers: list[nn.Module] = []
        c_in = self.channels
        for w in self.widths:
            layers += [
                nn.Conv2d(c_in, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Yaw / 90 of each face (B,)."""
        h = self.features(x - 0.5)
        return self.head(h.mean(dim=(2, 3))).squeeze(1)

    def degrees(self, x: torch.Tensor) -> torch.Tensor:
        """Yaw in degrees of each face (B,)."""
        return self(x) * SCALE

    def config(self) -> dict[str, object]:
        """What rebuilds this network (JSON types): channels and widths."""
        return {"channels": self.channels, "widths": list(self.widths)}


def prepare(images: torch.Tensor, size: int, channels: int, device: torch.device | None = None) -> torch.Tensor:
    """A (B, C, H, W) batch in [0, 1] as float32 (B, `channels`, `size`, `size`) on `device` (module docstring)."""
    x = images.to(device=device if device is not None else images.device, dtype=torch.float32)
    x = to_channels(x, channels, "the yaw estimator's")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0.0, 1.0)
    return x.contiguous()


@torch.no_grad()
def predict_degrees(
    net: YawNet, images: torch.Tensor, size: int, batch_size: int = 256, mirror: bool = True
) -> torch.Tensor:
    """Yaw in degrees (N,) of (N, C, H, W) faces in [0, 1], on the CPU (float32).

    The network runs in eval mode, without gradients, `batch_size` faces at a time; its previous
    mode is restored. With `mirror`, each face is averaged with its negated mirror estimate.
    """
    if images.ndim != 4:
        from hfr.errors import ArgumentError

        raise ArgumentError(f"yaw estimation expects a (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if batch_size < 1:
        from hfr.errors import ArgumentError

        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out: list[torch.Tensor] = []
    try:
        for i in range(0, images.shape[0], batch_size):
            x = prepare(images[i : i + batch_size], size, net.channels, device)
            y = net(x)
            if mirror:
                y = (y - net(x.flip(-1))) / 2
            out.append((y.float() * SCALE).cpu())
    finally:
        net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
