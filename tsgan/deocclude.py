"""Remove occlusions from face images with a trained TSGAN (and optionally frontalize them).

    loaded = load_tsgan("runs/tsgan-synth-occluded/latest/generator.pt")
    result = deocclude_folder(loaded, "faces/", "out/", masks="faces_masks/", frontalize=True)

For each input image (a file, or every image file directly inside a folder, in name order)
`deocclude_folder` writes `out/deoccluded/<name>.png` (G_d's output) and, with `frontalize`,
`out/frontalized/<name>.png` (G_f's), plus `out/grid.png`: one row per input (the first
`grid_limit`) with columns input, mask, de-occluded ("out") and, with `frontalize`, frontalized
("front").

Masks: with `masks` (a folder), each input's mask is the file of the same name there (255 =
occluded, read as grayscale; a missing or differently sized mask is an error naming both
files). Without masks every input gets an all-zero mask: nothing is marked occluded, so G_d
sees no hint where the occluder is and leans on what it learned (expect weaker results than
with masks). Inputs are read as the generator's channels and resized to its size S (outputs
are S x S); masks are resized with them (area average down).

Batches: the mask-attention modules mix samples of one batch, so a face's output depends on
its batch companions. Inputs run in batches of the training batch size (stored in
generator.pt); a last short batch (or a run with fewer images) is filled up by repeating the
run's images from the first one, and the filler outputs are dropped. The same inputs in the
same order give the same outputs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hfr.data.imageio import read_image, write_png
from hfr.errors import ArgumentError, DataError
from hfr.nn.ranges import to_signed, to_unit
from hfr.viz import labelled_grid, save_image, tensor_to_images
from tsgan.data import resize_image, resize_mask
from tsgan.export import LoadedTSGAN

log = logging.getLogger(__name__)

#: File suffixes read as images when the input is a folder.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass
class DeoccludeResult:
    """What `deocclude_folder` wrote."""

    inputs: list[Path]  #: the input images, in processing order
    deoccluded: list[Path]  #: out/deoccluded/<name>.png, one per input
    frontalized: list[Path] = field(default_factory=list)  #: out/frontalized/<name>.png (with frontalize)
    grid: Path | None = None  #: out/grid.png
    masked: bool = False  #: whether masks were given
    batch_size: int = 0  #: the batch size the generators ran with

    @property
    def count(self) -> int:
        """Number of input images."""
        return len(self.inputs)


def list_inputs(input_path: str | os.PathLike) -> list[Path]:
    """The image files of `input_path` (a file, or a folder's image files in name order); DataError otherwise."""
    p = Path(input_path)
    if p.is_file():
        return [p]
    if not p.exists():
        raise DataError(f"{p}: input not found; give an image file or a folder of face images")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"{p}: the folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); give a folder of face images"
        )
    return files


def _mask_file(masks: Path, image: Path) -> Path:
    if masks.is_file():
        return masks
    exact = masks / image.name
    if exact.is_file():
        return exact
    for suffix in sorted(IMAGE_SUFFIXES):  # the same stem with another image suffix (e.g. a PNG mask of a JPEG)
        other = masks / (image.stem + suffix)
        if other.is_file():
            return other
    raise DataError(
        f"{image}: no mask {exact} in the masks folder; give a mask of the same file name for every "
        f"input (255 = occluded) or leave --masks out"
    )


