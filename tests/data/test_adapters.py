"""Real-dataset adapters on tiny fake trees in the official layouts, and every bad-input case."""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from fake_datasets import (
    CASIA_NIR_PER_SUBJECT,
    CASIA_SUBJECTS,
    LFW_IMAGES,
    LFW_PAIRS,
    MULTIPIE_FILES,
    write_casia,
    write_cfp,
    write_folder,
    write_image,
    write_lfw,
    write_multipie,
)

from hfr.data.adapters import FORMATS, index_dataset, read_pairs, sidecar_path, write_index
from hfr.data.manifest import Manifest
from hfr.errors import ArgumentError, FormatError, OptionError


def _by_path(manifest: Manifest) -> dict:
    return {r.path: r for r in manifest}


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------- common
def test_unknown_format_lists_formats(tmp_path):
    with pytest.raises(ArgumentError) as err:
        index_dataset("casia", tmp_path)
    for fmt in FORMATS:
        assert fmt in str(err.value)
    assert not isinstance(err.value, OptionError)  # a library error; OptionError is the CLI's


def test_missing_root_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FormatError, match="nowhere"):
        index_dataset("folder", missing)


def test_fold_rejected_where_meaningless(tmp_path):
    write_folder(tmp_path)
    with pytest.raises(ArgumentError, match="--fold applies to casia-nirvis2, cfp and lfw, not folder"):
        index_dataset("folder", tmp_path, fold=1)
    with pytest.raises(ArgumentError, match="applies to multipie only, not folder"):
        index_dataset("folder", tmp_path, protocol="setting2")


# ---------------------------------------------------------------------- casia-nirvis2
def test_casia_all_folds(tmp_path):
    root = write_casia(tmp_path / "NIR-VIS-2.0")
    result = index_dataset("casia-nirvis2", root)
    m = result.manifest
    n_subjects = len(CASIA_SUBJECTS)
    assert len(m) == n_subjects * (1 + CASIA_NIR_PER_SUBJECT)
    assert sorted(m.subjects()) == sorted(CASIA_SUBJECTS)
    assert m.modalities() == Counter(vis=n_subjects, nir=n_subjects * CASIA_NIR_PER_SUBJECT)
    assert {"fold_1", "fold_2", "fold_dev", "session"} <= set(m.columns)
    rows = _by_path(m)
    vis3 = rows["s2/VIS/00003/001.jpg"]
    assert (vis3.subject, vis3.modality, vis3.split, vis3.yaw) == ("00003", "vis", "", None)
    assert (vis3.get("fold_1"), vis3.get("fold_2"), vis3.get("fold_dev"), vis3.get("session")) == (
        "gallery",
        "train",
        "gallery",
        "s2",
    )
    nir1 = rows["s1/NIR/00001/002.bmp"]
    assert (nir1.subject, nir1.modality) == ("00001", "nir")
    assert (nir1.get("fold_1"), nir1.get("fold_2"), nir1.get("fold_dev")) == ("train", "probe", "train")
    # subject 00002 is not in the dev lists: empty role there
    assert rows["s1/VIS/00002/001.jpg"].get("fold_dev") == ""
    assert result.dropped == []
    assert result.protocol["lists"]["nir_probe_1.txt"] == 2 * CASIA_NIR_PER_SUBJECT


def test_casia_one_fold_sets_split(tmp_path):
    root = write_casia(tmp_path)
    m = index_dataset("casia-nirvis2", root, fold=2).manifest
    assert len(m) == len(CASIA_SUBJECTS) * (1 + CASIA_NIR_PER_SUBJECT)
    roles = Counter((r.subject, r.modality, r.split) for r in m)
    assert roles[("00003", "vis", "train")] == 1
    assert roles[("00001", "vis", "gallery")] == 1
    assert roles[("00002", "nir", "probe")] == CASIA_NIR_PER_SUBJECT
    assert not any(c.startswith("fold_") for c in m.columns)
    dev = index_dataset("casia-nirvis2", root, fold=0).manifest
    assert sorted(dev.subjects()) == ["00001", "00003"]
    assert {r.split for r in dev.select(subjects=["00003"])} == {"gallery", "probe"}


