"""The `dlib-resnet` recognizer kind: dlib's pretrained ResNet face recognizer (128-d), offline.

The only pretrained face recognizer that installs offline here: dlib's
`dlib_face_recognition_resnet_model_v1` (a 29-layer ResNet trained by Davis King on about three
million real faces; 99.38% on LFW by its author), from the optional extra `dlib`
(`pip install -e ".[dlib]"`: `dlib-bin` and `face-recognition-models`, whose sdist ships the
`.dat` model files; CC0). `import face_recognition_models` itself fails on current setuptools (it
needs `pkg_resources`), so the files are found with `importlib.util.find_spec` instead. Only the
5-point predictor and the recognizer are used; the 68-point model in the same package is for
non-commercial use only and is never loaded. Without the extra, using the kind raises
`ExtraMissingError` naming the install command.

It is used like any recognizer (`hfr embed`, `hfr gallery`, `hfr search`, `hfr evaluate`): pass
`--recognizer dlib-resnet` (no file needed: `load_recognizer` asks the kind for its
pretrained payload), or a `recognizer.pt` written by `export_dlib_resnet`. Its input spec is
150 x 150 RGB. Each face goes through dlib's own alignment before the network: dlib's 5-point
predictor (eye corners and nose base) runs in a fixed face rectangle, the one an MTCNN-style face
occupies in a crop aligned with hfr's `lightcnn128` template (`hfr data align`'s and `--detect`'s
default), and `dlib.get_face_chip` (150 px, padding 0.25) cuts the chip the network was trained
on. So faces should come aligned with `lightcnn128` (or framed like it); `--detect` does that.

The network runs on the CPU (dlib-bin has no CUDA); inputs on another device are copied over and
the features returned there. The state dict holds one tensor, the SHA-256 of the two model files,
so the fingerprint that galleries check changes when the model files do.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hfr.errors import ExtraMissingError, HFRError

__all__ = ["DLIB_INSTALL", "ARCH", "INPUT_SIZE", "DlibResNet", "dlib_network", "model_files", "export_dlib_resnet"]

#: What to run to get the dlib-resnet recognizer.
DLIB_INSTALL = 'pip install -e ".[dlib]"'
#: The kind's name and its single architecture.
KIND = "dlib-resnet"
ARCH = "dlib_face_recognition_resnet_model_v1"
#: Input spec: 150 x 150 RGB, the size of dlib's face chips.
INPUT_SIZE = 150
FEATURE_DIM = 128
_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
_NETWORK = "dlib_face_recognition_resnet_model_v1.dat"
#: Where dlib's frontal face detector puts its box relative to MTCNN's 5 points, measured on the
#: astronaut (scikit-image): centred 0.48 of the way from the eye centre to the mouth centre, 2.40
#: eye-to-mouth distances wide; `_face_rect` applies it to the `lightcnn128` template's points.
_RECT_CENTRE = 0.48
_RECT_SIDE = 2.40


def _missing(what: str, exc: BaseException | str) -> ExtraMissingError:
    return ExtraMissingError(
        f"the dlib-resnet recognizer needs the optional extra `dlib` ({what} is not installed: {exc}); "
        f"install it with: {DLIB_INSTALL}"
    )


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise _missing("dlib-bin", exc) from None
    return dlib


def model_files() -> dict[str, Path]:
    """The model files used: {"predictor": the 5-point predictor, "network": the ResNet}.

    ExtraMissingError (naming the extra) when face-recognition-models or a file is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise _missing("face-recognition-models", "no package face_recognition_models")
    models = Path(folders[0]) / "models"
    files = {"predictor": models / _PREDICTOR, "network": models / _NETWORK}
    for path in files.values():
        if not path.is_file():
            raise _missing("face-recognition-models", f"{path} is missing; reinstall it")
    return files


@functools.lru_cache(maxsize=4)
def _digest(paths: tuple[str, ...]) -> bytes:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    return h.digest()


def _digest_tensor(files: dict[str, Path] | None = None) -> torch.Tensor:
    """The SHA-256 of the model files (predictor, then network) as a uint8 tensor (32,)."""
    files = files or model_files()
    digest = _digest(tuple(str(files[k]) for k in ("predictor", "network")))
    return torch.frombuffer(bytearray(digest), dtype=torch.uint8).clone()


def _face_rect(size: int) -> tuple[int, int, int, int]:
    """dlib's (left, top, right, bottom) face rectangle in a `lightcnn128`-aligned crop of `size` pixels."""
    from hfr.data.align import template_points

    pts = template_points("lightcnn128", size)[0].numpy()
    eyes, mouth = pts[:2].mean(axis=0), pts[3:].mean(axis=0)
    centre = eyes + _RECT_CENTRE * (mouth - eyes)
    half = _RECT_SIDE * float(np.linalg.norm(mouth - eyes)) / 2
    return (round(centre[0] - half), round(centre[1] - half), round(centre[0] + half), round(centre[1] + half))