def load_pair(loaded: LoadedTSGAN, image: Path, mask: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image (C, S, S) in [-1, 1], mask (1, S, S) in [0, 1]) for one input; errors name the file.

    An unreadable image or mask is an ImageError naming it (from `read_image`).
    """
    mode = "L" if loaded.channels == 1 else "RGB"
    array = read_image(image, mode)
    x = torch.from_numpy(np.ascontiguousarray(array)).float().div_(255.0)
    x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
    h, w = x.shape[-2:]
    if mask is None:
        m = torch.zeros(1, h, w)
    else:
        marr = read_image(mask, "L")
        if marr.shape != (h, w):
            raise DataError(
                f"{mask}: the mask is {marr.shape[1]}x{marr.shape[0]} but its image {image} is {w}x{h}; "
                f"give a mask of its image's size"
            )
        m = torch.from_numpy(np.ascontiguousarray(marr)).float().div_(255.0).unsqueeze(0)
    return to_signed(resize_image(x, loaded.size)), resize_mask(m, loaded.size)


@torch.no_grad()
def run_generators(
    loaded: LoadedTSGAN, images: torch.Tensor, masks: torch.Tensor, frontalize: bool, batch_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x_d, x_f or None) for images (N, C, S, S) in [-1, 1] and masks (N, 1, S, S), in fixed-size batches.

    Batches of `batch_size` (default the training batch size); a short last batch is filled
    up by cycling through the N inputs from the first (the filler outputs are dropped).
    """
    n = len(images)
    b = int(batch_size or loaded.batch_size or n)
    if b < 1:
        raise ArgumentError(f"batch size must be >= 1, got {b}")
    dev = loaded.device
    outs_d, outs_f = [], []
    for start in range(0, n, b):
        idx = [(start + j) % n for j in range(b)]
        real = min(b, n - start)
        x, m = images[idx].to(dev), masks[idx].to(dev)
        x_d = loaded.g_d(x, m)
        outs_d.append(x_d[:real].cpu())
        if frontalize:
            outs_f.append(loaded.g_f(x_d, m if loaded.f_mask else None)[:real].cpu())
    return torch.cat(outs_d), (torch.cat(outs_f) if frontalize else None)


def deocclude_folder(
    loaded: LoadedTSGAN,
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    masks: str | os.PathLike | None = None,
    frontalize: bool = False,
    batch_size: int | None = None,
    grid_limit: int = 32,
) -> DeoccludeResult:
    """De-occlude (and with `frontalize`, frontalize) every input image; write PNGs and a grid (module docstring)."""
    files = list_inputs(input_path)
    mask_root = None
    if masks is not None:
        mask_root = Path(masks)
        if not mask_root.exists():
            raise DataError(
                f"{mask_root}: masks folder not found; give the folder of occlusion masks or leave --masks out"
            )
    names: dict[str, Path] = {}
    for f in files:
        name = f.stem + ".png"
        if name in names:
            raise DataError(f"{f} and {names[name]} would both be written as {name}; rename one of them")
        names[name] = f
    pairs = [load_pair(loaded, f, _mask_file(mask_root, f) if mask_root is not None else None) for f in files]
    images = torch.stack([p[0] for p in pairs])
    mask_t = torch.stack([p[1] for p in pairs])
    b = int(batch_size or loaded.batch_size or len(files))
    x_d, x_f = run_generators(loaded, images, mask_t, frontalize, b)
    out = Path(out)
    result = DeoccludeResult(inputs=files, deoccluded=[], masked=mask_root is not None, batch_size=b)
    for kind, tensor, paths in (("deoccluded", x_d, result.deoccluded), ("frontalized", x_f, result.frontalized)):
        if tensor is None:
            continue
        (out / kind).mkdir(parents=True, exist_ok=True)
        for f, img in zip(files, tensor_to_images(to_unit(tensor))):
            path = out / kind / (f.stem + ".png")
            write_png(path, img)  # a gray image's (H, W, 1) is written as one channel
            paths.append(path)
    k = min(len(files), max(1, grid_limit))
    columns = [images[:k], to_signed(mask_t[:k]).expand(-1, loaded.channels, -1, -1), x_d[:k]]
    labels = ["input", "mask", "out"]  # short: the labels must fit above 32-px cells
    if x_f is not None:
        columns.append(x_f[:k])
        labels.append("front")
    cells = tensor_to_images(to_unit(torch.stack(columns, dim=1).flatten(0, 1)))
    row_labels = [f.stem[:16] for f in files[:k]]
    result.grid = out / "grid.png"
    save_image(result.grid, labelled_grid(cells, len(columns), labels, row_labels))
    if len(files) > k:
        log.info("grid.png shows the first %d of %d inputs", k, len(files))
    log.info(
        "de-occluded %d image(s) into %s (batch %d, %s)",
        len(files),
        out,
        b,
        "with masks" if mask_root is not None else "no masks: all-zero",
    )
    return result
