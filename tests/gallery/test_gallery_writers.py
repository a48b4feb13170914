"""One writer at a time, versions, leftovers and stored-vector checks of a gallery folder.

The cross-process cases (two `hfr gallery add` at once, a lock held by another process, a
save killed with SIGKILL) are in tests/faults/test_gallery_faults.py; these are the
in-process ones: threads, reentrancy, the lock without fcntl, a folder replaced mid-read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import faiss
import numpy as np
import pytest
from gallery_data import DIM, feats, subjects_of

import hfr.gallery
import hfr.gallery.storage as storage
from hfr.errors import ArgumentError
from hfr.gallery import INDEX_FILE, META_FILE, Gallery, GalleryError, GalleryLock, l2_normalize
from hfr.gallery.index import sample_vectors


def test_lock_is_reentrant_names_its_holder_and_is_deleted_on_release(saved):
    path = saved.parent / ".gal.lock"
    assert storage.lock_path(saved) == path
    with GalleryLock(saved):
        assert f"pid {os.getpid()} on " in path.read_text()
        with GalleryLock(saved, timeout=0):  # the same thread again: no wait
            pass
        assert path.exists()
    assert not path.exists()


def test_second_writer_thread_waits_and_builds_on_the_first_writers_save(saved):
    seen: list[int] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with Gallery.open_for_update(saved, lock_timeout=120) as gallery:
                seen.append(len(gallery))
                gallery.add(feats(2, 5), ["second"] * 2)
                gallery.save()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    with Gallery.open_for_update(saved) as gallery:
        thread = threading.Thread(target=second)
        thread.start()  # it cannot load before this block has saved and ended
        gallery.add(feats(3, 4), ["first"] * 3)
        gallery.save()
    thread.join(120)
    assert not errors and seen == [63]
    final = Gallery.load(saved)
    assert final.ids().tolist() == list(range(65)) and final.version == 3
    assert {"first", "second"} <= set(final.subjects())


def test_second_writer_thread_gives_up_after_its_timeout(saved):
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with Gallery.open_for_update(saved, lock_timeout=0):
                pass
        except GalleryError as exc:
            errors.append(exc)

    with Gallery.open_for_update(saved):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(60)
    assert len(errors) == 1
    assert f"{saved} is being written by another process (pid {os.getpid()} on" in str(errors[0])


def test_lock_without_fcntl_uses_an_exclusive_lock_file(saved, flat, monkeypatch):
    monkeypatch.setattr(storage, "fcntl", None, raising=False)
    path = saved.parent / ".gal.lock"
    path.write_text("pid 99999 on otherhost since 2026-01-01T00:00:00+00:00: hfr gallery add\n")
    with pytest.raises(GalleryError, match=rf"pid 99999 on otherhost.*no longer running, delete {path}"):
        flat.save(saved, lock_timeout=0)
    path.unlink()
    with GalleryLock(saved):
        assert path.exists()
        flat.save(saved)  # reentrant here too
    assert not path.exists() and len(Gallery.load(saved)) == 60


def test_save_defaults_to_its_folder_and_needs_one(flat):
    with pytest.raises(ArgumentError, match="save needs a folder"):
        flat.save()


def test_folder_replaced_while_being_read_is_read_again(saved, monkeypatch):
    writer = Gallery.load(saved)
    writer.add(feats(4, 9), ["late"] * 4)
    real = hfr.gallery.read_ids
    calls: list[int] = []

    def racing(folder):
        if not calls:
            writer.save(saved)  # another writer swaps the folder after meta.json was read
        calls.append(1)
        return real(folder)

    monkeypatch.setattr(hfr.gallery, "read_ids", racing)
    loaded = Gallery.load(saved)
    assert len(calls) == 2 and len(loaded) == 64 and "late" in loaded.subjects()


def test_load_removes_only_this_gallerys_leftovers(saved, tmp_path, caplog):
    ours = [tmp_path / ".gal.tmp-0123abcd", tmp_path / ".gal.old-89abcdef"]
    others = [tmp_path / ".gal.tmp-notours", tmp_path / ".gal2.tmp-0123abcd", tmp_path / ".gal.old-0123abcd.keep"]
    for folder in ours + others:
        folder.mkdir()
        (folder / INDEX_FILE).write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="hfr.gallery"):
        assert len(Gallery.load(saved)) == 60
    assert not any(p.exists() for p in ours) and all(p.exists() for p in others)
    assert all(f"removed {p}, left by an interrupted save of gallery {saved}" in caplog.text for p in ours)


def test_leftovers_stay_when_the_previous_gallery_must_be_restored(saved, tmp_path):
    aside = tmp_path / ".gal.old-1234abcd"
    unfinished = tmp_path / ".gal.tmp-1234abcd"
    saved.rename(aside)
    unfinished.mkdir()
    with pytest.raises(GalleryError, match=f"rename it back to {saved.name}"):
        Gallery.load(saved)
    assert aside.is_dir() and unfinished.is_dir()
    aside.rename(saved)
    assert len(Gallery.load(saved)) == 60 and not unfinished.exists()


def test_contains_paths(flat):
    flat.add(feats(1, 3), ["x"])  # no path: never a duplicate
    held = flat.contains_paths(["img/3.png", "img/60.png", "", "img/59.png"])
    assert held.tolist() == [True, False, False, True]


def test_search_refuses_scores_outside_minus_one_one(flat):
    stored: Any = faiss.downcast_index(flat.cpu_index.index)
    vectors = faiss.rev_swig_ptr(stored.get_xb(), stored.ntotal * DIM)
    vectors[7 * DIM] = 1.7e35  # the in-memory vector of id 7
    with pytest.raises(GalleryError, match=r"cosine similarity of .*e\+3\d, outside \[-1, 1\]"):
        flat.search(np.eye(DIM)[0], k=1)  # 1.7e35 for id 7: the best "match"


def test_unit_length_check_on_ivf(tmp_path):
    x = feats(400, 3)
    ivf = Gallery.build(x, subjects_of(400), "fp", index="ivf", nlist=4, nprobe=4, use_gpu=False)
    folder = ivf.save(tmp_path / "ivf")
    meta = json.loads((folder / META_FILE).read_text())
    meta.pop("files", None)  # as saved before checksums: only the length check can see the damage
    (folder / META_FILE).write_text(json.dumps(meta))
    data = bytearray((folder / INDEX_FILE).read_bytes())
    at = bytes(data).find(l2_normalize(x)[5].tobytes())
    assert at > 0
    data[at : at + 4] = np.float32(3.0).tobytes()
    (folder / INDEX_FILE).write_bytes(bytes(data))
    with pytest.raises(GalleryError, match=f"{folder}: {INDEX_FILE} holds a vector of length 3"):
        Gallery.load(folder)


def test_sample_vectors_spreads_over_ivf_lists_and_flat_positions():
    x = feats(400, 3)
    for kind in ("ivf", "flat"):
        gallery = Gallery.build(x, subjects_of(400), "fp", index=kind, nlist=4, nprobe=4, use_gpu=False)
        sample = sample_vectors(gallery.cpu_index, 40)
        assert 36 <= len(sample) <= 44
        rows = {row.tobytes() for row in l2_normalize(x)}
        assert all(row.tobytes() in rows for row in sample)  # stored rows, read back exactly
        assert len(sample_vectors(gallery.cpu_index, 1000)) == 400
