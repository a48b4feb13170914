"""Protocols on hand-made features where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from hfr.data.adapters import Pair
from hfr.data.manifest import Manifest, make_record
from hfr.errors import DataError
from hfr.eval.protocols import cross_modal, cross_pose, cross_pose_split, rank1_hits, verification


def _basis(n: int, dim: int = 16) -> np.ndarray:
    return np.eye(dim, dtype=np.float32)[:n]


def test_rank1_hits_ties_lose():
    sim = np.array([[0.9, 0.9, 0.1], [0.2, 0.8, 0.8], [0.5, 0.1, 0.3]])
    hits = rank1_hits(sim, ["a", "b", "a"], ["a", "b", "c"])
    assert hits.tolist() == [False, False, True]


def _pose_manifest(n_subjects: int = 4) -> tuple[Manifest, np.ndarray]:
    """Frontal gallery images are the identity basis; probes at |yaw| 30 are correct, at 60 wrong."""
    recs, feats = [], []
    basis = _basis(n_subjects)
    for s in range(n_subjects):
        recs.append(make_record(f"{s}_0.png", f"s{s}", "vis", 0.0, "test", illumination="neutral"))
        feats.append(basis[s])
        recs.append(make_record(f"{s}_0b.png", f"s{s}", "vis", 0.0, "test", illumination="left"))
        feats.append(basis[s] * 0.9 + 0.1 * basis[(s + 1) % n_subjects])
        for yaw in (-30.0, 30.0):
            recs.append(make_record(f"{s}_{yaw}.png", f"s{s}", "vis", yaw, "test"))
            feats.append(basis[s] + 0.3 * basis[(s + 1) % n_subjects])
        for yaw in (-60.0, 60.0):
            recs.append(make_record(f"{s}_{yaw}.png", f"s{s}", "vis", yaw, "test"))
            feats.append(0.2 * basis[s] + basis[(s + 1) % n_subjects])
    recs.append(make_record("train.png", "t0", "vis", 0.0, "train"))
    feats.append(basis[0])
    return Manifest(recs, "."), np.stack(feats)


def test_cross_pose_per_bin_and_mean():
    manifest, feats = _pose_manifest()
    gallery, probes = cross_pose_split(manifest)
    assert [manifest[i].path for i in gallery] == ["0_0.png", "1_0.png", "2_0.png", "3_0.png"]
    assert len(probes) == 4 * 5
    out = cross_pose(manifest, feats)
    assert out["rank1_by_yaw"] == {"-60": 0.0, "-30": 1.0, "0": 1.0, "30": 1.0, "60": 0.0}
    assert out["rank1_by_abs_yaw"] == {"0": 1.0, "30": 1.0, "60": 0.0}
    assert out["mean"] == pytest.approx(0.5)  # mean over |yaw| bins other than 0
    assert out["rank1_all"] == pytest.approx(12 / 20)


def test_cross_pose_uses_marked_gallery():
    manifest, feats = _pose_manifest(2)
    marked = [
        make_record(
            r.path,
            r.subject,
            r.modality,
            r.yaw,
            r.split,
            **{**r.extra, "gallery": "1" if r.path.endswith("_0b.png") else "0"},
        )
        for r in manifest
    ]
    gallery, _ = cross_pose_split(Manifest(marked, "."))
    assert [marked[i].path for i in gallery] == ["0_0b.png", "1_0b.png"]


def test_cross_pose_needs_yaw():
    manifest = Manifest([make_record("a.png", "s", "vis", None, "test")], ".")
    with pytest.raises(DataError, match="yaw"):
        cross_pose(manifest, np.ones((1, 4)))


def test_feature_count_must_match():
    manifest, feats = _pose_manifest()
    with pytest.raises(DataError, match="feature rows"):
        cross_pose(manifest, feats[:-1])


def _nirvis_manifest(folds: bool) -> tuple[Manifest, np.ndarray]:
    recs, feats = [], []
    basis = _basis(6)
    for s in range(6):
        extra = {"fold_1": "gallery", "fold_2": ""} if folds else {}
        recs.append(make_record(f"v{s}.png", f"s{s}", "vis", 0.0, "test", **extra))
        feats.append(basis[s])
        extra = {"fold_1": "probe", "fold_2": ""} if folds else {}
        recs.append(make_record(f"n{s}.png", f"s{s}", "nir", 0.0, "test", **extra))
        # subjects 0..3 recognisable, 4 and 5 look like the next subject
        feats.append(basis[s] if s < 4 else basis[(s + 1) % 6] + 0.1 * basis[s])
    if folds:  # fold 2: only subjects 0 and 1, both right
        for s in range(2):
            recs.append(make_record(f"v{s}b.png", f"s{s}", "vis", 0.0, "", fold_1="", fold_2="gallery"))
            feats.append(basis[s])
            recs.append(make_record(f"n{s}b.png", f"s{s}", "nir", 0.0, "", fold_1="", fold_2="probe"))
            feats.append(basis[s])
    return Manifest(recs, "."), np.stack(feats)


def test_cross_modal_single_split():
    manifest, feats = _nirvis_manifest(folds=False)
    out = cross_modal(manifest, feats)
    assert out["n_folds"] == 1
    fold = out["folds"][0]
    assert fold["gallery"] == 6 and fold["probes"] == 6
    assert fold["rank1"] == pytest.approx(4 / 6)
    assert out["mean"]["rank1"] == pytest.approx(4 / 6) and out["std"]["rank1"] == 0.0
    assert 0.0 <= fold["vr@far=0.01"] <= 1.0 and len(fold["cmc"]) == 6 and fold["cmc"][-1] == 1.0


def test_cross_modal_folds_mean_and_std():
    manifest, feats = _nirvis_manifest(folds=True)
    out = cross_modal(manifest, feats)
    assert [f["fold"] for f in out["folds"]] == ["fold_1", "fold_2"]
    assert [f["rank1"] for f in out["folds"]] == pytest.approx([4 / 6, 1.0])
    assert out["mean"]["rank1"] == pytest.approx((4 / 6 + 1) / 2)
    assert out["std"]["rank1"] == pytest.approx(np.std([4 / 6, 1.0]))


def test_cross_modal_without_nir_is_an_error():
    manifest = Manifest([make_record("v.png", "s", "vis", 0.0, "test")], ".")
    with pytest.raises(DataError, match="both modalities"):
        cross_modal(manifest, np.ones((1, 4)))


def test_verification_folds_and_errors():
    recs, feats, pairs = [], [], []
    rng = np.random.default_rng(0)
    for s in range(20):
        base = rng.normal(size=16)
        for k in range(2):
            recs.append(make_record(f"{s}_{k}.png", f"s{s}", "vis", None, "test"))
            feats.append(base + 0.1 * rng.normal(size=16))
    for s in range(20):
        fold = s // 2 + 1
        pairs.append(Pair("lfw", fold, f"{s}_0.png", f"{s}_1.png", True))
        pairs.append(Pair("lfw", fold, f"{s}_0.png", f"{(s + 1) % 20}_1.png", False))
    manifest = Manifest(recs, ".")
    out = verification(manifest, np.stack(feats), pairs)
    lfw = out["protocols"]["lfw"]
    assert lfw["pairs"] == 40 and lfw["accuracy"] == pytest.approx(1.0)
    assert lfw["eer"] == 0.0 and lfw["auc"] == 1.0
    with pytest.raises(DataError, match="not in the manifest"):
        verification(manifest, np.stack(feats), [Pair("lfw", 1, "x.png", "0_0.png", True)])
    with pytest.raises(DataError, match="no pairs"):
        verification(manifest, np.stack(feats), [])


def test_thinned_roc_keeps_the_low_far_end_on_the_curve():
    from hfr import metrics
    from hfr.eval.protocols import _roc_points

    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(2, 1, 2000), rng.normal(0, 1, 200_000)])
    labels = np.concatenate([np.ones(2000), np.zeros(200_000)])
    roc = metrics.roc_counts(scores, labels)
    thin = _roc_points(roc, n=200)
    far, tar = np.array(thin["far"]), np.array(thin["tar"])
    assert len(far) <= 200 and np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
    full = dict(zip(np.asarray(roc.far).tolist(), np.asarray(roc.tar).tolist()))
    assert all(full.get(f) is not None for f in far)  # every kept point is a point of the exact curve
    for decade in (1e-4, 1e-3, 1e-2):  # each low-FAR decade keeps points (an even spacing left none below 1e-2)
        assert np.sum((far >= decade) & (far < 10 * decade)) >= 5
