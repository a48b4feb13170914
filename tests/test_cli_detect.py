"""`--detect` on `hfr embed`, `hfr gallery build|add` and `hfr search`: raw photos in.

The default tier checks the plumbing with an untrained LightCNN (a photo's face matches the
same face exactly; boxes, paths and ids are the photo's); the slow test trains a small SynthFace
LightCNN and finds a subject top-1 from another photo of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from face_photos import compose, detectable_faces, distinct_subjects, portrait
from PIL import Image

from hfr.cli import main
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer


def _photo(path: Path, faces, positions, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    photo, truths = compose(faces, positions, h, w, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path)
    return truths


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """Photos of 3 subjects (one face each, in subject folders), a group photo of them, a recognizer."""
    pytest.importorskip("facenet_pytorch")
    root = tmp_path_factory.mktemp("people")
    group = distinct_subjects(detectable_faces(), 3)
    for face in group:
        (root / "gallery" / f"s{face.subject}").mkdir(parents=True)
        Image.fromarray(portrait(face)[0]).save(root / "gallery" / f"s{face.subject}" / "portrait.png")
    truths = _photo(root / "probe" / "group.png", group, [(20, 40), (180, 90), (340, 30)], 280, 500, seed=9)
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(root / "gallery" / "empty.png")
    rec = root / "recognizer.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1).eval(), rec)
    return root, group, truths, rec


def test_gallery_build_add_search_with_detect(people, tmp_path, capsys):
    root, group, truths, rec = people
    gal = tmp_path / "gal"
    assert main(["gallery", "build", "--detect", "--recognizer", str(rec), "--data", str(root / "gallery"),
                 "--out", str(gal)]) == 0  # fmt: skip
    assert "1 of 4 photos without a face" in capsys.readouterr().err  # empty.png
    from hfr.gallery.storage import read_ids

    stored = sorted(Path(p).relative_to(root).as_posix() for p in read_ids(gal)[3])
    assert stored == sorted(f"gallery/s{f.subject}/portrait.png" for f in group)
    # adding the same photos again skips them (the gallery names the photos, not temporary crops)
    assert main(["gallery", "add", "--detect", "--gallery", str(gal), "--recognizer", str(rec),
                 "--data", str(root / "gallery")]) == 0  # fmt: skip
    assert "added 0 entries" in capsys.readouterr().out
    # the group photo's faces added as entries <photo>#f<k> (subject "unknown": the photo is not in a subfolder)
    assert main(["gallery", "add", "--detect", "--faces", "all", "--gallery", str(gal), "--recognizer", str(rec),
                 "--data", str(root / "probe")]) == 0  # fmt: skip
    assert sorted(p.rsplit("#", 1)[1] for p in read_ids(gal)[3] if "#" in p) == ["f0", "f1", "f2"]

    # search with the group photo: every face found, each named by its box, and each face's best
    # match is itself (added above: identical crop, identical feature)
    out = tmp_path / "r.json"
    csv = tmp_path / "r.csv"
    assert main(["search", "--detect", "--faces", "all", "--gallery", str(gal), "--recognizer", str(rec),
                 "--probe", str(root / "probe" / "group.png"), "-k", "1", "--json", str(out),
                 "--csv", str(csv)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "face box" in printed
    rows = json.loads(out.read_text())
    probe = str((root / "probe" / "group.png").resolve())  # a single image is named by its absolute path
    assert len(rows) == 3 and all(r["probe"] == probe and r["rank"] == 1 for r in rows)
    for truth in truths:  # one result per face, its box around that face
        (hit,) = [r for r in rows if _inside(truth, r["box"])]
        assert hit["subject"] == "unknown" and hit["score"] == pytest.approx(1.0, abs=1e-4)
    lines = csv.read_text().splitlines()
    assert lines[0] == "probe,box_x1,box_y1,box_x2,box_y2,rank,subject,score" and len(lines) == 4


def _inside(points: np.ndarray, box: list[float]) -> bool:
    x1, y1, x2, y2 = box
    return bool((points[:, 0] > x1).all() and (points[:, 0] < x2).all() and (points[:, 1] > y1).all() and
                (points[:, 1] < y2).all())  # fmt: skip


def test_embed_with_detect_writes_a_row_per_face(people, tmp_path):
    root, _, truths, rec = people
    out = tmp_path / "f.npy"
    assert main(["embed", "--detect", "--faces", "all", "--recognizer", str(rec), "--data",
                 str(root / "probe"), "--out", str(out)]) == 0  # fmt: skip
    feats = np.load(out)
    ids = out.with_suffix(".csv").read_text().splitlines()
    assert ids[0].startswith("row,path,face,box_x1,box_y1,box_x2,box_y2,score")
    assert feats.shape == (3, 256) and len(ids) == 4
    faces = sorted(int(line.split(",")[2]) for line in ids[1:])
    assert faces == [0, 1, 2]
    boxes = [[float(v) for v in line.split(",")[3:7]] for line in ids[1:]]
    assert all(sum(_inside(t, b) for b in boxes) == 1 for t in truths)


def test_search_detect_without_the_extra_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)
    rec = tmp_path / "r.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32).eval(), rec)
    from hfr.gallery import Gallery

    Gallery.build(np.eye(4, 256, dtype=np.float32), list("abcd"), "x" * 16).save(tmp_path / "g")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "p.png")
    for argv in (
        ["search", "--detect", "--gallery", str(tmp_path / "g"), "--recognizer", str(rec), "--probe",
         str(tmp_path / "p.png")],
        ["embed", "--detect", "--recognizer", str(rec), "--data", str(tmp_path / "p.png"), "--out",
         str(tmp_path / "f.npy")],
    ):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert 'pip install -e ".[detect]"' in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------ slow: real identities


def _train_lightcnn(crops: np.ndarray, labels: np.ndarray, steps: int = 250, seed: int = 0):
    """A LightCNN-9 at 32 px, gray, trained by softmax on (N, 32, 32) crops in [0, 1]."""
    import torch

    torch.manual_seed(seed)
    n_cls = int(labels.max()) + 1
    net = build_lightcnn("lightcnn9", num_classes=n_cls, input_size=32, in_channels=1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_all = torch.from_numpy(crops).float()[:, None]
    y_all = torch.from_numpy(labels).long()
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (16,), generator=gen)
        x = x_all[idx]
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        out = net(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = torch.nn.functional.cross_entropy(logits, y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@pytest.mark.slow
def test_gallery_of_synthface_subjects_finds_another_photo_top1(tmp_path):
    """The issue's end-to-end check: a gallery built with --detect from photos of SynthFace subjects,
    searched with another photo of one of them, finds them top-1 (a SynthFace-trained LightCNN).

    Each subject has 20 renders (yaw -10..10, VIS and NIR, neutral and smiling); those MTCNN finds (face_photos'
    docstring) are split into training photos, one gallery photo and one probe photo, all different
    renders. The LightCNN is trained on the training photos' crops from the same detection and
    alignment. About 40 s on one core.
    """
    pytest.importorskip("facenet_pytorch")
    from face_photos import render_faces

    from hfr.data.detect import FaceDetector, align_photos
    from hfr.data.manifest import Manifest, make_record

    detector = FaceDetector()
    variants = [(y, m, e) for y in (-10.0, -5.0, 0.0, 5.0, 10.0) for m in ("vis", "nir") for e in (0, 1)]
    pool = render_faces([1, 2, 4, 7, 8, 9, 10, 11], variants)
    found = detector.detect([portrait(f)[0] for f in pool])
    per: dict[int, list] = {}
    for face, faces in zip(pool, found):
        if faces and faces[0].score >= 0.9:
            per.setdefault(face.subject, []).append(face)
    subjects = [s for s in per if sum(f.modality == "vis" for f in per[s]) >= 3 and len(per[s]) >= 6][:6]
    assert len(subjects) >= 5, f"too few SynthFace subjects MTCNN finds: {per.keys()}"

    def save(face, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(portrait(face)[0]).save(path)

    records = []
    for s in subjects:
        # gallery and probe: two VIS photos at different yaws, none of the training renders
        vis = [f for f in per[s] if f.modality == "vis"]
        gallery, probe = vis[0], vis[len(vis) // 2]
        train = [f for f in per[s] if f is not gallery and f is not probe]
        for n, face in enumerate(train):
            save(face, tmp_path / "train" / f"s{s}" / f"{n}.png")
            records.append(make_record(f"s{s}/{n}.png", f"s{s}", face.modality))
        save(gallery, tmp_path / "gallery" / f"s{s}" / "g.png")
        save(probe, tmp_path / "probe" / f"s{s}.png")
    result = align_photos(Manifest(records, tmp_path / "train"), tmp_path / "aligned", detector)
    assert result.manifest is not None
    m = result.manifest
    crops = np.stack(
        [np.asarray(Image.open(m.resolve(r.path)).convert("L").resize((32, 32), Image.Resampling.BILINEAR)) for r in m]
    ).astype(np.float32)
    names = [f"s{s}" for s in subjects]
    net = _train_lightcnn(crops / 255.0, np.array([names.index(r.subject) for r in m]))
    rec = tmp_path / "recognizer.pt"
    export_recognizer(net, rec)

    gal = tmp_path / "gal"
    assert main(["gallery", "build", "--detect", "--recognizer", str(rec), "--data", str(tmp_path / "gallery"),
                 "--out", str(gal)]) == 0  # fmt: skip
    hits = []
    for s in subjects:
        out = tmp_path / f"s{s}.json"
        assert main(["search", "--detect", "--gallery", str(gal), "--recognizer", str(rec),
                     "--probe", str(tmp_path / "probe" / f"s{s}.png"), "-k", "1", "--json", str(out)]) == 0  # fmt: skip
        hits.append(json.loads(out.read_text())[0]["subject"] == f"s{s}")
    print(f"top-1 for {sum(hits)} of {len(subjects)} probe photos")
    assert sum(hits) >= len(subjects) - 1, f"top-1 for {sum(hits)} of {len(subjects)} probe photos"
