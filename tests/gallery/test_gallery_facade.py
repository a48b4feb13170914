"""The Gallery facade: add/remove with stable ids, info, and the errors of each call."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gallery_data import DIM, feats, subjects_of

from hfr.errors import ArgumentError, HFRError
from hfr.gallery import Gallery, GalleryError


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


def test_info(flat):
    info = flat.info()
    assert info["count"] == 60 and info["subjects"] == 20 and info["dim"] == DIM
    assert info["modalities"] == {"nir": 30, "vis": 30}
    assert info["index"]["kind"] == "flat" and info["fingerprint"] == "fp-a"


def test_search_errors(flat, caplog):
    with pytest.raises(ArgumentError, match="k must be"):
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
    with pytest.raises(ArgumentError, match="unknown gallery index"):
        Gallery.create(DIM, "fp", index="annoy")
    with pytest.raises(ArgumentError, match="fingerprint"):
        Gallery.create(DIM, "")
    assert issubclass(GalleryError, HFRError)
