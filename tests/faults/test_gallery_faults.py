"""Fault injection on galleries (issue 12): concurrent writers, overwritten bytes, killed saves, paths, full disk.

Each test stands for a gallery case of issue 12 that lost data or answered wrongly before:
two `hfr gallery add` at once (real processes), a stale in-memory gallery saved over a newer
one, a writer that finds the lock held, bytes overwritten inside `index.faiss`, leftovers of a
save killed with SIGKILL, image paths that did not resolve from another folder, silent
duplicates, and a full disk during a save. The lock holder of `lock_held_elsewhere` is a bare
Python process (no torch) speaking the same `flock` protocol as `hfr.gallery.storage.GalleryLock`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from gallery_data import feats, subjects_of
from pattern_data import write_patterns

from hfr.cli import main
from hfr.data.manifest import Manifest
from hfr.embed import embed_manifest
from hfr.gallery import IDS_FILE, INDEX_FILE, META_FILE, Gallery, GalleryError
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer, load_recognizer

ROOT = Path(__file__).resolve().parents[2]
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HFR_THREADS": "1", "PYTHONPATH": str(ROOT)}

posix_lock = pytest.mark.skipif(os.name != "posix", reason="the other process holds the lock with fcntl.flock")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small image sets (a: 4 subjects x 2, b: 4 x 2, c: 2 x 1) and a recognizer."""
    root = tmp_path_factory.mktemp("world")
    write_patterns(root / "a", 4, 2, prefix="a")
    write_patterns(root / "b", 4, 2, prefix="b", seed=1)
    write_patterns(root / "c", 2, 1, prefix="c", seed=2)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32).eval(), root / "rec.pt")
    return root


def _flat(text: str) -> str:
    return " ".join(text.split())


def _build(world: Path, out: Path, data: str = "c") -> Path:
    assert (
        main(
            ["gallery", "build", "--recognizer", str(world / "rec.pt"), "--data", str(world / data), "--out", str(out)]
        )
        == 0
    )
    return out


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path) -> Iterator[int]:
    """Another process holding `folder`'s writer lock (until the block ends); yields its pid."""
    code = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, b'pid %d on testhost: a test writer' % os.getpid())\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder.parent / f".{folder.name}.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


# -- 1. two writers at once -------------------------------------------------------------


_STARTING_LINE = """
import sys
import hfr.cli, hfr.embed, hfr.gallery, hfr.recognizer.export  # the slow imports, before the starting line
print("ready", flush=True)
sys.stdin.readline()
sys.exit(hfr.cli.main(sys.argv[1:]))
"""


def test_two_concurrent_cli_adds_keep_both_batches(world, tmp_path):
    gal = _build(world, tmp_path / "gal")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _STARTING_LINE, "gallery", "add", "--gallery", str(gal)]
            + ["--recognizer", str(world / "rec.pt"), "--data", str(world / name)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for name in ("a", "b")
    }
    for proc in procs.values():  # both imported: start them together (before the fix, both loaded, then both saved)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reported: dict[str, list[int]] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        found = re.search(r"ids (\d+)\.\.(\d+)", out)
        assert found is not None, out
        first, last = map(int, found.groups())
        reported[name] = list(range(first, last + 1))
    assert len(reported["a"]) == len(reported["b"]) == 8
    assert not set(reported["a"]) & set(reported["b"])
    gallery = Gallery.load(gal)
    assert len(gallery) == 2 + 16 and gallery.next_id == 18
    recognizer = load_recognizer(world / "rec.pt")
    for name, ids in reported.items():
        manifest = Manifest.read(world / name)
        result = gallery.search(embed_manifest(recognizer, manifest), k=1)
        expected = [str(manifest.image_path(i).resolve()) for i in range(len(manifest))]
        # each image's own vector is found under an id its process reported, with its own path
        assert set(result.ids[:, 0].tolist()) == set(ids)
        assert [gallery.entry(int(i)).path for i in result.ids[:, 0]] == expected
        np.testing.assert_allclose(result.scores[:, 0], 1.0, atol=1e-4)


