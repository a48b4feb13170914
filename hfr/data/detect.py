"""Face detection on raw photos (MTCNN) and 5-point alignment of what it finds.

MTCNN (Zhang et al. 2016) comes from the optional extra `detect` (`pip install -e ".[detect]"`:
facenet-pytorch 2.5.3, whose wheel ships the P/R/O-Net weights; its InceptionResnetV1 weights
download at run time and are not used). Without the extra, building a `FaceDetector` raises
`ExtraMissingError` naming the install command (the CLI prints it on one line, exit status 2).
The weights are loaded here with `torch.load(..., weights_only=True)`.

- `FaceDetector.detect(images)`: boxes (x1, y1, x2, y2), 5 landmarks and a score per face, in
  the pixels of each image (the `hfr.data.align` convention: centre of the top-left pixel at
  (0, 0)). MTCNN's 5 points are the left eye, right eye, nose tip, left and right mouth corners
  ("left" = smaller x): the order of `hfr.data.align`'s templates. Photos larger than
  `max_side` are downscaled (antialiased) for detection and the results scaled back, so the
  crop is taken from the full-resolution original. Images of one size are detected in one
  batch; the networks run on `device` (CPU or CUDA). Faces come largest (box area) first.
- `align_face(image, face, template, size)`: the aligned crop, warped from a region around
  the face (antialiased first when the face is much larger than the crop).
- `read_photo` (`hfr.data.imageio`) reads any photo as RGB with its EXIF orientation applied:
  NIR/gray (replicated), RGBA (flattened on white), CMYK, 16-bit.
- `align_photos(manifest, out_dir, ...)`: detect and align every photo of a manifest (see
  `hfr.probes.load_targets` for turning a file or folder into one); writes PNG crops, a
  manifest of the faces (`source`, `face`, `score`, `box_*` and `lm_*` columns, in the source
  photo's pixels after EXIF orientation) and a sidecar `manifest.no-face.csv` listing each
  photo without a usable face and why. `hfr data align --detect` and `--detect` on `hfr embed`,
  `hfr gallery build|add` and `hfr search` use it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hfr.data.align import align_faces, estimate_similarity, template_points
from hfr.data.imageio import read_photo, write_png
from hfr.data.manifest import MANIFEST_NAME, PATH_COLUMNS, REQUIRED_COLUMNS, Manifest, make_record
from hfr.errors import ArgumentError, ExtraMissingError, HFRError
from hfr.fileio import atomic_write_text

__all__ = [
    "DETECT_INSTALL",
    "Face",
    "FaceDetector",
    "DetectionResult",
    "align_face",
    "align_photos",
    "require_detector",
    "FACE_CHOICES",
    "NO_FACE_SIDECAR",
]

#: What to run to get face detection.
DETECT_INSTALL = 'pip install -e ".[detect]"'
#: `--faces` values: the largest face of each photo, or every face.
FACE_CHOICES = ("largest", "all")
#: The file, beside the faces' manifest, that lists the photos without a usable face.
NO_FACE_SIDECAR = "manifest.no-face.csv"
#: The box and landmark columns of a faces manifest (source-photo pixels).
BOX_COLUMNS = ("box_x1", "box_y1", "box_x2", "box_y2")
LM_COLUMNS = tuple(f"lm_{a}{i}" for i in range(1, 6) for a in ("x", "y"))
#: The columns `align_photos` adds to each face row: the photo's path as listed and resolved,
#: the face's rank in its photo (0 = largest), MTCNN's score, the box and the landmarks.
FACE_COLUMNS = ("photo", "source", "face", "score", *BOX_COLUMNS, *LM_COLUMNS)


@dataclass(frozen=True)
class Face:
    """A detected face: box (x1, y1, x2, y2), landmarks (5, 2) (x, y) and MTCNN's score, in image pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """The box's area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def _mtcnn() -> tuple[Any, Any, Any, Any, Path]:
    """(PNet, RNet, ONet, detect_face, weights folder) of facenet-pytorch, or ExtraMissingError."""
    try:
        import facenet_pytorch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
        from facenet_pytorch.models.utils.detect_face import detect_face
    except ImportError as exc:
        raise ExtraMissingError(
            f"face detection (--detect) needs the optional extra `detect` (facenet-pytorch, MTCNN), which is not "
            f"installed ({exc}); install it with: {DETECT_INSTALL}"
        ) from None
    return PNet, RNet, ONet, detect_face, Path(facenet_pytorch.__file__).parent / "data"


