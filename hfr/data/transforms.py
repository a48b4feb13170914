"""Batched image augmentation (kornia) and 5-point similarity face alignment.

Everything works on float (B, C, H, W) batches with values in [0, 1], on the CPU or a GPU.

Augmentation: `AugmentConfig` lists each operation's probability and magnitude (all off by
default); `augment(images, config, generator=...)` is the seedable functional form and
`Augment(config, seed=...)` the nn.Module. The geometric operations (random crop with
padding, random resized crop, horizontal flip, small affine) are composed into one affine
matrix per sample and applied with a single `kornia.geometry.transform.warp_affine`; then
brightness/contrast, gaussian blur (`kornia.filters.gaussian_blur2d`) and gaussian noise.
Each operation is applied to each sample independently with its probability; samples that
no operation picked are returned bit-for-bit unchanged. A horizontal flip mirrors the head,
so it negates yaw: both forms report which samples were flipped, e.g.
`yaw = torch.where(flipped, -yaw, yaw)`.

Alignment: landmarks are 5 points per face in this order: left eye, right eye, nose tip,
left mouth corner, right mouth corner, where "left" is the point with the smaller x in a
frontal image (the subject's right eye), as detectors such as RetinaFace/MTCNN report them.
Coordinates are image pixels, x to the right and y down, with the centre of the top-left
pixel at (0, 0) (the OpenCV convention; warps use `align_corners=True` to match).

Templates (`TEMPLATES`, points for a crop of `native` size; asking another `size` scales
them uniformly):

- `arcface112`: the ArcFace/insightface 112x112 reference points (`arcface_dst` in
  insightface `python-package/insightface/utils/face_align.py`).
- `lightcnn128`: the same points for a 128x128 crop by insightface's own rule for sizes that
  are multiples of 128 (`estimate_norm`: ratio = size / 128, x shifted by 8 * ratio, y
  unchanged), i.e. the 112 face with 8 more pixels of context left/right and 16 below.
- `drgan96`: `lightcnn128` scaled by 96 / 128, a looser crop (more of the head) for DR-GAN's
  96x96 inputs.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from kornia.enhance import adjust_brightness
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import warp_affine
from torch import nn

from hfr.data.imageio import read_image, write_png
from hfr.data.manifest import (MANIFEST_NAME, MODALITIES, PATH_COLUMNS, Manifest, csv_body_rows,
                               make_record, parse_number, read_csv_text)
from hfr.errors import ConfigError, DataError, ImageError, OptionError

log = logging.getLogger(__name__)

__all__ = [
    "AugmentConfig",
    "Augment",
    "augment",
    "TEMPLATES",
    "template_points",
    "estimate_similarity",
    "align_faces",
    "align_folder",
    "LANDMARK_COLUMNS",
]

# ------------------------------------------------------------------------------ augmentation


@dataclass
class AugmentConfig:
    """Probabilities (per sample, in [0, 1]) and magnitudes of each augmentation; all off by default.

    - crop: pad by `crop_padding` pixels (zeros) and crop back at a random offset.
    - resized crop: crop a random square window of `resized_crop_min_area`..1 of the image
      area and resize it back to the full size.
    - flip: horizontal mirror (negates yaw; the flips are reported).
    - affine: rotation in +-`affine_degrees`, scale in 1 +- `affine_scale`, translation in
      +-`affine_translate` of the image size, about the image centre.
    - color: additive brightness in +-`brightness`, contrast factor in 1 +- `contrast`
      (about each image's mean).
    - blur: gaussian blur with sigma uniform in [0.1, `blur_sigma`] pixels.
    - noise: additive gaussian noise whose std is uniform in [0, `noise_std`].
    `padding_mode` fills pixels warped in from outside: "zeros", "border" or "reflection".
    """

    crop_p: float = 0.0
    crop_padding: int = 4
    resized_crop_p: float = 0.0
    resized_crop_min_area: float = 0.8
    flip_p: float = 0.0
    affine_p: float = 0.0
    affine_degrees: float = 10.0
    affine_translate: float = 0.05
    affine_scale: float = 0.05
    color_p: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    blur_p: float = 0.0
    blur_sigma: float = 1.0
    noise_p: float = 0.0
    noise_std: float = 0.02
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "padding_mode":
                if value not in ("zeros", "border", "reflection"):
                    raise ConfigError(f"augment.padding_mode must be zeros, border or reflection, "
                                      f"not {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"augment.{f.name} must be a number, not {value!r}")
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment.{f.name} is a probability and must be in [0, 1], not {value}")
            if value < 0:
                raise ConfigError(f"augment.{f.name} must be >= 0, not {value}")
        if not isinstance(self.crop_padding, int):
            raise ConfigError(f"augment.crop_padding must be a whole number of pixels, not {self.crop_padding!r}")
        if not 0.0 < self.resized_crop_min_area <= 1.0:
            raise ConfigError(f"augment.resized_crop_min_area must be in (0, 1], not {self.resized_crop_min_area}")
        if self.blur_sigma < 0.1 and self.blur_p > 0:
            raise ConfigError(f"augment.blur_sigma must be >= 0.1 when blur_p > 0, not {self.blur_sigma}")

    @property
    def enabled(self) -> bool:
        """Whether any operation has a non-zero probability."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_p"))


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return (torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * (high - low) + low).cpu()


