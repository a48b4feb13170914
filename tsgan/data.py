"""TSGAN training data: occluded profile faces with their mask, clean and frontal targets.

A training manifest has the SynthFace `occluded` layout (`hfr data synth --preset occluded`):
every occluded row names its occlusion kind (`occlusion`), its mask (`mask_path`, 255 =
occluded), the same render without the occluder (`clean_path`) and the subject's clean frontal
image (`frontal_path`). The training rows are the split's rows with an occlusion (the column
is neither empty nor `none`); the frontal rows are only targets.

`TSGANDataset` items (all tensors at `size` x `size`):

- `image`: the occluded face, float32 (C, S, S) in [-1, 1] (the generators' range);
- `mask`: float32 (1, S, S), 1 = occluded (area-averaged when the stored mask is larger than S,
  so it may be soft at the edges; nearest when smaller);
- `clean`, `frontal`: the stage-1 and stage-2 targets, (C, S, S) in [-1, 1];
- `label`: dense subject index; `index`: the manifest row.

Bad input is a DataError naming the manifest row and the column: an occluded row without
`mask_path` (unless `synthesize_masks`), without `clean_path` or `frontal_path`; a mask whose
stored size differs from its image's (both sizes named). With `synthesize_masks=True` a row
without a mask gets one built from its clean counterpart: a pixel is occluded where the largest
per-channel difference |image - clean| (in [0, 1]) exceeds `mask_threshold` (default 0.05: on
SynthFace `occluded` images at 32 and 64 px the built masks agree with the stored ones on 99.9%
of pixels, IoU 0.98-0.99; raise it for noisy, e.g. JPEG, images). Image files are checked when
the dataset is built (sizes read from the file headers), so a bad row stops training before the
first step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from hfr.data.imageio import read_image
from hfr.data.manifest import Manifest, read_training_rows
from hfr.errors import ArgumentError, DataError, ImageError
from hfr.nn.ranges import to_signed

log = logging.getLogger(__name__)

#: Occlusion values that mean "not occluded".
NOT_OCCLUDED: frozenset[str] = frozenset({"", "none"})
#: Target columns every training row needs.
TARGET_COLUMNS: tuple[str, ...] = ("clean_path", "frontal_path")


def is_occluded(record: object) -> bool:
    """Whether a manifest Record has an occlusion (its `occlusion` column is neither empty nor `none`)."""
    return str(record.get("occlusion", "")).strip().lower() not in NOT_OCCLUDED  # type: ignore[attr-defined]


def training_rows(path: str, split: str) -> Manifest:
    """The occluded rows of `split` of the manifest at `path`; DataError when none (or < 2 subjects)."""
    rows = read_training_rows(
        path, split, [], example="data/occluded", min_subjects=1, why="TSGAN needs occluded faces"
    )
    occluded = rows.filter(is_occluded)
    if len(occluded) == 0:
        raise DataError(
            f"{rows.source}: no row of split {split!r} has an occlusion (column `occlusion` empty or "
            f"`none` everywhere); render a set with `hfr data synth --preset occluded` or add the "
            f"occlusion, mask_path, clean_path and frontal_path columns"
        )
    if len(occluded.subjects()) < 2:
        raise DataError(
            f"{rows.source}: the occluded rows of split {split!r} hold {len(occluded.subjects())} "
            f"subject; the dual triplet loss needs at least 2"
        )
    log.info(
        "TSGAN training rows: %d occluded of %d in split %r (%d subjects)",
        len(occluded),
        len(rows),
        split,
        len(occluded.subjects()),
    )
    return occluded


def _header_size(manifest: Manifest, index: int, column: str, path: str) -> tuple[int, int]:
    """(width, height) of an image file from its header; ImageError naming the row and column."""
    file = manifest.resolve(path)
    try:
        with Image.open(file) as img:
            return img.size
    except FileNotFoundError:
        raise ImageError(
            f"{manifest.where(index)}: {column} file {file} not found; restore it or fix the row"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(
            f"{manifest.where(index)}: {column} file {file} cannot be decoded ({exc}); replace it or remove the row"
        ) from None


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) as float32 (C, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    return t.permute(2, 0, 1).contiguous().float().div_(255.0)


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """A (C, H, W) image in [0, 1] resized to (C, size, size) (antialiased bilinear; unchanged when equal)."""
    if image.shape[-2:] == (size, size):
        return image
    out = F.interpolate(image.unsqueeze(0), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.squeeze(0).clamp_(0.0, 1.0)


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A (1, H, W) mask in [0, 1] resized to (1, size, size): area average down, nearest up."""
    if mask.shape[-2:] == (size, size):
        return mask
    mode = "area" if mask.shape[-1] > size else "nearest-exact"
    return F.interpolate(mask.unsqueeze(0), size=(size, size), mode=mode).squeeze(0).clamp_(0.0, 1.0)


