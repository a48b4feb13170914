"""A DR-GAN generator.pt wherever a recognizer goes: load_recognizer, embed (--fuse), gallery, evaluate."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from tiny_recipes import DRGAN_RECIPE, DRGAN_TINY, set_args

from hfr.artifacts import save_generator_file
from hfr.cli import main
from hfr.data.manifest import Manifest, Record
from hfr.embed import embed_manifest, embed_subjects
from hfr.gallery import Gallery
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import RecognizerError, export_recognizer, load_recognizer

if TYPE_CHECKING:
    from drgan.models import Generator

TINY = [*DRGAN_TINY, *set_args("train.steps=4")]


@pytest.fixture(scope="module")
def run(multipie, tmp_path_factory) -> Path:
    """A 4-step DR-GAN run folder holding generator.pt and recognizer.pt (written by task.export)."""
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            ["train-generator", "--config", DRGAN_RECIPE, "--runs", str(runs), "--set", f"data.train={multipie}", *TINY]
        )
        == 0
    )
    (folder,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    return folder


def _ids(path: Path) -> list[dict[str, str]]:
    with open(path.with_suffix(".csv"), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_generator_file_loads_as_the_exported_recognizer(run, tmp_path):
    from_rec = load_recognizer(run / "recognizer.pt")
    from_gen = load_recognizer(run / "generator.pt")
    assert from_gen.kind == "drgan" and from_gen.arch == from_rec.arch == "casia-w0.25"
    assert from_gen.fingerprint == from_rec.fingerprint
    assert (from_gen.input_size, from_gen.channels) == (from_rec.input_size, from_rec.channels) == (32, 3)
    assert from_gen.meta["source"] == "generator.pt" and "fingerprint" not in from_gen.meta
    x = torch.rand(5, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(from_gen.embed(x), from_rec.embed(x))
    # a run folder without recognizer.pt gives the generator's encoder; with both, recognizer.pt
    only_gen = tmp_path / "only-generator"
    only_gen.mkdir()
    shutil.copy(run / "generator.pt", only_gen / "generator.pt")
    assert load_recognizer(only_gen).meta.get("source") == "generator.pt"
    assert load_recognizer(only_gen).fingerprint == from_rec.fingerprint
    assert load_recognizer(run).meta.get("source") is None


def test_other_generator_files_are_refused_naming_the_method(tmp_path):
    path = tmp_path / "generator.pt"
    save_generator_file(path, "dvg", {}, {})
    with pytest.raises(RecognizerError, match="DVG-Face"):
        load_recognizer(path)
    save_generator_file(path, "drgan", {"size": 32}, {"generator": {}})
    with pytest.raises(RecognizerError, match="corrupt"):
        load_recognizer(path)


def test_embed_via_generator_equals_via_recognizer(run, multipie, tmp_path):
    outs = {}
    for name in ("generator", "recognizer"):
        out = tmp_path / f"{name}.npy"
        assert main(["embed", "--recognizer", str(run / f"{name}.pt"), "--data", str(multipie), "--out", str(out)]) == 0
        outs[name] = out
    a, b = np.load(outs["generator"]), np.load(outs["recognizer"])
    assert a.shape == (len(Manifest.read(multipie)), 80)
    np.testing.assert_array_equal(a, b)
    fingerprints = {r["fingerprint"] for name in outs for r in _ids(outs[name])}
    assert fingerprints == {load_recognizer(run / "recognizer.pt").fingerprint}


def test_embed_fuse_one_unit_row_per_subject(run, multipie, tmp_path):
    manifest = Manifest.read(multipie)
    out = tmp_path / "fused.npy"
    assert (
        main(["embed", "--recognizer", str(run / "generator.pt"), "--data", str(multipie), "--out", str(out), "--fuse"])
        == 0
    )
    feats, ids = np.load(out), _ids(out)
    subjects = manifest.subjects()
    assert feats.shape == (len(subjects), 80)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert [r["subject"] for r in ids] == subjects and [int(r["row"]) for r in ids] == list(range(len(subjects)))
    assert sum(int(r["images"]) for r in ids) == len(manifest)
    assert list(ids[0]) == ["row", "subject", "images", "fingerprint"]
    # a single-image generator has omega = 1: the fused feature is the normalised sum of raw f(x)
    rec = load_recognizer(run / "generator.pt")
    rows = manifest.select(subjects=[subjects[1]])
    from hfr.data.datasets import ManifestDataset

    x = torch.stack([ManifestDataset(rows, size=32, channels=3)[i]["image"] for i in range(len(rows))])
    with torch.inference_mode():
        raw = rec.model(rec.prepare(x)).double()
    expected = torch.nn.functional.normalize(raw.sum(0), dim=0).numpy()
    np.testing.assert_allclose(feats[1], expected, atol=1e-5)


def test_fuse_weights_raw_features_by_omega(multipie):
    from drgan.models import Generator
    from drgan.recognizer import EncoderFeatures, as_recognizer

    torch.manual_seed(0)
    g = Generator(32, 9, width=0.25, multi_image=True)
    calibrate(g)
    rec = as_recognizer(g, 0.25)
    manifest = Manifest.read(multipie).select(split="test")
    subjects, fused = embed_subjects(rec, manifest, batch_size=7)
    from hfr.data.datasets import ManifestDataset

    rows = manifest.select(subjects=[subjects[0]])
    x = torch.stack([ManifestDataset(rows, size=32, channels=3)[i]["image"] for i in range(len(rows))])
    model = rec.model
    assert isinstance(model, EncoderFeatures)
    with torch.inference_mode():
        f, omega = model.features_and_confidence(rec.prepare(x))
    assert omega.std() > 1e-4  # the confidences differ, so weighting matters
    weighted = torch.nn.functional.normalize((omega[:, None] * f).sum(0), dim=0)
    plain = torch.nn.functional.normalize(f.sum(0), dim=0)
    np.testing.assert_allclose(fused[0], weighted.numpy(), atol=1e-5)
    assert not np.allclose(fused[0], plain.numpy(), atol=1e-4)


def calibrate(g: Generator) -> None:
    """Give a fresh generator's BatchNorm running statistics of random inputs (so eval outputs vary)."""
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    g.train()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(2):
            g(
                torch.rand(16, g.channels, g.size, g.size, generator=gen) * 2 - 1,
                torch.randint(0, g.num_poses, (16,), generator=gen),
            )
    g.eval()