def _coin(n: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    return _uniform(n, 0.0, 1.0, generator) < p


def _geometry(cfg: AugmentConfig, b: int, h: int, w: int,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample (3, 3) src->dst matrices (float64, CPU), the samples they move, and the flips."""
    eye = torch.eye(3, dtype=torch.float64).repeat(b, 1, 1)
    total = eye.clone()
    moved = torch.zeros(b, dtype=torch.bool)
    flipped = torch.zeros(b, dtype=torch.bool)
    if cfg.resized_crop_p > 0:
        on = _coin(b, cfg.resized_crop_p, generator)
        s = _uniform(b, cfg.resized_crop_min_area, 1.0, generator).sqrt()
        x0 = _uniform(b, 0.0, 1.0, generator) * (1 - s) * (w - 1)
        y0 = _uniform(b, 0.0, 1.0, generator) * (1 - s) * (h - 1)
        m = eye.clone()
        m[:, 0, 0] = 1 / s
        m[:, 1, 1] = 1 / s
        m[:, 0, 2] = -x0 / s
        m[:, 1, 2] = -y0 / s
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    if cfg.crop_p > 0 and cfg.crop_padding > 0:
        on = _coin(b, cfg.crop_p, generator)
        dev = generator.device if generator is not None else torch.device("cpu")
        shift = torch.randint(-cfg.crop_padding, cfg.crop_padding + 1, (b, 2), generator=generator,
                              device=dev).cpu().to(torch.float64)
        m = eye.clone()
        m[:, 0, 2] = shift[:, 0]
        m[:, 1, 2] = shift[:, 1]
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    if cfg.flip_p > 0:
        flipped = _coin(b, cfg.flip_p, generator)
        m = eye.clone()
        m[:, 0, 0] = -1
        m[:, 0, 2] = w - 1
        total = torch.where(flipped[:, None, None], m @ total, total)
        moved |= flipped
    if cfg.affine_p > 0:
        on = _coin(b, cfg.affine_p, generator)
        angle = _uniform(b, -cfg.affine_degrees, cfg.affine_degrees, generator) * math.pi / 180
        scale = 1 + _uniform(b, -cfg.affine_scale, cfg.affine_scale, generator)
        tx = _uniform(b, -cfg.affine_translate, cfg.affine_translate, generator) * w
        ty = _uniform(b, -cfg.affine_translate, cfg.affine_translate, generator) * h
        cx, cy = (w - 1) / 2, (h - 1) / 2
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        m = eye.clone()
        m[:, 0, 0], m[:, 0, 1] = cos, -sin
        m[:, 1, 0], m[:, 1, 1] = sin, cos
        m[:, 0, 2] = cx + tx - cos * cx + sin * cy
        m[:, 1, 2] = cy + ty - sin * cx - cos * cy
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    return total, moved, flipped


def augment(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None,
            seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a float (B, C, H, W) batch in [0, 1]; returns (augmented, flipped).

    `flipped` is a bool (B,) tensor on the images' device: True where the sample was mirrored
    (negate its yaw label). Randomness comes from `generator`, else a fresh generator seeded
    with `seed`, else torch's global RNG; the same seed, input and device give the same
    output (per-sample parameters are drawn on the generator's device, the noise pixels on the
    images' device, so CPU and GPU agree except for the noise). With every probability zero
    the input tensor itself is returned.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise OptionError(f"augment expects a float (B, C, H, W) batch, got {images.dtype} {tuple(images.shape)}")
    b, _, h, w = images.shape
    device = images.device
    if seed is not None and generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    if not config.enabled or b == 0:
        return images, torch.zeros(b, dtype=torch.bool, device=device)
    out = images
    matrices, moved, flipped = _geometry(config, b, h, w, generator)
    if moved.any():
        idx = moved.nonzero().squeeze(1).to(device)
        m = matrices[moved, :2].to(device=device, dtype=images.dtype)
        warped = warp_affine(images.index_select(0, idx), m, (h, w), mode="bilinear",
                             padding_mode=config.padding_mode, align_corners=True)
        out = images.index_copy(0, idx, warped)
    if config.color_p > 0:
        on = _coin(b, config.color_p, generator)
        delta = _uniform(b, -config.brightness, config.brightness, generator)
        factor = _uniform(b, 1 - config.contrast, 1 + config.contrast, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            sel = out.index_select(0, idx)
            mean = sel.mean(dim=(1, 2, 3), keepdim=True)
            f = factor[on].to(device=device, dtype=images.dtype).view(-1, 1, 1, 1)
            sel = ((sel - mean) * f + mean).clamp(0.0, 1.0)
            sel = adjust_brightness(sel, delta[on].to(device=device, dtype=images.dtype))
            out = out.index_copy(0, idx, sel)
    if config.blur_p > 0:
        on = _coin(b, config.blur_p, generator)
        sigma = _uniform(b, 0.1, config.blur_sigma, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            k = 2 * math.ceil(3 * config.blur_sigma) + 1
            k = max(3, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
            sig = sigma[on].to(device=device, dtype=images.dtype).view(-1, 1).repeat(1, 2)
            out = out.index_copy(0, idx, gaussian_blur2d(out.index_select(0, idx), (k, k), sig))
    if config.noise_p > 0:
        on = _coin(b, config.noise_p, generator)
        std = _uniform(b, 0.0, config.noise_std, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            shape = (int(on.sum()),) + tuple(images.shape[1:])
            noise_gen = None
            if generator is not None:
                # draw the noise on the images' device from a generator seeded by `generator`
                noise_gen = torch.Generator(device=device).manual_seed(
                    int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device)))
            noise = torch.randn(shape, generator=noise_gen, device=device, dtype=images.dtype)
            s = std[on].to(device=device, dtype=images.dtype).view(-1, 1, 1, 1)
            out = out.index_copy(0, idx, (out.index_select(0, idx) + noise * s).clamp(0.0, 1.0))
    return out, flipped.to(device)


class Augment(nn.Module):
    """nn.Module form of `augment`: active in training mode, the identity in eval mode.

    `forward(images)` returns the augmented batch and records the flips in `last_flipped`;
    `forward_with_flips(images)` returns both. With `seed` the module owns a generator, so a
    run is reproducible; without it torch's global RNG is used.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AugmentConfig()
        self.generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        self.last_flipped: torch.Tensor | None = None

    def forward_with_flips(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(augmented batch, bool (B,) flipped mask); unchanged and no flips in eval mode."""
        if not self.training:
            out, flipped = images, torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        else:
            out, flipped = augment(images, self.config, generator=self.generator)
        self.last_flipped = flipped
        return out, flipped

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The augmented batch; which samples were flipped is left in `self.last_flipped`."""
        return self.forward_with_flips(images)[0]


# ------------------------------------------------------------------------------ alignment

_ARCFACE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def _shifted(points: Sequence[tuple[float, float]], scale: float, dx: float) -> tuple[tuple[float, float], ...]:
    return tuple(((x + dx) * scale, y * scale) for x, y in points)


#: name -> (native crop size, five (x, y) points in that crop); see the module docstring.
TEMPLATES: dict[str, tuple[int, tuple[tuple[float, float], ...]]] = {
    "arcface112": (112, _ARCFACE_112),
    "lightcnn128": (128, _shifted(_ARCFACE_112, 1.0, 8.0)),
    "drgan96": (96, _shifted(_ARCFACE_112, 96 / 128, 8.0)),
}


def template_points(template: str | torch.Tensor | np.ndarray, size: int | None = None) -> tuple[torch.Tensor, int]:
    """(points (5, 2) float64, crop size) of a named template scaled to `size` (default: native).

    A custom (5, 2) array of points in the output crop is taken as is; `size` is then required.
    """
    if isinstance(template, str):
        if template not in TEMPLATES:
            raise OptionError(f"unknown alignment template {template!r}; use one of {', '.join(TEMPLATES)}")
        native, pts = TEMPLATES[template]
        out = size if size is not None else native
        if not isinstance(out, int) or out <= 0:
            raise OptionError(f"alignment size must be a positive integer, not {out!r}")
        return torch.tensor(pts, dtype=torch.float64) * (out / native), out
    pts_t = torch.as_tensor(np.asarray(template), dtype=torch.float64)
    if pts_t.shape != (5, 2):
        raise OptionError(f"a custom template must be (5, 2) points, got shape {tuple(pts_t.shape)}")
    if size is None or size <= 0:
        raise OptionError("a custom template needs the output size (size=...)")
    return pts_t, int(size)


def estimate_similarity(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) src -> dst.

    `src` is (B, N, 2) (or (N, 2)), `dst` is (N, 2) or (B, N, 2); returns (B, 2, 3) matrices M
    with dst ~= M @ [x, y, 1]. This is Umeyama's (1991) solution specialised to 2-D, where the
    optimal rotation-and-scale has the closed form a = sum(xs.xd) / sum|xs|^2,
    b = sum(xs x xd) / sum|xs|^2 over centred points (M = [[a, -b], [b, a]] plus translation),
    so it needs no SVD, is batched and differentiable, and can never reflect. Computed in
    float64; returned in src's floating dtype (float32 for integer input). Raises DataError
    when a sample's source points coincide or are not finite.
    """
    src_t = torch.as_tensor(src)
    out_dtype = src_t.dtype if src_t.is_floating_point() else torch.float32
    s = src_t.to(torch.float64)
    if s.ndim == 2:
        s = s.unsqueeze(0)
    d = torch.as_tensor(dst, device=s.device).to(torch.float64)
    if d.ndim == 2:
        d = d.unsqueeze(0).expand(s.shape[0], -1, -1)
    if s.ndim != 3 or s.shape[-1] != 2 or d.shape != s.shape:
        raise OptionError(f"estimate_similarity needs src (B, N, 2) and dst (N, 2) or (B, N, 2), "
                          f"got {tuple(src_t.shape)} and {tuple(torch.as_tensor(dst).shape)}")
    bad = ~torch.isfinite(s).all(dim=(1, 2))
    ms, md = s.mean(dim=1, keepdim=True), d.mean(dim=1, keepdim=True)
    xs, xd = s - ms, d - md
    var = (xs ** 2).sum(dim=(1, 2))
    bad |= var <= 1e-12
    if bad.any():
        rows = bad.nonzero().squeeze(1).tolist()
        raise DataError(f"landmarks of sample(s) {rows[:10]} are degenerate (all points coincide or "
                        f"are not finite); a similarity cannot be estimated from them")
    a = (xs[..., 0] * xd[..., 0] + xs[..., 1] * xd[..., 1]).sum(dim=1) / var
    b = (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0]).sum(dim=1) / var
    rot = torch.stack([torch.stack([a, -b], dim=-1), torch.stack([b, a], dim=-1)], dim=-2)
    t = md.squeeze(1) - (rot @ ms.squeeze(1).unsqueeze(-1)).squeeze(-1)
    return torch.cat([rot, t.unsqueeze(-1)], dim=-1).to(out_dtype)


def align_faces(images: torch.Tensor, landmarks: torch.Tensor,
                template: str | torch.Tensor | np.ndarray = "lightcnn128", size: int | None = None,
                mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    """Warp each face so its 5 landmarks land on the template's points; (B, C, size, size).

    `images` is (B, C, H, W) float, `landmarks` (B, 5, 2) in the order and pixel convention of
    the module docstring. `template` is a name in TEMPLATES or custom (5, 2) points; `size`
    defaults to the template's native size (templates are scaled to other sizes).
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise OptionError(f"align_faces expects a float (B, C, H, W) batch, got {images.dtype} "
                          f"{tuple(images.shape)}")
    lm = torch.as_tensor(landmarks)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2) or lm.shape[0] != images.shape[0]:
        raise OptionError(f"landmarks must be (B, 5, 2) with B = {images.shape[0]}, got {tuple(lm.shape)}")
    dst, out = template_points(template, size)
    m = estimate_similarity(lm.detach().to("cpu", torch.float64), dst)
    return warp_affine(images, m.to(device=images.device, dtype=images.dtype), (out, out), mode=mode,
                       padding_mode=padding_mode, align_corners=True)


# ------------------------------------------------------------------------------ align_folder

#: the landmark columns of an `align_folder` CSV, in landmark order
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"{a}{i}" for i in range(1, 6) for a in ("x", "y"))
_MIN_SPREAD_PX = 1.0


def _parse_landmarks(row: dict[str, str], where: str) -> np.ndarray:
    values = []
    for col in LANDMARK_COLUMNS:
        values.append(parse_number(row.get(col) or "", col, where, DataError, allow_empty=False))
    pts = np.asarray(values, dtype=np.float64).reshape(5, 2)
    spread = math.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).mean())
    if spread < _MIN_SPREAD_PX:
        raise DataError(f"{where}: degenerate landmarks (the 5 points lie within {spread:.3g} px of "
                        f"each other); fix or drop the row")
    return pts


