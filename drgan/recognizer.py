"""DR-GAN's encoder G_enc as an hfr recognizer (kind `drgan`).

The identity feature f(x) (N_f-d, average-pooled Conv53) is DR-GAN's face representation
(Tran et al., Sec. 3.3: "f(x) is used for face recognition"). A `recognizer.pt` of kind
`drgan` holds G_enc only; `hfr embed`, `hfr gallery build`, `hfr search` and `hfr evaluate`
use it like a LightCNN. The arch string encodes the encoder's shape: `casia-w<width>` or
`casia-w<width>-multi` (with the confidence head omega). A DR-GAN `generator.pt` works as a
recognizer too: `load_recognizer` reads its G_enc weights through the generator reader
registered here, with the same fingerprint as the `recognizer.pt` exported from them.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch
from torch import nn

from drgan.models import Encoder, Generator
from hfr.artifacts import fingerprint
from hfr.nn.ranges import to_signed
from hfr.recognizer.export import Recognizer, RecognizerError, export_recognizer

KIND = "drgan"
_ARCH = re.compile(r"^casia-w(?P<width>[0-9.]+)(?P<multi>-multi)?$")


def encoder_arch(width: float, multi_image: bool) -> str:
    """The arch string of an encoder: `casia-w0.5` or `casia-w0.5-multi`."""
    return f"casia-w{width:g}" + ("-multi" if multi_image else "")


def parse_arch(arch: str) -> tuple[float, bool]:
    """(width, multi_image) of an arch string made by `encoder_arch`."""
    m = _ARCH.match(arch)
    if not m:
        raise RecognizerError(f"unknown DR-GAN encoder arch {arch!r}; expected 'casia-w<width>[-multi]'")
    return float(m["width"]), bool(m["multi"])


class EncoderFeatures(nn.Module):
    """G_enc for images in [0, 1]: `forward` gives f(x); `confidence` gives omega (multi-image)."""

    def __init__(self, encoder: Encoder, arch: str, input_size: int, in_channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.arch, self.input_size, self.in_channels = arch, input_size, in_channels
        self.feature_dim = encoder.feature_dim

    @property
    def has_confidence(self) -> bool:
        """True when the encoder has the multi-image confidence head."""
        return self.encoder.trunk.confidence is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) (B, N_f) of images in [0, 1]."""
        return self.encoder(to_signed(x))[0]

    def features_and_confidence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(x), omega) of images in [0, 1]; omega is 1 for an encoder without the head."""
        f, omega = self.encoder(to_signed(x))
        return f, (omega if omega is not None else torch.ones(len(f), device=f.device, dtype=f.dtype))


def encoder_network(arch: str, size: int, channels: int) -> nn.Module:
    """The `drgan` recognizer kind's network: G_enc of the width and kind `arch` names (entry point)."""
    width, multi = parse_arch(arch)
    return EncoderFeatures(Encoder(channels, width, confidence=multi), arch, size, channels)


def encoder_from_generator_file(payload: dict[str, Any], path: os.PathLike) -> dict[str, Any]:
    """The recognizer payload (kind `drgan`) of a DR-GAN generator file: G_enc's weights, no decoder.

    The `hfr.generator_readers` entry point `drgan`: `hfr.recognizer.export.load_recognizer` takes a
    DR-GAN generator.pt as a recognizer through it.
    """
    config = payload["config"]
    state = {k: v for k, v in payload["modules"]["generator"].items() if k.startswith("encoder.")}
    if not state:
        raise KeyError(f"no 'encoder.*' weights in {os.fspath(path)}")
    width, multi = float(config["width"]), int(config["multi_image"]) >= 2
    feature_dim = state["encoder.trunk.last.0.weight"].shape[0]
    meta = {k: v for k, v in dict(payload.get("meta", {})).items() if k != "fingerprint"}
    meta.update(source="generator.pt", generator_fingerprint=str(payload.get("meta", {}).get("fingerprint", "")))
    return {
        "kind": KIND,
        "arch": encoder_arch(width, multi),
        "input": {"size": int(config["size"]), "channels": int(config["channels"]), "range": "0-1"},
        "feature_dim": int(feature_dim),
        "state_dict": state,
        "meta": meta,
    }


def encoder_module(generator: Generator, width: float) -> EncoderFeatures:
    """A view of `generator`'s G_enc (shared weights) as a recognizer network."""
    multi = generator.encoder.trunk.confidence is not None
    return EncoderFeatures(generator.encoder, encoder_arch(width, multi), generator.size, generator.channels)


def as_recognizer(generator: Generator, width: float) -> Recognizer:
    """The generator's current G_enc as a Recognizer (shares weights; `embed` runs it in eval mode)."""
    net = encoder_module(generator, width)
    fp = fingerprint(KIND, net.arch, net.input_size, net.in_channels, net.state_dict())
    return Recognizer(net, KIND, net.arch, net.input_size, net.in_channels, fp, {})


def export_encoder(
    generator: Generator, width: float, path: str | os.PathLike, meta: dict[str, Any] | None = None
) -> str:
    """Write G_enc as a `recognizer.pt` of kind `drgan` (atomic); returns its fingerprint."""
    net = encoder_module(generator, width)
    return export_recognizer(net, path, kind=KIND, meta=meta)
