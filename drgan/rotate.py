"""Face rotation with a trained DR-GAN generator (`hfr rotate`).

G_enc maps each input face to its identity feature f(x); G_dec renders f(x) at the pose
bin nearest to each asked yaw, with one noise vector z per input drawn from a seed (the
same seed gives the same images). With `fuse`, the inputs are taken as images of one
subject and a single row is decoded from their confidence-weighted feature
f_bar = sum_i omega_i f(x_i) / sum_i omega_i (Tran et al., multi-image DR-GAN); a
single-image generator has no omega, so its inputs get equal weights.

`rotate_folder` writes one PNG per (input, yaw), `<stem>_yaw+30.png` (`fused_yaw+30.png`
with `fuse`), and `pose_sweep.png`: a labelled grid, one row per input (its first cell
the input) or, with `fuse`, the inputs in the first row(s) and the fused row under them.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from drgan.export import LoadedGenerator
from drgan.models import fuse_features
from hfr.data.datasets import ManifestDataset
from hfr.errors import ArgumentError
from hfr.nn.ranges import to_channels, to_signed, to_unit

log = logging.getLogger(__name__)

#: Characters of an input's name shown as its row label in pose_sweep.png.
ROW_LABEL_CHARS = 14


def yaw_label(yaw: float) -> str:
    """A yaw as it appears in file names and column labels: `+30`, `-60`, `+0`, `+22.5`."""
    return f"{yaw:+g}"


def parse_yaws(text: str) -> list[float]:
    """`-60,-30,0,30,60` as floats; ArgumentError naming `--yaw` when a value is not a number."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise ArgumentError(
                f"--yaw {text!r}: {part!r} is not a number; give degrees like -60,-30,0,30,60"
            ) from None
        if not math.isfinite(value):
            raise ArgumentError(f"--yaw {text!r}: {part!r} is not a finite angle")
        values.append(value)
    if not values:
        raise ArgumentError("--yaw: give at least one yaw in degrees, e.g. -60,-30,0,30,60")
    return values


def pose_bins_of(loaded: LoadedGenerator, yaws: list[float]) -> list[int]:
    """The pose-bin index of each yaw; ArgumentError for a yaw beyond half a bin gap outside the bins."""
    bins = sorted(loaded.yaw_bins)
    low, high = bins[0], bins[-1]
    if len(bins) >= 2:
        low -= (bins[1] - bins[0]) / 2
        high += (bins[-1] - bins[-2]) / 2
    shown = ", ".join(f"{b:g}" for b in loaded.yaw_bins)
    for yaw in yaws:
        if not low <= yaw <= high:
            raise ArgumentError(
                f"--yaw {yaw:g} is outside the generator's pose bins ({shown} degrees; "
                f"usable yaws {low:g}..{high:g}); give yaws within them"
            )
    return [loaded.bin_of(yaw) for yaw in yaws]