def _output_rel(path_text: str, csv_dir: Path) -> Path:
    """Relative output path (.png) for an input path: keeps the structure under the CSV folder."""
    p = Path(path_text)
    if p.is_absolute():
        try:
            rel = p.resolve().relative_to(csv_dir.resolve())
        except ValueError:
            rel = Path(p.name)
    else:
        rel = Path(os.path.normpath(p))
        if rel.parts and rel.parts[0] == "..":
            rel = Path(*[part for part in rel.parts if part != ".."])
    return rel.with_suffix(".png")


def align_folder(landmarks_csv: str | os.PathLike, out_dir: str | os.PathLike,
                 template: str = "lightcnn128", size: int | None = None, channels: int | None = None,
                 default_modality: str = "vis") -> Manifest | None:
    """Align every image a landmarks CSV lists and write the crops as PNGs under `out_dir`.

    The CSV (UTF-8, header row) has columns `path,x1,y1,...,x5,y5` (landmarks in the order
    and pixel convention of the module docstring; `path` relative to the CSV's folder or
    absolute). Output files keep the relative structure with a `.png` suffix (absolute paths
    outside the CSV's folder keep only their file name). `channels`: 1 or 3 forces grayscale
    or RGB; None writes grayscale images as grayscale and colour ones as RGB.

    When the CSV has a `subject` column, `out_dir/manifest.csv` is written and returned as a
    Manifest: `modality` (default `default_modality`), `yaw` and `split` are taken from
    their columns when present and every other column is kept, except the landmark columns
    and path columns such as `mask_path` (those files are not aligned). Without `subject`,
    only images are written and None is returned.

    Every row is checked before any image is written: a missing column, an empty path, a
    non-numeric or degenerate landmark set, a missing image, an unknown modality or two rows
    writing the same output raise DataError naming the CSV file and row (header = row 1);
    an image that cannot be decoded raises ImageError naming them too.
    """
    csv_path = Path(landmarks_csv)
    out_root = Path(out_dir)
    if channels not in (None, 1, 3):
        raise OptionError(f"channels must be 1, 3 or None (keep), not {channels!r}")
    if default_modality not in MODALITIES:
        raise OptionError(f"default_modality must be one of {', '.join(MODALITIES)}, not {default_modality!r}")
    dst, out_size = template_points(template, size)
    text = read_csv_text(csv_path, "landmarks CSV", DataError,
                         f"pass a CSV with columns path,{','.join(LANDMARK_COLUMNS)}")
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in ("path",) + LANDMARK_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{csv_path} row 1: header lacks column(s) {', '.join(missing)}; the CSV needs "
                        f"path,{','.join(LANDMARK_COLUMNS)} (optional: subject, modality, yaw, split)")
    has_subject = "subject" in header
    dropped = [c for c in header if c in PATH_COLUMNS and c != "path"]
    if dropped and has_subject:
        log.warning("%s: column(s) %s are not carried into the aligned manifest (those files are not aligned)",
                    csv_path, ", ".join(dropped))
    kept = [c for c in header if c not in ("path", "subject", "modality", "yaw", "split")
            and c not in LANDMARK_COLUMNS and c not in PATH_COLUMNS]
    csv_dir = csv_path.parent

    jobs: list[tuple[str, Path, Path, np.ndarray, dict[str, str]]] = []
    outputs: dict[Path, int] = {}
    for line_no, where, cells in csv_body_rows(reader, len(header), str(csv_path), DataError):
        row = {h: c.strip() for h, c in zip(header, cells)}
        if not row["path"]:
            raise DataError(f"{where}: empty path; every row needs an image path")
        pts = _parse_landmarks(row, where)
        src = Path(row["path"])
        src = src if src.is_absolute() else csv_dir / src
        if not src.is_file():
            raise DataError(f"{where}: image {src} does not exist; fix the path or drop the row")
        if has_subject and not row["subject"]:
            raise DataError(f"{where}: empty subject for {row['path']!r}; every image needs an identity")
        if "modality" in row and row["modality"] and row["modality"].lower() not in MODALITIES:
            raise DataError(f"{where}: unknown modality {row['modality']!r}; use one of {', '.join(MODALITIES)}")
        if row.get("yaw"):
            try:
                float(row["yaw"])
            except ValueError:
                raise DataError(f"{where}: yaw must be a number of degrees or empty, got {row['yaw']!r}") from None
        rel = _output_rel(row["path"], csv_dir)
        if rel in outputs:
            raise DataError(f"{where}: writes {rel} again (first at row {outputs[rel]}); two images would "
                            f"collide, rename one")
        outputs[rel] = line_no
        jobs.append((where, src, rel, pts, row))

    records = []
    for where, src, rel, pts, row in jobs:
        try:
            rgb = read_image(src, "L" if channels == 1 else "RGB")
        except ImageError as exc:
            raise ImageError(f"{where}: {exc}") from None
        if rgb.ndim == 3 and channels is None and (rgb[..., 0] == rgb[..., 1]).all() and \
                (rgb[..., 1] == rgb[..., 2]).all():
            rgb = rgb[..., 0]
        img = torch.from_numpy(rgb).to(torch.float32)
        img = img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)
        aligned = align_faces(img.unsqueeze(0), torch.from_numpy(pts).unsqueeze(0), dst, out_size)[0]
        array = aligned.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        write_png(out_root / rel, array[..., 0] if array.shape[-1] == 1 else array)
        if has_subject:
            yaw = float(row["yaw"]) if row.get("yaw") else None
            modality = (row.get("modality") or default_modality).lower()
            records.append(make_record(rel.as_posix(), row["subject"], modality, yaw, row.get("split", ""),
                                       **{c: row[c] for c in kept}))
    log.info("aligned %d image(s) from %s into %s", len(jobs), csv_path, out_root)
    if not has_subject:
        return None
    out_root.mkdir(parents=True, exist_ok=True)
    written = Manifest(records, out_root, columns=["path", "subject", "modality", "yaw", "split"] + kept)
    return Manifest.read(written.write(out_root / MANIFEST_NAME))