def require_detector() -> None:
    """Raise ExtraMissingError (naming `pip install -e ".[detect]"`) unless face detection is installed."""
    _mtcnn()


class FaceDetector:
    """MTCNN on CPU or CUDA: `detect(images)` gives the faces of each image (module docstring).

    Args:
        device: where the networks run ("cpu", "cuda", "cuda:1", ...).
        min_face_size: the smallest face side searched, in pixels of the (downscaled) image.
        thresholds: score thresholds of MTCNN's three stages (facenet-pytorch's defaults).
        factor: the scale step of MTCNN's image pyramid.
        max_side: photos whose longer side exceeds this are downscaled for detection.
        batch_size: images of one size detected per forward pass.
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        max_side: int = 1024,
        batch_size: int = 16,
    ) -> None:
        if min_face_size < 12:
            raise ArgumentError(f"min_face_size must be >= 12 pixels (MTCNN's smallest window), not {min_face_size}")
        if not 0.0 < factor < 1.0:
            raise ArgumentError(f"factor must be in (0, 1), not {factor}")
        if max_side < min_face_size or batch_size < 1:
            raise ArgumentError(f"max_side ({max_side}) must be >= min_face_size and batch_size ({batch_size}) >= 1")
        pnet_cls, rnet_cls, onet_cls, detect_face, weights = _mtcnn()
        from hfr.safeload import load_weights_only

        self.device = torch.device(device)
        self._detect_face = detect_face
        self.nets = []
        for cls, name in ((pnet_cls, "pnet"), (rnet_cls, "rnet"), (onet_cls, "onet")):
            net = cls(pretrained=False)
            state = load_weights_only(
                weights / f"{name}.pt", "MTCNN weights", ExtraMissingError, missing_hint=f"reinstall: {DETECT_INSTALL}"
            )
            net.load_state_dict(state)
            self.nets.append(net.eval().to(self.device))
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.max_side = int(max_side)
        self.batch_size = int(batch_size)

    def _scaled(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image as detected (downscaled when larger than max_side) and its scale factor."""
        h, w = image.shape[:2]
        if max(h, w) <= self.max_side:
            return image, 1.0
        s = self.max_side / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        return small, s

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """The faces of each uint8 (H, W, 3) RGB image (gray (H, W) is replicated), largest first."""
        prepared: list[tuple[np.ndarray, float]] = []
        for i, image in enumerate(images):
            arr = np.asarray(image)
            if arr.ndim == 2:
                arr = np.repeat(arr[:, :, None], 3, axis=2)
            if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                raise ArgumentError(f"image {i}: expected uint8 (H, W, 3) or (H, W), got {arr.dtype} {arr.shape}")
            prepared.append(self._scaled(arr))
        results: list[list[Face]] = [[] for _ in prepared]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (arr, _) in enumerate(prepared):
            if min(arr.shape[:2]) >= self.min_face_size:  # smaller: no face of min_face_size fits
                groups.setdefault(arr.shape, []).append(i)
        pnet, rnet, onet = self.nets
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                batch = torch.from_numpy(np.stack([prepared[i][0] for i in chunk])).to(self.device)
                boxes, points = self._detect_face(
                    batch, self.min_face_size, pnet, rnet, onet, list(self.thresholds), self.factor, self.device
                )
                for i, b, p in zip(chunk, boxes, points):
                    s = prepared[i][1]
                    faces = [
                        Face(
                            box=tuple(float(v) / s for v in row[:4]),  # type: ignore[arg-type]
                            landmarks=np.asarray(pts, dtype=np.float64).reshape(5, 2) / s,
                            score=float(row[4]),
                        )
                        for row, pts in zip(np.asarray(b, np.float64).reshape(-1, 5), np.asarray(p).reshape(-1, 5, 2))
                    ]
                    results[i] = sorted(faces, key=lambda f: -f.area)
        return results