def prepare_images(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] as (B, channels, size, size): RGB<->gray (`hfr.nn.ranges.to_channels`), resized.

    The resize is bilinear and antialiased, like `Recognizer.prepare`.

    ImageError when the images have neither 1 nor 3 channels.
    """
    x = to_channels(images.float(), channels, "the generator's")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


@torch.inference_mode()
def rotate_images(
    loaded: LoadedGenerator,
    images: torch.Tensor,
    yaws: list[float],
    seed: int = 0,
    fuse: bool = False,
    batch_size: int = 64,
) -> torch.Tensor:
    """Faces rotated to `yaws`: (B, len(yaws), C, S, S) in [0, 1]; with `fuse`, (1, len(yaws), C, S, S).

    `images` is (B, C, H, W) in [0, 1], resized to the generator's size S and converted to its
    channels; each yaw goes to the nearest pose bin (ArgumentError beyond the bins). Input i gets
    the i-th noise vector of a generator seeded with `seed` (the fused row gets the first), so
    the result does not depend on `batch_size` (inputs per forward pass).
    """
    if images.ndim != 4 or len(images) == 0:
        raise ArgumentError(f"rotate_images: expected a non-empty (B, C, H, W) batch, got shape {tuple(images.shape)}")
    poses = pose_bins_of(loaded, yaws)
    g = loaded.generator
    device = next(g.parameters()).device
    step = max(1, batch_size)
    feats, weights = [], []
    for i in range(0, len(images), step):
        x = to_signed(prepare_images(images[i : i + step].to(device), loaded.size, loaded.channels))
        f, omega = g.encode(x)
        feats.append(f)
        weights.append(omega)
    f = torch.cat(feats)
    z = g.noise(len(f), torch.Generator(device=device).manual_seed(seed), device)
    if fuse:
        if weights[0] is None:
            log.warning("single-image generator (no confidence omega): fusing the %d inputs with equal weights", len(f))
            omega = torch.ones(len(f), device=device, dtype=f.dtype)
        else:
            omega = torch.cat([w for w in weights if w is not None])  # all set: a multi-image G
        f, z = fuse_features(f, omega, len(f)), z[:1]
    p = len(poses)
    pose = torch.as_tensor(poses, device=device)
    out = []
    for i in range(0, len(f), step):
        fi, zi = f[i : i + step], z[i : i + step]
        images_out = g.decode(fi.repeat_interleave(p, 0), pose.repeat(len(fi)), zi.repeat_interleave(p, 0))
        out.append(to_unit(images_out.float()).view(len(fi), p, *images_out.shape[1:]).cpu())
    return torch.cat(out)


def output_names(paths: list[Path], root: Path) -> list[str]:
    """A file-name stem per input: its stem, or its path under `root` (`a_b_x`) when stems repeat."""
    stems = [p.stem for p in paths]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    names = []
    for p, stem in zip(paths, stems):
        if stem in repeated:
            try:
                rel = p.resolve().relative_to(root.resolve())
            except ValueError:
                rel = p
            stem = "_".join(rel.with_suffix("").parts).lstrip("_") or stem
        names.append(stem)
    if len(set(names)) != len(names):  # same relative path under two roots (a manifest with absolute paths)
        names = [f"{i:03d}_{s}" for i, s in enumerate(names)]
    return names


def fused_sheet(inputs: list[np.ndarray], fused: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """The --fuse pose sweep: the inputs in the first row(s), then the fused row under its yaw labels."""
    from hfr.viz import labelled_grid

    ncol = min(len(inputs), max(len(fused), 4))
    rows = -(-len(inputs) // ncol)
    # equal-length row labels give both parts the same left margin, so their columns line up
    top = labelled_grid(inputs, ncol, row_labels=["inputs"] + [""] * (rows - 1))
    bottom = labelled_grid(fused, len(fused), col_labels=labels, row_labels=["fused "])
    width = max(top.shape[1], bottom.shape[1])
    return np.concatenate(
        [np.pad(part, ((0, 0), (0, width - part.shape[1]), (0, 0)), constant_values=255) for part in (top, bottom)]
    )


@dataclass
class RotateResult:
    """What `rotate_folder` wrote: the rotated PNGs (row by row), pose_sweep.png, the bins used."""

    files: list[Path]
    sweep: Path
    bins: list[float]
    inputs: int


def rotate_folder(
    loaded: LoadedGenerator,
    target: str | os.PathLike,
    yaws: list[float],
    out: str | os.PathLike,
    seed: int = 0,
    fuse: bool = False,
) -> RotateResult:
    """Rotate the image(s) `target` names (file, folder or manifest) and write the PNGs into `out`.

    See the module docstring for the files; a folder without images is a DataError naming it.
    """
    from hfr.probes import load_targets
    from hfr.viz import labelled_grid, save_image, tensor_to_images

    poses = pose_bins_of(loaded, yaws)  # fail on a bad yaw before reading any image
    manifest = load_targets(target)
    dataset = ManifestDataset(manifest, size=loaded.size, channels=loaded.channels)
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    rotated = rotate_images(loaded, images, yaws, seed=seed, fuse=fuse)
    names = (
        ["fused"] if fuse else output_names([manifest.image_path(i) for i in range(len(manifest))], Path(manifest.root))
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, row in zip(names, rotated):
        for yaw, image in zip(yaws, tensor_to_images(row)):
            path = out / f"{name}_yaw{yaw_label(yaw)}.png"
            save_image(path, image)
            files.append(path)
    inputs = tensor_to_images(images)
    if fuse:
        sheet = fused_sheet(inputs, tensor_to_images(rotated[0]), [yaw_label(y) for y in yaws])
    else:
        cells: list[np.ndarray | None] = []
        for image, row in zip(inputs, rotated):
            cells += [image, *tensor_to_images(row)]
        sheet = labelled_grid(
            cells,
            len(yaws) + 1,
            col_labels=["input", *map(yaw_label, yaws)],
            row_labels=[n[:ROW_LABEL_CHARS] for n in names],
        )
    sweep = out / "pose_sweep.png"
    save_image(sweep, sheet)
    log.info(
        "rotated %d input(s) to yaws %s (pose bins %s) into %s",
        len(images),
        yaws,
        [loaded.yaw_bins[p] for p in poses],
        out,
    )
    return RotateResult(files, sweep, [loaded.yaw_bins[p] for p in poses], len(images))