def test_casia_unknown_fold(tmp_path):
    root = write_casia(tmp_path)
    with pytest.raises(ArgumentError, match="available folds: 0 \\(dev\\), 1, 2"):
        index_dataset("casia-nirvis2", root, fold=7)


def test_casia_tolerates_case_and_suffix(tmp_path):
    root = write_casia(tmp_path)
    os.rename(root / "s1/VIS/00001/001.jpg", root / "s1/VIS/00001/001.JPG")
    shutil.move(root / "s2/NIR", root / "s2/nir")
    m = index_dataset("casia-nirvis2", root, fold=1).manifest
    paths = {r.path for r in m}
    assert "s1/VIS/00001/001.JPG" in paths
    assert "s2/nir/00003/001.bmp" in paths


def test_casia_missing_protocols(tmp_path):
    write_image(tmp_path / "s1/NIR/00001/001.bmp")
    with pytest.raises(FormatError, match="protocols"):
        index_dataset("casia-nirvis2", tmp_path)
    (tmp_path / "protocols").mkdir()
    with pytest.raises(FormatError, match="vis_gallery_1.txt"):
        index_dataset("casia-nirvis2", tmp_path)
    (tmp_path / "protocols" / "nir_probe_3.txt").write_text("s1\\NIR\\00001\\001.bmp\n")
    with pytest.raises(FormatError, match="vis_gallery_3.txt"):
        index_dataset("casia-nirvis2", tmp_path)


def test_casia_missing_file_names_list_and_line(tmp_path):
    root = write_casia(tmp_path)
    (root / "s1/NIR/00002/002.bmp").unlink()
    with pytest.raises(FormatError, match=r"nir_train_1\.txt line 4"):
        index_dataset("casia-nirvis2", root, fold=1)


def test_casia_skip_missing_reports(tmp_path):
    root = write_casia(tmp_path)
    (root / "s1/NIR/00002/002.bmp").unlink()
    result = index_dataset("casia-nirvis2", root, skip_missing=True)
    assert len(result.manifest) == len(CASIA_SUBJECTS) * (1 + CASIA_NIR_PER_SUBJECT) - 1
    # listed in nir_train_1 and nir_probe_2 (00002 is not in the dev lists)
    assert sorted(w.split(" line")[0] for w, _ in result.dropped) == ["nir_probe_2.txt", "nir_train_1.txt"]
    assert all("not found" in why for _, why in result.dropped)
    out = write_index(result, root / "manifest.csv")
    report = _csv_rows(sidecar_path(out, "dropped"))
    assert len(report) == 2 and report[0]["what"].startswith("nir_")
    Manifest.read(out)
    # a clean re-index removes the stale report
    write_image(root / "s1/NIR/00002/002.bmp")
    write_index(index_dataset("casia-nirvis2", root), out)
    assert not sidecar_path(out, "dropped").exists()


def test_casia_malformed_line(tmp_path):
    root = write_casia(tmp_path)
    with (root / "protocols" / "vis_gallery_2.txt").open("a") as f:
        f.write("s1\\VIS\\00001\\001.jpg 00001 extra\n")
    with pytest.raises(FormatError, match=r"vis_gallery_2\.txt line 3.*3 fields"):
        index_dataset("casia-nirvis2", root)
    (root / "protocols" / "vis_gallery_2.txt").write_text("justafile.jpg\n")
    with pytest.raises(FormatError, match=r"vis_gallery_2\.txt line 1"):
        index_dataset("casia-nirvis2", root)


def test_casia_empty_lists(tmp_path):
    proto = tmp_path / "protocols"
    proto.mkdir()
    for name in ("vis_gallery_1.txt", "nir_probe_1.txt"):
        (proto / name).write_text("\n")
    with pytest.raises(FormatError, match="name no existing image"):
        index_dataset("casia-nirvis2", tmp_path)