def align_face(
    image: np.ndarray, face: Face | np.ndarray, template: str | np.ndarray = "lightcnn128", size: int | None = None
) -> np.ndarray:
    """The aligned crop (size, size, C) uint8 of one face of a uint8 (H, W) or (H, W, C) image.

    `face` is a Face or its (5, 2) landmarks. Only the region the crop covers is warped; when
    the face is more than twice the crop's scale that region is first downscaled with an
    antialiasing filter, so a face in a 24-megapixel photo gives the same crop as in a smaller
    copy. Pixels outside the photo are black (as `hfr.data.align.align_faces`).
    """
    lm = np.asarray(face.landmarks if isinstance(face, Face) else face, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ArgumentError(f"landmarks must be (5, 2), got {lm.shape}")
    arr = np.asarray(image)
    gray = arr.ndim == 2
    if gray:
        arr = arr[:, :, None]
    dst, out = template_points(template if isinstance(template, str) else np.asarray(template), size)
    m = estimate_similarity(torch.from_numpy(lm)[None], dst)[0].numpy().astype(np.float64)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # output pixels per source pixel
    inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    corners = np.array([[0, 0, 1], [out - 1, 0, 1], [0, out - 1, 1], [out - 1, out - 1, 1]], dtype=np.float64)
    src = corners @ inv.T
    h, w = arr.shape[:2]
    x0 = int(np.clip(math.floor(src[:, 0].min()) - 2, 0, w - 1))
    x1 = int(np.clip(math.ceil(src[:, 0].max()) + 3, x0 + 1, w))
    y0 = int(np.clip(math.floor(src[:, 1].min()) - 2, 0, h - 1))
    y1 = int(np.clip(math.ceil(src[:, 1].max()) + 3, y0 + 1, h))
    region = torch.from_numpy(np.ascontiguousarray(arr[y0:y1, x0:x1])).permute(2, 0, 1)[None].to(torch.float32)
    pts = lm - np.array([x0, y0], dtype=np.float64)
    if scale < 0.5:
        rh, rw = region.shape[-2:]
        nh, nw = max(1, round(rh * scale * 1.5)), max(1, round(rw * scale * 1.5))
        region = F.interpolate(region, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        fx, fy = nw / rw, nh / rh
        pts = np.stack([(pts[:, 0] + 0.5) * fx - 0.5, (pts[:, 1] + 0.5) * fy - 0.5], axis=1)
    aligned = align_faces(region, torch.from_numpy(pts)[None], dst, out)[0]
    crop = aligned.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return crop[:, :, 0] if gray else crop


def _is_gray(image: np.ndarray) -> bool:
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


@dataclass
class DetectionResult:
    """What `align_photos` did: the faces' manifest (None when no face was kept), misses, counts."""

    manifest: Manifest | None
    photos: int
    misses: list[tuple[str, str]] = field(default_factory=list)
    sidecar: Path | None = None

    @property
    def faces(self) -> int:
        """Aligned faces written."""
        return 0 if self.manifest is None else len(self.manifest)


def _crop_rel(rel: str, k: int, faces: str) -> str:
    """The crop's path under the output folder for face k of a photo at manifest path `rel`."""
    p = Path(rel)
    if p.is_absolute():
        p = Path(p.name)
    p = Path(*[part for part in p.parts if part not in ("..", ".")]) if p.parts else Path("photo")
    return (p.with_suffix(".png") if faces == "largest" else p.with_name(f"{p.stem}_f{k}.png")).as_posix()


def align_photos(
    manifest: Manifest,
    out_dir: str | os.PathLike,
    detector: FaceDetector,
    template: str = "lightcnn128",
    size: int | None = None,
    faces: str = "largest",
    min_score: float = 0.9,
    progress: Callable[[int, int], None] | None = None,
) -> DetectionResult:
    """Detect the faces of every photo `manifest` lists and write their aligned crops under `out_dir`.

    `faces`: `largest` keeps each photo's largest face scoring >= `min_score` (crop path = the
    photo's relative path with `.png`), `all` keeps every such face (`<stem>_f<k>.png`, k = 0 for
    the largest). Each face row keeps the photo's subject, modality and split, adds `photo` (its
    path as the manifest lists it), `source` (its absolute path), `face` (k), `score`, the box and
    the landmarks (source-photo pixels), and keeps the photo row's other columns (not mask or
    other path columns). Photos without such a face are counted and listed
    with the reason in `manifest.no-face.csv` (written, or a stale one removed); a photo that
    cannot be decoded is an ImageError naming it. Crops of gray photos (NIR) are gray PNGs.
    Returns the written manifest (`out_dir/manifest.csv`), or None in it when no face was kept.
    """
    if faces not in FACE_CHOICES:
        raise ArgumentError(f"faces must be one of {', '.join(FACE_CHOICES)}, not {faces!r}")
    if not 0.0 <= min_score <= 1.0:
        raise ArgumentError(f"min_score must be in [0, 1], not {min_score}")
    template_points(template, size)  # checks the template before any work
    out_root = Path(out_dir)
    # mask/clean/frontal paths are not aligned, so they are not carried over (as in align_folder)
    kept = [c for c in manifest.columns if c not in REQUIRED_COLUMNS + FACE_COLUMNS + PATH_COLUMNS]
    records = []
    misses: list[tuple[str, str]] = []
    written: dict[str, str] = {}
    total = len(manifest)
    step = detector.batch_size
    for start in range(0, total, step):
        rows = manifest.records[start : start + step]
        paths = [manifest.resolve(r.path) for r in rows]
        images = [read_photo(p) for p in paths]
        found = detector.detect(images)
        for rec, path, image, faces_found in zip(rows, paths, images, found):
            good = [f for f in faces_found if f.score >= min_score]
            if not good:
                if faces_found:
                    best = max(f.score for f in faces_found)
                    reason = f"no face scoring >= {min_score:g} (best {best:.3f})"
                else:
                    reason = "no face found"
                misses.append((str(path), reason))
                continue
            gray = _is_gray(image)
            source = image[:, :, 0] if gray else image
            for k, face in enumerate(good[:1] if faces == "largest" else good):
                rel = _crop_rel(rec.path, k, faces)
                if rel in written:
                    raise HFRError(
                        f"{path}: its crop {rel} would overwrite the crop of {written[rel]}; rename one of the photos"
                    )
                written[rel] = str(path)
                write_png(out_root / rel, align_face(source, face, template, size))
                extra: dict[str, object] = {c: rec.extra.get(c, "") for c in kept}
                extra.update(photo=rec.path, source=str(path.resolve()), face=k, score=round(face.score, 6))
                extra.update({c: round(v, 3) for c, v in zip(BOX_COLUMNS, face.box)})
                extra.update({c: round(float(v), 3) for c, v in zip(LM_COLUMNS, face.landmarks.reshape(-1))})
                records.append(make_record(rel, rec.subject, rec.modality, rec.yaw, rec.split, **extra))
        if progress is not None:
            progress(min(start + step, total), total)
    out_root.mkdir(parents=True, exist_ok=True)
    sidecar = out_root / NO_FACE_SIDECAR
    if misses:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["path", "reason"])
        writer.writerows(misses)
        atomic_write_text(sidecar, buf.getvalue())
    elif sidecar.exists():
        sidecar.unlink()
    result_manifest = None
    if records:
        cols = list(REQUIRED_COLUMNS) + kept + list(FACE_COLUMNS)
        written_path = Manifest(records, out_root, columns=cols).write(out_root / MANIFEST_NAME)
        result_manifest = Manifest.read(written_path)
    return DetectionResult(result_manifest, total, misses, sidecar if misses else None)
