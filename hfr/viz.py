"""Image grids and contact sheets (and, in later issues, ROC/CMC plots).

Everything returns or writes uint8 images; PNGs are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hfr.data.imageio import read_image, write_png
from hfr.data.manifest import Manifest, Record
from hfr.errors import ArgumentError

if TYPE_CHECKING:
    import torch

SHEET_AXES: tuple[str, ...] = ("yaw", "modality", "occlusion", "illumination", "expression")


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W) or (H, W, 1|3) image as (H, W, 3)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def tensor_to_images(batch: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> list[np.ndarray]:
    """A float tensor (N, C, H, W) whose values span `value_range` as N uint8 (H, W, C) images.

    `value_range` (low, high) is mapped linearly onto 0..255; values outside it are clipped. The
    package's convention is [0, 1] (the default); pass (-1.0, 1.0) for a tanh generator's output,
    or convert it first with `hfr.nn.ranges.to_unit`. Nothing is inferred from the values.
    """
    import torch  # local: viz is importable without building torch state

    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ArgumentError(f"tensor_to_images: value_range must be (low, high) with low < high, got {value_range}")
    t = batch.detach().float().cpu()
    if (low, high) != (0.0, 1.0):
        t = (t - low) / (high - low)
    t = (t.clamp(0, 1) * 255).round().to(torch.uint8)
    return [img.permute(1, 2, 0).numpy() for img in t]


def image_grid(images: Sequence[np.ndarray | None], ncol: int, pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile same-size images into a grid of `ncol` columns; None leaves a blank cell."""
    present = [im for im in images if im is not None]
    if not present:
        raise ArgumentError("image_grid: no images to tile")
    if ncol < 1:
        raise ArgumentError(f"image_grid: ncol must be >= 1, got {ncol}")
    h, w = present[0].shape[:2]
    nrow = math.ceil(len(images) / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), background, np.uint8)
    for i, im in enumerate(images):
        if im is None:
            continue
        if im.shape[:2] != (h, w):
            im = np.asarray(Image.fromarray(to_rgb(im)).resize((w, h), Image.Resampling.BILINEAR))
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = to_rgb(im)
    return grid


def labelled_grid(
    images: Sequence[np.ndarray | None],
    ncol: int,
    col_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    pad: int = 2,
) -> np.ndarray:
    """`image_grid` with text labels above the columns and left of the rows."""
    grid = image_grid(images, ncol, pad)
    font = ImageFont.load_default()
    top = 14 if col_labels else 0
    left = 8 + 7 * max((len(s) for s in row_labels), default=0) if row_labels else 0
    canvas = Image.new("RGB", (grid.shape[1] + left, grid.shape[0] + top), "white")
    canvas.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    present = next(im for im in images if im is not None)
    h, w = present.shape[:2]
    for c, text in enumerate(col_labels):
        draw.text((left + pad + c * (w + pad), 1), str(text), fill="black", font=font)
    for r, text in enumerate(row_labels):
        draw.text((2, top + pad + r * (h + pad) + h // 2 - 5), str(text), fill="black", font=font)
    return np.asarray(canvas)


def _axis_value(rec: Record, axis: str) -> str:
    if axis == "yaw":
        return "?" if rec.yaw is None else f"{rec.yaw:g}"
    if axis == "modality":
        return rec.modality
    return rec.get(axis, "none")


def _sort_key(axis: str, value: str) -> tuple:
    if axis == "yaw":
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value)
    return (0, 0.0, value)


def contact_sheet(
    manifest: Manifest, by: str = "yaw", subjects: int = 8, max_columns: int = 13, split: str | None = None
) -> np.ndarray:
    """A grid of `subjects` rows x the distinct values of `by` (yaw, modality, occlusion, ...).

    Each cell shows the first image of that subject with that value (blank when none).
    """
    if by not in SHEET_AXES:
        raise ArgumentError(f"--by {by!r}: use one of {', '.join(SHEET_AXES)}")
    if subjects < 1:
        raise ArgumentError(f"--subjects must be >= 1, got {subjects}")
    rows = manifest if split is None else manifest.select(split=split)
    if len(rows) == 0:
        raise ArgumentError(f"no images to show (split {split!r}); check the manifest and --split")
    names = rows.subjects()[:subjects]
    values = sorted({_axis_value(r, by) for r in rows if r.subject in set(names)}, key=lambda v: _sort_key(by, v))
    if len(values) > max_columns:
        step = len(values) / max_columns
        values = [values[int(i * step)] for i in range(max_columns)]
    first: dict[tuple[str, str], Record] = {}
    for r in rows:
        key = (r.subject, _axis_value(r, by))
        if r.subject in names and key not in first:
            first[key] = r
    cells: list[np.ndarray | None] = []
    for name in names:
        for value in values:
            rec = first.get((name, value))
            cells.append(None if rec is None else read_image(manifest.resolve(rec.path), "RGB"))
    return labelled_grid(cells, len(values), col_labels=values, row_labels=names)


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 image as PNG atomically."""
    write_png(path, image)


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write a matplotlib figure as PNG atomically (a reader never sees half a file) and close it."""
    import io as _io

    import matplotlib.pyplot as plt

    from hfr.fileio import atomic_write_bytes

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _finish(
    plt: Any,
    fig: Any,
    ax: Any,
    path: str | os.PathLike,
    title: str,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float],
    legend: str,
) -> None:
    """Labels, grid and legend shared by the plots; save atomically and close."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend, fontsize=8)
    save_figure(fig, path)


def plot_roc(curves: dict[str, dict[str, list[float]]], path: str | os.PathLike, title: str = "ROC") -> None:
    """ROC curves ({label: {"far": [...], "tar": [...]}}) on a log-FAR axis, saved as PNG."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, c in curves.items():
        far = np.maximum(np.asarray(c["far"], float), 1e-6)
        ax.plot(far, c["tar"], label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-5, 1)
    _finish(plt, fig, ax, path, title, "false accept rate", "true accept rate", (0, 1.01), "lower right")


def plot_cmc(curves: dict[str, Sequence[float]], path: str | os.PathLike, title: str = "CMC") -> None:
    """Cumulative match characteristic curves ({label: [rate at rank 1, 2, ...]}) as PNG."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, cmc in curves.items():
        ax.plot(range(1, len(cmc) + 1), cmc, marker="o", ms=3, label=label)
    _finish(plt, fig, ax, path, title, "rank", "identification rate", (0, 1.01), "lower right")


def plot_rank1_vs_yaw(
    series: dict[str, dict[str, float]],
    path: str | os.PathLike,
    title: str = "rank-1 against yaw",
    extra_points: dict[str, float] | None = None,
) -> None:
    """Rank-1 per yaw bin ({label: {"-60": r, ...}}) as lines; optional labelled horizontal marks."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, by_yaw in series.items():
        xs = sorted(by_yaw, key=float)
        ax.plot([float(x) for x in xs], [100 * by_yaw[x] for x in xs], marker="o", label=label)
    for label, value in (extra_points or {}).items():
        ax.axhline(100 * value, ls="--", lw=1, color="grey")
        ax.text(ax.get_xlim()[0], 100 * value + 1, label, fontsize=8, color="grey")
    _finish(plt, fig, ax, path, title, "yaw (degrees)", "rank-1 (%)", (0, 101), "lower center")
