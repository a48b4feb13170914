"""Composed test photos: SynthFace renders pasted onto a background, with their ground-truth 5 points.

SynthFace (`hfr.data.synth_render`) gives each render's projected 3D landmarks; the 5 points
of hfr's templates are its eyes, nose tip and mouth corners, ordered by x as detectors report
them. MTCNN, trained on real faces, finds only some SynthFace faces (about 45% of renders at
score >= 0.9 in this session's measurement), so `detectable_faces` renders a pool and keeps the
renders it finds when shown alone: the tests then measure where it puts the landmarks and what
the pipeline does with the faces, not MTCNN's recall on synthetic faces.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hfr.data.synth_face import sample_identity
from hfr.data.synth_render import ImageSpec, render_batch

SIZE = 128


@dataclass
class FaceRender:
    """One render: subject index, modality, yaw, the (SIZE, SIZE, 3) image and its 5 points (5, 2)."""

    subject: int
    modality: str
    yaw: float
    image: np.ndarray
    five: np.ndarray


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """hfr's 5 points (eyes, nose tip, mouth corners; each pair by increasing x) of a render's landmarks."""
    eyes = landmarks[[0, 1]]
    mouth = landmarks[[3, 4]]
    eyes = eyes[np.argsort(eyes[:, 0])]
    mouth = mouth[np.argsort(mouth[:, 0])]
    return np.concatenate([eyes, landmarks[[2]], mouth]).astype(np.float64)


def render_faces(subjects: list[int], variants: list[tuple], seed: int = 0) -> list[FaceRender]:
    """Render each (yaw, modality[, expression]) variant of each SynthFace webface subject at SIZE px."""
    ids = [sample_identity(seed, "webface", s) for s in subjects]
    specs = [
        ImageSpec(identity=i, yaw=v[0], modality=v[1], expression=v[2] if len(v) > 2 else 0, seed=1000 * s + k)
        for i, s in enumerate(subjects)
        for k, v in enumerate(variants)
    ]
    out = render_batch(ids, specs, SIZE)
    return [
        FaceRender(subjects[spec.identity], spec.modality, spec.yaw, out.images[n], five_points(out.landmarks[n]))
        for n, spec in enumerate(specs)
    ]


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth two-colour gradient with mild noise, uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    c1, c2 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    img = c1 * (1 - t) + c2 * t + rng.normal(0, 4, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def compose(
    faces: list[FaceRender], positions: list[tuple[int, int]], height: int, width: int, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Paste renders at (x, y) top-left positions; returns the photo and each face's 5 points in it."""
    photo = background(height, width, seed)
    points = []
    for face, (x, y) in zip(faces, positions):
        photo[y : y + SIZE, x : x + SIZE] = face.image
        points.append(face.five + np.array([x, y], dtype=np.float64))
    return photo, points


def rotate(photo: np.ndarray, points: list[np.ndarray], degrees: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rotate a photo counter-clockwise by `degrees` about its centre (same size) and its points with it."""
    h, w = photo.shape[:2]
    out = np.asarray(Image.fromarray(photo).rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=(128,) * 3))
    a = math.radians(degrees)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # PIL rotates counter-clockwise on screen (y down): x' = c + R(-a) (x - c) in image coordinates
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return out, [(p - [cx, cy]) @ rot.T + [cx, cy] for p in points]


def portrait(face: FaceRender) -> tuple[np.ndarray, np.ndarray]:
    """A photo of one face: the render 32 px inside a plain gray frame, and its 5 points in it."""
    photo = np.full((SIZE + 64, SIZE + 64, 3), 100, np.uint8)
    photo[32 : 32 + SIZE, 32 : 32 + SIZE] = face.image
    return photo, face.five + 32


@functools.cache
def detectable_faces() -> tuple[FaceRender, ...]:
    """The renders (12 webface subjects x VIS/NIR at yaw 0, VIS at yaw 15) MTCNN finds alone with
    score >= 0.9, computed once per test session (needs the `detect` extra)."""
    from hfr.data.detect import FaceDetector

    pool = render_faces(list(range(12)), [(0.0, "vis"), (0.0, "nir"), (15.0, "vis")])
    found = FaceDetector().detect([portrait(f)[0] for f in pool])
    return tuple(f for f, d in zip(pool, found) if d and d[0].score >= 0.9)


def distinct_subjects(faces: tuple[FaceRender, ...] | list[FaceRender], n: int) -> list[FaceRender]:
    """n faces of distinct subjects, NIR ones first when there are."""
    seen: set[int] = set()
    out = []
    for f in sorted(faces, key=lambda f: f.modality != "nir"):
        if f.subject not in seen:
            seen.add(f.subject)
            out.append(f)
    return out[:n]