# ---------------------------------------------------------------------- multipie
def test_multipie_fields_and_setting2(tmp_path):
    root = write_multipie(tmp_path / "Multi-Pie")
    result = index_dataset("multipie", root)
    m = result.manifest
    assert len(m) == len(MULTIPIE_FILES)  # the highres file does not match the name pattern
    rows = {Path(r.path).name: r for r in m}
    front = rows["001_01_01_051_07.png"]
    assert (front.subject, front.yaw, front.split, front.modality) == ("001", 0.0, "train", "vis")
    fields = ("session", "camera", "illumination", "expression")
    assert tuple(front.get(c) for c in fields) == ("01", "05_1", "07", "neutral")
    assert rows["001_01_02_110_07.png"].yaw == -90.0
    assert rows["001_01_02_110_07.png"].get("expression") == "smile"
    assert rows["001_02_03_240_00.png"].yaw == 90.0
    assert rows["001_02_03_240_00.png"].get("expression") == "squint"
    test_row = rows["201_04_03_041_12.png"]
    assert (test_row.yaw, test_row.split, test_row.get("expression")) == (30.0, "test", "scream")
    assert rows["201_03_03_081_05.png"].yaw is None  # elevated camera
    assert rows["201_03_03_081_05.png"].get("expression") == "disgust"
    assert result.protocol == {"split": "setting2"}


def test_multipie_no_split_and_errors(tmp_path):
    root = write_multipie(tmp_path)
    assert {r.split for r in index_dataset("multipie", root, protocol="none").manifest} == {""}
    with pytest.raises(ArgumentError, match="setting2"):
        index_dataset("multipie", root, protocol="setting9")
    with pytest.raises(ArgumentError, match="--fold"):
        index_dataset("multipie", root, fold=1)
    empty = tmp_path / "empty"
    write_image(empty / "face.png")
    with pytest.raises(FormatError, match="SSS_SS_RR_CCC_II"):
        index_dataset("multipie", empty)


# ---------------------------------------------------------------------- cfp
def test_cfp_pairs_pose_and_split(tmp_path):
    root = write_cfp(tmp_path / "cfp-dataset")
    result = index_dataset("cfp", root)
    m = result.manifest
    assert len(m) == 9 and sorted(m.subjects()) == ["001", "002", "003"]
    rows = _by_path(m)
    f = rows["Data/Images/002/frontal/01.jpg"]
    p = rows["Data/Images/002/profile/01.jpg"]
    assert (f.yaw, f.get("pose"), f.subject) == (0.0, "frontal", "002")
    assert (p.yaw, p.get("pose"), p.subject) == (None, "profile", "002")
    assert {r.split for r in m} == {"test"}
    pairs = result.protocol["pairs"]
    counts = Counter((pr.protocol, pr.fold, pr.same) for pr in pairs)
    assert counts == {
        ("FF", 1, True): 2,
        ("FF", 1, False): 1,
        ("FF", 2, True): 1,
        ("FF", 2, False): 2,
        ("FP", 1, True): 2,
        ("FP", 1, False): 1,
        ("FP", 2, True): 1,
        ("FP", 2, False): 1,
    }
    for pr in pairs:
        a, b = rows[pr.path_a], rows[pr.path_b]
        assert a.get("pose") == "frontal"
        assert b.get("pose") == ("profile" if pr.protocol == "FP" else "frontal")
        assert (a.subject == b.subject) == pr.same
    # FP fold 1 line "3,2": frontal index 3 (subject 002 image 01) vs profile index 2 (subject 002)
    assert any(
        pr.path_a.endswith("002/frontal/01.jpg") and pr.path_b.endswith("002/profile/01.jpg")
        for pr in pairs
        if pr.protocol == "FP"
    )


def test_cfp_fold_split(tmp_path):
    root = write_cfp(tmp_path)
    m = index_dataset("cfp", root, fold=2).manifest
    split = {r.subject: r.split for r in m}
    assert split == {"001": "train", "002": "test", "003": "test"}
    with pytest.raises(ArgumentError, match="available folds: 1, 2"):
        index_dataset("cfp", root, fold=3)


def test_cfp_missing_protocol_file(tmp_path):
    root = write_cfp(tmp_path)
    (root / "Protocol" / "Pair_list_P.txt").unlink()
    with pytest.raises(FormatError, match="Pair_list_P.txt"):
        index_dataset("cfp", root)
    root2 = write_cfp(tmp_path / "b")
    (root2 / "Protocol" / "Split" / "FP" / "02" / "diff.txt").unlink()
    with pytest.raises(FormatError, match=r"FP/02/diff\.txt"):
        index_dataset("cfp", root2)


