"""The strong shared recognizer's pieces: margin heads, LightCNN-9 with BatchNorm, several training sets."""

from __future__ import annotations

import math

import pytest
import torch
from pattern_data import write_patterns
from tiny_recipes import set_args

from hfr.cli import main
from hfr.data.manifest import Manifest, concat_manifests
from hfr.errors import HFRError
from hfr.models.lightcnn import build_lightcnn
from hfr.recognizer.export import export_recognizer, load_recognizer
from hfr.recognizer.losses import margin_logits


def test_cosface_subtracts_the_margin_from_the_true_class_only():
    cos = torch.tensor([[0.9, 0.1, -0.2], [0.3, 0.5, 0.0]])
    labels = torch.tensor([0, 2])
    out = margin_logits(cos, labels, "cosface", scale=10.0, margin=0.4)
    expected = 10.0 * torch.tensor([[0.5, 0.1, -0.2], [0.3, 0.5, -0.4]])
    torch.testing.assert_close(out, expected)


def test_arcface_adds_the_margin_to_the_angle_of_the_true_class():
    theta = torch.tensor([[0.3, 1.0], [2.0, 0.5]])
    labels = torch.tensor([0, 1])
    out = margin_logits(torch.cos(theta), labels, "arcface", scale=2.0, margin=0.5)
    expected = 2.0 * torch.tensor([[math.cos(0.8), math.cos(1.0)], [math.cos(2.0), math.cos(1.0)]])
    torch.testing.assert_close(out, expected)
    # past pi - m the true-class logit keeps falling with theta instead of rising again
    near_pi = torch.cos(torch.tensor([[3.0], [3.1]]))
    logits = margin_logits(near_pi, torch.tensor([0, 0]), "arcface", scale=1.0, margin=0.5)
    assert logits[1, 0] < logits[0, 0] < math.cos(3.0)


def test_margin_heads_raise_the_loss_of_a_correct_prediction():
    cos = torch.tensor([[0.8, 0.2]])
    y = torch.tensor([0])
    soft = torch.nn.functional.cross_entropy(30.0 * cos, y)
    for kind in ("cosface", "arcface"):
        assert torch.nn.functional.cross_entropy(margin_logits(cos, y, kind, 30.0, 0.3), y) > soft
    with pytest.raises(ValueError, match="unknown margin head"):
        margin_logits(cos, y, "sphereface", 30.0, 0.3)


def test_lightcnn9bn_normalises_every_layer_and_exports_like_any_lightcnn(tmp_path):
    torch.manual_seed(0)
    net = build_lightcnn("lightcnn9-bn", num_classes=4, input_size=32)
    norms = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert len(norms) == 11  # 9 convolutions, fc1 and the feature
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    net.train()
    net(torch.rand(8, 1, 32, 32))  # running statistics move away from their initial values
    net.eval()
    export_recognizer(net, tmp_path / "r.pt")
    rec = load_recognizer(tmp_path / "r.pt")
    x = torch.rand(3, 1, 32, 32)
    assert rec.arch == "lightcnn9bn"
    with torch.no_grad():
        torch.testing.assert_close(rec.model(x), net(x), rtol=1e-4, atol=1e-5)


def test_concat_manifests_makes_paths_absolute_and_refuses_a_shared_image(tmp_path):
    write_patterns(tmp_path / "a", 3, 2)
    write_patterns(tmp_path / "b", 2, 2, prefix="q")
    a, b = Manifest.read(tmp_path / "a"), Manifest.read(tmp_path / "b")
    joined = concat_manifests([a, b])
    assert len(joined) == len(a) + len(b)
    assert all(joined.image_path(i).is_file() for i in range(len(joined)))
    assert set(joined.subjects()) == set(a.subjects()) | set(b.subjects())
    with pytest.raises(HFRError, match="in both"):
        concat_manifests([a, a])


