"""The Milvus gallery backend (`hfr.gallery.milvus`) against the FAISS flat gallery, on embedded milvus-lite.

Needs the `milvus` extra (every test skips without it, except the one checking what a missing
extra does). The same features go into a FAISS flat `Gallery` (the `flat` fixture of
conftest.py) and a `MilvusGallery`; searches must agree exactly (ids, order, scores to 1e-5),
and add/remove/info/entry/contains_paths and the errors behave as the FAISS gallery's do.
Two real processes add and search at once without losing anything; a milvus-lite gRPC server
in another process stands in for a Milvus server URI; the CLI runs end to end with
`--backend milvus`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gallery_data import DIM, feats, subjects_of
from pattern_data import write_patterns

import hfr.gallery.milvus as milvus_module
from hfr.cli import main
from hfr.errors import ArgumentError, ExtraMissingError
from hfr.gallery import Gallery, GalleryError
from hfr.gallery.backends import gallery_backend, open_for_update, open_gallery
from hfr.gallery.milvus import MilvusGallery
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer

ROOT = Path(__file__).resolve().parents[2]
CHILD_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "HFR_THREADS": "1",
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
}


@pytest.fixture
def milvus_installed() -> None:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")


@pytest.fixture
def mflat(tmp_path, milvus_installed) -> MilvusGallery:
    """The `flat` fixture's features and metadata in a Milvus gallery (milvus-lite inside the folder)."""
    return MilvusGallery.build(
        tmp_path / "mgal",
        feats(60),
        subjects_of(60),
        "fp-a",
        modalities=["vis", "nir"] * 30,
        paths=[f"img/{i}.png" for i in range(60)],
    )