def mask_from_difference(image: torch.Tensor, clean: torch.Tensor, threshold: float) -> torch.Tensor:
    """(1, H, W) mask, 1 where max over channels |image - clean| > threshold (images (C, H, W) in [0, 1])."""
    if image.shape != clean.shape:
        raise ValueError(f"mask_from_difference: image {tuple(image.shape)} and clean {tuple(clean.shape)} differ")
    return ((image - clean).abs().amax(dim=0, keepdim=True) > threshold).float()


class TSGANDataset(Dataset):
    """Occluded faces with mask, clean and frontal targets (module docstring), images in [-1, 1]."""

    def __init__(
        self,
        manifest: Manifest,
        size: int,
        channels: int = 3,
        labels: Mapping[str, int] | None = None,
        synthesize_masks: bool = False,
        mask_threshold: float = 0.05,
        check_sizes: bool = True,
    ) -> None:
        if channels not in (1, 3):
            raise ArgumentError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels!r}")
        self.manifest, self.size, self.channels = manifest, int(size), channels
        self.mode = "L" if channels == 1 else "RGB"
        self.labels = dict(labels) if labels is not None else manifest.subject_index()
        self.synthesize_masks, self.mask_threshold = synthesize_masks, float(mask_threshold)
        self.synthesized = 0
        for i, rec in enumerate(manifest):
            if rec.subject not in self.labels:
                raise DataError(f"{manifest.where(i)}: subject {rec.subject!r} has no label in the given mapping")
            for col in TARGET_COLUMNS:
                if not rec.get(col):
                    raise DataError(
                        f"{manifest.where(i)}: empty {col} for {rec.path!r}; a TSGAN training row needs "
                        f"its {'clean (unoccluded) image' if col == 'clean_path' else 'frontal target'}"
                        f": fill the column or filter the row out"
                    )
            if not rec.get("mask_path"):
                if not synthesize_masks:
                    raise DataError(
                        f"{manifest.where(i)}: empty mask_path for {rec.path!r}; give the occlusion mask "
                        f"(255 = occluded), or set data.synthesize_masks=true to build it from "
                        f"|image - clean|"
                    )
                self.synthesized += 1
            elif check_sizes:
                self.check_mask_size(i)
        if self.synthesized:
            log.info(
                "%d of %d rows have no mask: built from |image - clean| > %g",
                self.synthesized,
                len(manifest),
                self.mask_threshold,
            )

    def check_mask_size(self, index: int) -> None:
        """DataError naming row `index` and both sizes when its stored mask's size differs from its image's."""
        rec = self.manifest[index]
        image_size = _header_size(self.manifest, index, "path", rec.path)
        mask_size = _header_size(self.manifest, index, "mask_path", rec.get("mask_path"))
        if image_size != mask_size:
            raise DataError(
                f"{self.manifest.where(index)}: mask_path {rec.get('mask_path')!r} is "
                f"{mask_size[0]}x{mask_size[1]} but its image {rec.path!r} is "
                f"{image_size[0]}x{image_size[1]}; store the mask at its image's size"
            )

    def __len__(self) -> int:
        return len(self.manifest)

    def _load(self, index: int, column: str, path: str, mode: str) -> torch.Tensor:
        try:
            return _to_tensor(read_image(self.manifest.resolve(path), mode))
        except ImageError as exc:
            raise ImageError(f"{self.manifest.where(index)} ({column}): {exc}") from None

    def __getitem__(self, index: int) -> dict:
        rec = self.manifest[index]
        image = self._load(index, "path", rec.path, self.mode)
        clean = self._load(index, "clean_path", rec.get("clean_path"), self.mode)
        if rec.get("mask_path"):
            mask = self._load(index, "mask_path", rec.get("mask_path"), "L")
            if mask.shape[-2:] != image.shape[-2:]:
                raise DataError(
                    f"{self.manifest.where(index)}: mask_path {rec.get('mask_path')!r} is "
                    f"{mask.shape[-1]}x{mask.shape[-2]} but its image {rec.path!r} is "
                    f"{image.shape[-1]}x{image.shape[-2]}; store the mask at its image's size"
                )
        else:
            if clean.shape != image.shape:
                raise DataError(
                    f"{self.manifest.where(index)}: cannot build a mask for {rec.path!r}: its clean image "
                    f"is {clean.shape[-1]}x{clean.shape[-2]}, the image {image.shape[-1]}x"
                    f"{image.shape[-2]}"
                )
            mask = mask_from_difference(image, clean, self.mask_threshold)
        frontal = self._load(index, "frontal_path", rec.get("frontal_path"), self.mode)
        s = self.size
        return {
            "image": to_signed(resize_image(image, s)),
            "mask": resize_mask(mask, s),
            "clean": to_signed(resize_image(clean, s)),
            "frontal": to_signed(resize_image(frontal, s)),
            "label": self.labels[rec.subject],
            "index": index,
        }
