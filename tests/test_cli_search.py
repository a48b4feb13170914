"""`hfr embed`, `hfr evaluate`, `hfr gallery ...` and `hfr search` end to end on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pattern_data import write_patterns  # noqa: E402

from hfr.cli import main  # noqa: E402
from hfr.data.manifest import Manifest, make_record  # noqa: E402
from hfr.models.lightcnn import build_lightcnn  # noqa: E402
from hfr.recognizer.export import export_recognizer  # noqa: E402


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    write_patterns(data, 5, 2, modalities=("nir", "vis"), split="test")
    m = Manifest.read(data)
    yaws = {0: -30.0, 1: 0.0}
    recs = [
        make_record(r.path, r.subject, r.modality, yaws[int(r.path[-5])], r.split, illumination="neutral") for r in m
    ]
    Manifest(recs, data).write(data)
    rec_path = tmp_path / "recognizer.pt"
    net = build_lightcnn("lightcnn9", num_classes=0, input_size=32).eval()
    export_recognizer(net, rec_path)
    other = tmp_path / "other.pt"
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32), other)
    return data, rec_path, other


def test_embed_writes_features_and_ids(setup, tmp_path):
    data, rec, _ = setup
    out = tmp_path / "feats.npy"
    assert main(["embed", "--recognizer", str(rec), "--data", str(data), "--out", str(out)]) == 0
    feats = np.load(out)
    assert feats.shape == (20, 256)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    ids = out.with_suffix(".csv").read_text().splitlines()
    assert ids[0].startswith("row,path,subject") and len(ids) == 21


@pytest.mark.parametrize(
    "protocol,files",
    [("cross-modal", {"result.json", "roc.png", "cmc.png"}), ("cross-pose", {"result.json", "rank1_vs_yaw.png"})],
)
def test_evaluate_writes_json_and_plots(setup, tmp_path, protocol, files, capsys):
    data, rec, _ = setup
    out = tmp_path / protocol
    assert (
        main(["evaluate", "--protocol", protocol, "--recognizer", str(rec), "--data", str(data), "--out", str(out)])
        == 0
    )
    assert files <= {p.name for p in out.iterdir()}
    result = json.loads((out / "result.json").read_text())
    assert result["protocol"] == protocol
    assert protocol in capsys.readouterr().out


def test_evaluate_errors(setup, tmp_path, capsys):
    data, rec, _ = setup
    assert (
        main(
            [
                "evaluate",
                "--protocol",
                "nearest",
                "--recognizer",
                str(rec),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "--protocol 'nearest'" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--protocol",
                "verification",
                "--recognizer",
                str(rec),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )


def test_gallery_build_search_add_remove(setup, tmp_path, capsys):
    data, rec, other = setup
    g = tmp_path / "gallery"
    assert (
        main(["gallery", "build", "--recognizer", str(rec), "--data", str(data), "--out", str(g), "--modality", "vis"])
        == 0
    )
    assert {p.name for p in g.iterdir()} == {"index.faiss", "meta.json", "ids.csv"}
    assert json.loads((g / "meta.json").read_text())["count"] == 10
    res = tmp_path / "res.json"
    probe = next(p for p in data.rglob("vis_1.png"))
    assert (
        main(
            [
                "search",
                "--gallery",
                str(g),
                "--recognizer",
                str(rec),
                "--probe",
                str(probe),
                "-k",
                "3",
                "--json",
                str(res),
            ]
        )
        == 0
    )
    rows = json.loads(res.read_text())
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["subject"] == probe.parent.name and rows[0]["score"] == pytest.approx(1.0, abs=1e-4)
    capsys.readouterr()
    # a probe folder, k larger than the gallery's subjects is clamped
    assert (
        main(
            [
                "search",
                "--gallery",
                str(g),
                "--recognizer",
                str(rec),
                "--probe",
                str(data),
                "-k",
                "50",
                "--csv",
                str(tmp_path / "all.csv"),
            ]
        )
        == 0
    )
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 1 + 20 * 5
    # another recognizer's probes are refused, k < 1 is an error
    assert main(["search", "--gallery", str(g), "--recognizer", str(other), "--probe", str(probe)]) == 2
    assert "another recognizer" in capsys.readouterr().err
    assert main(["search", "--gallery", str(g), "--recognizer", str(rec), "--probe", str(probe), "-k", "0"]) == 2
    # add the NIR images, remove one subject
    assert (
        main(
            ["gallery", "add", "--gallery", str(g), "--recognizer", str(rec), "--data", str(data), "--modality", "nir"]
        )
        == 0
    )
    assert json.loads((g / "meta.json").read_text())["count"] == 20
    assert main(["gallery", "remove", "--gallery", str(g), "--subject", probe.parent.name]) == 0
    assert json.loads((g / "meta.json").read_text())["count"] == 16
    assert main(["gallery", "info", "--gallery", str(g)]) == 0
    assert main(["gallery", "remove", "--gallery", str(g)]) == 2
    assert main(["gallery", "info", "--gallery", str(tmp_path / "nothing")]) == 2


def test_gallery_build_index_kinds_and_recall(setup, tmp_path, capsys, monkeypatch):
    data, rec, _ = setup
    base = ["gallery", "build", "--recognizer", str(rec), "--data", str(data)]
    g = tmp_path / "hnsw"
    assert main([*base, "--out", str(g), "--index", "hnsw", "--ef-search", "32"]) == 0
    assert json.loads((g / "meta.json").read_text())["index"]["ef_search"] == 32
    assert main(["gallery", "remove", "--gallery", str(g), "--id", "0"]) == 2
    assert "cannot remove vectors" in capsys.readouterr().err
    # --recall: measured and recorded (the tuner's small-gallery rule, lowered so 20 faces are tuned)
    monkeypatch.setattr("hfr.gallery.tune.MIN_TUNED", 10)
    tuned = tmp_path / "tuned"
    assert main([*base, "--out", str(tuned), "--recall", "0.9", "--append-only", "--max-bytes-per-face", "4096"]) == 0
    tuning = json.loads((tuned / "meta.json").read_text())["tuning"]
    assert tuning["target_recall"] == 0.9 and tuning["removable"] is False and tuning["max_bytes_per_vector"] == 4096
    assert tuning["recall_at_1"] >= 0.9 and {c["kind"] for c in tuning["candidates"]} == {"flat", "ivf", "hnsw"}
    capsys.readouterr()
    assert main(["gallery", "info", "--gallery", str(tuned)]) == 0
    assert "recall_at_1" in capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "x"), "--recall", "0.9", "--index", "ivf"]) == 2
    assert "--recall chooses the index" in capsys.readouterr().err
