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


def test_a_file_that_is_no_dvg_checkpoint_is_an_error_naming_it(tmp_path):
    from dvg.export import export_checkpoint
    from hfr.artifacts import GeneratorFileError

    bad = tmp_path / "other.pt"
    torch.save({"task": {"g_d": {}}, "config": {}}, bad)
    with pytest.raises(GeneratorFileError, match="other.pt: not a DVG-Face training checkpoint"):
        export_checkpoint(bad, tmp_path / "g.pt")


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
    _check_attribute_codes(run / "generator.pt", setup / "nirvis")
    # a checkpoint exports the same file: the last step's weights, F_s and the same codes (same seed, same draw)
    from dvg.export import export_checkpoint
    from dvg.generate import load_dvg

    exported = export_checkpoint(run / "checkpoints" / "step-0000002.pt", tmp_path / "from-checkpoint.pt")
    a, b = load_dvg(run / "generator.pt"), load_dvg(exported)
    assert a.fingerprint == b.fingerprint and a.codes is not None and b.codes is not None
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.codes, b.codes))
    assert load_generator_file(exported, "dvg")["meta"]["step"] == 2


def _check_attribute_codes(path, data):
    """generator.pt's attribute codes are E_N / E_V codes of training images, NIR and VIS of one subject per row."""
    from dvg.generate import load_dvg
    from hfr.data.datasets import ManifestDataset

    loaded = load_dvg(path)
    assert loaded.codes is not None
    z_n, z_v = loaded.codes
    assert z_n.shape == z_v.shape == (512, 256)
    rows = Manifest.read(data).filter(lambda r: r.split == "train")
    dataset = ManifestDataset(rows, size=32, channels=3)
    images = torch.stack([dataset[i]["image"] for i in range(len(rows))])
    with torch.no_grad():
        enc = {m: loaded.generator.encode(images, m, sample=False).z for m in ("nir", "vis")}
    subjects = []
    for domain, z in (("nir", z_n), ("vis", z_v)):
        dist = torch.cdist(z, enc[domain])
        best = dist.argmin(1)
        assert float(dist.min(1).values.max()) < 1e-2  # every row is the code of one training image (cdist rounding)
        assert all(rows[int(i)].modality == domain for i in best)
        subjects.append([rows[int(i)].subject for i in best])
    assert subjects[0] == subjects[1]  # row k: one subject's NIR and VIS
    assert len(set(subjects[0])) > 1


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
