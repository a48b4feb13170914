"""Tests of `benchmarks/face_vectors.py`: the cosine statistics, the calibrated face-vector generator on
synthetic clustered data of known spread, its sampling contract and file, and the script's smoke mode
(an untrained tiny LightCNN on tiny image sets: no recognizer training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmark_scripts import PNG_MAGIC, keep_threads, load_script  # noqa: F401  (keep_threads: autouse fixture)

from hfr.data.imageio import write_png
from hfr.data.manifest import Manifest, make_record

fv = load_script("face_vectors")

TOL = 0.02
MOMENTS = [("genuine", "mean"), ("genuine", "std"), ("impostor", "mean"), ("impostor", "std")]


def clustered(identities: int = 400, per: int = 5, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `identities` Gaussian centres (a shared mean of norm 0.5, between-identity
    spread 0.25 and within 0.12 per unit axis, both on strongly anisotropic spectra), `per` each."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(dim)
    mean *= 0.5 / np.linalg.norm(mean)
    axes = np.geomspace(3.0, 0.05, dim)
    centres = mean + 0.25 * rng.standard_normal((identities, dim)) * axes
    x = np.repeat(centres, per, axis=0) + 0.12 * rng.standard_normal((identities * per, dim)) * axes[::-1]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(identities), per)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The clustered set and its cosine statistics."""
    x, labels = clustered()
    return x, labels, fv.cosine_stats(x, labels, pairs=50_000, rank1_probes=0)


