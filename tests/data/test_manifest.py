"""Manifest read/write/validation: every bad row is an error naming the file and row."""

from __future__ import annotations

import numpy as np
import pytest

from hfr.data.imageio import read_image, write_png
from hfr.data.manifest import Manifest, make_record
from hfr.errors import ImageError, ManifestError

HEADER = "path,subject,modality,yaw,split"


def _dataset(tmp_path, rows: list[str], header: str = HEADER, images: tuple[str, ...] = ("a.png", "b.png")):
    for name in images:
        write_png(tmp_path / name, np.full((4, 4), 128, np.uint8))
    (tmp_path / "manifest.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return tmp_path / "manifest.csv"


def test_read_valid_manifest_with_extra_columns(tmp_path):
    path = _dataset(tmp_path, ["a.png,s1,vis,-30,train,1.5,x", "b.png,s2,NIR,,test,,"], header=HEADER + ",pitch,fold_1")
    m = Manifest.read(tmp_path)  # a folder works too
    assert len(m) == 2
    assert m[0].yaw == -30.0 and m[1].yaw is None
    assert m[1].modality == "nir"
    assert m[0].get_float("pitch") == 1.5 and m[1].get_float("pitch") is None
    assert m[0].get("fold_1") == "x"
    assert m.subjects() == ["s1", "s2"]
    assert m.image_path(0) == tmp_path / "a.png"
    assert m.columns == ["path", "subject", "modality", "yaw", "split", "pitch", "fold_1"]
    assert m.select(split="test").subjects() == ["s2"]
    assert m.select(modality="vis").subjects() == ["s1"]
    assert path == m.source


@pytest.mark.parametrize(
    "rows,header,pattern",
    [
        (["a.png,s1,infrared,0,train"], HEADER, r"row 2: unknown modality 'infrared'"),
        (["a.png,s1,vis,left,train"], HEADER, r"row 2: column 'yaw' must be a number"),
        (
            ["a.png,s1,vis,0,train", "b.png,s2,vis,0,train", "a.png,s3,vis,0,test"],
            HEADER,
            r"row 4: duplicate path 'a.png' \(first at row 2\)",
        ),
        (
            ["a.png,s1,vis,0,train", "missing.png,s2,vis,0,train"],
            HEADER,
            r"row 3: path file .*missing.png does not exist",
        ),
        (["a.png,,vis,0,train"], HEADER, r"row 2: empty subject"),
        (["a.png,s1,vis,0"], HEADER, r"row 2: 4 fields but the header has 5"),
        (["a.png,s1,vis,0"], "path,subject,modality,yaw", r"header lacks column\(s\) split"),
        (["a.png,s1,vis,0,train,nan"], HEADER + ",pitch", r"row 2: column 'pitch' must be finite"),
        (["a.png,s1,vis,0,train,gone.png"], HEADER + ",mask_path", r"row 2: mask_path file .*gone.png"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, rows, header, pattern):
    _dataset(tmp_path, rows, header=header)
    with pytest.raises(ManifestError, match=pattern) as info:
        Manifest.read(tmp_path / "manifest.csv")
    if "row" in pattern:
        assert "manifest.csv" in str(info.value)


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.csv").write_text("")
    with pytest.raises(ManifestError, match="empty file"):
        Manifest.read(tmp_path)


def test_corrupt_image_is_caught_only_when_verifying(tmp_path):
    _dataset(tmp_path, ["a.png,s1,vis,0,train", "b.png,s2,vis,0,train"])
    (tmp_path / "b.png").write_bytes(b"not a png")
    assert len(Manifest.read(tmp_path)) == 2
    with pytest.raises(ManifestError, match=r"row 3: .*b.png: cannot decode"):
        Manifest.read(tmp_path, verify_images=True)
    with pytest.raises(ImageError, match="cannot decode"):
        read_image(tmp_path / "b.png")


def test_write_read_round_trip(tmp_path):
    for name in ("x.png", "y.png"):
        write_png(tmp_path / name, np.zeros((2, 2), np.uint8))
    recs = [
        make_record("x.png", "s1", "vis", 15.0, "train", occlusion="scarf", pitch=2.5),
        make_record("y.png", "s,2", "nir", None, "test", occlusion=None, pitch=None),
    ]
    written = Manifest(recs, tmp_path).write(tmp_path)
    again = Manifest.read(written)
    assert [r.subject for r in again] == ["s1", "s,2"]
    assert again[0].yaw == 15.0 and again[1].yaw is None
    assert again[0].get("occlusion") == "scarf" and again[1].get("occlusion") == ""
    assert again[0].get_float("pitch") == 2.5
    assert again.to_csv() == Manifest(recs, tmp_path).to_csv()
    assert not list(tmp_path.glob(".manifest.csv.*.tmp"))


def test_yaw_written_exactly():
    m = Manifest([make_record("a.png", "s", "vis", 12.345678912, "train")], ".")
    assert "12.345678912" in m.to_csv()


def test_rows_remember_their_line_despite_blank_lines(tmp_path):
    _dataset(tmp_path, ["a.png,s1,vis,0,train", "", "b.png,s2,vis,0,train"])
    m = Manifest.read(tmp_path)
    assert [r.line for r in m] == [2, 4]
    assert m.where(1).endswith("manifest.csv row 4")
    assert Manifest([make_record("x.png", "s", "vis")], tmp_path).where(0) == "<manifest> record 0"
