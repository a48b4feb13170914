"""The exact search path and the compressed and graph index kinds ("ivfpq", "hnsw")."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch
from gallery_data import CLUSTER_DIM as DIM
from gallery_data import clustered

from hfr.errors import ArgumentError, GalleryError
from hfr.gallery import Gallery, brute_force_topk
from hfr.gallery.index import exact_search, index_bytes, index_kind
from hfr.gallery.storage import META_FILE


def recall_at_1(gallery: Gallery, gallery_vectors: np.ndarray, probes: np.ndarray) -> float:
    _, exact = brute_force_topk(gallery_vectors, probes, 1)
    return float(np.mean(gallery.search(probes, 1).ids[:, 0] == exact.numpy()[:, 0]))


@pytest.mark.parametrize("block", [1 << 24, 7 * 40])  # one block, and blocks of 7 rows for 40 probes
@pytest.mark.parametrize("shards", [1, 3])
def test_exact_search_equals_faiss_flat(monkeypatch, block, shards):
    monkeypatch.setattr("hfr.gallery.index.EXACT_SCORE_BLOCK", block)
    x, _ = clustered(50, 4, 0.3, 0)
    probes = clustered(40, 1, 0.3, 1)[0]
    reference = faiss.IndexFlatIP(DIM)
    reference.add(x)
    want_scores, want_rows = reference.search(probes, 10)
    parts = list(torch.tensor_split(torch.from_numpy(x), shards))
    scores, rows = exact_search(parts, probes, 10)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_flat_gallery_ids_after_removal_and_k_above_size():
    x, subjects = clustered(20, 3, 0.2, 2)
    g = Gallery.build(x, subjects, "fp", use_gpu=False)
    g.remove(ids=[0, 5, 7])
    res = g.search(x[:4], 100)  # clamped to the 57 left
    assert res.ids.shape == (4, 57) and set(res.ids[0].tolist()) == set(range(60)) - {0, 5, 7}
    assert res.ids[1, 0] == 1 and res.scores[1, 0] == pytest.approx(1.0, abs=1e-5)
    g.add(x[:1], ["again"])  # the cached view of FAISS's storage is refreshed after an add
    assert g.search(x[:1], 1).ids[0, 0] == 60


def test_ivfpq_is_compressed_recalls_and_round_trips(tmp_path):
    x, subjects = clustered(300, 4, 0.25, 3)
    probes = clustered(300, 1, 0.25, 3)[0]  # same centres (same seed), new noise draws for row 0..299
    g = Gallery.build(x, subjects, "fp", index="ivfpq", nlist=8, nprobe=8, pq_m=16, use_gpu=False)
    assert g.info()["index"] == {
        "kind": "ivfpq",
        "metric": "inner_product",
        "nlist": 8,
        "nlist_effective": 8,
        "nprobe": 8,
        "train_points_per_list": 256,
        "trained": True,
        "pq_m": 16,
        "opq": False,
    }
    before = index_bytes(g.cpu_index)
    g.add(x[:500], subjects[:500])  # each more vector costs its code and id: 16 + 8 bytes, against 4 * 32 + 8 flat
    assert (index_bytes(g.cpu_index) - before) / 500 == pytest.approx(24, abs=0.5)
    g.remove(ids=list(range(1200, 1700)))
    assert recall_at_1(g, x, probes) >= 0.8
    res = g.search(probes, 5)
    assert np.all(np.abs(res.scores) <= 1.0)
    loaded = Gallery.load(g.save(tmp_path / "pq"), use_gpu=False)
    assert loaded.kind == "ivfpq" and loaded.info()["index"]["pq_m"] == 16
    np.testing.assert_array_equal(loaded.search(probes, 5).ids, res.ids)
    assert loaded.remove(subjects=["s0"]) == 4 and len(loaded) == 1196


def test_ivfpq_with_opq_round_trips(tmp_path):
    x, subjects = clustered(100, 4, 0.25, 4)
    g = Gallery.build(x, subjects, "fp", index="ivfpq", nlist=4, nprobe=4, pq_m=8, opq=True, use_gpu=False)
    assert index_kind(g.cpu_index) == "ivfpq" and isinstance(g.cpu_index, faiss.IndexPreTransform)
    loaded = Gallery.load(g.save(tmp_path / "opq"), use_gpu=False)
    assert loaded.info()["index"]["opq"] is True
    np.testing.assert_array_equal(loaded.search(x[:20], 3).ids, g.search(x[:20], 3).ids)


def test_ivfpq_errors():
    with pytest.raises(ArgumentError, match="pq_m=5 does not divide the dimension 32"):
        Gallery.create(DIM, "fp", index="ivfpq", pq_m=5)
    x, subjects = clustered(10, 10, 0.2, 5)
    with pytest.raises(GalleryError, match="at least 256"):
        Gallery.build(x, subjects, "fp", index="ivfpq", pq_m=8, use_gpu=False)


def test_hnsw_recalls_round_trips_and_refuses_removal(tmp_path):
    x, subjects = clustered(200, 4, 0.25, 6)
    probes = clustered(200, 1, 0.25, 6)[0]
    g = Gallery.build(x, subjects, "fp", index="hnsw", hnsw_m=16, ef_search=64, use_gpu=False)
    assert recall_at_1(g, x, probes) >= 0.95
    g.ef_search = 128
    loaded = Gallery.load(g.save(tmp_path / "hnsw"), use_gpu=False)
    assert loaded.info()["index"] == {"kind": "hnsw", "metric": "inner_product", "hnsw_m": 16, "ef_search": 128}
    np.testing.assert_array_equal(loaded.search(probes, 5).ids, g.search(probes, 5).ids)
    with pytest.raises(GalleryError, match="cannot remove vectors"):
        loaded.remove(subjects=["s0"])
    assert len(loaded) == 800  # nothing was touched
    ids = loaded.add(x[:2], ["new", "new"])  # adding to the graph works
    assert loaded.search(x[:1], 1).ids[0, 0] in (0, ids[0])


def test_load_refuses_an_index_of_another_kind(tmp_path):
    x, subjects = clustered(50, 4, 0.2, 7)
    folder = Gallery.build(x, subjects, "fp", index="hnsw", use_gpu=False).save(tmp_path / "g")
    meta = (folder / META_FILE).read_text().replace('"kind": "hnsw"', '"kind": "flat"')
    (folder / META_FILE).write_text(meta)
    with pytest.raises(GalleryError, match=r"IndexIDMap2 \(hnsw\), but meta.json says 'flat'"):
        Gallery._load_once(folder, False, (folder / META_FILE).read_bytes())


def test_load_names_another_backend(tmp_path):
    x, subjects = clustered(5, 2, 0.2, 8)
    folder = Gallery.build(x, subjects, "fp", use_gpu=False).save(tmp_path / "g")
    meta = (folder / META_FILE).read_text().replace('"format"', '"backend": "milvus", "format"', 1)
    (folder / META_FILE).write_text(meta)
    with pytest.raises(GalleryError, match="is a milvus gallery, not a FAISS folder: open it with"):
        Gallery.load(folder)