def test_stale_in_memory_gallery_save_is_refused(tmp_path):
    folder = Gallery.build(feats(10), subjects_of(10), "fp", use_gpu=False).save(tmp_path / "gal")
    first, second = Gallery.load(folder), Gallery.load(folder)
    first.add(feats(3, 1), ["first"] * 3)
    first.save(folder)
    second.add(feats(2, 2), ["second"] * 2)
    with pytest.raises(
        GalleryError, match=r"gal changed since it was loaded .* holds 13 vectors, next id 13.* run the command again"
    ):
        second.save(folder)
    kept = Gallery.load(folder)
    assert len(kept) == 13 and "first" in kept.subjects() and "second" not in kept.subjects()
    # saving elsewhere is not an update of that folder: allowed
    assert len(Gallery.load(second.save(tmp_path / "copy"))) == 12


@posix_lock
def test_writer_waits_for_the_lock_then_gives_up_naming_the_holder(world, tmp_path, capsys):
    gal = _build(world, tmp_path / "gal")
    stale = Gallery.load(gal)
    with lock_held_elsewhere(gal) as pid:
        capsys.readouterr()
        assert main(["gallery", "remove", "--gallery", str(gal), "--id", "1", "--lock-timeout", "0.1"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"pid {pid}" in err and "run the command again" in err
        stale.remove(ids=[0])
        with pytest.raises(GalleryError, match="gave up after waiting 0 s"):
            stale.save(gal, lock_timeout=0)
        with pytest.raises(GalleryError, match=rf"gal is being written by another process \(pid {pid} on testhost"):
            with Gallery.open_for_update(gal, lock_timeout=0.2):
                pass
        assert len(Gallery.load(gal)) == 2  # readers need no lock
    stale.save(gal)  # the holder is gone: the write goes through
    assert Gallery.load(gal).ids().tolist() == [1]
    assert not (tmp_path / ".gal.lock").exists()


# -- 3. bytes overwritten inside index.faiss ----------------------------------------------


def _overwrite_stored_float(folder: Path) -> None:
    """Overwrite the first float of a stored vector inside index.faiss (size, counts and ids stay)."""
    gallery = Gallery.load(folder)
    stored: Any = faiss.downcast_index(gallery.cpu_index.index).reconstruct(1)
    path = folder / INDEX_FILE
    data = bytearray(path.read_bytes())
    at = bytes(data).find(stored.tobytes())
    assert at > 0
    data[at : at + 4] = b"\x00\x00\x00\x7a"  # 1.66e35, a cosine of 2e35 before the fix
    path.write_bytes(bytes(data))


def test_bytes_overwritten_inside_the_index_are_refused(world, tmp_path, capsys):
    gal = _build(world, tmp_path / "gal", "a")
    _overwrite_stored_float(gal)
    probe = str(world / "a" / "a001" / "vis_0.png")
    search = ["search", "--gallery", str(gal), "--recognizer", str(world / "rec.pt"), "--probe", probe, "-k", "1"]
    capsys.readouterr()
    assert main(search) == 2
    err = _flat(capsys.readouterr().err)
    assert f"{gal}: index.faiss is corrupt (checksum mismatch); rebuild with hfr gallery build" in err
    # a gallery saved before checksums existed: the unit-length check still refuses it
    meta = json.loads((gal / META_FILE).read_text())
    del meta["files"]
    (gal / META_FILE).write_text(json.dumps(meta))
    assert main(search) == 2
    assert "index.faiss holds a vector of length 1.662e+35 where every stored vector has length 1" in _flat(
        capsys.readouterr().err
    )


def test_gallery_without_checksums_loads_with_a_note_and_gets_them_on_save(tmp_path, caplog):
    folder = Gallery.build(feats(10), subjects_of(10), "fp", use_gpu=False).save(tmp_path / "gal")
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("files", "version", "save_id"):
        meta.pop(key, None)
    (folder / META_FILE).write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="hfr.gallery"):
        old = Gallery.load(folder)
    assert len(old) == 10 and old.version == 0 and "no checksums" in caplog.text
    old.save(folder)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["version"] == 1 and set(meta["files"]) == {INDEX_FILE, IDS_FILE}


# -- 9. leftovers of a killed save ---------------------------------------------------------

_KILLED_SAVE = """
import sys
import hfr.gallery.storage as storage
from hfr.gallery import Gallery

gallery = Gallery.load(sys.argv[1])
gallery.add([[1.0] + [0.0] * 15], ["late"])
def stop(*args, **kwargs):
    if sys.argv[2] == "write":
        real_write(*args, **kwargs)
    print("stopped", flush=True)
    sys.stdin.read()
real_write = storage.faiss.write_index
if sys.argv[2] == "write":
    storage.faiss.write_index = stop  # killed after index.faiss is written into the temporary folder
else:
    storage.shutil.rmtree = stop  # killed after the swap, before the old copy is deleted
gallery.save(sys.argv[1])
"""


@posix_lock
def test_leftovers_of_a_killed_save_are_removed_by_the_next_load(tmp_path, caplog):
    folders = {}
    procs = {}
    for point in ("write", "swap"):
        folder = Gallery.build(feats(10), subjects_of(10), "fp", use_gpu=False).save(tmp_path / point / "gal")
        folders[point] = folder
        procs[point] = subprocess.Popen(
            [sys.executable, "-c", _KILLED_SAVE, str(folder), point],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=CHILD_ENV,
            text=True,
        )
    for point, proc in procs.items():
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stopped"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        folder = folders[point]
        kind = "tmp" if point == "write" else "old"
        left = sorted(folder.parent.glob(f".gal.{kind}-*"))
        assert len(left) == 1 and (folder.parent / ".gal.lock").exists()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hfr.gallery"):
            gallery = Gallery.load(folder)
        assert len(gallery) == (10 if point == "write" else 11)
        assert f"removed {left[0]}, left by an interrupted save" in caplog.text
        assert sorted(p.name for p in folder.parent.iterdir()) == ["gal"]  # the dead writer's lock file too
        with Gallery.open_for_update(folder, lock_timeout=0) as again:  # its lock died with it
            assert len(again) == len(gallery)


@posix_lock
def test_leftovers_stay_while_another_writer_holds_the_lock(tmp_path):
    folder = Gallery.build(feats(10), subjects_of(10), "fp", use_gpu=False).save(tmp_path / "gal")
    busy = tmp_path / ".gal.tmp-0123abcd"
    busy.mkdir()
    with lock_held_elsewhere(folder):
        assert len(Gallery.load(folder)) == 10
        assert busy.is_dir()  # may be that writer's save in progress
    Gallery.load(folder)
    assert not busy.exists()


# -- 10. paths and duplicates ----------------------------------------------------------------


def test_paths_resolve_from_another_folder_and_re_adding_skips(world, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "a").symlink_to(world / "a", target_is_directory=True)
    monkeypatch.chdir(work)
    assert main(["gallery", "build", "--recognizer", str(world / "rec.pt"), "--data", "a", "--out", "gal"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    gallery = Gallery.load(work / "gal")
    paths = [Path(gallery.entry(int(i)).path) for i in gallery.ids()]
    assert all(p.is_absolute() and p.is_file() for p in paths)
    assert paths[0] == (world / "a" / "a000" / "vis_0.png").resolve()
    add = ["gallery", "add", "--gallery", str(work / "gal"), "--recognizer", str(world / "rec.pt")]
    capsys.readouterr()
    # the same images, named through the manifest file and without the symlink: skipped
    assert main([*add, "--data", str(world / "a" / "manifest.csv")]) == 0
    assert "added 0 entries; skipped 8 already in the gallery" in _flat(capsys.readouterr().out)
    assert len(Gallery.load(work / "gal")) == 8
    assert main([*add, "--data", str(world / "c")]) == 0
    assert "added 2 entries (ids 8..9); gallery holds 10" in _flat(capsys.readouterr().out)
    assert main([*add, "--data", str(world / "a"), "--allow-duplicates"]) == 0
    assert len(Gallery.load(work / "gal")) == 18


# -- a full disk during a save ----------------------------------------------------------------


def test_full_disk_during_a_save_keeps_the_previous_gallery(tmp_path, monkeypatch):
    folder = Gallery.build(feats(10), subjects_of(10), "fp", use_gpu=False).save(tmp_path / "gal")
    gallery = Gallery.load(folder)
    gallery.add(feats(2, 1), ["new"] * 2)
    real_open = open

    def full(file, mode="r", *args, **kwargs):
        if "w" in mode and Path(file).name == META_FILE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(
        GalleryError, match=rf"cannot save gallery folder {folder}: No space left on device .*unchanged"
    ):
        gallery.save(folder)
    monkeypatch.undo()
    assert len(Gallery.load(folder)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gal"]
    gallery.save(folder)  # space again: the same in-memory gallery saves
    assert len(Gallery.load(folder)) == 12
