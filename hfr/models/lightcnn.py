"""LightCNN-9, LightCNN-29 and LightCNN-29v2 face recognizers, and import of the released weights.

The architectures are those of Wu, He, Sun, Tan, "A Light CNN for Deep Face Representation
with Noisy Labels" (TIFS 2018) as released in the authors' PyTorch code
(AlfredXiangWu/LightCNN). Every layer is a max-feature-map (MFM, see `hfr.nn.layers`):

| arch | body | pooling | feature layer | classifier |
| --- | --- | --- | --- | --- |
| lightcnn9 | MFM 5x5 conv, 4 groups | 2x2 max | MFM linear -> 256 (`fc1`) | linear with bias (`fc2`) |
| lightcnn29 | MFM 5x5 conv, 4 groups, 1+2+3+4 res blocks | 2x2 max | MFM linear -> 256 (`fc`) | linear + bias (`fc2`) |
| lightcnn29v2 | as lightcnn29 | 2x2 max + 2x2 average | plain linear -> 256 (`fc`) | linear, no bias (`fc2`) |

Input: grayscale faces in [0, 1], (B, 1, S, S) with S = 128 by default. Other sizes work
when S is a multiple of 16 (64, 96, 112, ...): the feature layer's input width is
128 * (S / 16) ** 2, derived from S. Parameter counts without the classifier at 128 px:
lightcnn9 5,480,864; lightcnn29 12,573,280; lightcnn29v2 10,475,872 (as the official models).

API (one for training and embedding):
- `model(x)` returns the (B, 256) feature (the official code's second output, before dropout).
- `model.classify(feat)` returns the (B, num_classes) logits: dropout (p = `model.dropout`,
  only in training mode, as the official code) then `fc2`. With `num_classes=0` there is no
  classifier and `classify` raises ArgumentError.
- `model.forward_with_logits(x)` returns `(logits, feat)` like the official `forward`.
  In eval mode both are the official ones exactly. In training mode the official -9 and -29
  return the feature after dropout; here the feature is always the one before dropout (as
  -29v2 does), and the logits are the official ones.

Checkpoint names: parameter names are identical to the official code's. The released
checkpoints (`{'state_dict': {'module.<name>': tensor}, ...}`, saved from DataParallel) map
key for key after removing the `module.` prefix:

| official key (in the file) | key here |
| --- | --- |
| `module.<name>` | `<name>` (e.g. `module.features.0.filter.weight` -> `features.0.filter.weight`) |
| anything else | same name (no renaming is needed) |

Speed on CPU (`benchmarks/recognizer_speed.py`): for inference put the model in
channels_last (`model.to(memory_format=torch.channels_last)`; a 1-channel input needs no
conversion) and run under `torch.inference_mode()`; set `MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2000000000` so glibc reuses the big activation blocks instead of
mapping fresh pages for every tensor; `torch.compile` adds about 10-25 % more. Each step
computes the same features (up to float rounding).

`load_official(path)` does this import; `build_lightcnn(arch, ...)` builds a fresh model.
Weights keep PyTorch's default initialisation, like the official code; call
`hfr.nn.init_weights(model, kind)` to use another scheme.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hfr.errors import ArgumentError, HFRError, ImageError
from hfr.nn.layers import MFM, Group, ResBlock
from hfr.nn.sizing import count_parameters as total_parameters
from hfr.safeload import load_weights_only

log = logging.getLogger(__name__)

ARCHITECTURES = ("lightcnn9", "lightcnn29", "lightcnn29v2")
#: hfr's variants beside the official architectures (no released weights): LightCNN-9 with BatchNorm.
VARIANTS = ("lightcnn9bn", "lightcnn9bn-w<width>")
FEATURE_DIM = 256
#: Classifier sizes of the released checkpoints (CASIA-WebFace + MS-Celeb-1M identities).
OFFICIAL_NUM_CLASSES = {"lightcnn9": 79077, "lightcnn29": 79077, "lightcnn29v2": 80013}
_BODY_CHANNELS = 128  # channels of the last feature map, flattened into the feature layer
_RES_BLOCKS = (1, 2, 3, 4)  # residual blocks per stage of LightCNN-29 and -29v2


def fc_input_size(input_size: int) -> int:
    """Width of the flattened last feature map for an S x S input: 128 * (S / 16) ** 2.

    Raises ArgumentError when S is not a positive multiple of 16 (the four 2x2 poolings).
    """
    if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 16 or input_size % 16:
        raise ArgumentError(
            f"input_size={input_size!r} does not work for LightCNN: it must be a positive multiple of 16 "
            "(four 2x2 poolings), e.g. 64, 96, 112 or 128"
        )
    side = input_size // 16
    return _BODY_CHANNELS * side * side


class LightCNN(nn.Module, abc.ABC):
    """Common part of the LightCNN variants: input check, feature API and classifier.

    Subclasses build the body, set `self.fc2` (a linear layer or None) and define
    `_features(x)`, the body from the input batch to the 256-d feature.
    Attributes: `arch`, `num_classes`, `input_size`, `in_channels`, `feature_dim`, `dropout`.
    """

    arch: str = ""
    fc2: nn.Linear | None

    def __init__(self, num_classes: int, input_size: int, in_channels: int) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ArgumentError(f"num_classes={num_classes!r} must be an integer >= 0 (0 builds no classifier)")
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ArgumentError(f"in_channels={in_channels!r} must be an integer >= 1 (1 for grayscale)")
        self.fc_in = fc_input_size(input_size)
        self.num_classes = num_classes
        self.input_size = input_size
        self.in_channels = in_channels
        self.feature_dim = FEATURE_DIM
        self.dropout = 0.5

    @abc.abstractmethod
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """The body: input batch -> (B, 256) feature (each variant defines it)."""

    def _classifier(self, bias: bool) -> nn.Linear | None:
        return nn.Linear(FEATURE_DIM, self.num_classes, bias=bias) if self.num_classes > 0 else None

    def _check_input(self, x: torch.Tensor) -> None:
        s = self.input_size
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2] != s or x.shape[3] != s:
            raise ImageError(
                f"{self.arch} expects a (B, {self.in_channels}, {s}, {s}) batch, got {tuple(x.shape)}; "
                f"resize the faces to {s}x{s} or build the model with input_size={x.shape[-1]}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (B, 256) face feature of a (B, in_channels, S, S) batch in [0, 1]."""
        self._check_input(x)
        return self._features(x)

    def classify(self, feat: torch.Tensor) -> torch.Tensor:
        """Return the identity logits of features from `forward` (dropout applies in training mode)."""
        if self.fc2 is None:
            raise ArgumentError(f"this {self.arch} was built with num_classes=0: it has no classifier")
        return self.fc2(F.dropout(feat, p=self.dropout, training=self.training))

    def forward_with_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(logits, feat)` as the official code's forward does."""
        feat = self(x)
        return self.classify(feat), feat

    def extra_repr(self) -> str:
        """Summary line for `print(model)`."""
        return f"arch={self.arch}, input_size={self.input_size}, num_classes={self.num_classes}"


class LightCNN9(LightCNN):
    """LightCNN-9: MFM conv 5x5 and four groups with 2x2 max pooling, MFM fc1 -> 256, fc2."""

    arch = "lightcnn9"
    norm = False
    #: channel multiplier of the body (1 = the official 48-96-192-128-128)
    width = 1.0

    def __init__(self, num_classes: int = 0, input_size: int = 128, in_channels: int = 1) -> None:
        super().__init__(num_classes, input_size, in_channels)

        def pool() -> nn.Module:
            return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)

        def c(n: int) -> int:
            return max(4, round(n * self.width))

        bn = self.norm
        self.features = nn.Sequential(
            MFM(in_channels, c(48), 5, 1, 2, norm=bn),
            pool(),
            Group(c(48), c(96), 3, 1, 1, norm=bn),
            pool(),
            Group(c(96), c(192), 3, 1, 1, norm=bn),
            pool(),
            Group(c(192), c(128), 3, 1, 1, norm=bn),
            Group(c(128), c(128), 3, 1, 1, norm=bn),
            pool(),
        )
        self.fc_in = self.fc_in * c(128) // _BODY_CHANNELS
        self.fc1 = MFM(self.fc_in, FEATURE_DIM, linear=True, norm=bn)
        self.fc2 = self._classifier(bias=True)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(torch.flatten(self.features(x), 1))


#: Floor of the per-image contrast in `standardise_images` (images in [0, 1]), so flat images stay finite.
CONTRAST_FLOOR = 0.05


def standardise_images(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation of a (B, C, H, W) batch: zero mean, unit contrast (std + CONTRAST_FLOOR),
    so global brightness and contrast (light, modality) carry no identity."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / (std + CONTRAST_FLOOR)


class LightCNN9BN(LightCNN9):
    """LightCNN-9 with BatchNorm before every MFM (convolutions and fc1) and on the 256-d feature
    (`bn_feat`, as margin-loss recognizers normalise their embedding: ArcFace's BN-FC-BN output), fed
    per-image standardised faces (`standardise_images`), at a channel `width` (arch `lightcnn9bn` = 1,
    `lightcnn9bn-w0.5` = half the channels).

    Not in the LightCNN paper or release: hfr's strong shared recognizer on SynthFace
    (configs/recognizer/synth-judge.yaml), where BatchNorm lets SGD train from scratch at a high
    learning rate, standardisation removes light and modality brightness, and half the width fits
    the few minutes a CPU affords (the README's judge benchmark measures each). No official
    checkpoint exists for it.
    """

    arch = "lightcnn9bn"
    norm = True

    def __init__(self, num_classes: int = 0, input_size: int = 128, in_channels: int = 1, width: float = 1.0) -> None:
        if not 0 < width <= 4:
            raise ArgumentError(f"width={width!r} must be in (0, 4]")
        self.width = float(width)
        super().__init__(num_classes, input_size, in_channels)
        self.arch = "lightcnn9bn" if self.width == 1.0 else f"lightcnn9bn-w{self.width:g}"
        self.bn_feat = nn.BatchNorm1d(FEATURE_DIM)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_feat(super()._features(standardise_images(x)))


def _stage(channels: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])


class LightCNN29(LightCNN):
    """LightCNN-29: MFM conv 5x5, residual stages (1, 2, 3, 4 blocks) and groups, 2x2 max pooling,
    MFM fc -> 256, fc2."""

    arch = "lightcnn29"

    def __init__(self, num_classes: int = 0, input_size: int = 128, in_channels: int = 1) -> None:
        super().__init__(num_classes, input_size, in_channels)
        self.conv1 = MFM(in_channels, 48, 5, 1, 2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.block1 = _stage(48, _RES_BLOCKS[0])
        self.group1 = Group(48, 96, 3, 1, 1)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.block2 = _stage(96, _RES_BLOCKS[1])
        self.group2 = Group(96, 192, 3, 1, 1)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.block3 = _stage(192, _RES_BLOCKS[2])
        self.group3 = Group(192, 128, 3, 1, 1)
        self.block4 = _stage(128, _RES_BLOCKS[3])
        self.group4 = Group(128, 128, 3, 1, 1)
        self.pool4 = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.fc = MFM(self.fc_in, FEATURE_DIM, linear=True)
        self.fc2 = self._classifier(bias=True)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.group1(self.block1(x)))
        x = self.pool3(self.group2(self.block2(x)))
        x = self.group3(self.block3(x))
        x = self.pool4(self.group4(self.block4(x)))
        return self.fc(torch.flatten(x, 1))


def _max_plus_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # In place on the fresh max-pool output (its backward uses the input and indices only).
    return F.max_pool2d(x, 2).add_(F.avg_pool2d(x, 2))


class LightCNN29v2(LightCNN):
    """LightCNN-29v2: the LightCNN-29 body with max + average pooling, a plain linear fc -> 256
    (no MFM) and a bias-free classifier fc2."""

    arch = "lightcnn29v2"

    def __init__(self, num_classes: int = 0, input_size: int = 128, in_channels: int = 1) -> None:
        super().__init__(num_classes, input_size, in_channels)
        self.conv1 = MFM(in_channels, 48, 5, 1, 2)
        self.block1 = _stage(48, _RES_BLOCKS[0])
        self.group1 = Group(48, 96, 3, 1, 1)
        self.block2 = _stage(96, _RES_BLOCKS[1])
        self.group2 = Group(96, 192, 3, 1, 1)
        self.block3 = _stage(192, _RES_BLOCKS[2])
        self.group3 = Group(192, 128, 3, 1, 1)
        self.block4 = _stage(128, _RES_BLOCKS[3])
        self.group4 = Group(128, 128, 3, 1, 1)
        self.fc = nn.Linear(self.fc_in, FEATURE_DIM)
        self.fc2 = self._classifier(bias=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = _max_plus_avg_pool(self.conv1(x))
        x = _max_plus_avg_pool(self.group1(self.block1(x)))
        x = _max_plus_avg_pool(self.group2(self.block2(x)))
        x = self.group3(self.block3(x))
        x = _max_plus_avg_pool(self.group4(self.block4(x)))
        return self.fc(torch.flatten(x, 1))


_CLASSES: dict[str, type[LightCNN]] = {
    "lightcnn9": LightCNN9,
    "lightcnn29": LightCNN29,
    "lightcnn29v2": LightCNN29v2,
    "lightcnn9bn": LightCNN9BN,
}


_WIDTH_VARIANT = re.compile(r"^lightcnn9bn[-_]?w([0-9]*\.?[0-9]+)$")


def build_lightcnn(arch: str, num_classes: int = 0, input_size: int = 128, in_channels: int = 1) -> LightCNN:
    """Build a LightCNN by name ("lightcnn9", "lightcnn29", "lightcnn29v2", hfr's "lightcnn9bn" and its
    width variants "lightcnn9bn-w0.5"; case and "-"/"_" ignored).

    num_classes=0 builds no classifier; input_size must be a multiple of 16. Raises ArgumentError
    for an unknown architecture or an impossible size.
    """
    match = _WIDTH_VARIANT.match(str(arch).lower())
    if match:
        return LightCNN9BN(num_classes, input_size, in_channels, width=float(match.group(1)))
    return _CLASSES[_arch_name(arch)](num_classes=num_classes, input_size=input_size, in_channels=in_channels)


def is_architecture(arch: str) -> bool:
    """Whether `build_lightcnn` knows `arch`."""
    if _WIDTH_VARIANT.match(str(arch).lower()):
        return True
    try:
        _arch_name(arch)
    except ArgumentError:
        return False
    return True


def _arch_name(arch: str) -> str:
    key = str(arch).lower().replace("-", "").replace("_", "")
    if key not in _CLASSES:
        raise ArgumentError(f"unknown LightCNN architecture {arch!r}; use one of {', '.join(ARCHITECTURES + VARIANTS)}")
    return key


def count_parameters(model: nn.Module, with_classifier: bool = False) -> int:
    """Number of parameters of `model`, leaving out the classifier `fc2` unless asked."""
    if with_classifier:
        return total_parameters(model)
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("fc2."))


# ---------------------------------------------------------------- official checkpoints

_PREFIX = "module."
# Keys that tell the architectures apart: the first conv and the feature layer.
_SIGNATURES = {
    "lightcnn9": ("features.0.filter.weight", "fc1.filter.weight"),
    "lightcnn29": ("conv1.filter.weight", "fc.filter.weight"),
    "lightcnn29v2": ("conv1.filter.weight", "fc.weight"),
}


def _read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a checkpoint file weights-only (`hfr.safeload`) and return its state dict without
    the `module.` prefix; HFRError when the file is missing, unreadable or needs pickle."""
    try:
        obj = load_weights_only(path, what="LightCNN checkpoint", missing_hint="check the path")
    except KeyError as exc:  # torch's legacy-format reader on a file that is no checkpoint at all
        raise HFRError(
            f"{path}: not a readable LightCNN checkpoint (bad header, KeyError {exc}); it may be "
            "truncated or of another format"
        ) from None
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping):
        raise HFRError(
            f"{path}: no state dict found (expected {{'state_dict': {{name: tensor}}}} or {{name: tensor}}, "
            f"got {type(obj).__name__})"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        name = str(key)
        out[name[len(_PREFIX) :] if name.startswith(_PREFIX) else name] = value
    if not out:
        raise HFRError(f"{path}: the checkpoint's state dict holds no tensors")
    return out


def _infer_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    for arch, keys in _SIGNATURES.items():
        if all(k in state for k in keys):
            return arch
    return None


def _list_keys(keys: list[str], limit: int = 8) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def load_official(path: str | os.PathLike, arch: str | None = None, num_classes: int | None = None) -> LightCNN:
    """Build a LightCNN from a released (or compatible) checkpoint and return it in eval mode.

    The file is read with `torch.load(..., weights_only=True)`: one that needs arbitrary
    pickled objects is refused with an HFRError. `{'state_dict': {...}}` and bare state dicts
    are accepted; the DataParallel prefix `module.` is removed. `arch` is inferred from the
    keys when None; `num_classes=None` keeps the file's classifier (79,077 / 80,013 for the
    released ones), 0 drops it, another value must match the file. The input size and channel
    count are derived from the weights. Missing, unexpected or mis-shaped keys raise an
    HFRError that lists them.
    """
    state = _read_checkpoint(path)
    found = _infer_arch(state)
    if arch is None:
        if found is None:
            raise HFRError(
                f"{path}: cannot tell which LightCNN this is (keys: {_list_keys(sorted(state))}); "
                f"pass arch= one of {', '.join(ARCHITECTURES)}"
            )
        arch = found
    wanted = _arch_name(arch)

    file_classes = int(state["fc2.weight"].shape[0]) if "fc2.weight" in state else 0
    if num_classes is None:
        num_classes = file_classes
    elif num_classes == 0:
        state = {k: v for k, v in state.items() if not k.startswith("fc2.")}
    elif num_classes != file_classes:
        raise HFRError(
            f"{path}: the checkpoint's classifier has {file_classes} classes but num_classes={num_classes} was "
            "asked; pass num_classes=None to keep it or 0 to drop it"
        )

    first_conv = state.get(_SIGNATURES[wanted][0])
    feat_layer = state.get(_SIGNATURES[wanted][1])
    in_channels = int(first_conv.shape[1]) if first_conv is not None and first_conv.dim() == 4 else 1
    input_size = 128
    if feat_layer is not None and feat_layer.dim() == 2:
        side = math.isqrt(int(feat_layer.shape[1]) // _BODY_CHANNELS)
        if side > 0 and _BODY_CHANNELS * side * side == feat_layer.shape[1]:
            input_size = 16 * side
    model = build_lightcnn(wanted, num_classes=num_classes, input_size=input_size, in_channels=in_channels)

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"checkpoint is {found}" if found else "checkpoint matches no LightCNN"
        raise HFRError(
            f"{path}: {what} but {wanted} was asked: missing keys {_list_keys(missing)}; "
            f"unexpected keys {_list_keys(unexpected)}"
        )
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        raise HFRError(f"{path}: tensor shapes do not match {wanted} (file vs model): {_list_keys(bad)}")
    model.load_state_dict(state, strict=True)
    log.info("loaded %s (input %d px, %d classes) from %s", wanted, input_size, num_classes, path)
    return model.eval()
