"""5-point similarity alignment (hfr.data.align): estimation, warps, templates, align_folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hfr.data.align import TEMPLATES, align_faces, align_folder, estimate_similarity, template_points
from hfr.data.imageio import read_image, write_png
from hfr.data.manifest import Manifest
from hfr.errors import ArgumentError, DataError, ImageError, OptionError


def _similarity(angle: float, scale: float, tx: float, ty: float) -> torch.Tensor:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float64)


def _apply(m: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    return pts @ m[..., :2].transpose(-1, -2) + m[..., 2].unsqueeze(-2)


def test_estimate_similarity_recovers_known_transforms():
    gen = torch.Generator().manual_seed(0)
    dst = torch.tensor(TEMPLATES["arcface112"][1], dtype=torch.float64)
    truth = torch.stack(
        [
            _similarity(a, s, tx, ty)
            for a, s, tx, ty in [(0.0, 1.0, 0.0, 0.0), (0.4, 0.5, 30.0, -12.0), (-2.5, 2.3, -5.0, 80.0)]
        ]
    )
    # src = inverse(truth) applied to dst, so that truth maps src exactly onto dst
    full = torch.cat([truth, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64).expand(3, 1, 3)], dim=1)
    inv = torch.linalg.inv(full)[:, :2]
    src = _apply(inv, dst.expand(3, 5, 2))
    est = estimate_similarity(src, dst)
    assert est.shape == (3, 2, 3)
    torch.testing.assert_close(est, truth, atol=1e-9, rtol=0)
    noisy = src + torch.randn(src.shape, generator=gen, dtype=torch.float64) * 0.01
    torch.testing.assert_close(estimate_similarity(noisy, dst), truth, atol=0.05, rtol=0)
    assert estimate_similarity(src.float(), dst).dtype == torch.float32


def test_estimate_similarity_never_reflects():
    src = torch.tensor(TEMPLATES["arcface112"][1], dtype=torch.float64)
    mirrored = src * torch.tensor([-1.0, 1.0])
    m = estimate_similarity(src.unsqueeze(0), mirrored)[0]
    assert float(torch.linalg.det(m[:, :2])) >= 0  # a rotation+scale, not a mirror
    with pytest.raises(DataError, match="degenerate"):
        estimate_similarity(torch.ones(2, 5, 2, dtype=torch.float64), src)


def _dots(points: torch.Tensor, h: int, w: int, sigma: float = 1.2) -> torch.Tensor:
    """(5, H, W): channel i holds a gaussian dot at points[i]."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)) for x, y in points])


def _centroids(channels: torch.Tensor) -> torch.Tensor:
    h, w = channels.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    c = channels.to(torch.float64).clamp(min=0)
    total = c.sum(dim=(-1, -2))
    return torch.stack([(c * xs).sum(dim=(-1, -2)) / total, (c * ys).sum(dim=(-1, -2)) / total], dim=-1)


@pytest.mark.parametrize("template,size", [("lightcnn128", None), ("drgan96", None), ("arcface112", 64)])
def test_align_faces_puts_landmarks_on_template(template, size):
    target, out = template_points(template, size)
    # faces in a 150x170 image under known similarities (rotated, scaled, shifted)
    base = torch.tensor(TEMPLATES["arcface112"][1], dtype=torch.float64)
    ms = [_similarity(0.3, 1.2, 20.0, 10.0), _similarity(-0.5, 0.8, 50.0, 40.0)]
    landmarks = torch.stack([_apply(m, base) for m in ms])
    images = torch.stack([_dots(lm, 150, 170) for lm in landmarks]).float()
    aligned = align_faces(images, landmarks.float(), template, size)
    assert aligned.shape == (2, 5, out, out)
    found = _centroids(aligned)
    assert float((found - target).norm(dim=-1).max()) < 0.25  # brief: 1.5 px; measured ~0.015


def test_template_points_scaling_and_errors():
    pts, size = template_points("lightcnn128")
    assert size == 128 and torch.allclose(pts[0], torch.tensor([38.2946 + 8, 51.6963], dtype=torch.float64))
    half, s2 = template_points("lightcnn128", 64)
    assert s2 == 64 and torch.allclose(half, pts / 2)
    with pytest.raises(ArgumentError, match="unknown alignment template") as err:
        template_points("nope")
    assert not isinstance(err.value, OptionError)  # a library error; OptionError is the CLI's
    with pytest.raises(ArgumentError, match="needs the output size"):
        template_points(np.zeros((5, 2)))


