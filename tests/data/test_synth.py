"""Tests of SynthFace: options, identities, rendering, presets, determinism, occluders."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hfr.data.imageio import read_image
from hfr.data.manifest import Manifest
from hfr.data.synth import (
    PRESETS,
    SynthConfig,
    iter_preset,
    preset_identity,
    subject_name,
    train_subjects,
    validate_config,
    write_preset,
)
from hfr.data.synth_face import LANDMARK_NAMES, SHAPE_NAMES, sample_identity
from hfr.data.synth_render import OCCLUSIONS, ImageSpec, render_batch
from hfr.errors import ConfigError

LM = {n: i for i, n in enumerate(LANDMARK_NAMES)}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "field,value",
    [
        ("size", 16),
        ("size", 31),
        ("size", 513),
        ("subjects", 0),
        ("subjects", -3),
        ("preset", "lfw"),
        ("workers", 0),
        ("seed", -1),
        ("images_per_subject", 0),
        ("occlusions", ["cape"]),
        ("device", "gpu!"),
    ],
)
def test_bad_options_raise_option_error_naming_the_option(field: str, value: Any) -> None:
    cfg = dataclasses.replace(SynthConfig(), **{field: value})
    with pytest.raises(ConfigError, match=field):
        validate_config(cfg)


@pytest.mark.parametrize("value", [0, -1, 6, 2.5, True, "3"])
def test_paired_subjects_must_be_a_count_of_training_subjects(value: Any) -> None:
    cfg = SynthConfig(preset="nirvis", subjects=10, paired_subjects=value)  # 5 training subjects
    assert train_subjects(cfg) == 5
    with pytest.raises(ConfigError, match="option 'paired_subjects' must be an integer from 1 to 5"):
        validate_config(cfg)
    validate_config(dataclasses.replace(cfg, paired_subjects=5))
    validate_config(SynthConfig(preset="nirvis", paired_subjects=180))  # the default 360 subjects: 180 train


@pytest.mark.parametrize("preset", ["webface", "multipie", "occluded"])
def test_paired_subjects_is_a_nirvis_option(preset: str) -> None:
    with pytest.raises(ConfigError, match="option 'paired_subjects' applies to the nirvis preset only"):
        validate_config(SynthConfig(preset=preset, subjects=10, paired_subjects=2))


def test_write_preset_validates_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="size"):
        write_preset(SynthConfig(preset="webface", subjects=2, size=600), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("size", [32, 96, 128])
def test_sizes_render(size: int) -> None:
    ids = [sample_identity(0, "test", 0)]
    out = render_batch(ids, [ImageSpec(0), ImageSpec(0, modality="nir")], size)
    assert out.images.shape == (2, size, size, 3)
    assert out.image(0).shape == (size, size, 3) and out.image(1).shape == (size, size)
    assert out.images[0].std() > 10  # a face on a background, not a flat image


# ----------------------------------------------------------------------------- identities
def test_identity_depends_only_on_seed_namespace_and_index() -> None:
    a, b = sample_identity(3, "multipie", 7), sample_identity(3, "multipie", 7)
    assert len(SHAPE_NAMES) >= 24
    for f in dataclasses.fields(a):
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))
    assert not np.array_equal(a.shape, sample_identity(3, "multipie", 8).shape)
    assert not np.array_equal(a.shape, sample_identity(4, "multipie", 7).shape)
    assert not np.array_equal(a.shape, sample_identity(3, "webface", 7).shape)
    # the number of subjects rendered does not change who subject 7 is
    small, big = SynthConfig(preset="nirvis", subjects=10), SynthConfig(preset="nirvis", subjects=5000)
    np.testing.assert_array_equal(preset_identity(small, 7).appearance, preset_identity(big, 7).appearance)


def test_presets_have_disjoint_subject_names() -> None:
    names = [{subject_name(p, i) for i in range(50)} for p in PRESETS]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not names[i] & names[j]


def test_same_subject_renders_the_same_alone_or_with_its_chunk() -> None:
    cfg = SynthConfig(preset="nirvis", subjects=30, size=32)  # chunks of 23 subjects
    rows_a, out_a = next(iter_preset(cfg, [25]))
    found = 0
    for rows_b, out_b in iter_preset(cfg, list(range(22, 27))):
        paths = [r.path for r in rows_b]
        for k, r in enumerate(rows_a):
            if r.path in paths:
                np.testing.assert_array_equal(out_a.images[k], out_b.images[paths.index(r.path)])
                found += 1
    assert found == len(rows_a) >= 5


# ----------------------------------------------------------------------------- rendering
def test_yaw_changes_the_image_and_hides_the_far_side() -> None:
    ids = [sample_identity(1, "test", 0)]
    specs = [ImageSpec(0, yaw=y, noise=0.0, seed=5) for y in (0.0, 45.0, 90.0, -90.0)]
    out = render_batch(ids, specs, 64)
    diff = np.abs(out.images[0].astype(int) - out.images[1].astype(int)).mean()
    assert diff > 5
    vis = out.visible
    assert vis[0, LM["eye_pos"]] and vis[0, LM["eye_neg"]] and vis[0, LM["nose_tip"]]
    # at +90 the head shows its negative-longitude side: the other eye is behind the head
    assert vis[2, LM["eye_neg"]] and not vis[2, LM["eye_pos"]] and not vis[2, LM["ear_pos"]]
    assert vis[3, LM["eye_pos"]] and not vis[3, LM["eye_neg"]]
    # the hidden eye's projected pixel shows another part of the surface (left/right swapped)
    x_pos, x_neg = out.landmarks[2, LM["eye_pos"], 0], out.landmarks[2, LM["eye_neg"], 0]
    assert abs(x_pos - x_neg) < 12  # nearly behind one another in profile


def test_nir_differs_from_gray_vis_and_is_one_channel() -> None:
    ids = [sample_identity(0, "test", i) for i in range(2)]
    out = render_batch(ids, [ImageSpec(i, modality=m, noise=0) for i in range(2) for m in ("vis", "nir")], 48)
    for k in (1, 3):
        assert out.image(k).ndim == 2
        assert np.array_equal(out.images[k][..., 0], out.images[k][..., 2])
    gray = out.images[0].astype(float).mean(-1)
    assert np.abs(gray - out.image(1)).mean() > 5


def test_render_is_batch_independent() -> None:
    ids = [sample_identity(0, "test", i) for i in range(3)]
    specs = [
        ImageSpec(i % 3, yaw=10.0 * i, expression=i % 4, blur=0.5 * (i % 2), seed=i, occlusion=OCCLUSIONS[i % 6])
        for i in range(6)
    ]
    full = render_batch(ids, specs, 40)
    alone = render_batch(ids, specs[4:5], 40)
    np.testing.assert_array_equal(full.images[4], alone.images[0])
    np.testing.assert_array_equal(full.masks[4], alone.masks[0])


@pytest.mark.parametrize(
    "kind,landmark",
    [
        ("sunglasses", "eye_pos"),
        ("sunglasses", "eye_neg"),
        ("nose", "nose_tip"),
        ("scarf", "mouth_center"),
        ("scarf", "chin"),
    ],
)
def test_occluders_follow_the_landmarks(kind: str, landmark: str) -> None:
    ids = [sample_identity(2, "test", 0)]
    rng = np.random.default_rng(0)
    specs = [ImageSpec(0, yaw=yaw, occlusion=kind, occ=tuple(rng.random(16)), seed=1) for yaw in (-30.0, 0.0, 30.0)]
    out = render_batch(ids, specs, 64)
    for k in range(3):
        x, y = out.landmarks[k, LM[landmark]].astype(int)
        assert out.masks[k, y, x] == 255


@pytest.mark.parametrize("kind", OCCLUSIONS)
def test_every_occluder_kind_masks_exactly_where_images_differ(kind: str) -> None:
    ids = [sample_identity(0, "test", 3)]
    rng = np.random.default_rng(1)
    out = render_batch(ids, [ImageSpec(0, yaw=30.0, occlusion=kind, occ=tuple(rng.random(16)), noise=0.02, seed=9)], 64)
    m = out.masks[0] == 255
    assert set(np.unique(out.masks[0])) <= {0, 255}
    assert 20 < m.sum() < 64 * 64 * 0.8
    same = (out.images[0] == out.clean[0]).all(-1)
    assert same[~m].all()  # identical (noise included) outside the mask
    assert (~same[m]).mean() > 0.5  # the occluder changes the pixels it covers


# ----------------------------------------------------------------------------- presets
def test_presets_write_valid_manifests(tmp_path: Path) -> None:
    for preset, n in (("webface", 2), ("multipie", 5), ("nirvis", 4), ("occluded", 2)):
        cfg = SynthConfig(preset=preset, subjects=n, size=32, images_per_subject=3)
        calls = []
        m = write_preset(cfg, tmp_path / preset, progress=lambda d, t: calls.append((d, t)))  # noqa: B023 (used now)
        read = Manifest.read(tmp_path / preset, verify_images=True)
        assert len(read) == len(m) and calls[-1] == (len(m), len(m))
        assert (tmp_path / preset / "preset.yaml").is_file()
        subjects = read.subjects()
        assert len(subjects) == n and all(
            s.startswith({"webface": "wf", "multipie": "mp", "nirvis": "nv", "occluded": "oc"}[preset])
            for s in subjects
        )
        if preset == "webface":
            assert len(read) == 6 and {r.split for r in read} == {"train"}
        if preset in ("multipie", "occluded"):
            per = {s: [r for r in read if r.subject == s] for s in subjects}
            assert all(len(v) == 36 for v in per.values())
            assert all(sum(r.get("gallery") == "1" for r in v) == 1 for v in per.values())
            g = next(r for r in read if r.get("gallery") == "1")
            assert g.yaw == 0 and g.get("illumination") == "neutral" and g.get("expression") == "neutral"
            assert {r.yaw for r in read} == set(range(-60, 61, 15))
        if preset == "multipie":
            assert [r.split for r in read][::36] == ["train"] * 3 + ["test"] * 2
        if preset == "nirvis":
            for s in subjects:
                rows = [r for r in read if r.subject == s]
                n_vis = sum(r.modality == "vis" for r in rows)
                n_nir = sum(r.modality == "nir" for r in rows)
                assert 1 <= n_vis <= 5 and 4 <= n_nir <= 12
                assert all(r.yaw is not None and abs(r.yaw) <= 30 for r in rows)
            for r in read:
                mode = Image.open(read.resolve(r.path)).mode
                assert mode == ("L" if r.modality == "nir" else "RGB")
            assert [r.split for r in read if r.get("gallery") == "1"] == ["train", "train", "test", "test"]


def test_occluded_preset_masks_clean_and_frontal(tmp_path: Path) -> None:
    m = write_preset(SynthConfig(preset="occluded", subjects=1, size=32), tmp_path)
    occluded = [r for r in m if r.get("occlusion") not in ("", "none")]
    assert len(occluded) == 32 and all(r.yaw != 0 for r in occluded)
    assert {r.get("occlusion") for r in occluded} <= set(OCCLUSIONS)
    for r in occluded:
        img = read_image(m.resolve(r.path), "RGB")
        clean = read_image(m.resolve(r.get("clean_path")), "RGB")
        mask = read_image(m.resolve(r.get("mask_path")))
        assert mask.shape == img.shape[:2]
        outside = mask == 0
        assert (img[outside] == clean[outside]).all() and (mask == 255).any()
    frontal = {r.get("frontal_path") for r in m}
    assert len(frontal) == 1
    f = next(r for r in m if r.get("gallery") == "1")
    np.testing.assert_array_equal(read_image(m.resolve(frontal.pop()), "RGB"), read_image(m.resolve(f.path), "RGB"))


def test_output_is_deterministic_across_runs_and_workers(tmp_path: Path) -> None:
    base = SynthConfig(preset="webface", subjects=3, size=32, images_per_subject=128, seed=11)  # 2 chunks
    write_preset(base, tmp_path / "a")
    write_preset(base, tmp_path / "a2")
    write_preset(dataclasses.replace(base, workers=2), tmp_path / "b")
    a, a2, b = _files(tmp_path / "a"), _files(tmp_path / "a2"), _files(tmp_path / "b")
    assert a == a2
    a_yaml = a.pop("preset.yaml")
    assert b.pop("preset.yaml") != a_yaml  # it records the workers option
    assert len(a) == 3 * 128 + 1 and a == b
    other = write_preset(dataclasses.replace(base, seed=12, subjects=1, images_per_subject=1), tmp_path / "d")
    assert (tmp_path / "d" / other[0].path).read_bytes() != a[other[0].path]


def _rows(files: dict[str, bytes]) -> dict[str, str]:
    """The manifest.csv lines of a rendered folder's `_files`, by path (the first column)."""
    lines = files["manifest.csv"].decode().splitlines()
    return {line.split(",", 1)[0]: line for line in lines}


