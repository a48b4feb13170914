"""The `dlib-resnet` recognizer kind on a real photo (scikit-image's astronaut, public domain).

Needs the `detect` and `dlib` extras (skipped without them), except the missing-extra test.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from hfr.errors import ExtraMissingError
from hfr.recognizer.export import RecognizerError, load_recognizer


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return np.asarray(data.astronaut())


def _iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_mtcnn_finds_the_astronaut_and_dlib_resnet_embeds_her(astronaut, tmp_path):
    pytest.importorskip("facenet_pytorch")
    dlib = pytest.importorskip("dlib")
    from hfr.data.detect import FaceDetector, align_face
    from hfr.recognizer.dlib_resnet import model_files

    faces = FaceDetector().detect([astronaut])[0]
    assert len(faces) == 1 and faces[0].score > 0.99
    # dlib's own detector (HOG), independent of MTCNN, puts her face in the same place
    hog = max(dlib.get_frontal_face_detector()(astronaut, 1), key=lambda r: r.area())
    box = (hog.left(), hog.top(), hog.right(), hog.bottom())
    assert _iou(faces[0].box, box) > 0.4

    rec = load_recognizer("dlib-resnet")
    assert (rec.kind, rec.input_size, rec.channels) == ("dlib-resnet", 150, 3)
    crop = align_face(astronaut, faces[0], "lightcnn128")
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    feat = rec.embed(x)
    assert feat.shape == (1, 128) and torch.allclose(feat.norm(dim=1), torch.ones(1))
    # against dlib's reference pipeline on the whole photo (HOG box, 5 points, descriptor):
    # the same face, well inside dlib's 0.6 same-person distance
    files = model_files()
    shape = dlib.shape_predictor(str(files["predictor"]))(astronaut, hog)
    ref = np.asarray(dlib.face_recognition_model_v1(str(files["network"])).compute_face_descriptor(astronaut, shape))
    ours = rec.model(rec.prepare(x))[0].numpy()
    assert np.linalg.norm(ours - ref) < 0.3
    # and a face that is not hers (another part of the photo, aligned as if a face) is far
    other = align_face(astronaut, faces[0].landmarks + [0.0, 250.0], "lightcnn128")
    far = rec.model(rec.prepare(torch.from_numpy(other).permute(2, 0, 1)[None].float() / 255))[0].numpy()
    assert np.linalg.norm(far - ref) > np.linalg.norm(ours - ref) + 0.2


def test_cli_embed_detect_with_dlib_resnet(astronaut, tmp_path):
    pytest.importorskip("facenet_pytorch")
    pytest.importorskip("dlib")
    from PIL import Image

    from hfr.cli import main

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    out = tmp_path / "f.npy"
    assert main(["embed", "--detect", "--recognizer", "dlib-resnet", "--data", str(tmp_path / "astronaut.png"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert np.load(out).shape == (1, 128)
    assert "astronaut.png,0," in out.with_suffix(".csv").read_text()


def test_recognizer_file_has_the_same_fingerprint_and_refuses_other_models(tmp_path):
    pytest.importorskip("dlib")
    from hfr.artifacts import save_recognizer_file
    from hfr.recognizer.dlib_resnet import export_dlib_resnet

    path = tmp_path / "dlib.pt"
    fp = export_dlib_resnet(path)
    assert load_recognizer(path).fingerprint == fp == load_recognizer("dlib-resnet").fingerprint
    payload = torch.load(path, weights_only=True)
    other = {"model_sha256": payload["state_dict"]["model_sha256"] ^ 1}
    save_recognizer_file(tmp_path / "other.pt", "dlib-resnet", payload["arch"], 150, 3, 128, other)
    with pytest.raises(RecognizerError, match="other dlib model files"):
        load_recognizer(tmp_path / "other.pt")


def test_without_the_extra_the_kind_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(ExtraMissingError, match=r'pip install -e "\.\[dlib\]"'):
        load_recognizer("dlib-resnet")
    with pytest.raises(RecognizerError, match="not found"):  # other names are still paths
        load_recognizer("no-such-recognizer.pt")
