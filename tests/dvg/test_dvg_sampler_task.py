"""The `dvg-sampler` task: F_s trains on frozen recognizer features, exports, samples unit-norm identities."""

from __future__ import annotations

import pytest
import torch
from pattern_data import write_patterns

from dvg.sampler_task import load_identity_sampler, mean_pairwise_cosine
from hfr.artifacts import save_generator_file
from hfr.cli import main
from hfr.engine.runlog import read_metrics
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer

RECIPE = "configs/dvg/synth-identity-sampler.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampler")
    write_patterns(root / "faces", 12, 4)
    torch.manual_seed(0)
    net = build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1)
    export_recognizer(net, root / "recognizer.pt")
    return root


def _args(setup, runs, *extra):
    args = ["train-generator", "--config", RECIPE, "--runs", str(runs)]
    for s in (
        f"data.train={setup / 'faces'}",
        f"data.recognizer={setup / 'recognizer.pt'}",
        "batch_size=16",
        "train.progress=false",
        "train.num_workers=0",
        "net.width=0.25",
        "eval_samples=64",
        *extra,
    ):
        args += ["--set", s]
    return args


def test_trained_sampler_reconstructs_and_samples_unit_norm_identities(setup, tmp_path):
    runs = tmp_path / "runs"
    assert main(_args(setup, runs, "train.steps=80", "train.log_every=10", "train.eval_every=80")) == 0
    (run,) = [p for p in runs.glob("*/*") if not p.is_symlink()]
    evals = [m for m in read_metrics(run) if "eval/recon_cos" in m]
    assert evals and evals[-1]["eval/recon_cos"] > 0.5
    sampler, config = load_identity_sampler(run)
    assert config["feature_dim"] == 256
    x = sampler.sample(10, generator=torch.Generator().manual_seed(1))
    assert x.shape == (10, 256)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(10))


def test_missing_recognizer_and_wrong_files_are_errors(setup, tmp_path, capsys):
    args = _args(setup, tmp_path / "r", "train.steps=1", "data.recognizer=")
    assert main(args) == 2
    assert "data.recognizer" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    save_generator_file(other, "drgan", {}, {})
    from hfr.artifacts import GeneratorFileError

    with pytest.raises(GeneratorFileError, match="DR-GAN"):
        load_identity_sampler(other)


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(torch.tensor([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])) == pytest.approx(1.0)