def _same(a: Any, b: Any) -> None:
    """Two SearchResults agree: ids in the same order, scores to 1e-5, the metadata."""
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    for name in ("subjects", "modalities", "paths"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()


def _same_subjects(a: Any, b: Any) -> None:
    assert a.subjects == b.subjects
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def _probes() -> np.ndarray:
    return np.concatenate([feats(12, 5), feats(60)[[0, 7, 33]]])


# -- exact results --------------------------------------------------------------------


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_exact_results_equal_the_faiss_flat_gallery(flat, mflat, caplog):
    q = _probes()
    with mflat:  # one connection for the block
        for k in (1, 5, 60):
            _same(flat.search(q, k), mflat.search(q, k))
        for k in (1, 4, 19, 20):
            _same_subjects(flat.search_subjects(q, k), mflat.search_subjects(q, k))
    with caplog.at_level(logging.INFO, logger="hfr.gallery.milvus"):
        _same(flat.search(q, 500), mflat.search(q, 500))  # clamped to the gallery's 60 vectors
        _same_subjects(flat.search_subjects(q, 50), mflat.search_subjects(q, 50))  # and to its 20 subjects
    assert "k=500 is more than the gallery's 60 vectors" in caplog.text
    assert "k=50 is more than the gallery's 20 subjects" in caplog.text
    top = mflat.search(feats(60)[:5], 1)
    assert top.ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(top.scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_search_subjects_deeper_than_milvus_topk_groups_by_subject(flat, mflat, monkeypatch):
    monkeypatch.setattr(milvus_module, "MAX_TOPK", 8)
    grouped: list[str | None] = []
    real = MilvusGallery._search

    def spy(self, client, vectors, k, group_by=None):
        grouped.append(group_by)
        return real(self, client, vectors, k, group_by)

    monkeypatch.setattr(MilvusGallery, "_search", spy)
    q = _probes()
    _same_subjects(flat.search_subjects(q, 8), mflat.search_subjects(q, 8))
    assert grouped == [None, "subject"]  # 8 neighbours held fewer than 8 subjects: Milvus grouped
    with pytest.raises(ArgumentError, match="Milvus returns at most 8 subjects per probe"):
        mflat.search_subjects(q, 9)
    with pytest.raises(ArgumentError, match="Milvus returns at most 8 neighbours per probe"):
        mflat.search(q, 9)


# -- the operations, as the FAISS gallery's ---------------------------------------------


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_add_remove_ids_stable(flat, mflat):
    for gallery in (flat, mflat):
        assert len(gallery) == 60
        new = gallery.add(feats(4, 7), ["n1", "n1", "n2", "n2"])
        assert new.tolist() == [60, 61, 62, 63]
        assert gallery.remove(ids=[0, 61, 999]) == 2
        assert gallery.remove(subjects=["n2", "s005"]) == 5
        assert gallery.remove(subjects="s006") == 3
        assert len(gallery) == 54
        assert gallery.remove(ids=[0]) == 0
        assert gallery.add(feats(1, 8), ["n3"]).tolist() == [64]  # never reused
        assert gallery.add(feats(0), []).tolist() == []
        with pytest.raises(GalleryError, match="id 0 is not in the gallery"):
            gallery.entry(0)
        assert "n2" not in gallery.subjects() and "n1" in gallery.subjects()
    np.testing.assert_array_equal(flat.ids(), mflat.ids())
    assert flat.subjects() == mflat.subjects()
    q = np.concatenate([_probes(), feats(4, 7), feats(1, 8)])
    _same(flat.search(q, len(flat)), mflat.search(q, len(mflat)))
    _same_subjects(flat.search_subjects(q, 6), mflat.search_subjects(q, 6))
    assert mflat.next_id == 65 and mflat.version == 7  # create, 3 adds, 3 removes (no write by the empty ones)


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_info_entry_and_contains_paths(flat, mflat):
    a, b = flat.info(), mflat.info()
    for key in ("count", "subjects", "modalities", "dim", "fingerprint", "next_id", "hfr_version"):
        assert a[key] == b[key], key
    assert b["index"]["kind"] == "flat" and b["index"]["milvus_index"] == "FLAT"
    assert b["backend"] == "milvus" and b["uri"] == "milvus.db" and b["collection"] == "gallery"
    assert b["folder"] == str(mflat.folder)
    assert mflat.entry(7) == flat.entry(7)
    for gallery in (flat, mflat):
        gallery.add(feats(1, 3), ["x"])  # no path: never a duplicate
        gallery.add(feats(1, 4), ['q"uo\\te'], paths=['dir/it\'s "quoted"\\x.png'])
    paths = ["img/3.png", "img/60.png", "", "img/59.png", 'dir/it\'s "quoted"\\x.png', "dir/it's"]
    assert mflat.contains_paths(paths).tolist() == flat.contains_paths(paths).tolist() == [1, 0, 0, 1, 1, 0]
    assert mflat.remove(subjects=['q"uo\\te']) == 1


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_errors_are_the_faiss_gallerys(mflat, tmp_path, caplog):
    with pytest.raises(ArgumentError, match="k must be"):
        mflat.search(feats(1), k=0)
    with pytest.raises(ArgumentError, match="k must be"):
        mflat.search_subjects(feats(1), k=True)
    with pytest.raises(GalleryError, match=r"dimension 8 .* gallery's dimension is 16"):
        mflat.search(feats(2, dim=8))
    with pytest.raises(GalleryError, match="probe embedded by another recognizer than the gallery's"):
        mflat.search(feats(1), fingerprint="fp-b")
    with pytest.raises(GalleryError, match="another recognizer"):
        mflat.add(feats(1), ["x"], fingerprint="fp-b")
    with pytest.raises(GalleryError, match="zero vector"):
        mflat.search(np.zeros((1, DIM)))
    with pytest.raises(GalleryError, match="row 1 holds NaN"):
        mflat.add(np.array([[1.0] * DIM, [np.nan] * DIM]), ["a", "b"])
    with pytest.raises(GalleryError, match="got 1 subjects for 2"):
        mflat.add(feats(2), ["a"])
    with pytest.raises(GalleryError, match="subjects row 0 is empty"):
        mflat.add(feats(1), [""])
    with pytest.raises(GalleryError, match="paths row 0 holds a control character"):
        mflat.add(feats(1), ["a"], paths=["a\x00b"])
    with pytest.raises(GalleryError, match="paths row 0 is 8193 bytes long; a Milvus gallery stores at most 8192"):
        mflat.add(feats(1), ["a"], paths=["p" * 8193])
    with pytest.raises(ArgumentError, match="remove needs ids or subjects"):
        mflat.remove()
    assert len(mflat) == 60 and mflat.next_id == 60  # nothing was written by the refused calls
    empty = MilvusGallery.create(tmp_path / "empty", DIM, "fp")
    with pytest.raises(GalleryError, match="the gallery is empty"):
        empty.search(feats(1))
    with pytest.raises(GalleryError, match="the gallery is empty"):
        empty.search_subjects(feats(1, dim=8))  # as FAISS: the empty gallery first
    for kwargs, match in (
        ({"dim": 0}, "dimension must be a positive integer"),
        ({"fingerprint": ""}, "fingerprint"),
        ({"collection": "1bad-name"}, "collection name '1bad-name' is invalid"),
        ({"uri": "ftp://host/x"}, "neither a milvus-lite database"),
        ({"uri": "http://user:secret@host:19530"}, r"holds credentials.*\$HFR_MILVUS_TOKEN"),
    ):
        args: dict[str, Any] = {"dim": DIM, "fingerprint": "fp", **kwargs}
        with pytest.raises(ArgumentError, match=match):
            MilvusGallery.create(tmp_path / "bad", args.pop("dim"), args.pop("fingerprint"), **args)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(GalleryError, match=r"Milvus http://127.0.0.1:1, .*Milvus failed to connect"):
        MilvusGallery.create(tmp_path / "down", DIM, "fp", uri="http://127.0.0.1:1")
    assert not (tmp_path / "down").exists()  # nothing of a failed build stays
    with pytest.raises(ArgumentError, match="cannot be saved to another folder"):
        mflat.save(tmp_path / "elsewhere")
    assert mflat.save() == mflat.folder


# -- the folder: meta.json, reopening, dispatch, rebuilding ---------------------------------


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_folder_reopens_anywhere_and_dispatches_by_backend(flat, saved, mflat, tmp_path):
    assert sorted(p.name for p in mflat.folder.iterdir()) == ["meta.json", "milvus.db"]
    meta = json.loads((mflat.folder / "meta.json").read_text())
    assert meta["backend"] == "milvus" and meta["uri"] == "milvus.db" and meta["collection"] == "gallery"
    assert meta["dim"] == DIM and meta["fingerprint"] == "fp-a" and meta["next_id"] == 60 and meta["created"]
    assert gallery_backend(saved) == "faiss" and gallery_backend(mflat.folder) == "milvus"
    assert isinstance(open_gallery(saved, use_gpu=False), Gallery)
    moved = mflat.folder.rename(tmp_path / "moved")  # the database's path is recorded relative to the folder
    again = open_gallery(moved)
    assert isinstance(again, MilvusGallery) and len(again) == 60
    _same(flat.search(_probes(), 5), again.search(_probes(), 5))
    with pytest.raises(ArgumentError, match="is a Milvus gallery"):
        open_gallery(moved, use_gpu=True)
    for folder in (saved, moved):
        with open_for_update(folder) as gallery:
            assert gallery.add(feats(1, 9), ["late"]).tolist() == [60]
            gallery.save()
        assert len(open_gallery(folder)) == 61
    with pytest.raises(GalleryError, match="is a faiss gallery, not a Milvus one"):
        MilvusGallery.open(saved)
    with pytest.raises(GalleryError, match="does not exist"):
        open_gallery(tmp_path / "nothing")


@pytest.mark.slow  # milvus-lite start-ups: the slow tier (CI runs it)
def test_rebuild_replaces_a_gallery_of_either_backend(mflat, saved, tmp_path):
    stale = MilvusGallery.open(mflat.folder)
    rebuilt = MilvusGallery.build(mflat.folder, feats(5, 1), subjects_of(5), "fp-b")
    assert len(rebuilt) == 5 and rebuilt.ids().tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(GalleryError, match="was rebuilt since it was opened"):
        stale.add(feats(1), ["x"])
    assert len(rebuilt) == 5
    over_faiss = MilvusGallery.build(saved, feats(3, 1), subjects_of(3), "fp-c")
    assert sorted(p.name for p in saved.iterdir()) == ["meta.json", "milvus.db"]
    assert isinstance(open_gallery(saved), MilvusGallery) and len(over_faiss) == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(GalleryError, match=r"holds other files \(notes.txt\)"):
        MilvusGallery.create(other, DIM, "fp")
    # a collection dropped behind the gallery's back
    from pymilvus import MilvusClient

    client = MilvusClient(str(tmp_path / "shared.db"))
    client.create_collection("taken", dimension=DIM)
    client.close()
    milvus_module.MilvusGallery._release_lite(str(tmp_path / "shared.db"))
    with pytest.raises(GalleryError, match="a collection of that name already exists there"):
        MilvusGallery.create(tmp_path / "g2", DIM, "fp", uri=str(tmp_path / "shared.db"), collection="taken")
    shared = MilvusGallery.create(tmp_path / "g3", DIM, "fp", uri=str(tmp_path / "shared.db"), collection="mine")
    assert json.loads((shared.folder / "meta.json").read_text())["uri"] == str(tmp_path / "shared.db")
    with shared._connected(check=False) as client:
        client.drop_collection("mine")
    with pytest.raises(GalleryError, match="collection mine\\): the collection does not exist"):
        MilvusGallery.open(shared.folder)
    shutil.rmtree(saved / "milvus.db")
    with pytest.raises(GalleryError, match=r"the milvus-lite database .*milvus.db is missing; rebuild"):
        open_gallery(saved)
    assert not (saved / "milvus.db").exists()  # not made anew, empty


# -- concurrency -----------------------------------------------------------------------

_WORKER = """
import sys
import time
import numpy as np
from gallery_data import feats
from hfr.gallery.backends import open_gallery

gallery = open_gallery(sys.argv[1])
name = sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(sys.argv[3])):
    x = feats(2, seed=1000 * int(name) + i)
    ids = gallery.add(x, [f"p{name}-{i}"] * 2, paths=[f"p{name}/{i}/{j}.png" for j in range(2)])
    found = gallery.search(x, k=1)
    assert found.ids[:, 0].tolist() == ids.tolist(), (found.ids, ids)
    assert gallery.search_subjects(x, k=1).subjects == [[f"p{name}-{i}"]] * 2
    print(" ".join(map(str, ids.tolist())), flush=True)
    time.sleep(0.1)  # let the other process in (milvus-lite: one process at a time)
"""


@pytest.mark.slow  # milvus-lite servers in other processes: the slow tier (CI runs it)
def test_two_processes_add_and_search_at_once_lose_nothing(tmp_path, milvus_installed):
    gallery = MilvusGallery.build(tmp_path / "gal", feats(6), subjects_of(6), "fp")
    rounds = 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(gallery.folder), name, str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for name in ("1", "2")
    ]
    for proc in procs:  # both imported and opened: start them together
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reported: dict[str, list[int]] = {}
    for name, proc in zip(("1", "2"), procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reported[name] = [int(i) for line in out.split() for i in line.split()]
    assert len(reported["1"]) == len(reported["2"]) == 2 * rounds
    assert not set(reported["1"]) & set(reported["2"])
    assert gallery.ids().tolist() == list(range(6 + 4 * rounds)) and gallery.next_id == 6 + 4 * rounds
    for name, ids in reported.items():
        for i, gid in enumerate(ids):
            entry = gallery.entry(gid)
            assert entry.subject == f"p{name}-{i // 2}" and entry.path == f"p{name}/{i // 2}/{i % 2}.png"


# -- a Milvus server URI (a milvus-lite gRPC server in another process) -----------------------

_SERVER = """
import sys
from milvus_lite.adapter.grpc.server import start_server_in_thread
server, db, port = start_server_in_thread(sys.argv[1])
print(port, flush=True)
sys.stdin.read()
server.stop(grace=0)
db.close()
"""


@pytest.fixture
def server_uri(tmp_path, milvus_installed) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(tmp_path / "server-data")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


@pytest.mark.slow  # milvus-lite servers in other processes: the slow tier (CI runs it)
def test_server_uri_gallery_equals_faiss(flat, server_uri, tmp_path):
    folder = tmp_path / "sgal"
    gallery = MilvusGallery.build(
        folder, feats(60), subjects_of(60), "fp-a", ["vis", "nir"] * 30, [f"img/{i}.png" for i in range(60)], server_uri
    )
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["uri"] == server_uri and meta["collection"].startswith("hfr_sgal_")
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json"]
    assert gallery._locks() == []  # a server serves readers without the folder lock
    q = _probes()
    _same(flat.search(q, 5), gallery.search(q, 5))
    _same_subjects(flat.search_subjects(q, 4), gallery.search_subjects(q, 4))
    for g in (flat, gallery):
        assert g.add(feats(2, 7), ["n", "n"]).tolist() == [60, 61]
        assert g.remove(subjects=["s003"]) == 3
    again = open_gallery(folder)
    assert isinstance(again, MilvusGallery) and again.info()["count"] == 59
    _same(flat.search(q, 7), again.search(q, 7))
    gallery.close()
    again.close()


# -- the command line --------------------------------------------------------------------


@pytest.fixture
def cli_setup(tmp_path, milvus_installed):
    data = tmp_path / "data"
    write_patterns(data, 5, 2, modalities=("nir", "vis"), split="test")
    rec = tmp_path / "recognizer.pt"
    torch.manual_seed(0)  # the same untrained recognizer every run
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32).eval(), rec)
    return data, rec