def test_concat_manifests_of_relative_folders(tmp_path, monkeypatch):
    write_patterns(tmp_path / "a", 2, 2)
    write_patterns(tmp_path / "b", 2, 2, prefix="q")
    monkeypatch.chdir(tmp_path)
    joined = concat_manifests([Manifest.read("a"), Manifest.read("b")])
    assert all(joined.image_path(i).is_absolute() and joined.image_path(i).is_file() for i in range(len(joined)))


@pytest.mark.parametrize("head", ["cosface", "arcface"])
def test_a_margin_head_trains_on_two_sets_and_its_loss_falls(head, tmp_path):
    write_patterns(tmp_path / "a", 6, 6)
    write_patterns(tmp_path / "b", 4, 6, prefix="q")
    runs = tmp_path / "runs"
    code = main(
        [
            "train-recognizer",
            "--config",
            "configs/recognizer/synth-judge.yaml",
            "--runs",
            str(runs),
            *set_args(
                f"data.train={tmp_path / 'a'}",
                f"data.extra_train=[{tmp_path / 'b'}]",
                "data.size=32",
                "data.eval=none",
                f"net.head={head}",
                "batch_size=20",
                "train.steps=30",
                "train.log_every=5",
                "train.num_workers=0",
                "train.progress=false",
                "train.eval_every=-1",
                "train.checkpoint_every=0",
                "train.sample_every=0",
                "train.best_metric=none",
            ),
        ]
    )
    assert code == 0
    from hfr.engine.runlog import read_metrics

    (run,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    losses = [m["loss_ce"] for m in read_metrics(run) if "loss_ce" in m]
    assert losses[-1] < 0.8 * losses[0]
    rec = load_recognizer(run / "recognizer.pt")
    assert rec.arch == "lightcnn9bn-w0.5" and rec.meta["subjects"] == 10


def test_an_unknown_head_is_a_config_error(capsys):
    code = main(
        ["train-recognizer", "--config", "configs/recognizer/synth-judge.yaml", "--set", "net.head=sphere", "--dry-run"]
    )
    assert code == 2
    assert "net.head" in capsys.readouterr().err


def test_cosine_schedule_warms_up_then_falls_to_zero():
    from hfr.config import load_config
    from hfr.recognizer.config import RecognizerConfig
    from hfr.recognizer.task import RecognizerTask

    task = RecognizerTask()
    task.cfg = load_config(
        RecognizerConfig,
        "configs/recognizer/synth-judge.yaml",
        ["train.steps=1000", "optim.warmup_steps=100", "optim.lr=0.1"],
    )
    task.warmup_steps = 0  # no classifier-only stage in pretraining
    lrs = [task._lr(s) for s in range(1000)]
    assert lrs[0] == pytest.approx(0.001) and lrs[99] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.099)))
    assert max(lrs) <= 0.1 and lrs[-1] < 1e-5
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:]))  # decreasing after the warm-up


def test_lightcnn9bn_width_variants_and_brightness_invariance(tmp_path):
    from hfr.models.lightcnn import count_parameters, is_architecture

    half = build_lightcnn("lightcnn9bn-w0.5", num_classes=0, input_size=32)
    full = build_lightcnn("lightcnn9bn", num_classes=0, input_size=32)
    assert half.arch == "lightcnn9bn-w0.5" and full.arch == "lightcnn9bn"
    assert count_parameters(half) < 0.4 * count_parameters(full)
    assert is_architecture("lightcnn9bn_w0.25") and not is_architecture("lightcnn9bn-wide")
    half.eval()
    x = torch.rand(2, 1, 32, 32) * 0.5
    with torch.no_grad():  # per-image standardisation: brightness carries no identity
        torch.testing.assert_close(half(x), half(x + 0.3), rtol=1e-4, atol=1e-4)
    export_recognizer(half, tmp_path / "half.pt")
    rec = load_recognizer(tmp_path / "half.pt")
    assert rec.arch == "lightcnn9bn-w0.5"
    with torch.no_grad():
        torch.testing.assert_close(rec.model(x), half(x), rtol=1e-4, atol=1e-5)
