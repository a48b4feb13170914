"""Yaw-estimator files (`yaw_estimator.pt`, format `hfr-yaw-estimator/1`): write and load.

A plain dict, written atomically with `torch.save` (`hfr.fileio.atomic_open`) and read with
`torch.load(..., weights_only=True)` (`hfr.safeload.load_weights_only`):

| key | meaning |
| --- | --- |
| `format` | `"hfr-yaw-estimator/1"` |
| `size`, `channels` | the input spec: faces are (B, C, S, S) floats in [0, 1] |
| `config` | the network's settings (`YawNet.config()`: channels, widths) and `mirror` (flip averaging) |
| `state_dict` | the weights (CPU, contiguous) |
| `fingerprint` | `hfr.artifacts.fingerprint("yaw", arch, S, C, state_dict)`: which judge scored a generator |
| `meta` | provenance (JSON types): training manifest, steps, `eval` (own error on real test faces: the floor) |

    judge = load_yaw_estimator("runs/synth-yaw/latest/yaw_estimator.pt", device="cuda")
    yaw = judge.estimate(images)          # (N,) degrees; any size, 1 or 3 channels, in [0, 1]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hfr.artifacts import cpu_state, fingerprint, write_payload
from hfr.errors import HFRError
from hfr.pose.model import YawNet, predict_degrees
from hfr.safeload import load_weights_only

FORMAT = "hfr-yaw-estimator/1"
FILE_NAME = "yaw_estimator.pt"
KIND = "yaw"
_TRAIN_HINT = "train one with `hfr train-generator --config configs/judge/synth-yaw.yaml` (it writes yaw_estimator.pt)"


class YawEstimatorError(HFRError):
    """A yaw-estimator file is missing, unreadable, of another format or corrupt."""


def _arch(net_config: dict[str, Any]) -> str:
    return "yawnet-" + "-".join(str(int(w)) for w in net_config["widths"])


def export_yaw_estimator(
    net: YawNet, path: str | os.PathLike, size: int, mirror: bool = True, meta: dict[str, Any] | None = None
) -> str:
    """Write `net` as a yaw-estimator file atomically (weights copied to the CPU); returns its fingerprint."""
    state = cpu_state(net.state_dict())
    config: dict[str, Any] = {**net.config(), "mirror": bool(mirror)}
    fp = fingerprint(KIND, _arch(config), int(size), net.channels, state)
    payload = {
        "format": FORMAT,
        "size": int(size),
        "channels": int(net.channels),
        "config": config,
        "state_dict": state,
        "fingerprint": fp,
        "meta": meta or {},
    }
    write_payload(path, payload)
    return fp


@dataclass
class YawEstimator:
    """A loaded yaw estimator: the network in eval mode, its input spec and provenance."""

    model: YawNet
    size: int
    channels: int
    mirror: bool
    fingerprint: str
    meta: dict[str, Any]

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.model.parameters()).device

    def estimate(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Yaw in degrees (N,) (float32, CPU) of (N, C, H, W) faces in [0, 1] of any size, 1 or 3 channels.

        Eval mode, no gradients; with `mirror` (stored in the file, on by default) each face's
        estimate is averaged with its mirror image's, negated.
        """
        return predict_degrees(self.model, images, self.size, batch_size=batch_size, mirror=self.mirror)


def load_yaw_estimator(path: str | os.PathLike, device: torch.device | str = "cpu") -> YawEstimator:
    """Load a yaw-estimator file (a folder means its yaw_estimator.pt); YawEstimatorError naming it otherwise."""
    p = Path(path)
    if p.is_dir():
        p = p / FILE_NAME
    payload = load_weights_only(p, "yaw-estimator file", YawEstimatorError, missing_hint=_TRAIN_HINT)
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != FORMAT:
        raise YawEstimatorError(
            f"{p}: not an hfr yaw-estimator file (format {found!r}, expected {FORMAT!r}); "
            f"give the yaw_estimator.pt of a `yaw` run ({_TRAIN_HINT})"
        )
    assert isinstance(payload, dict)
    try:
        size, channels = int(payload["size"]), int(payload["channels"])
        config = dict(payload["config"])
        state = payload["state_dict"]
        model = YawNet(channels=int(config["channels"]), widths=[int(w) for w in config["widths"]])
        model.load_state_dict(state)
        fp = fingerprint(KIND, _arch(config), size, channels, state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise YawEstimatorError(
            f"{p}: yaw-estimator file with missing or mismatched parts ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); it is corrupt or was edited: {_TRAIN_HINT}"
        ) from None
    if fp != payload.get("fingerprint"):
        raise YawEstimatorError(
            f"{p}: fingerprint mismatch (file says {payload.get('fingerprint')}, weights give {fp}); "
            f"the file is corrupt or was edited: {_TRAIN_HINT}"
        )
    model.eval().to(device)
    return YawEstimator(model, size, channels, bool(config.get("mirror", True)), fp, dict(payload.get("meta") or {}))
