"""Recognizers: build and load the network of a `recognizer.pt`, and embed faces with it.

The file format and its fingerprint live in `hfr.artifacts`. Faces of another size or channel
count are converted to the recognizer's input spec when embedding: bilinear (antialiased)
resize to S x S, RGB -> gray with ITU-R 601 weights (as PIL's "L"), gray -> RGB by repetition.
Galleries store the fingerprint and refuse probes embedded by a recognizer with another one.

Recognizer kinds (the network builder a file's `kind` names) come from the
`hfr.recognizer_kinds` entry points (`lightcnn` here, `drgan` for DR-GAN's G_enc, `dlib-resnet`
for dlib's pretrained ResNet in `hfr.recognizer.dlib_resnet`). A kind whose builder has a
`pretrained()` method ships its own weights: `load_recognizer("dlib-resnet")` loads it by name.
`load_recognizer` also accepts a generator file (`hfr-generator/1`) of a method that declares
an `hfr.generator_readers` entry point (DR-GAN: its encoder G_enc is the recognizer); the
result, fingerprint included, is the same as the `recognizer.pt` exported from the same weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hfr.artifacts import (
    GENERATOR_FORMAT,
    RECOGNIZER_FORMAT,
    fingerprint,
    save_recognizer_file,
)
from hfr.errors import HFRError
from hfr.nn.ranges import to_channels
from hfr.registry import Registry
from hfr.safeload import load_weights_only

#: The format of recognizer files (`hfr.artifacts.RECOGNIZER_FORMAT`).
FORMAT = RECOGNIZER_FORMAT


class RecognizerError(HFRError):
    """A recognizer file is missing, malformed or of an unknown kind."""


#: Builds the network of a recognizer kind from (arch, input size, channels).
Builder = Callable[[str, int, int], nn.Module]
#: Turns a generator file's payload into a recognizer payload (the dict a recognizer.pt holds).
GeneratorReader = Callable[[dict[str, Any], Path], dict[str, Any]]

#: Recognizer kinds (`kind` in a recognizer file) -> network builder; entry-point group `hfr.recognizer_kinds`.
RECOGNIZER_KINDS: Registry[Builder] = Registry("recognizer kind", "hfr.recognizer_kinds", RecognizerError)
#: Methods whose generator file holds a recognizer -> reader; entry-point group `hfr.generator_readers`.
GENERATOR_READERS: Registry[GeneratorReader] = Registry("generator reader", "hfr.generator_readers", RecognizerError)


def register_kind(kind: str, builder: Builder) -> None:
    """Register at run time how to build the network of `kind` from (arch, input size, channels).

    Packages declare `[project.entry-points."hfr.recognizer_kinds"] kind = "module:builder"` instead.
    """
    RECOGNIZER_KINDS.register(kind, builder)


def lightcnn_network(arch: str, size: int, channels: int) -> nn.Module:
    """The `lightcnn` kind's network: LightCNN `arch` without its classifier."""
    from hfr.models.lightcnn import build_lightcnn

    return build_lightcnn(arch, num_classes=0, input_size=size, in_channels=channels)


def register_generator_reader(method: str, reader: GeneratorReader) -> None:
    """Register at run time how a generator file of `method` gives a recognizer payload (`load_recognizer`).

    `reader(payload, path)` returns a dict with the keys of a recognizer file (`kind`, `arch`,
    `input`, `feature_dim`, `state_dict`, `meta`; `fingerprint` is computed by the caller).
    Packages declare `[project.entry-points."hfr.generator_readers"] method = "module:reader"` instead.
    """
    GENERATOR_READERS.register(method, reader)


def export_recognizer(
    model: nn.Module,
    path: str | os.PathLike,
    kind: str = "lightcnn",
    arch: str | None = None,
    input_size: int | None = None,
    channels: int | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """Write `model` (its classifier `fc2` dropped) as a recognizer file atomically; return the fingerprint."""
    arch = arch or getattr(model, "arch", None)
    size = input_size or getattr(model, "input_size", None)
    chans = channels or getattr(model, "in_channels", None)
    if not arch or not size or not chans:
        raise RecognizerError("export_recognizer: pass arch, input_size and channels for this model")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fc2")}
    return save_recognizer_file(
        path, kind, arch, int(size), int(chans), int(getattr(model, "feature_dim", 0) or 0), state, meta
    )


@dataclass
class Recognizer:
    """A loaded recognizer: the network in eval mode and its input spec."""

    model: nn.Module
    kind: str
    arch: str
    input_size: int
    channels: int
    fingerprint: str
    meta: dict[str, Any]

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> Recognizer:
        """Move the network to `device` (in place, channels_last) and return self."""
        self.model.to(device).to(memory_format=torch.channels_last)
        return self

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Convert a (B, C, H, W) batch in [0, 1] to this recognizer's input spec (see module doc)."""
        x = to_channels(images.to(self.device, torch.float32), self.channels, "the recognizer's")
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=True
            )
        return x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised features (B, D) of a batch of faces in [0, 1], on the recognizer's device."""
        return F.normalize(self.model(self.prepare(images)).float(), dim=1)


