"""The gallery folder: save/load round trip, every load error, atomic save, checksums, version."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from gallery_data import DIM, feats, subjects_of

from hfr.gallery import IDS_FILE, INDEX_FILE, META_FILE, Gallery, GalleryEntry, GalleryError


def strip_checksums(folder: Path) -> None:
    """Make `folder` look saved by an hfr without checksums (no `files`, `version`, `save_id`)."""
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("files", "version", "save_id"):
        meta.pop(key)
    (folder / META_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    x = feats(200, 4)
    g = Gallery.build(
        x,
        subjects_of(200),
        "fp-z",
        modalities=["nir"] * 200,
        paths=[f"a,b/{i}.png" for i in range(200)],
        index=kind,
        nlist=4,
        nprobe=2,
        use_gpu=False,
    )
    g.remove(ids=[3, 4])
    folder = g.save(tmp_path / "gal")
    assert sorted(p.name for p in folder.iterdir()) == sorted([INDEX_FILE, META_FILE, IDS_FILE])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["count"] == 198 and meta["dim"] == DIM and meta["fingerprint"] == "fp-z"
    assert meta["next_id"] == 200 and meta["index"]["kind"] == kind
    assert meta["version"] == 1 and g.version == 1
    assert set(meta["files"]) == {INDEX_FILE, IDS_FILE}
    assert meta["files"][IDS_FILE]["bytes"] == (folder / IDS_FILE).stat().st_size
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
    # overwrite in place (the default folder is the one it was loaded from)
    loaded.save()
    again = Gallery.load(folder)
    assert len(again) == 199 and again.version == 2 and again.info()["version"] == 2


@pytest.mark.parametrize("name", [INDEX_FILE, META_FILE, IDS_FILE])
def test_load_missing_file_names_it(saved, name):
    (saved / name).unlink()
    with pytest.raises(GalleryError, match=f"{saved}.*{name} is missing"):
        Gallery.load(saved)


def test_load_corrupt_index(saved):
    (saved / INDEX_FILE).write_bytes(b"not a faiss index at all" * 10)
    with pytest.raises(GalleryError, match=f"{saved}.*{INDEX_FILE} is corrupt \\(checksum mismatch"):
        Gallery.load(saved)
    strip_checksums(saved)  # a gallery of an older hfr: FAISS's own reader refuses it
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
    strip_checksums(saved)  # else every edit below is a checksum mismatch
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
