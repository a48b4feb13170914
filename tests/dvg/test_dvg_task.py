"""The `dvg` task through `hfr train-generator`: its terms, files, bad input (the contract: test_task_contract)."""

from __future__ import annotations

import logging

import pytest
import torch

from hfr.artifacts import load_generator_file
from hfr.cli import main
from hfr.data.manifest import Manifest
from hfr.data.synth import SynthConfig, write_preset
from hfr.engine.runlog import read_metrics
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer

RECIPE = "configs/dvg/synth-nirvis.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvg")
    write_preset(SynthConfig(preset="nirvis", subjects=6, size=32, seed=0, workers=1), root / "nirvis")
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), root / "rec.pt")
    return root


def _args(setup, runs, data=None, *extra):
    args = ["train-generator", "--config", RECIPE, "--runs", str(runs)]
    for s in (
        f"data.train={data or setup / 'nirvis'}",
        f"data.recognizer={setup / 'rec.pt'}",
        "data.identity_sampler=",
        "data.size=32",
        "net.width=0.125",
        "batch_size=4",
        "train.num_workers=0",
        "train.progress=false",
        "train.sample_every=0",
        *extra,
    ):
        args += ["--set", s]
    return args


def _run(runs):
    (run,) = [p for p in runs.glob("*/*") if not p.is_symlink()]
    return run


def test_variational_codes_log_kl_and_no_d_without_adversarial_term(setup, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert (
        main(
            _args(
                setup,
                runs,
                None,
                "train.steps=2",
                "train.log_every=1",
                "loss.adv=0",
                "net.deterministic=false",
                "train.sample_every=2",
            )
        )
        == 0
    )  # the paper's variational codes
    run = _run(runs)
    logs = [m for m in read_metrics(run) if "loss_pix" in m]
    assert len(logs) == 2 and "loss_d" not in logs[-1] and "loss_kl" in logs[-1]
    payload = load_generator_file(run / "generator.pt", "dvg")
    assert payload["config"]["size"] == 32 and payload["config"]["deterministic"] is False
    assert list((run / "samples").glob("*.png")) and "generator:" in capsys.readouterr().out


def test_one_modality_subjects_are_left_out_and_none_paired_is_an_error(setup, tmp_path, caplog, capsys):
    rows = Manifest.read(setup / "nirvis").select(split="train")
    solo = rows.subjects()[0]
    partial = rows.filter(lambda r: r.subject != solo or r.modality == "vis")
    partial.write(setup / "nirvis" / "partial.csv")
    with caplog.at_level(logging.WARNING):
        assert main(_args(setup, tmp_path / "p", setup / "nirvis" / "partial.csv", "train.steps=1")) == 0
    assert any(f"1 of {len(rows.subjects())} subjects have only one modality" in r.getMessage() for r in caplog.records)
    rows.select(modality="vis").write(setup / "nirvis" / "vis_only.csv")
    assert main(_args(setup, tmp_path / "v", setup / "nirvis" / "vis_only.csv", "train.steps=1")) == 2
    assert "no subject has both" in capsys.readouterr().err


def test_recognizer_of_another_feature_size_is_an_error(setup, tmp_path, capsys):
    assert main(_args(setup, tmp_path / "r", None, "train.steps=1", "net.id_dim=128")) == 2
    err = capsys.readouterr().err
    assert "256-d" in err and "net.id_dim is 128" in err


def test_sampled_identities_add_their_terms(setup, tmp_path):
    from dvg.models import IdentitySampler
    from hfr.artifacts import save_generator_file

    sampler = IdentitySampler(256, 256, width=0.25)
    path = tmp_path / "identity_sampler.pt"
    save_generator_file(
        path, "dvg-sampler", {"feature_dim": 256, "latent_dim": 256, "width": 0.25}, {"sampler": sampler.state_dict()}
    )
    runs = tmp_path / "runs"
    assert (
        main(
            [*_args(setup, runs, None, "train.steps=2", "train.log_every=1"), "--set", f"data.identity_sampler={path}"]
        )
        == 0
    )
    run = _run(runs)
    assert all("loss_pix_sampled" in m for m in read_metrics(run) if "loss_pix" in m)
    assert "identity_sampler" in load_generator_file(run / "generator.pt", "dvg")["modules"]


def test_unpaired_vis_images_add_their_terms(setup, tmp_path, capsys):
    from pattern_data import write_patterns

    write_patterns(tmp_path / "vis", subjects=5, per_subject=3)  # VIS-only subjects
    extra = (
        "train.checkpoint_every=2",
        "train.log_every=1",
        f"data.unpaired={tmp_path / 'vis'}",
        "data.unpaired_batch=3",
    )
    assert main(_args(setup, tmp_path / "a", None, "train.steps=2", *extra)) == 0
    run = _run(tmp_path / "a")
    logs = [m for m in read_metrics(run) if "loss_pix" in m]
    assert len(logs) == 2
    for m in logs:
        assert {"loss_pix_unpaired", "loss_ort_unpaired", "loss_ip_unpaired", "loss_adv_unpaired"} <= set(m)
        assert 0 < m["loss_pix_unpaired"] < 1 and 0 <= m["loss_ip_unpaired"] <= 4.2
    a = torch.load(run / "checkpoints" / "step-0000002.pt", weights_only=True)["task"]
    # without the unpaired set the same seed trains differently (the terms reach the weights)
    assert main(_args(setup, tmp_path / "c", None, "train.steps=2", "train.checkpoint_every=2")) == 0
    c = torch.load(_run(tmp_path / "c") / "checkpoints" / "step-0000002.pt", weights_only=True)["task"]
    assert any(not torch.equal(v, c["generator"][k]) for k, v in a["generator"].items())
    # a set whose subjects all have NIR images gives no unpaired VIS image: an error naming it
    assert main(_args(setup, tmp_path / "d", None, "train.steps=1", f"data.unpaired={setup / 'nirvis'}")) == 2
    err = capsys.readouterr().err
    assert "data.unpaired" in err and "no VIS image of a subject without NIR" in err