def _flat_text(text: str) -> str:
    return " ".join(text.split())


def _same_ranking_up_to_ties(expected: list[dict[str, Any]], got: list[dict[str, Any]], tol: float = 1e-5) -> None:
    """`hfr search --json` rows of two backends: the same probes, ranks and scores (to `tol`), and the same
    subject at each rank unless the two subjects' scores tie within `tol`.

    An untrained recognizer maps the pattern images to nearly parallel features, so two subjects can score
    within float32 rounding of each other; FAISS (BLAS) and Milvus (its own kernels) sum in different orders
    and may then order them differently. A swap of subjects whose scores differ by more than `tol` fails.
    """
    assert [(r["probe"], r["rank"]) for r in got] == [(r["probe"], r["rank"]) for r in expected]
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in expected], atol=tol)
    for probe in dict.fromkeys(r["probe"] for r in expected):
        want = {r["subject"]: r["score"] for r in expected if r["probe"] == probe}
        last = min(want.values())
        for row in (r for r in got if r["probe"] == probe):
            if row["subject"] in want:  # the same subject carries the same score, whatever its rank
                assert abs(row["score"] - want[row["subject"]]) <= tol, (probe, row)
            else:  # a subject FAISS left out: only a tie with FAISS's last one may let it in
                assert abs(row["score"] - last) <= tol, (probe, row)


