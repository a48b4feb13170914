"""Exported recognizers: one `recognizer.pt` file holding what is needed to embed faces.

The file is a plain dict (loadable with `torch.load(..., weights_only=True)`):

| key | meaning |
| --- | --- |
| `format` | `"hfr-recognizer/1"` |
| `kind` | which builder makes the network (`lightcnn`; later methods register their own) |
| `arch` | the architecture within the kind (`lightcnn9`, `lightcnn29`, `lightcnn29v2`) |
| `input` | `{"size": S, "channels": C, "range": "0-1"}`: faces are (B, C, S, S) floats in [0, 1] |
| `feature_dim` | length of the feature vector |
| `state_dict` | the weights, without any classifier |
| `fingerprint` | 16 hex digits of SHA-256 over kind, arch, input spec and every weight |
| `meta` | free-form provenance (recipe, step, training data), JSON types only |

Faces of another size or channel count are converted to the input spec when embedding:
bilinear (antialiased) resize to S x S, RGB -> gray with ITU-R 601 weights (as PIL's "L"),
gray -> RGB by repetition. Galleries store the fingerprint and refuse probes embedded by a
recognizer with another one.

`load_recognizer` also accepts a generator file (`hfr-generator/1`, see
`hfr.generator_file`) of a method that registered a reader with
`register_generator_reader` (DR-GAN: its encoder G_enc is the recognizer); the
result, fingerprint included, is the same as the `recognizer.pt` exported from the
same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hfr.errors import HFRError
from hfr.fileio import atomic_open
from hfr.generator_file import FORMAT as GENERATOR_FORMAT
from hfr.safeload import load_weights_only

FORMAT = "hfr-recognizer/1"


class RecognizerError(HFRError):
    """A recognizer file is missing, malformed or of an unknown kind."""


Builder = Callable[[str, int, int], nn.Module]
_BUILDERS: dict[str, Builder] = {}


def register_kind(kind: str, builder: Builder) -> None:
    """Register how to build the network of `kind` from (arch, input size, channels)."""
    _BUILDERS[kind] = builder


def _build_lightcnn(arch: str, size: int, channels: int) -> nn.Module:
    from hfr.models.lightcnn import build_lightcnn

    return build_lightcnn(arch, num_classes=0, input_size=size, in_channels=channels)


register_kind("lightcnn", _build_lightcnn)

#: Turns a generator file's payload into a recognizer payload (the dict a recognizer.pt holds).
GeneratorReader = Callable[[dict[str, Any], Path], dict[str, Any]]
_GENERATOR_READERS: dict[str, GeneratorReader] = {}


def register_generator_reader(method: str, reader: GeneratorReader) -> None:
    """Register how a generator file of `method` gives a recognizer payload (see `load_recognizer`).

    `reader(payload, path)` returns a dict with the keys of a recognizer file (`kind`, `arch`,
    `input`, `feature_dim`, `state_dict`, `meta`; `fingerprint` is computed by the caller).
    """
    _GENERATOR_READERS[method] = reader


def _without_classifier(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
            for k, v in state.items() if not k.startswith("fc2")}


def fingerprint(kind: str, arch: str, size: int, channels: int, state: dict[str, torch.Tensor]) -> str:
    """16 hex digits identifying a recognizer's architecture, input spec and exact weights."""
    h = hashlib.sha256(f"{kind}|{arch}|{size}|{channels}".encode())
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        # reshape(-1): channels_last weights can be "contiguous" with a last stride > 1
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def export_recognizer(model: nn.Module, path: str | os.PathLike, kind: str = "lightcnn",
                      arch: str | None = None, input_size: int | None = None,
                      channels: int | None = None, meta: dict[str, Any] | None = None) -> str:
    """Write `model` (its classifier dropped) as a recognizer file atomically; return the fingerprint."""
    arch = arch or getattr(model, "arch", None)
    size = input_size or getattr(model, "input_size", None)
    chans = channels or getattr(model, "in_channels", None)
    if not arch or not size or not chans:
        raise RecognizerError("export_recognizer: pass arch, input_size and channels for this model")
    state = _without_classifier(model.state_dict())
    fp = fingerprint(kind, arch, int(size), int(chans), state)
    json.dumps(meta or {})  # provenance must stay JSON-serialisable (weights_only loading)
    payload = {"format": FORMAT, "kind": kind, "arch": arch,
               "input": {"size": int(size), "channels": int(chans), "range": "0-1"},
               "feature_dim": int(getattr(model, "feature_dim", 0) or 0), "state_dict": state,
               "fingerprint": fp, "meta": meta or {}}
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
    return fp


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

    def to(self, device: torch.device | str) -> "Recognizer":
        """Move the network to `device` (in place, channels_last) and return self."""
        self.model.to(device=device, memory_format=torch.channels_last)
        return self

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Convert a (B, C, H, W) batch in [0, 1] to this recognizer's input spec (see module doc)."""
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 3 and self.channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(dim=1, keepdim=True)
        elif x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != self.channels:
            raise RecognizerError(f"cannot convert {x.shape[1]}-channel images to the recognizer's "
                                  f"{self.channels} channels")
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
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
    payload = load_weights_only(p, "recognizer file", RecognizerError,
                                missing_hint="train one with `hfr train-recognizer` (it writes "
                                             "recognizer.pt in its run folder)")
    from_generator = isinstance(payload, dict) and payload.get("format") == GENERATOR_FORMAT
    if from_generator:
        payload = _generator_payload(payload, p)
    elif not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RecognizerError(f"{p}: not an hfr recognizer (format {payload.get('format') if isinstance(payload, dict) else None!r}, "
                              f"expected {FORMAT!r}); export one with `hfr train-recognizer`")
    kind = payload["kind"]
    if kind not in _BUILDERS:  # a generator package (drgan, ...) registers its kind when imported
        from hfr.engine.task import task_names

        task_names()
    if kind not in _BUILDERS:
        raise RecognizerError(f"{p}: unknown recognizer kind {kind!r}; known: {', '.join(sorted(_BUILDERS))}")
    spec = payload["input"]
    model = _BUILDERS[kind](payload["arch"], int(spec["size"]), int(spec["channels"]))
    result = model.load_state_dict(payload["state_dict"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fc2")]
    if missing or result.unexpected_keys:
        raise RecognizerError(f"{p}: weights do not match {payload['arch']}: missing {missing[:8]}, "
                              f"unexpected {list(result.unexpected_keys)[:8]}")
    fp = fingerprint(kind, payload["arch"], int(spec["size"]), int(spec["channels"]), payload["state_dict"])
    if not from_generator and fp != payload["fingerprint"]:
        raise RecognizerError(f"{p}: fingerprint mismatch (file says {payload['fingerprint']}, weights give "
                              f"{fp}); the file is corrupt or was edited")
    # channels_last spares oneDNN a layout reorder of every activation (see hfr.models.lightcnn)
    model.eval().to(device=device, memory_format=torch.channels_last)
    return Recognizer(model, kind, payload["arch"], int(spec["size"]), int(spec["channels"]), fp,
                      dict(payload.get("meta", {})))


def _generator_payload(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """The recognizer payload of a generator file, by its method's registered reader."""
    from hfr.generator_file import METHOD_NAMES

    method = payload.get("method")
    if method not in _GENERATOR_READERS:  # method packages register their reader when imported
        from hfr.engine.task import task_names

        task_names()
    if method not in _GENERATOR_READERS:
        what = METHOD_NAMES.get(str(method), f"a generator of method {method!r}")
        usable = ", ".join(sorted(_GENERATOR_READERS)) or "none"
        raise RecognizerError(f"{path}: this is {what}, which holds no recognizer (generator files usable as "
                              f"a recognizer: {usable}); give a recognizer.pt (`hfr train-recognizer`)")
    try:
        return {"format": FORMAT, **_GENERATOR_READERS[method](payload, path)}
    except (KeyError, TypeError, ValueError) as exc:
        raise RecognizerError(f"{path}: {method} generator file without what its recognizer needs "
                              f"({type(exc).__name__}: {exc}); it is corrupt or was edited") from None