def test_cfp_bad_lines(tmp_path):
    root = write_cfp(tmp_path)
    same = root / "Protocol" / "Split" / "FF" / "02" / "same.txt"
    same.write_text("5,6\n5,99\n")
    with pytest.raises(FormatError, match=r"FF/02/same\.txt line 2: index 99"):
        index_dataset("cfp", root)
    same.write_text("5;6\n")
    with pytest.raises(FormatError, match=r"same\.txt line 1"):
        index_dataset("cfp", root)
    same.write_text("5,6\n")
    plist = root / "Protocol" / "Pair_list_P.txt"
    plist.write_text(plist.read_text() + "x ../Data/Images/003/profile/01.jpg\n")
    with pytest.raises(FormatError, match=r"Pair_list_P\.txt line 4: index 'x'"):
        index_dataset("cfp", root)


def test_cfp_missing_image_and_skip(tmp_path):
    root = write_cfp(tmp_path)
    (root / "Data/Images/001/profile/01.jpg").unlink()
    with pytest.raises(FormatError, match=r"Pair_list_P\.txt line 1"):
        index_dataset("cfp", root)
    result = index_dataset("cfp", root, skip_missing=True)
    assert len(result.manifest) == 8
    # profile index 1 is used by one pair only: FP/01 same.txt line 1 "1,1"
    whats = [w for w, _ in result.dropped]
    assert whats == ["Pair_list_P.txt line 1: ../Data/Images/001/profile/01.jpg", "FP/01/same.txt line 1: 1,1"]
    assert len(result.protocol["pairs"]) == 11 - 1


# ---------------------------------------------------------------------- lfw
def test_lfw_index_and_pairs(tmp_path):
    root = write_lfw(tmp_path)
    result = index_dataset("lfw", root)
    m = result.manifest
    assert len(m) == sum(LFW_IMAGES.values())
    assert sorted(m.subjects()) == sorted(LFW_IMAGES)
    assert {r.yaw for r in m} == {None}
    rows = _by_path(m)
    assert rows["lfw/Eve_Solo/Eve_Solo_0001.jpg"].split == ""  # in no pair
    assert rows["lfw/Bob_Jones/Bob_Jones_0002.jpg"].split == "test"
    pairs = result.protocol["pairs"]
    assert Counter((p.fold, p.same) for p in pairs) == {(1, True): 2, (1, False): 2, (2, True): 2, (2, False): 2}
    first = pairs[0]
    assert (first.path_a, first.path_b, first.same) == (
        "lfw/Alice_Smith/Alice_Smith_0001.jpg",
        "lfw/Alice_Smith/Alice_Smith_0002.jpg",
        True,
    )
    mismatch = pairs[3]
    assert (mismatch.path_a, mismatch.path_b, mismatch.same) == (
        "lfw/Bob_Jones/Bob_Jones_0002.jpg",
        "lfw/Alice_Smith/Alice_Smith_0003.jpg",
        False,
    )


def test_lfw_fold_split(tmp_path):
    root = write_lfw(tmp_path)
    split = {r.subject: r.split for r in index_dataset("lfw", root, fold=2).manifest}
    assert split == {
        "Alice_Smith": "train",
        "Bob_Jones": "train",
        "Carol_King": "test",
        "Dave_Lee": "test",
        "Eve_Solo": "train",
    }


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["2\t2", *LFW_PAIRS[1:-1]], "found 7"),
        (["ten\t300", *LFW_PAIRS[1:]], "line 1"),
        ([LFW_PAIRS[0], "Alice_Smith\t1", *LFW_PAIRS[2:]], r"line 2: fold 1 expects a matched"),
        ([*LFW_PAIRS[:3], "Alice_Smith\t1\t2", *LFW_PAIRS[4:]], r"line 4: fold 1 expects a mismatched"),
        ([*LFW_PAIRS[:5], "Carol_King\tone\t2", *LFW_PAIRS[6:]], "line 6: image numbers"),
        ([*LFW_PAIRS[:5], "Carol_King\t1\t9", *LFW_PAIRS[6:]], r"line 6: image .*Carol_King_0009\.jpg not found"),
    ],
)
def test_lfw_bad_pairs(tmp_path, pairs, message):
    root = write_lfw(tmp_path, pairs)
    with pytest.raises(FormatError, match=message):
        index_dataset("lfw", root)


