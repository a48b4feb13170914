"""5-point similarity face alignment: templates, batched warps and `align_folder` (landmark CSVs).

Everything works on float (B, C, H, W) batches, on the CPU or a GPU.

Landmarks are 5 points per face in this order: left eye, right eye, nose tip, left mouth
corner, right mouth corner, where "left" is the point with the smaller x in a frontal image
(the subject's right eye), as detectors such as RetinaFace/MTCNN report them. Coordinates
are image pixels, x to the right and y down, with the centre of the top-left pixel at
(0, 0) (the OpenCV convention; warps use `align_corners=True` to match).

Templates (`TEMPLATES`, points for a crop of `native` size; asking another `size` scales
them uniformly):

- `arcface112`: the ArcFace/insightface 112x112 reference points (`arcface_dst` in
  insightface `python-package/insightface/utils/face_align.py`).
- `lightcnn128`: the same points for a 128x128 crop by insightface's own rule for sizes that
  are multiples of 128 (`estimate_norm`: ratio = size / 128, x shifted by 8 * ratio, y
  unchanged), i.e. the 112 face with 8 more pixels of context left/right and 16 below.
- `drgan96`: `lightcnn128` scaled by 96 / 128, a looser crop (more of the head) for DR-GAN's
  96x96 inputs.

`align_folder` aligns every image a landmarks CSV (`path,x1,y1,...,x5,y5`) lists and writes
PNG crops (and a manifest when the CSV has a `subject` column); `hfr data align` is its
command-line front end. Augmentation lives in `hfr.data.augment`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from kornia.geometry.transform import warp_affine

from hfr.data.imageio import read_image, write_png
from hfr.data.manifest import (
    MANIFEST_NAME,
    MODALITIES,
    PATH_COLUMNS,
    Manifest,
    csv_body_rows,
    make_record,
    parse_number,
    read_csv_text,
)
from hfr.errors import ArgumentError, DataError, ImageError

log = logging.getLogger(__name__)

__all__ = [
    "TEMPLATES",
    "template_points",
    "estimate_similarity",
    "align_faces",
    "align_folder",
    "LANDMARK_COLUMNS",
]

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
            raise ArgumentError(f"unknown alignment template {template!r}; use one of {', '.join(TEMPLATES)}")
        native, pts = TEMPLATES[template]
        out = size if size is not None else native
        if not isinstance(out, int) or out <= 0:
            raise ArgumentError(f"alignment size must be a positive integer, not {out!r}")
        return torch.tensor(pts, dtype=torch.float64) * (out / native), out
    pts_t = torch.as_tensor(np.asarray(template), dtype=torch.float64)
    if pts_t.shape != (5, 2):
        raise ArgumentError(f"a custom template must be (5, 2) points, got shape {tuple(pts_t.shape)}")
    if size is None or size <= 0:
        raise ArgumentError("a custom template needs the output size (size=...)")
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
        raise ArgumentError(
            f"estimate_similarity needs src (B, N, 2) and dst (N, 2) or (B, N, 2), "
            f"got {tuple(src_t.shape)} and {tuple(torch.as_tensor(dst).shape)}"
        )
    bad = ~torch.isfinite(s).all(dim=(1, 2))
    ms, md = s.mean(dim=1, keepdim=True), d.mean(dim=1, keepdim=True)
    xs, xd = s - ms, d - md
    var = (xs**2).sum(dim=(1, 2))
    bad |= var <= 1e-12
    if bad.any():
        rows = bad.nonzero().squeeze(1).tolist()
        raise DataError(
            f"landmarks of sample(s) {rows[:10]} are degenerate (all points coincide or "
            f"are not finite); a similarity cannot be estimated from them"
        )
    a = (xs[..., 0] * xd[..., 0] + xs[..., 1] * xd[..., 1]).sum(dim=1) / var
    b = (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0]).sum(dim=1) / var
    rot = torch.stack([torch.stack([a, -b], dim=-1), torch.stack([b, a], dim=-1)], dim=-2)
    t = md.squeeze(1) - (rot @ ms.squeeze(1).unsqueeze(-1)).squeeze(-1)
    return torch.cat([rot, t.unsqueeze(-1)], dim=-1).to(out_dtype)


def align_faces(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    template: str | torch.Tensor | np.ndarray = "lightcnn128",
    size: int | None = None,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Warp each face so its 5 landmarks land on the template's points; (B, C, size, size).

    `images` is (B, C, H, W) float, `landmarks` (B, 5, 2) in the order and pixel convention of
    the module docstring. `template` is a name in TEMPLATES or custom (5, 2) points; `size`
    defaults to the template's native size (templates are scaled to other sizes).
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ArgumentError(f"align_faces expects a float (B, C, H, W) batch, got {images.dtype} {tuple(images.shape)}")
    lm = torch.as_tensor(landmarks)
    if lm.ndim != 3 or lm.shape[1:] != (5, 2) or lm.shape[0] != images.shape[0]:
        raise ArgumentError(f"landmarks must be (B, 5, 2) with B = {images.shape[0]}, got {tuple(lm.shape)}")
    dst, out = template_points(template, size)
    m = estimate_similarity(lm.detach().to("cpu", torch.float64), dst)
    return warp_affine(
        images,
        m.to(device=images.device, dtype=images.dtype),
        (out, out),
        mode=mode,
        padding_mode=padding_mode,
        align_corners=True,
    )


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
        raise DataError(
            f"{where}: degenerate landmarks (the 5 points lie within {spread:.3g} px of "
            f"each other); fix or drop the row"
        )
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


def align_folder(
    landmarks_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    template: str = "lightcnn128",
    size: int | None = None,
    channels: int | None = None,
    default_modality: str = "vis",
) -> Manifest | None:
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
        raise ArgumentError(f"channels must be 1, 3 or None (keep), not {channels!r}")
    if default_modality not in MODALITIES:
        raise ArgumentError(f"default_modality must be one of {', '.join(MODALITIES)}, not {default_modality!r}")
    dst, out_size = template_points(template, size)
    text = read_csv_text(
        csv_path, "landmarks CSV", DataError, f"pass a CSV with columns path,{','.join(LANDMARK_COLUMNS)}"
    )
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in ("path",) + LANDMARK_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{csv_path} row 1: header lacks column(s) {', '.join(missing)}; the CSV needs "
            f"path,{','.join(LANDMARK_COLUMNS)} (optional: subject, modality, yaw, split)"
        )
    has_subject = "subject" in header
    dropped = [c for c in header if c in PATH_COLUMNS and c != "path"]
    if dropped and has_subject:
        log.warning(
            "%s: column(s) %s are not carried into the aligned manifest (those files are not aligned)",
            csv_path,
            ", ".join(dropped),
        )
    kept = [
        c
        for c in header
        if c not in ("path", "subject", "modality", "yaw", "split")
        and c not in LANDMARK_COLUMNS
        and c not in PATH_COLUMNS
    ]
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
            raise DataError(
                f"{where}: writes {rel} again (first at row {outputs[rel]}); two images would collide, rename one"
            )
        outputs[rel] = line_no
        jobs.append((where, src, rel, pts, row))

    records = []
    for where, src, rel, pts, row in jobs:
        try:
            rgb = read_image(src, "L" if channels == 1 else "RGB")
        except ImageError as exc:
            raise ImageError(f"{where}: {exc}") from None
        if (
            rgb.ndim == 3
            and channels is None
            and (rgb[..., 0] == rgb[..., 1]).all()
            and (rgb[..., 1] == rgb[..., 2]).all()
        ):
            rgb = rgb[..., 0]
        img = torch.from_numpy(rgb).to(torch.float32)
        img = img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)
        aligned = align_faces(img.unsqueeze(0), torch.from_numpy(pts).unsqueeze(0), dst, out_size)[0]
        array = aligned.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        write_png(out_root / rel, array[..., 0] if array.shape[-1] == 1 else array)
        if has_subject:
            yaw = float(row["yaw"]) if row.get("yaw") else None
            modality = (row.get("modality") or default_modality).lower()
            records.append(
                make_record(
                    rel.as_posix(), row["subject"], modality, yaw, row.get("split", ""), **{c: row[c] for c in kept}
                )
            )
    log.info("aligned %d image(s) from %s into %s", len(jobs), csv_path, out_root)
    if not has_subject:
        return None
    out_root.mkdir(parents=True, exist_ok=True)
    written = Manifest(records, out_root, columns=["path", "subject", "modality", "yaw", "split"] + kept)
    return Manifest.read(written.write(out_root / MANIFEST_NAME))
