"""The `tsgan` task through `hfr train-generator`: its terms, generator.pt, bad data.

Learning, exact resume, export and DDP: tests/engine/test_task_contract.py.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from hfr.artifacts import GeneratorFileError
from hfr.cli import main
from hfr.data.manifest import Manifest, relabel
from hfr.engine.runlog import read_metrics
from hfr.errors import ConfigError, DataError
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer
from tsgan.config import TSGANConfig
from tsgan.data import TSGANDataset, training_rows
from tsgan.export import export_checkpoint, load_tsgan

RECIPE = "configs/tsgan/synth-occluded.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from hfr.data.synth import SynthConfig, write_preset

    root = tmp_path_factory.mktemp("tsgan")
    write_preset(SynthConfig(preset="occluded", subjects=4, size=32, seed=0, workers=1), root / "occ")
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), root / "rec.pt")
    return root


def _args(setup, runs, *extra, data=None):
    args = ["train-generator", "--config", RECIPE, "--runs", str(runs)]
    for s in (
        f"data.train={data or setup / 'occ'}",
        "data.split=",
        f"data.recognizer={setup / 'rec.pt'}",
        "data.size=32",
        "net.width=0.125",
        "batch_size=4",
        "train.num_workers=0",
        "train.progress=false",
        "train.sample_every=0",
        "train.amp=off",
        *extra,
    ):
        args += ["--set", s]
    return args


def _run(runs):
    (run,) = [p for p in runs.glob("*/*") if not p.is_symlink()]
    return run


def test_every_term_is_logged_and_the_generator_restores_at_full_range(setup, tmp_path):
    # learning, exact resume, export/reload and DDP are checked for every task in tests/engine/test_task_contract.py
    runs = tmp_path / "runs"
    args = _args(setup, runs, "train.steps=2", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=1")
    assert main(args) == 0
    run = _run(runs)
    last = [m for m in read_metrics(run) if "loss_pixel_d" in m][-1]
    expected = {
        "loss_pixel_f",
        "loss_symmetry",
        "loss_tv",
        "loss_identity_d",
        "loss_identity_f",
        "loss_triplet_d",
        "loss_triplet_f",
        "loss_adversarial_d",
        "loss_adversarial_f",
        "loss_g",
        "loss_d",
    }
    assert expected <= set(last)
    assert (run / "samples").is_dir() and list((run / "samples").glob("*.png"))
    loaded = load_tsgan(run / "generator.pt")
    assert (loaded.size, loaded.channels, loaded.batch_size, loaded.f_mask) == (32, 3, 4, True)
    assert len(loaded.fingerprint) == 16 and not loaded.g_d.training and not loaded.g_f.training
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = loaded.g_f(loaded.g_d(x, torch.zeros(4, 1, 32, 32)))
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    # a checkpoint exported as a generator file: the last one is the run's generator, an earlier one is not
    assert loaded.g_d.composite  # the synth recipe composites the visible pixels back
    assert export_checkpoint(run / "checkpoints" / "step-0000002.pt", tmp_path / "at2.pt") == loaded.fingerprint
    export_checkpoint(run / "checkpoints" / "step-0000001.pt", tmp_path / "at1.pt")
    at1 = load_tsgan(tmp_path / "at1.pt")
    assert at1.fingerprint != loaded.fingerprint and at1.meta["step"] == 1 and at1.batch_size == 4
    with pytest.raises(GeneratorFileError, match="not a TSGAN training checkpoint"):
        export_checkpoint(run / "generator.pt", tmp_path / "bad.pt")


def _without_mask(setup, name):
    manifest = Manifest.read(setup / "occ")
    occluded = training_rows(str(setup / "occ"), "")
    victim = occluded[0].path
    edited = manifest.with_records(relabel(r, mask_path="") if r.path == victim else r for r in manifest)
    path = setup / "occ" / name
    edited.write(path)
    return path, victim


def test_missing_mask_is_an_error_naming_the_row_and_synthesize_builds_it(setup, tmp_path, caplog, capsys):
    path, victim = _without_mask(setup, "no_mask.csv")
    rows = training_rows(str(path), "")
    with pytest.raises(DataError, match=r"no_mask\.csv row \d+: empty mask_path") as info:
        TSGANDataset(rows, 32)
    assert victim in str(info.value) and "synthesize_masks" in str(info.value)
    ds = TSGANDataset(rows, 32, synthesize_masks=True)
    assert ds.synthesized == 1
    i = next(j for j, r in enumerate(rows) if r.path == victim)
    built = ds[i]["mask"]
    stored = TSGANDataset(training_rows(str(setup / "occ"), ""), 32)[i]["mask"]
    assert 0 < float(built.sum()) and float((built.round() == stored.round()).float().mean()) > 0.9
    # through the command: error exit naming the row, then a run with the option and without F
    assert main(_args(setup, tmp_path / "r", "train.steps=1", data=path)) == 2
    assert "empty mask_path" in capsys.readouterr().err
    with caplog.at_level(logging.INFO):
        assert (
            main(
                _args(
                    setup,
                    tmp_path / "s",
                    "train.steps=1",
                    "train.log_every=1",
                    "data.synthesize_masks=true",
                    "data.recognizer=",
                    data=path,
                )
            )
            == 0
        )
    assert any("identity and dual triplet terms are off" in r.getMessage() for r in caplog.records)
    (log,) = [m for m in read_metrics(_run(tmp_path / "s")) if "loss_g" in m]
    assert "loss_identity_d" not in log and "loss_triplet_f" not in log and "loss_pixel_d" in log


def test_mask_of_another_size_and_missing_targets_are_errors(setup):
    rows = training_rows(str(setup / "occ"), "")
    rec = rows[0]
    big = setup / "occ" / "big_mask.png"
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(big)
    manifest = Manifest.read(setup / "occ")
    edited = manifest.with_records(relabel(r, mask_path="big_mask.png") if r.path == rec.path else r for r in manifest)
    edited.write(setup / "occ" / "big.csv")
    with pytest.raises(
        DataError,
        match=r"big\.csv row \d+: mask_path 'big_mask\.png' is 48x48 but its image .* "
        r"is 32x32",
    ):
        TSGANDataset(training_rows(str(setup / "occ" / "big.csv"), ""), 32)
    for col in ("frontal_path", "clean_path"):
        edited = manifest.with_records(relabel(r, **{col: ""}) if r.path == rec.path else r for r in manifest)
        edited.write(setup / "occ" / f"no_{col}.csv")
        with pytest.raises(DataError, match=rf"no_{col}\.csv row \d+: empty {col}"):
            TSGANDataset(training_rows(str(setup / "occ" / f"no_{col}.csv"), ""), 32)
    # frontal rows are targets only; a set without occluded rows is an error saying what to render
    frontal_only = manifest.filter(lambda r: r.get("occlusion") in ("", "none"))
    frontal_only.write(setup / "occ" / "frontal.csv")
    with pytest.raises(DataError, match="has an occlusion"):
        training_rows(str(setup / "occ" / "frontal.csv"), "")


def test_dataset_items_and_config_validation(setup):
    rows = training_rows(str(setup / "occ"), "train")
    assert all(r.get("occlusion") not in ("", "none") for r in rows)
    item = TSGANDataset(rows, 32)[0]
    assert item["image"].shape == item["clean"].shape == item["frontal"].shape == (3, 32, 32)
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert float(item["image"].min()) < 0 <= float(item["mask"].min())
    # the occluder changes the image only where the mask is on
    diff = (item["image"] - item["clean"]).abs().amax(0)
    assert float(diff[item["mask"][0] == 0].mean()) < float(diff[item["mask"][0] == 1].mean())
    small = TSGANDataset(rows, 32, channels=1)[0]
    assert small["image"].shape == (1, 32, 32)
    cfg = TSGANConfig()
    cfg.validate()
    cfg.batch_size = 5
    with pytest.raises(ConfigError, match="multiple of data.per_subject"):
        cfg.validate()
    cfg = TSGANConfig()
    cfg.net.prior = "soft"
    with pytest.raises(ConfigError, match="net.prior"):
        cfg.validate()