def test_fuse_with_one_image_per_subject_is_the_single_feature(run, multipie, tmp_path):
    manifest = Manifest.read(multipie)
    first: dict[str, Record] = {}
    for r in manifest:
        first.setdefault(r.subject, r)
    single = manifest.with_records(first.values())
    rec = load_recognizer(run / "generator.pt")
    subjects, fused = embed_subjects(rec, single, batch_size=5)
    assert subjects == list(first)
    np.testing.assert_allclose(fused, embed_manifest(rec, single), atol=1e-5)


def test_fuse_for_a_lightcnn_is_the_normalised_mean(multipie, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "lightcnn.pt"
    export_recognizer(build_lightcnn("lightcnn9", input_size=32, in_channels=1), path)
    rec = load_recognizer(path)
    manifest = Manifest.read(multipie).select(split="test")
    subjects, fused = embed_subjects(rec, manifest, batch_size=7)
    single = embed_manifest(rec, manifest)
    owner = np.array([r.subject for r in manifest])
    for i, s in enumerate(subjects):
        mean = single[owner == s].mean(0)
        np.testing.assert_allclose(fused[i], mean / np.linalg.norm(mean), atol=1e-5)


def test_gallery_and_cross_pose_evaluation_take_a_generator(run, multipie, tmp_path):
    gallery = tmp_path / "gallery"
    assert (
        main(
            [
                "gallery",
                "build",
                "--recognizer",
                str(run / "generator.pt"),
                "--data",
                str(multipie),
                "--out",
                str(gallery),
            ]
        )
        == 0
    )
    assert Gallery.load(gallery).fingerprint == load_recognizer(run / "recognizer.pt").fingerprint
    results = {}
    for name in ("generator", "recognizer"):
        out = tmp_path / f"eval-{name}"
        assert (
            main(
                [
                    "evaluate",
                    "--protocol",
                    "cross-pose",
                    "--recognizer",
                    str(run / f"{name}.pt"),
                    "--data",
                    str(multipie),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        results[name] = json.loads((out / "result.json").read_text())
    assert results["generator"]["rank1_by_abs_yaw"] == results["recognizer"]["rank1_by_abs_yaw"]
    assert len(results["generator"]["rank1_by_abs_yaw"]) >= 2
    assert 0.0 <= results["generator"]["mean"] <= 1.0


def test_gallery_build_fuse_holds_one_entry_per_subject(run, multipie, tmp_path):
    manifest = Manifest.read(multipie).select(split="test")
    gallery = tmp_path / "fused"
    assert (
        main(
            [
                "gallery",
                "build",
                "--recognizer",
                str(run),
                "--data",
                str(multipie),
                "--split",
                "test",
                "--fuse",
                "--out",
                str(gallery),
            ]
        )
        == 0
    )
    g = Gallery.load(gallery)
    assert len(g) == len(manifest.subjects())
    subjects, feats = embed_subjects(load_recognizer(run), manifest)
    assert g.subjects() == sorted(subjects) and [g.entry(int(i)).subject for i in g.ids()] == subjects
    stored = np.stack([g.cpu_index.reconstruct(int(i)) for i in g.ids()])
    np.testing.assert_allclose(stored, feats, atol=1e-6)  # the fused templates, in subject order
    first: dict[str, str] = {}
    for r in manifest:
        first.setdefault(r.subject, str(manifest.resolve(r.path)))
    assert [g.entry(int(i)).path for i in g.ids()] == [first[s] for s in subjects]