class DlibResNet(nn.Module):
    """dlib's ResNet behind a torch module: (B, 3, S, S) faces in [0, 1] -> (B, 128) descriptors.

    Each face is re-aligned by dlib (5-point predictor in a fixed rectangle, `get_face_chip`)
    before the network (module docstring). `model_sha256` (a uint8 tensor, in the state dict)
    identifies the model files; loading a state dict of other files is a RecognizerError.
    """

    def __init__(self, size: int = INPUT_SIZE) -> None:
        super().__init__()
        dlib = _dlib()
        files = model_files()
        self._dlib = dlib
        self.size = int(size)
        self._predictor = dlib.shape_predictor(str(files["predictor"]))
        self._network = dlib.face_recognition_model_v1(str(files["network"]))
        self.model_sha256 = nn.Parameter(_digest_tensor(files), requires_grad=False)
        self.feature_dim = FEATURE_DIM

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Refuse the state of other model files (their digest differs), else load it."""
        theirs = state_dict.get("model_sha256")
        if theirs is not None and not torch.equal(theirs.cpu().to(torch.uint8), self.model_sha256.detach().cpu()):
            from hfr.recognizer.export import RecognizerError

            made, installed = bytes(theirs.tolist()).hex()[:16], bytes(self.model_sha256.tolist()).hex()[:16]
            raise RecognizerError(
                f"this dlib-resnet recognizer was made with other dlib model files (sha256 {made}..., "
                f"installed: {installed}...); "
                f"use --recognizer dlib-resnet or install the face-recognition-models version it was made with"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def chips(self, images: torch.Tensor) -> list[np.ndarray]:
        """dlib's aligned 150 x 150 uint8 RGB chips of a (B, 3, H, W) batch in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise HFRError(f"dlib-resnet needs (B, 3, H, W) RGB faces, got {tuple(images.shape)}")
        arrays = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        h, w = arrays.shape[1:3]
        if h != w:
            raise HFRError(f"dlib-resnet needs square faces, got {h} x {w}")
        rect = self._dlib.rectangle(*_face_rect(h))
        out = []
        for arr in arrays:
            img = np.ascontiguousarray(arr)
            shape = self._predictor(img, rect)
            out.append(self._dlib.get_face_chip(img, shape, size=INPUT_SIZE, padding=0.25))
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 128) float32 descriptors (dlib's, unnormalised; about unit length) on the input's device."""
        if len(images) == 0:
            return torch.zeros((0, FEATURE_DIM), device=images.device)
        descriptors = self._network.compute_face_descriptor(self.chips(images))
        return torch.from_numpy(np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32)).to(images.device)


class _DlibKind:
    """The `dlib-resnet` entry of `hfr.recognizer_kinds`: a builder plus the pretrained payload."""

    def __call__(self, arch: str, size: int, channels: int) -> nn.Module:
        """Build the network of a dlib-resnet recognizer file (arch, 150, 3 only)."""
        from hfr.recognizer.export import RecognizerError

        if arch != ARCH or channels != 3:
            raise RecognizerError(f"dlib-resnet: arch must be {ARCH!r} with 3 channels, got {arch!r} / {channels}")
        return DlibResNet(size)

    def pretrained(self) -> dict[str, Any]:
        """The payload of a recognizer file for the installed model (what `export_dlib_resnet` writes)."""
        _dlib()  # the missing extra is reported before anything else
        return {
            "kind": KIND,
            "arch": ARCH,
            "input": {"size": INPUT_SIZE, "channels": 3, "range": "0-1"},
            "feature_dim": FEATURE_DIM,
            "state_dict": {"model_sha256": _digest_tensor()},
            "meta": {"source": "dlib face_recognition_resnet_model_v1 (face-recognition-models)"},
        }


#: The builder registered as the `dlib-resnet` recognizer kind (pyproject entry point).
dlib_network = _DlibKind()


def export_dlib_resnet(path: str | os.PathLike) -> str:
    """Write a `recognizer.pt` of kind dlib-resnet (it holds the model files' digest, not the files).

    Returns its fingerprint, the same as `load_recognizer("dlib-resnet")` gives.
    """
    from hfr.artifacts import save_recognizer_file

    p = dlib_network.pretrained()
    return save_recognizer_file(path, KIND, ARCH, INPUT_SIZE, 3, FEATURE_DIM, p["state_dict"], p["meta"])
