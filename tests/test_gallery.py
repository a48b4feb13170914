"""FAISS gallery: exact search vs brute force, IVF, add/remove/save/load, errors, atomic save."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from hfr.errors import HFRError, OptionError
from hfr.gallery import (IDS_FILE, INDEX_FILE, META_FILE, Gallery, GalleryEntry, GalleryError,
                         brute_force_topk, gpu_available, l2_normalize)

DIM = 16


def feats(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Random float features (not normalised) without ties."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def subjects_of(n: int, per: int = 3) -> list[str]:
    return [f"s{i // per:03d}" for i in range(n)]


@pytest.fixture
def flat() -> Gallery:
    x = feats(60)
    return Gallery.build(x, subjects_of(60), "fp-a", modalities=["vis", "nir"] * 30,
                         paths=[f"img/{i}.png" for i in range(60)], use_gpu=False)


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


def test_entries_and_subject_lookup(flat):
    res = flat.search(feats(60)[[4, 9]], k=2)
    top = res.entries(1)[0]
    assert top == GalleryEntry(9, "s003", "nir", "img/9.png")
    assert res.subjects[0, 0] == "s001" and res.modalities[0, 0] == "vis"
    assert flat.entry(9) == top
    assert flat.subjects() == [f"s{i:03d}" for i in range(20)]


def test_search_subjects_distinct_best_score():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((5, DIM)).astype(np.float32)
    # subject "a" has 6 near copies of base[0]; the others one vector each
    g = np.concatenate([base[0] + 0.01 * rng.standard_normal((6, DIM)).astype(np.float32), base[1:]])
    subjects = ["a"] * 6 + ["b", "c", "d", "e"]
    gallery = Gallery.build(g, subjects, "fp", use_gpu=False)
    res = gallery.search_subjects(base[0], k=3)
    assert res.subjects[0][0] == "a"
    assert len(set(res.subjects[0])) == 3
    ref = l2_normalize(g) @ l2_normalize(base[0])[0]
    best = {s: max(ref[i] for i in range(10) if subjects[i] == s) for s in set(subjects)}
    expected = sorted(best, key=best.get, reverse=True)[:3]
    assert res.subjects[0] == expected
    np.testing.assert_allclose(res.scores[0], [best[s] for s in expected], atol=1e-5)
    rows = list(res.rows(["probe.png"]))
    assert rows[0] == ("probe.png", 1, "a", pytest.approx(best["a"], abs=1e-5))
    assert [r[1] for r in rows] == [1, 2, 3]


def test_search_subjects_clamps_to_subject_count(flat, caplog):
    with caplog.at_level(logging.INFO, logger="hfr.gallery"):
        res = flat.search_subjects(feats(2, 5), k=50)
    assert "20 subjects" in caplog.text
    assert all(len(set(s)) == 20 for s in res.subjects)


def test_add_remove_ids_stable(flat):
    assert len(flat) == 60
    new = flat.add(feats(4, 7), ["n1", "n1", "n2", "n2"])
    assert new.tolist() == [60, 61, 62, 63]
    assert flat.remove(ids=[0, 61, 999]) == 2
    assert flat.remove(subjects=["n2", "s005"]) == 5
    assert len(flat) == 57
    assert flat.remove(ids=[0]) == 0
    again = flat.add(feats(1, 8), ["n3"])
    assert again.tolist() == [64]  # never reused
    res = flat.search(np.concatenate([feats(60, 0), feats(4, 7)]), k=len(flat))
    found = set(res.ids.ravel().tolist())
    assert not found & {0, 61, 62, 63, 15, 16, 17}
    with pytest.raises(GalleryError, match="id 0 is not in the gallery"):
        flat.entry(0)
    assert "n2" not in flat.subjects() and "n1" in flat.subjects()


def test_ivf_remove(tmp_path):
    x = feats(400, 3)
    ivf = Gallery.build(x, subjects_of(400), "fp", index="ivf", nlist=4, nprobe=4, use_gpu=False)
    assert ivf.remove(ids=list(range(0, 400, 2))) == 200
    res = ivf.search(x, k=1)
    assert (res.ids % 2 == 1).all()
    loaded = Gallery.load(ivf.save(tmp_path / "g"))
    np.testing.assert_array_equal(loaded.search(x, k=3).ids, ivf.search(x, k=3).ids)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    x = feats(200, 4)
    g = Gallery.build(x, subjects_of(200), "fp-z", modalities=["nir"] * 200,
                      paths=[f"a,b/{i}.png" for i in range(200)], index=kind, nlist=4, nprobe=2,
                      use_gpu=False)
    g.remove(ids=[3, 4])
    folder = g.save(tmp_path / "gal")
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX_FILE, META_FILE, IDS_FILE])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["count"] == 198 and meta["dim"] == DIM and meta["fingerprint"] == "fp-z"
    assert meta["next_id"] == 200 and meta["index"]["kind"] == kind
    rows = (folder / IDS_FILE).read_text().splitlines()
    assert rows[0] == "id,subject,modality,path" and len(rows) == 199
    loaded = Gallery.load(folder)
    assert len(loaded) == 198 and loaded.fingerprint == "fp-z" and loaded.kind == kind
    assert loaded.entry(5) == GalleryEntry(5, "s001", "nir", "a,b/5.png")
    a, b = g.search(x, k=5), loaded.search(x, k=5)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.subjects, b.subjects)
    assert loaded.add(feats(1, 9), ["q"]).tolist() == [200]
    if kind == "ivf":
        assert loaded.nprobe == 2 and loaded.cpu_index.nlist == 4
    # overwrite in place
    loaded.save(folder)
    assert len(Gallery.load(folder)) == 199


def test_info(flat):
    info = flat.info()
    assert info["count"] == 60 and info["subjects"] == 20 and info["dim"] == DIM
    assert info["modalities"] == {"nir": 30, "vis": 30}
    assert info["index"]["kind"] == "flat" and info["fingerprint"] == "fp-a"


def test_search_errors(flat, caplog):
    with pytest.raises(OptionError, match="k must be"):
        flat.search(feats(1), k=0)
    with pytest.raises(GalleryError, match=r"dimension 8 .* gallery's dimension is 16"):
        flat.search(feats(2, dim=8))
    with pytest.raises(GalleryError, match="probe embedded by another recognizer than the gallery's"):
        flat.search(feats(1), fingerprint="fp-b")
    with pytest.raises(GalleryError, match="another recognizer"):
        flat.add(feats(1), ["x"], fingerprint="fp-b")
    with pytest.raises(GalleryError, match="zero vector"):
        flat.search(np.zeros((1, DIM)))
    with pytest.raises(GalleryError, match="row 1 holds NaN"):
        flat.add(np.array([[1.0] * DIM, [np.nan] * DIM]), ["a", "b"])
    with pytest.raises(GalleryError, match="got 1 subjects for 2"):
        flat.add(feats(2), ["a"])
    with caplog.at_level(logging.INFO, logger="hfr.gallery"):
        res = flat.search(feats(2), k=500)
    assert res.ids.shape == (2, 60) and "k=500" in caplog.text
    assert sorted(res.ids[0].tolist()) == list(range(60))
    empty = Gallery.create(DIM, "fp", use_gpu=False)
    with pytest.raises(GalleryError, match="empty"):
        empty.search(feats(1))
    with pytest.raises(OptionError, match="unknown gallery index"):
        Gallery.create(DIM, "fp", index="hnsw")
    with pytest.raises(OptionError, match="fingerprint"):
        Gallery.create(DIM, "")
    assert issubclass(GalleryError, HFRError)


def test_use_gpu_true_without_gpu_is_clear():
    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(OptionError, match="no GPU"):
        Gallery.create(DIM, "fp", use_gpu=True)


@pytest.mark.skipif(not gpu_available(), reason="needs a GPU seen by FAISS")
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_equals_cpu(tmp_path, kind):
    g, p = feats(2000, 1), feats(30, 2)
    kwargs = dict(index=kind, nlist=8, nprobe=3)
    cpu = Gallery.build(g, subjects_of(2000), "fp", use_gpu=False, **kwargs)
    gpu = Gallery.build(g, subjects_of(2000), "fp", use_gpu=True, **kwargs)
    gpu_cpu_view = Gallery.load(gpu.save(tmp_path / "g"), use_gpu=False)
    for other in (gpu, gpu_cpu_view):
        np.testing.assert_array_equal(other.search(p, 5).ids, gpu_cpu_view.search(p, 5).ids)
    if kind == "flat":
        np.testing.assert_array_equal(gpu.search(p, 5).ids, cpu.search(p, 5).ids)
    gpu.remove(ids=list(range(100)))
    assert gpu.search(g[:100], 1).ids.min() >= 100


# -- load errors --------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, flat) -> Path:
    return flat.save(tmp_path / "gal")


@pytest.mark.parametrize("name", [INDEX_FILE, META_FILE, IDS_FILE])
def test_load_missing_file_names_it(saved, name):
    (saved / name).unlink()
    with pytest.raises(GalleryError, match=f"{saved}.*{name} is missing"):
        Gallery.load(saved)


def test_load_corrupt_index(saved):
    (saved / INDEX_FILE).write_bytes(b"not a faiss index at all" * 10)
    with pytest.raises(GalleryError, match=f"{saved}.*{INDEX_FILE} cannot be read"):
        Gallery.load(saved)


def test_load_truncated_index(saved):
    data = (saved / INDEX_FILE).read_bytes()
    (saved / INDEX_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(GalleryError, match=INDEX_FILE):
        Gallery.load(saved)


def test_load_corrupt_meta(saved):
    (saved / META_FILE).write_text("{not json")
    with pytest.raises(GalleryError, match=f"{saved}.*{META_FILE} is not valid JSON"):
        Gallery.load(saved)


def test_load_count_mismatch(saved):
    meta = json.loads((saved / META_FILE).read_text())
    meta["count"] = 59
    (saved / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(GalleryError, match=f"{INDEX_FILE} holds 60 vectors but meta.json says 59"):
        Gallery.load(saved)


def test_load_dim_mismatch(saved):
    meta = json.loads((saved / META_FILE).read_text())
    meta["dim"] = 32
    (saved / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(GalleryError, match="dimension 16 but meta.json says 32"):
        Gallery.load(saved)


def test_load_ids_disagree(saved):
    lines = (saved / IDS_FILE).read_text().splitlines()
    (saved / IDS_FILE).write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(GalleryError, match=f"{IDS_FILE} has 59 rows but meta.json says 60"):
        Gallery.load(saved)
    lines[5] = lines[5].replace("4,", "999,", 1)
    (saved / IDS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(GalleryError, match=f"{IDS_FILE} lists other ids"):
        Gallery.load(saved)
    lines[5] = "x,s,vis,p"
    (saved / IDS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(GalleryError, match=f"{IDS_FILE} row 6 has a non-integer id"):
        Gallery.load(saved)


def test_load_missing_folder(tmp_path):
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery.load(tmp_path / "nope")


# -- atomic save --------------------------------------------------------------------

def test_failed_save_keeps_previous_gallery(saved, flat, monkeypatch):
    flat.add(feats(5, 3), ["new"] * 5)

    def boom(index, path):
        Path(path).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(GalleryError, match="could not write index.faiss"):
        flat.save(saved)
    monkeypatch.undo()
    old = Gallery.load(saved)
    assert len(old) == 60 and "new" not in old.subjects()
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary left


def test_interrupted_swap_is_reported(saved, tmp_path):
    aside = tmp_path / ".gal.old-1234abcd"
    saved.rename(aside)
    with pytest.raises(GalleryError, match=r"rename it back"):
        Gallery.load(saved)


def test_save_refuses_foreign_folder(tmp_path, flat):
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(GalleryError, match="holds other files"):
        flat.save(other)
    assert (other / "keep.txt").read_text() == "precious"