@pytest.mark.slow  # milvus-lite servers in other processes: the slow tier (CI runs it)
def test_cli_build_search_add_remove_info_with_backend_milvus(cli_setup, tmp_path, capsys):
    data, rec = cli_setup
    common = ["--recognizer", str(rec), "--data", str(data), "--modality", "vis"]
    fg, mg = tmp_path / "faiss", tmp_path / "milvus"
    assert main(["gallery", "build", *common, "--out", str(fg)]) == 0
    assert main(["gallery", "build", *common, "--out", str(mg), "--backend", "milvus"]) == 0
    built = _flat_text(capsys.readouterr().out)
    assert all(row in built for row in ("backend │ milvus │", "uri │ milvus.db │", "collection │ gallery │"))
    assert json.loads((mg / "meta.json").read_text())["backend"] == "milvus"
    results = {}
    for g in (fg, mg):
        out = tmp_path / f"{g.name}.json"
        search = ["search", "--gallery", str(g), "--recognizer", str(rec), "--probe", str(data), "-k", "3"]
        assert main([*search, "--json", str(out)]) == 0
        results[g.name] = json.loads(out.read_text())
    assert len(results["milvus"]) == 20 * 3
    _same_ranking_up_to_ties(results["faiss"], results["milvus"])
    capsys.readouterr()
    for g in (fg, mg):  # the same commands, the same answers on both backends
        assert main(["gallery", "add", "--gallery", str(g), "--recognizer", str(rec), "--data", str(data)]) == 0
        out = _flat_text(capsys.readouterr().out)
        assert "added 10 entries (ids 10..19); skipped 10 already in the gallery" in out
        assert main(["gallery", "remove", "--gallery", str(g), "--subject", "s000", "--id", "19"]) == 0
        assert "removed 5 images; gallery holds 15" in _flat_text(capsys.readouterr().out)
        assert main(["gallery", "info", "--gallery", str(g)]) == 0
        info = _flat_text(capsys.readouterr().out)
        assert "count │ 15" in info and "next id │ 20" in info
    assert "collection │ gallery" in info
    np.testing.assert_array_equal(open_gallery(fg).ids(), open_gallery(mg).ids())
    # refused flag combinations: one line each, exit status 2
    for argv, message in (
        (["gallery", "build", *common, "--out", str(tmp_path / "x"), "--uri", "x.db"], "--uri only applies to"),
        (["gallery", "build", *common, "--out", str(mg), "--index", "ivf", "--backend", "milvus"], "--index ivf"),
        (["gallery", "build", *common, "--out", str(mg)], "is a Milvus gallery: rebuild it with --backend milvus"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in _flat_text(err) and len(err.strip().splitlines()) == 1
    assert len(open_gallery(mg)) == 15


# -- without the extra --------------------------------------------------------------------


def test_without_the_extra_milvus_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus -> ImportError
    monkeypatch.setitem(sys.modules, "milvus_lite", None)
    monkeypatch.setattr(milvus_module, "_pymilvus", None)
    with pytest.raises(ExtraMissingError, match=r'pip install -e "\.\[milvus\]"'):
        MilvusGallery.create(tmp_path / "g", DIM, "fp")
    build = ["gallery", "build", "--backend", "milvus", "--recognizer", str(tmp_path / "none.pt")]
    assert main([*build, "--data", str(tmp_path / "none"), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[milvus]"' in err and len(err.strip().splitlines()) == 1
    folder = tmp_path / "made"  # a Milvus gallery folder, made elsewhere
    folder.mkdir()
    meta = {
        "format": "hfr-gallery",
        "format_version": 1,
        "backend": "milvus",
        "dim": DIM,
        "fingerprint": "fp",
        "uri": "milvus.db",
        "collection": "gallery",
        "next_id": 0,
        "version": 1,
        "build_id": "0" * 32,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    assert main(["gallery", "info", "--gallery", str(folder)]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[milvus]"' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()
