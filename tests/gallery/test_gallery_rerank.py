"""Re-ranked compressed galleries: "ivfpq" codes pick a shortlist, exact vectors (vectors.npy, memory-mapped)
re-score it."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from gallery_data import CLUSTER_DIM as DIM
from gallery_data import clustered

import hfr.cli.gallery as cli_gallery
import hfr.gallery.tune as tune
from hfr.cli import main
from hfr.errors import ArgumentError, GalleryError
from hfr.gallery import (
    GPU_MAX_K,
    IDS_FILE,
    INDEX_FILE,
    META_FILE,
    VECTORS_FILE,
    FaissIndex,
    Gallery,
    brute_force_topk,
    gpu_available,
    l2_normalize,
)
from hfr.gallery.vectors import VectorStore


def build(x: np.ndarray, subjects: list[str], rerank: int, **kwargs: Any) -> Gallery:
    params: dict[str, Any] = {"nlist": 8, "nprobe": 8, "pq_m": 8, **kwargs}
    return Gallery.build(x, subjects, "fp", index="ivfpq", rerank=rerank, use_gpu=False, **params)


def recall_at_1(gallery: Gallery, x: np.ndarray, probes: np.ndarray) -> float:
    _, exact = brute_force_topk(x, probes, 1)
    return float(np.mean(gallery.search(probes, 1).ids[:, 0] == exact.numpy()[:, 0]))


def store_of(gallery: Gallery) -> VectorStore:
    store = gallery._vectors.vector_store
    assert store is not None
    return store


def edit_meta(folder: Path, **changes: Any) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (folder / META_FILE).write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, list[str], np.ndarray]:
    """1,200 face-like vectors (300 identities x 4) and 300 held-out probes around the same centres."""
    x, subjects = clustered(300, 4, 0.35, 11)
    probes = clustered(300, 1, 0.35, 11)[0]
    return x, subjects, probes


# -- search -----------------------------------------------------------------------------


def test_shortlist_covering_the_gallery_equals_flat_search(data):
    x, subjects, probes = data
    flat = Gallery.build(x, subjects, "fp", use_gpu=False)
    whole = build(x, subjects, rerank=len(x))  # nprobe = nlist: the codes rank every vector
    a, b = flat.search(probes, 10), whole.search(probes, 10)
    np.testing.assert_array_equal(b.ids, a.ids)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)
    plain = build(x, subjects, rerank=0)  # the same codes alone do not get there
    assert not np.array_equal(plain.search(probes, 10).ids, a.ids)


def test_a_short_list_recalls_what_the_codes_alone_miss(data):
    x, subjects, probes = data
    plain = build(x, subjects, rerank=0, pq_m=4)  # 4-byte codes: a score error well above the top-1/top-2 gap
    reranked = build(x, subjects, rerank=16, pq_m=4)
    codes_only, shortlisted = recall_at_1(plain, x, probes), recall_at_1(reranked, x, probes)
    assert codes_only < 0.9 and shortlisted >= 0.95 and shortlisted - codes_only > 0.1  # measured: 0.82, 0.99


def test_scores_are_exact_cosines_best_first(data):
    x, subjects, probes = data
    g = build(x, subjects, rerank=32, pq_m=4)
    raw = probes * np.linspace(0.5, 3.0, len(probes), dtype=np.float32)[:, None]  # unnormalised input
    res = g.search(raw, 5)
    assert (res.ids >= 0).all() and (np.diff(res.scores, axis=1) <= 0).all()
    exact = np.einsum("qd,qkd->qk", probes, x[res.ids])
    np.testing.assert_allclose(res.scores, exact, atol=1e-5)
    assert g.search(raw, 40).ids.shape == (len(probes), 40)  # k above the shortlist: max(k, rerank) candidates
    g.nprobe = 1  # one list of 8: fewer vectors found than asked for
    few = g.search(probes[:3], len(x))
    missing = few.ids < 0
    assert missing.any() and np.isneginf(few.scores[missing]).all() and (missing[:, :-1] <= missing[:, 1:]).all()
    exact_few = np.einsum("qd,qkd->qk", probes[:3], x[few.ids.clip(0)])
    np.testing.assert_allclose(few.scores[~missing], exact_few[~missing], atol=1e-5)


def test_add_and_remove_keep_the_store_and_the_index_in_step(data):
    x, subjects, _ = data
    g = build(x, subjects, rerank=64)
    assert g.remove(ids=range(0, 1200, 3)) == 400
    new = clustered(20, 1, 0.0, 99)[0]  # far from the others: each new vector is its own best match
    added = g.add(new, ["new"] * 20)
    assert g.remove(ids=added[:5].tolist()) == 5  # removal from the rows added in RAM
    store = store_of(g)
    assert len(store) == len(g) == g.cpu_index.ntotal == 815
    np.testing.assert_array_equal(store.ids(), g.ids())
    gone = g.search(x[0:1200:3], 5).ids
    assert not np.isin(gone, np.arange(0, 1200, 3)).any() and not np.isin(gone, added[:5]).any()
    found = g.search(new[5:], 1)
    np.testing.assert_array_equal(found.ids[:, 0], added[5:])
    np.testing.assert_allclose(found.scores[:, 0], 1.0, atol=1e-5)
    with pytest.raises(GalleryError, match="no row for id 0"):
        store.rows(np.array([0]))


@pytest.mark.skipif(not gpu_available(), reason="needs a GPU seen by FAISS")
def test_gpu_shortlist_equals_the_cpu_copys(tmp_path, data):
    x, subjects, probes = data
    gpu = Gallery.build(x, subjects, "fp", index="ivfpq", nlist=8, nprobe=3, pq_m=8, rerank=32, use_gpu=True)
    cpu_view = Gallery.load(gpu.save(tmp_path / "g"), use_gpu=False)  # the same trained codes, on the CPU
    for k in (5, 40):
        a, b = gpu.search(probes, k), cpu_view.search(probes, k)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    gpu.remove(ids=list(range(100)))
    assert gpu.search(x[:100], 1).ids.min() >= 100
    wide = Gallery.build(x, subjects, "fp", index="ivfpq", nlist=8, pq_m=8, rerank=GPU_MAX_K + 1, use_gpu=True)
    assert wide.search(probes, 3).ids.shape == (len(probes), 3)  # a shortlist beyond the GPU's k: the CPU copy


def test_rerank_argument_errors():
    with pytest.raises(ArgumentError, match="applies to index 'ivfpq' only, not 'flat'"):
        Gallery.create(DIM, "fp", index="flat", rerank=16)
    with pytest.raises(ArgumentError, match="applies to index 'ivfpq' only, not 'hnsw'"):
        FaissIndex(DIM, "hnsw", rerank=4, use_gpu=False)
    bad: Any
    for bad in (-1, True, 2.5):
        with pytest.raises(ArgumentError, match="rerank must be an integer of at least 0"):
            FaissIndex(DIM, "ivfpq", pq_m=8, rerank=bad, use_gpu=False)
    assert Gallery.create(DIM, "fp", index="ivf").rerank == 0


# -- the folder -------------------------------------------------------------------------


def test_save_load_round_trip_memory_maps_the_vectors(tmp_path, data):
    x, subjects, probes = data
    g = build(x, subjects, rerank=64)
    g.remove(ids=[1, 2, 3])
    folder = g.save(tmp_path / "g")
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX_FILE, META_FILE, IDS_FILE, VECTORS_FILE])
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["index"]["rerank"] == 64 and set(meta["files"]) == {INDEX_FILE, IDS_FILE, VECTORS_FILE}
    assert meta["files"][VECTORS_FILE]["bytes"] == (folder / VECTORS_FILE).stat().st_size
    on_disk = np.load(folder / VECTORS_FILE)
    np.testing.assert_array_equal(on_disk, l2_normalize(x)[g.ids()])  # rows in id order, as ids.csv lists them
    assert g.info()["vectors_bytes_on_disk"] == (folder / VECTORS_FILE).stat().st_size

    loaded = Gallery.load(folder, use_gpu=False)
    store = store_of(loaded)
    assert store.mapped and isinstance(store.base, np.memmap) and store.source == folder / VECTORS_FILE
    assert loaded.rerank == 64 and loaded.info()["index"]["rerank"] == 64
    a, b = g.search(probes, 5), loaded.search(probes, 5)
    np.testing.assert_array_equal(b.ids, a.ids)
    np.testing.assert_array_equal(b.scores, a.scores)

    # saved over the folder its store is mapped from: the store moves to the new file
    added = loaded.add(probes[:10], ["p"] * 10)
    loaded.remove(ids=[4])
    loaded.save()
    store = store_of(loaded)
    assert store.mapped and len(store.base) == len(loaded) == 1206  # one file, no rows left in RAM
    again = Gallery.load(folder, use_gpu=False)
    for gallery in (loaded, again):
        res = gallery.search(probes[:10], 1)
        np.testing.assert_array_equal(res.ids[:, 0], added)
        assert 4 not in gallery.search(x[4:5], 3).ids
    # a gallery without re-ranking replaces it: three files, as before
    plain = Gallery.build(x[:300], subjects[:300], "fp", index="ivfpq", nlist=4, pq_m=8, use_gpu=False)
    plain.save(folder)
    assert not (folder / VECTORS_FILE).exists()
    assert "rerank" not in json.loads((folder / META_FILE).read_text())["index"]
    assert "vectors_bytes_on_disk" not in Gallery.load(folder, use_gpu=False).info()


@pytest.fixture
def saved_reranked(tmp_path, data) -> Path:
    x, subjects, _ = data
    return build(x[:400], subjects[:400], rerank=16, nlist=4).save(tmp_path / "rr")


def test_a_flipped_byte_in_the_vectors_is_caught(saved_reranked):
    folder = saved_reranked
    path = folder / VECTORS_FILE
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x40  # the exponent of the last vector's last value
    path.write_bytes(bytes(raw))
    with pytest.raises(GalleryError, match=rf"{folder}: {VECTORS_FILE} is corrupt \(checksum mismatch"):
        Gallery.load(folder, use_gpu=False)
    edit_meta(folder, files=None)  # as if saved without checksums: the unit-length check still finds it
    with pytest.raises(GalleryError, match=rf"{folder}: {VECTORS_FILE} holds a vector of length"):
        Gallery.load(folder, use_gpu=False)


@pytest.mark.parametrize("checksums", [True, False])
def test_a_missing_vectors_file_is_named(saved_reranked, checksums):
    folder = saved_reranked
    if not checksums:
        edit_meta(folder, files=None)
    (folder / VECTORS_FILE).unlink()
    with pytest.raises(GalleryError, match=rf"{folder}: {VECTORS_FILE} is missing, .*rerank 16.*rebuild"):
        Gallery.load(folder, use_gpu=False)


@pytest.mark.parametrize("bad", ["shape", "dtype", "not npy"])
def test_a_vectors_file_of_another_shape_or_dtype_is_refused(saved_reranked, bad):
    folder = saved_reranked
    edit_meta(folder, files=None)
    good = np.load(folder / VECTORS_FILE)
    if bad == "shape":
        np.save(folder / VECTORS_FILE, good[:-1])
        match = r"holds a float32 array of shape \(399, 32\), .* shape \(400, 32\)"
    elif bad == "dtype":
        np.save(folder / VECTORS_FILE, good.astype(np.float64))
        match = "holds a float64 array"
    else:
        (folder / VECTORS_FILE).write_bytes(b"not an array" * 10)
        match = "cannot be read as a NumPy array"
    with pytest.raises(GalleryError, match=rf"{folder}: {VECTORS_FILE} {match}"):
        Gallery.load(folder, use_gpu=False)


# -- the command line and the tuner -----------------------------------------------------


def test_cli_build_with_rerank_and_info(tmp_path, monkeypatch, capsys, data):
    x, subjects, _ = data
    embedded: list[int] = []

    def embed(args: Any, recognizer: Any, manifest: Any) -> tuple[np.ndarray, list[str], list[str], list[str]]:
        embedded.append(len(x))
        return x, subjects, ["vis"] * len(x), [f"/img/{i}.png" for i in range(len(x))]

    @contextmanager
    def no_detection(args: Any, manifest: Any, allow_none: bool = False) -> Any:
        yield manifest

    monkeypatch.setattr("hfr.recognizer.export.load_recognizer", lambda path, device: SimpleNamespace(fingerprint="fp"))
    monkeypatch.setattr(cli_gallery, "_select", lambda args: "manifest")
    monkeypatch.setattr(cli_gallery, "faces_of", no_detection)
    monkeypatch.setattr(cli_gallery, "_embed", embed)
    out = tmp_path / "g"
    common = ["gallery", "build", "--recognizer", "rec.pt", "--data", "data", "--out", str(out)]
    assert main([*common, "--index", "ivfpq", "--pq-m", "8", "--nlist", "8", "--rerank", "32"]) == 0
    assert (out / VECTORS_FILE).is_file() and embedded == [len(x)]
    capsys.readouterr()
    assert main(["gallery", "info", "--gallery", str(out)]) == 0
    info = " ".join(capsys.readouterr().out.split())
    assert "rerank: 32" in info and f"vectors bytes on disk │ {(out / VECTORS_FILE).stat().st_size}" in info
    assert "index bytes in memory │" in info
    for argv, message in (
        ([*common, "--rerank", "32"], "needs --index ivfpq (got flat"),
        ([*common, "--index", "ivfpq", "--rerank", "-1"], "--rerank must be >= 0"),
        ([*common, "--recall", "0.9", "--rerank", "8"], "--recall chooses the index"),
    ):
        assert main(argv) == 2
        assert message in " ".join(capsys.readouterr().err.split())
    assert embedded == [len(x)]  # refused before embedding anything


def test_tuner_chooses_a_reranked_index_under_a_memory_limit(monkeypatch):
    x, subjects = clustered(700, 3, 0.5, 2)
    tried = [
        ("ivf", {"nlist": 16}),  # meets any recall, but 4 * 32 + 8 bytes per vector in memory
        ("ivfpq", {"nlist": 16, "pq_m": 8}),  # 16 bytes, but 8-byte codes miss the target
        ("ivfpq", {"nlist": 16, "pq_m": 8, "rerank": tune.RERANK_SHORTLIST}),
    ]
    monkeypatch.setattr(tune, "candidates", lambda dim, n, removable=True: tried)
    g = tune.build_for_recall(x, subjects, "fp", recall=0.95, max_bytes_per_vector=80, queries=300, use_gpu=False)
    record = g.tuning
    assert record is not None
    ivf, codes, reranked = record["candidates"]
    assert ivf["recall"] >= 0.95 and not ivf["meets"] and "over the memory limit" in ivf["note"]
    assert codes["recall"] < 0.95 and not codes["meets"]
    assert reranked["meets"] and reranked["bytes_per_vector"] < 80 < reranked["disk_bytes_per_vector"]
    assert g.kind == "ivfpq" and g.rerank == tune.RERANK_SHORTLIST and record["params"]["rerank"] == g.rerank
    assert record["met"] and record["bytes_per_vector"] < 80
    assert record["disk_bytes_per_vector"] == pytest.approx(4 * DIM, abs=0.1)  # + the .npy header per vector


def test_the_shortlist_is_a_search_setting_of_reranked_galleries_only(data, tmp_path):
    x, subjects, probes = data
    g = build(x, subjects, rerank=1, pq_m=4)  # 4-byte codes: their own top-1 is often wrong
    narrow = recall_at_1(g, x, probes)
    g.rerank = 64
    assert recall_at_1(g, x, probes) > narrow  # the exact top-1 was in the codes' first 64, not their first
    g.save(tmp_path / "g")
    assert Gallery.load(tmp_path / "g").rerank == 64  # the shortlist in use is what meta.json keeps
    with pytest.raises(ArgumentError, match="rerank must be an integer of at least 1"):
        g.rerank = 0
    plain = build(x, subjects, rerank=0, pq_m=4)
    with pytest.raises(ArgumentError, match="created without re-ranking"):
        plain.rerank = 8


def test_tuner_widens_a_shortlist_the_codes_cannot_fill(monkeypatch):
    x, subjects = clustered(700, 3, 0.5, 2)
    tried = [("ivfpq", {"nlist": 16, "pq_m": 4, "rerank": 1})]  # a shortlist of 1 is the codes' own top-1
    monkeypatch.setattr(tune, "candidates", lambda dim, n, removable=True: tried)
    g = tune.build_for_recall(x, subjects, "fp", recall=0.95, queries=300, use_gpu=False)
    record = g.tuning
    assert record is not None
    (row,) = record["candidates"]
    assert row["meets"] and row["setting"]["rerank"] > 1
    assert g.kind == "ivfpq" and record["met"] and record["recall_at_1"] >= 0.95
    assert record["setting"]["rerank"] == g.rerank >= row["setting"]["rerank"]