# ------------------------------------------------------------------------------ align_folder
def _face_file(path: Path, landmarks: torch.Tensor, h: int = 120, w: int = 130, rgb: bool = False) -> None:
    dots = _dots(landmarks, h, w, sigma=1.5).sum(dim=0).clamp(max=1.0)
    gray = (dots * 255).round().to(torch.uint8).numpy()
    write_png(path, np.dstack([gray, gray // 2, gray]) if rgb else gray)


def _landmark_cells(lm: torch.Tensor) -> str:
    return ",".join(f"{v:.4f}" for v in lm.reshape(-1).tolist())


def _write_csv(folder: Path, rows: list[str], header: str) -> Path:
    csv_path = folder / "landmarks.csv"
    csv_path.write_text("\n".join([header] + rows) + "\n", encoding="utf-8")
    return csv_path


LM_HEADER = "path," + ",".join(f"x{i},y{i}" for i in range(1, 6))


@pytest.fixture
def faces(tmp_path: Path) -> tuple[Path, list[torch.Tensor]]:
    base = torch.tensor(TEMPLATES["arcface112"][1], dtype=torch.float64)
    lms = [_apply(_similarity(0.2, 0.9, 10.0, 5.0), base), _apply(_similarity(-0.1, 1.0, 0.0, 0.0), base)]
    src = tmp_path / "raw"
    _face_file(src / "p1" / "a.png", lms[0])
    _face_file(src / "p2" / "b.png", lms[1], rgb=True)
    return src, lms


def test_align_folder_writes_images_and_manifest(faces, tmp_path):
    src, lms = faces
    csv_path = _write_csv(
        src,
        [
            f"p1/a.png,{_landmark_cells(lms[0])},alice,nir,-10,train,x",
            f"{src / 'p2' / 'b.png'},{_landmark_cells(lms[1])},bob,,,test,y",
        ],
        LM_HEADER + ",subject,modality,yaw,split,note",
    )
    out = tmp_path / "aligned"
    manifest = align_folder(csv_path, out, "drgan96")
    assert isinstance(manifest, Manifest) and (out / "manifest.csv").is_file()
    assert [r.path for r in manifest] == ["p1/a.png", "p2/b.png"]
    assert [r.subject for r in manifest] == ["alice", "bob"]
    assert [r.modality for r in manifest] == ["nir", "vis"]
    assert manifest[0].yaw == -10.0 and manifest[1].yaw is None
    assert manifest[1].split == "test" and manifest[0].get("note") == "x"
    gray = read_image(out / "p1" / "a.png")
    assert gray.shape == (96, 96)
    target, _ = template_points("drgan96")
    # the brightest pixel near each template point is within 1.5 px of it
    for x, y in target.tolist():
        xi, yi = int(round(x)), int(round(y))
        win = gray[yi - 3 : yi + 4, xi - 3 : xi + 4]
        dy, dx = np.unravel_index(np.argmax(win), win.shape)
        assert math.hypot(xi - 3 + dx - x, yi - 3 + dy - y) < 1.5
    from PIL import Image

    with Image.open(out / "p2" / "b.png") as im:
        assert im.mode == "RGB" and im.size == (96, 96)


def test_align_folder_without_subject_returns_none(faces, tmp_path):
    src, lms = faces
    csv_path = _write_csv(src, [f"p1/a.png,{_landmark_cells(lms[0])}"], LM_HEADER)
    out = tmp_path / "plain"
    assert align_folder(csv_path, out, "lightcnn128", size=64, channels=1) is None
    assert read_image(out / "p1" / "a.png").shape == (64, 64)
    assert not (out / "manifest.csv").exists()


@pytest.mark.parametrize(
    "row,header,pattern",
    [
        (None, "path,x1,y1,x2,y2", r"row 1: header lacks column\(s\) x3"),
        ("p1/a.png,1,2,3,4,5,6,7,8,9,ten", LM_HEADER, r"row 3: column 'y5' must be a number"),
        ("p1/a.png,5,5,5,5,5,5,5,5,5,5", LM_HEADER, r"row 3: degenerate landmarks"),
        ("p1/missing.png,1,2,30,4,15,20,5,30,25,30", LM_HEADER, r"row 3: image .*missing\.png does not exist"),
    ],
)
def test_align_folder_errors_name_file_and_row(faces, tmp_path, row, header, pattern):
    src, lms = faces
    rows = [] if row is None else [f"p2/b.png,{_landmark_cells(lms[1])}", row]
    csv_path = _write_csv(src, rows, header)
    out = tmp_path / "bad"
    with pytest.raises(DataError, match=r"landmarks\.csv " + pattern):
        align_folder(csv_path, out)
    assert not out.exists()  # rows are checked before anything is written


def test_align_folder_decode_error(faces, tmp_path):
    src, lms = faces
    (src / "broken.png").write_bytes(b"\x89PNG garbage")
    csv_path = _write_csv(src, [f"broken.png,{_landmark_cells(lms[0])}"], LM_HEADER)
    with pytest.raises(ImageError, match=r"landmarks\.csv row 2: .*broken\.png"):
        align_folder(csv_path, tmp_path / "x")