def test_lfw_missing_pairs_file_and_skip(tmp_path):
    root = write_lfw(tmp_path)
    (root / "lfw/Dave_Lee/Dave_Lee_0001.jpg").unlink()
    result = index_dataset("lfw", root, skip_missing=True)
    assert [w for w, _ in result.dropped] == ["pairs.txt line 8", "pairs.txt line 9"]
    assert len(result.protocol["pairs"]) == 6
    (root / "pairs.txt").unlink()
    with pytest.raises(FormatError, match="pairs.txt"):
        index_dataset("lfw", root)


# ---------------------------------------------------------------------- folder
def test_folder_modalities(tmp_path):
    root = write_folder(tmp_path / "faces")
    m = index_dataset("folder", root).manifest
    got = sorted((r.path, r.subject, r.modality, r.split) for r in m)
    assert got == [
        ("ann/a.png", "ann", "vis", "train"),
        ("ann/b.jpg", "ann", "vis", "train"),
        ("ben/NIR/x.bmp", "ben", "nir", "train"),
        ("ben/NIR/y.jpeg", "ben", "nir", "train"),
        ("ben/Vis/z.png", "ben", "vis", "train"),
    ]


def test_folder_bad_layouts(tmp_path):
    root = write_folder(tmp_path / "a")
    write_image(root / "ben" / "infrared" / "q.png")
    with pytest.raises(FormatError, match="'infrared' is not a modality folder"):
        index_dataset("folder", root)
    loose = tmp_path / "b"
    write_image(loose / "face.png")
    with pytest.raises(FormatError, match="directly in ROOT"):
        index_dataset("folder", loose)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "readme.txt").write_text("x")
    with pytest.raises(FormatError, match="no images found"):
        index_dataset("folder", tmp_path / "c")


# ---------------------------------------------------------------------- write_index
def test_write_inside_root_is_relative_and_pairs_round_trip(tmp_path):
    root = write_cfp(tmp_path / "cfp")
    result = index_dataset("cfp", root)
    out = write_index(result, root / "index" / "cfp.csv")
    m = Manifest.read(out)  # validates that every (relative) path exists
    assert all(not Path(r.path).is_absolute() and r.path.startswith("../Data/") for r in m)
    pairs = read_pairs(sidecar_path(out, "pairs"))
    assert len(pairs) == len(result.protocol["pairs"])
    manifest_paths = {r.path for r in m}
    for pair in pairs:
        assert pair.path_a in manifest_paths and pair.path_b in manifest_paths
    assert {(p.protocol, p.same) for p in pairs} == {("FF", True), ("FF", False), ("FP", True), ("FP", False)}
    assert not sidecar_path(out, "dropped").exists()


def test_write_outside_root_is_absolute(tmp_path):
    root = write_lfw(tmp_path / "lfw_root")
    out = write_index(index_dataset("lfw", root), tmp_path / "elsewhere")
    assert out == (tmp_path / "elsewhere" / "manifest.csv").resolve()
    m = Manifest.read(out)
    assert all(Path(r.path).is_absolute() for r in m)
    pairs = read_pairs(sidecar_path(out, "pairs"))
    assert all(Path(p.path_a).is_file() and Path(p.path_b).is_file() for p in pairs)
    assert len(pairs) == len(LFW_PAIRS) - 1


def test_read_pairs_rejects_bad_rows(tmp_path):
    path = tmp_path / "x.pairs.csv"
    path.write_text("protocol,fold,path_a,path_b,same\nlfw,1,a.jpg,b.jpg,2\n")
    with pytest.raises(FormatError, match="row 2: same must be 0 or 1"):
        read_pairs(path)
    path.write_text("a,b\n")
    with pytest.raises(FormatError, match="header"):
        read_pairs(path)
