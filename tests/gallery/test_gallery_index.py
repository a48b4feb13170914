"""FAISS side of the gallery: exact search vs brute force, IVF and its fallback, GPU vs CPU."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from gallery_data import DIM, feats, subjects_of

from hfr.errors import ArgumentError, HFRError, OptionError
from hfr.gallery import FaissIndex, Gallery, brute_force_topk, gpu_available


def test_flat_equals_brute_force_exactly():
    g, p = feats(300, 1), feats(25, 2)
    gallery = Gallery.build(g, subjects_of(300), "fp", use_gpu=False)
    res = gallery.search(p, k=10)
    ref_scores, ref_idx = brute_force_topk(g, p, 10)
    # gallery ids are 0..N-1 in order, so brute-force row numbers are ids
    np.testing.assert_array_equal(res.ids, ref_idx.numpy())
    np.testing.assert_allclose(res.scores, ref_scores.numpy(), atol=1e-5)
    assert (np.diff(res.scores, axis=1) <= 0).all()
    # scores are cosines of the unnormalised inputs
    gn, pn = g / np.linalg.norm(g, axis=1, keepdims=True), p / np.linalg.norm(p, axis=1, keepdims=True)
    np.testing.assert_allclose(res.scores[:, 0], (pn @ gn.T).max(axis=1), atol=1e-5)


def test_brute_force_chunks_match_one_shot():
    g, p = feats(257, 3), feats(7, 4)
    s1, i1 = brute_force_topk(g, p, 5, chunk_size=1000)
    s2, i2 = brute_force_topk(torch.from_numpy(g), torch.from_numpy(p), 5, chunk_size=16)
    assert torch.equal(i1, i2)
    torch.testing.assert_close(s1, s2)
    assert brute_force_topk(g[:3], p, 5)[1].shape == (7, 3)


def test_ivf_with_all_lists_equals_flat():
    g, p = feats(1200, 5), feats(20, 6)
    flat = Gallery.build(g, subjects_of(1200), "fp", use_gpu=False)
    ivf = Gallery.build(g, subjects_of(1200), "fp", index="ivf", nlist=16, nprobe=16, use_gpu=False)
    assert ivf.info()["index"]["nlist_effective"] == 16
    a, b = flat.search(p, k=8), ivf.search(p, k=8)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    ivf.nprobe = 1  # one list of 16: some true neighbours live in lists not visited
    c = ivf.search(p, k=8)
    assert not np.array_equal(a.ids, c.ids)


def test_ivf_too_few_vectors_falls_back_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="hfr.gallery"):
        ivf = Gallery.build(feats(100), subjects_of(100), "fp", index="ivf", nlist=64, use_gpu=False)
    assert "too few" in caplog.text and "nlist=2" in caplog.text
    assert ivf.info()["index"]["nlist_effective"] == 2
    assert ivf.cpu_index.nlist == 2
    assert len(ivf.search(feats(3, 9), k=4).ids[0]) == 4


def test_torch_input_and_single_vector(flat):
    x = feats(60)
    res = flat.search(torch.from_numpy(x[7]) * 3.0, k=1)
    assert res.ids.tolist() == [[7]]
    assert res.scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_use_gpu_true_without_gpu_is_clear():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ArgumentError, match="no GPU") as err:
        Gallery.create(DIM, "fp", use_gpu=True)
    assert isinstance(err.value, HFRError) and not isinstance(err.value, OptionError)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dim=0), "dimension must be a positive integer"),
        (dict(dim=True), "dimension must be a positive integer"),
        (dict(kind="annoy"), "unknown gallery index 'annoy'"),
        (dict(nlist=0), "nlist must be an integer of at least 1"),
        (dict(nprobe=2.5), "nprobe must be an integer of at least 1"),
        (dict(train_points_per_list=38), "train_points_per_list must be an integer of at least 39"),
    ],
)
def test_index_parameters_are_checked(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        FaissIndex(**{"dim": DIM, "use_gpu": False, **kwargs})


def test_index_nprobe_setter_clamps_and_checks():
    index = FaissIndex(DIM, "ivf", nlist=4, nprobe=2, use_gpu=False)
    x = feats(400, 1)
    index.add(x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(400, dtype=np.int64))
    assert index.meta()["nlist_effective"] == 4 and index.cpu_index.nprobe == 2
    index.nprobe = 50  # kept as asked, applied clamped to the lists trained
    assert index.nprobe == 50 and index.cpu_index.nprobe == 4
    with pytest.raises(ArgumentError, match="nprobe must be an integer of at least 1"):
        index.nprobe = True
    assert index.remove(np.array([0, 1, 999], dtype=np.int64)) == 2
    assert index.cpu_index.ntotal == 398


@pytest.mark.skipif(not gpu_available(), reason="needs a GPU seen by FAISS")
@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_gpu_equals_cpu(tmp_path, kind):
    g, p = feats(2000, 1), feats(30, 2)
    kwargs = dict(index=kind, nlist=8, nprobe=3, **({"pq_m": 8} if kind == "ivfpq" else {}))
    cpu = Gallery.build(g, subjects_of(2000), "fp", use_gpu=False, **kwargs)
    gpu = Gallery.build(g, subjects_of(2000), "fp", use_gpu=True, **kwargs)
    gpu_cpu_view = Gallery.load(gpu.save(tmp_path / "g"), use_gpu=False)
    for other in (gpu, gpu_cpu_view):
        np.testing.assert_array_equal(other.search(p, 5).ids, gpu_cpu_view.search(p, 5).ids)
    if kind == "flat":
        np.testing.assert_array_equal(gpu.search(p, 5).ids, cpu.search(p, 5).ids)
    gpu.remove(ids=list(range(100)))
    assert gpu.search(g[:100], 1).ids.min() >= 100