@pytest.fixture(scope="module")
def model(data: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> Any:
    """A model fitted and calibrated on the clustered set (rank 16)."""
    x, labels, stats = data
    return fv.FaceVectorModel.fit(x, labels, rank=16, targets=stats, calibration={"identities": 1024})


def moments_error(real: dict[str, Any], generated: dict[str, Any]) -> dict[str, float]:
    """|generated - real| of the genuine/impostor means and stds."""
    return {f"{d}_{s}": abs(generated[d][s] - real[d][s]) for d, s in MOMENTS}


def test_cosine_stats_of_a_known_set() -> None:
    # two identities, each a repeated vector, the two orthogonal: genuine cos 1, impostor cos 0
    x = np.repeat(np.eye(4, dtype=np.float32)[:2], 3, axis=0)
    labels = np.array([7, 7, 7, 3, 3, 3])
    stats = fv.cosine_stats(x, labels, pairs=500, rank1_probes=6)
    assert stats["rows"] == 6 and stats["identities"] == 2 and stats["dim"] == 4
    assert stats["genuine"]["mean"] == pytest.approx(1.0) and stats["genuine"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert stats["impostor"]["mean"] == pytest.approx(0.0) and stats["impostor"]["q99"] == pytest.approx(0.0)
    assert stats["rank1_loo"] == 1.0
    genuine, impostor = fv.pair_cosines(x, labels, pairs=200, seed=1)
    assert len(genuine) == len(impostor) == 200
    # a singleton identity has no genuine pair and cannot be a leave-one-out probe
    g, _ = fv.pair_cosines(x[:4], np.array([0, 0, 0, 1]), pairs=100)
    assert np.allclose(g, 1.0)


def test_fit_and_sample_reproduce_the_cosine_statistics(data: Any, model: Any) -> None:
    x, labels, real = data
    vectors, gen_labels = model.sample_array(400, 5, seed=1)
    generated = fv.cosine_stats(vectors, gen_labels, pairs=50_000, rank1_probes=0)
    errors = moments_error(real, generated)
    assert max(errors.values()) < TOL, errors
    assert model.info["calibration"]["max_abs_error"] < 0.005, model.info["calibration"]
    # the leave-one-out rank-1 of a generated set of the same size is near the real one
    real_rank1 = fv.loo_rank1(x, labels, probes=500)
    assert abs(fv.loo_rank1(vectors, gen_labels, probes=500) - real_rank1) < 0.05


def test_calibration_is_what_matches_a_truncated_model(data: Any) -> None:
    """Rank 2 of a strongly anisotropic 64-d spectrum: the isotropic floor spreads the identities over too
    many dimensions, so the impostor std comes out well below the real one until calibrated."""
    x, labels, real = data
    raw = fv.FaceVectorModel.fit(x, labels, rank=2, calibrate=False)
    calibrated = fv.FaceVectorModel.fit(x, labels, rank=2, targets=real, calibration={"identities": 1024})
    raw_stats = fv.cosine_stats(*raw.sample_array(400, 5, seed=1), pairs=50_000, rank1_probes=0)
    cal_stats = fv.cosine_stats(*calibrated.sample_array(400, 5, seed=1), pairs=50_000, rank1_probes=0)
    assert max(moments_error(real, raw_stats).values()) > 0.03
    assert max(moments_error(real, cal_stats).values()) < TOL
    report = calibrated.info["calibration"]
    assert report["converged"] and raw.knobs()["centre_power"] == 1.0
    assert abs(report["before"]["impostor_std"] - real["impostor"]["std"]) > 0.03
    assert abs(report["after"]["impostor_std"] - real["impostor"]["std"]) < 0.005


def test_chunked_sampling_equals_one_shot(model: Any) -> None:
    n, per = 2500, 3  # three identity blocks, the last one partial
    whole = list(model.sample(n, per, seed=5, chunk=10**6))
    assert len(whole) == 1
    chunks = list(model.sample(n, per, seed=5, chunk=1000))
    assert [len(v) for v, _ in chunks] == [1000] * 7 + [500]
    vectors = np.concatenate([v for v, _ in chunks])
    labels = np.concatenate([lab for _, lab in chunks])
    assert np.array_equal(vectors, whole[0][0]) and np.array_equal(labels, whole[0][1])
    # deterministic given the seed, another seed gives other vectors, a smaller draw is a prefix
    again, _ = model.sample_array(n, per, seed=5)
    assert np.array_equal(again, vectors)
    assert not np.allclose(model.sample_array(10, per, seed=6)[0], vectors[:30])
    assert np.array_equal(model.sample_array(700, per, seed=5)[0], vectors[:2100])
    # images() gives an identity's rows again (variant 0), or new images of the same identity
    ids = np.array([2400, 3, 1500, 3])
    same, same_labels = model.images(ids, per, seed=5, variant=0)
    rows = (ids[:, None] * per + np.arange(per)).ravel()
    assert np.array_equal(same, vectors[rows]) and np.array_equal(same_labels, np.repeat(ids, per))
    probes, _ = model.images(ids, 1, seed=5, variant=1)
    gallery, _ = model.images(np.arange(n), 1, seed=5, variant=0)
    assert (np.argmax(probes @ gallery.T, axis=1) == ids).mean() >= 0.75


def test_labels_and_vectors(model: Any) -> None:
    vectors, labels = model.sample_array(50, 4, seed=0)
    assert vectors.dtype == np.float32 and vectors.shape == (200, 64) and labels.dtype == np.int64
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(labels, np.repeat(np.arange(50), 4))
    assert np.array_equal(np.bincount(labels), np.full(50, 4))
    # identities are distinct: each identity's images are closer to their own mean than to any other's
    means = vectors.reshape(50, 4, 64).mean(axis=1)
    assert len(np.unique(means.round(4), axis=0)) == 50
    assert (np.argmax(vectors @ means.T, axis=1) == labels).mean() > 0.95
    assert list(model.sample(0, 4)) == []
    with pytest.raises(fv.FaceVectorError):
        next(model.sample(5, 0))


def test_save_load_round_trip(model: Any, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.npz")
    loaded = fv.FaceVectorModel.load(path)
    assert loaded.knobs() == model.knobs() and loaded.families == model.families
    assert loaded.info == json.loads(json.dumps(model.info))
    assert np.array_equal(loaded.sample_array(30, 2, seed=3)[0], model.sample_array(30, 2, seed=3)[0])
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == fv.FORMAT
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    with pytest.raises(fv.FaceVectorError):
        fv.FaceVectorModel.load(tmp_path / "bad.npz")


def test_fit_refuses_unusable_data() -> None:
    with pytest.raises(fv.FaceVectorError):
        fv.FaceVectorModel.fit(np.eye(3, dtype=np.float32), np.arange(3))  # no identity with 2 rows
    with pytest.raises(fv.FaceVectorError):
        fv.FaceVectorModel.fit(np.eye(3, dtype=np.float32), np.zeros(2))


# ------------------------------------------------------------------ real features and the script


def tiny_sets(root: Path) -> Path:
    """Two tiny SynthFace-like sets `alpha` and `beta` (preset.yaml, manifest.csv): subjects s0..s3 in each
    (the same names: labels must still differ), 3 noisy 16x16 images each, s3 in the test split."""
    rng = np.random.default_rng(0)
    for preset in ("alpha", "beta"):
        folder = root / preset
        folder.mkdir(parents=True)
        (folder / "preset.yaml").write_text(f"generator: test\npreset: {preset}\n", encoding="utf-8")
        records = []
        for s in range(4):
            base = rng.integers(0, 256, (16, 16))
            for i in range(3):
                name = f"images/s{s}/{i}.png"
                image = np.clip(base + rng.normal(0, 20, (16, 16)), 0, 255).astype(np.uint8)
                write_png(folder / name, image)
                records.append(make_record(name, f"s{s}", "vis", 0.0, "test" if s == 3 else "train"))
        Manifest(records, folder).write(folder)
    return root


def tiny_recognizer(path: Path) -> Path:
    """An untrained half-width LightCNN-9 for 16x16 gray faces, exported as a recognizer file."""
    import torch

    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9bn-w0.5", num_classes=0, input_size=16).eval(), path)
    return path


def test_real_face_features_labels_per_set(tmp_path: Path) -> None:
    root = tiny_sets(tmp_path / "data")
    recognizer = tiny_recognizer(tmp_path / "recognizer.pt")
    features, labels = fv.real_face_features(recognizer, [root / "alpha", root / "beta"], per_subject=2)
    assert features.shape == (16, 256) and features.dtype == np.float32 and labels.dtype == np.int64
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(labels, np.repeat(np.arange(8), 2))  # alpha/s0..s3, then beta/s0..s3
    rows = fv.face_rows([root / "alpha", root / "beta"], splits=["train"])
    assert rows.names()[:3] == ["alpha/s0"] * 3 and rows.names()[-1] == "beta/s2"
    assert set(rows.column("split")) == {"train"} and len(rows.labels()) == 18


@pytest.mark.slow  # embeds a SynthFace set and fits the model
def test_quick_main_writes_results(tmp_path: Path) -> None:
    root = tiny_sets(tmp_path / "data")
    recognizer = tiny_recognizer(tmp_path / "recognizer.pt")
    out = tmp_path / "out" / "face_vectors.json"
    argv = ["--quick", "--recognizer", str(recognizer), "--data", str(root), "--sets", "alpha", "beta"]
    assert fv.main([*argv, "--out", str(out), "--threads", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["quick"] is True and result["settings"]["images_per_set"] == {"alpha": 12, "beta": 12}
    assert result["real"]["identities"] == 8 and result["generated"]["identities"] == 8
    assert {"genuine", "impostor", "rank1_loo"} <= set(result["real"]) and "machine" in result
    assert set(result["real_by_group"]) == {"set=alpha", "set=beta", "split=train", "split=test"}
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    model = fv.FaceVectorModel.load(result["model_file"])
    assert model.dim == 256 and "calibration" in model.info
    with pytest.raises(SystemExit):  # a smoke run into benchmarks/results is refused
        fv.main([*argv])