def load_recognizer(path: str | os.PathLike, device: torch.device | str = "cpu") -> Recognizer:
    """Load a recognizer file (weights only); errors name the file and what is wrong.

    `path` may also be a generator file of a method with a registered reader (DR-GAN's
    generator.pt gives its encoder), or a run folder: its recognizer.pt, else its generator.pt.
    """
    p = Path(path)
    if p.is_dir():
        only_generator = not (p / "recognizer.pt").is_file() and (p / "generator.pt").is_file()
        p = p / ("generator.pt" if only_generator else "recognizer.pt")
    pretrained = None if p.exists() else _pretrained_kind(str(path))
    if pretrained is not None:  # a pretrained kind named instead of a file (`--recognizer dlib-resnet`)
        payload = {"format": FORMAT, **pretrained()}
        payload["fingerprint"] = fingerprint(
            payload["kind"],
            payload["arch"],
            int(payload["input"]["size"]),
            int(payload["input"]["channels"]),
            payload["state_dict"],
        )
    else:
        payload = load_weights_only(
            p,
            "recognizer file",
            RecognizerError,
            missing_hint="train one with `hfr train-recognizer` (it writes recognizer.pt in its run folder), "
            "or name a pretrained kind (dlib-resnet)",
        )
    from_generator = isinstance(payload, dict) and payload.get("format") == GENERATOR_FORMAT
    if from_generator:
        payload = _generator_payload(payload, p)
    elif not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RecognizerError(
            f"{p}: not an hfr recognizer (format {payload.get('format') if isinstance(payload, dict) else None!r}, "
            f"expected {FORMAT!r}); export one with `hfr train-recognizer`"
        )
    kind = payload["kind"]
    build = RECOGNIZER_KINDS.get(str(kind), where=str(p))
    spec = payload["input"]
    model = build(payload["arch"], int(spec["size"]), int(spec["channels"]))
    result = model.load_state_dict(payload["state_dict"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fc2")]
    if missing or result.unexpected_keys:
        raise RecognizerError(
            f"{p}: weights do not match {payload['arch']}: missing {missing[:8]}, "
            f"unexpected {list(result.unexpected_keys)[:8]}"
        )
    fp = fingerprint(kind, payload["arch"], int(spec["size"]), int(spec["channels"]), payload["state_dict"])
    if not from_generator and fp != payload["fingerprint"]:
        raise RecognizerError(
            f"{p}: fingerprint mismatch (file says {payload['fingerprint']}, weights give "
            f"{fp}); the file is corrupt or was edited"
        )
    # channels_last spares oneDNN a layout reorder of every activation (see hfr.models.lightcnn)
    model.eval().to(device).to(memory_format=torch.channels_last)
    return Recognizer(
        model, kind, payload["arch"], int(spec["size"]), int(spec["channels"]), fp, dict(payload.get("meta", {}))
    )


def _pretrained_kind(name: str) -> Callable[[], dict[str, Any]] | None:
    """The `pretrained()` payload maker of a recognizer kind called `name` that ships its own
    weights (dlib-resnet), or None when `name` is no such kind."""
    if not name or any(sep in name for sep in ("/", os.sep)) or "." in name:
        return None
    builder = RECOGNIZER_KINDS.find(name)
    maker = getattr(builder, "pretrained", None)
    return maker if callable(maker) else None


def _generator_payload(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """The recognizer payload of a generator file, by its method's registered reader."""
    from hfr.artifacts import describe_method

    method = str(payload.get("method"))
    reader = GENERATOR_READERS.find(method)
    if reader is None:
        usable = ", ".join(GENERATOR_READERS.names()) or "none"
        raise RecognizerError(
            f"{path}: this is {describe_method(method)}, which holds no recognizer (generator "
            f"files usable as a recognizer: {usable}); give a recognizer.pt (`hfr train-recognizer`)"
        )
    try:
        return {"format": FORMAT, **reader(payload, path)}
    except (KeyError, TypeError, ValueError) as exc:
        raise RecognizerError(
            f"{path}: {method} generator file without what its recognizer needs "
            f"({type(exc).__name__}: {exc}); it is corrupt or was edited"
        ) from None