def test_paired_subjects_is_a_subset_of_the_full_preset(tmp_path: Path) -> None:
    full_cfg = SynthConfig(preset="nirvis", subjects=8, size=32, seed=5)  # train nv0001-nv0004, test nv0005-nv0008
    full = write_preset(full_cfg, tmp_path / "full")
    scarce = write_preset(dataclasses.replace(full_cfg, paired_subjects=1), tmp_path / "p1")
    write_preset(dataclasses.replace(full_cfg, paired_subjects=4), tmp_path / "p4")
    full_files, scarce_files = _files(tmp_path / "full"), _files(tmp_path / "p1")
    full_rows, scarce_rows = _rows(full_files), _rows(scarce_files)
    # every kept manifest line (header included) and image is the full preset's, byte for byte, in its order
    assert list(scarce_rows) == [p for p in full_rows if p in scarce_rows]
    assert all(line == full_rows[p] for p, line in scarce_rows.items())
    assert all(scarce_files[r.path] == full_files[r.path] for r in scarce)
    # removed: exactly the NIR rows of the training subjects beyond the budget
    unpaired = {"nv0002", "nv0003", "nv0004"}
    removed = {p for p in full_rows if p not in scarce_rows}
    assert removed == {r.path for r in full if r.modality == "nir" and r.subject in unpaired}
    assert removed and set(scarce_files) == set(full_files) - removed
    # the test split is untouched; every subject keeps all its VIS images (the gallery image too)
    assert [r.path for r in scarce.select(split="test")] == [r.path for r in full.select(split="test")]
    assert [r.path for r in scarce.select(modality="vis")] == [r.path for r in full.select(modality="vis")]
    assert scarce.subjects() == full.subjects()
    assert {r.subject for r in scarce.select(split="train", modality="nir")} == {"nv0001"}
    # a budget of every training subject is the full preset; only preset.yaml records the option
    every_files = _files(tmp_path / "p4")
    assert every_files.pop("preset.yaml") != full_files.pop("preset.yaml")
    assert every_files == full_files
    assert "paired_subjects: 1\n" in scarce_files["preset.yaml"].decode()


def test_paired_subjects_in_memory_matches_what_is_written(tmp_path: Path) -> None:
    cfg = SynthConfig(preset="nirvis", subjects=4, size=32, paired_subjects=1)
    written = write_preset(cfg, tmp_path / "w")
    rows = [r for recs, _ in iter_preset(cfg) for r in recs]
    assert [r.path for r in rows] == [r.path for r in written]
    assert {r.subject for r in rows if r.modality == "nir"} == {"nv0001", "nv0003", "nv0004"}
