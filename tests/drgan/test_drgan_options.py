"""DR-GAN's fix options change what they should: the identity loss through F, and the diagnosis figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_recipes import DRGAN_RECIPE, DRGAN_TINY, set_args

from drgan.diagnose import diagnose
from drgan.losses import identity_loss, pose_loss
from hfr.cli import main
from hfr.engine.runlog import read_metrics
from hfr.models.lightcnn import build_lightcnn
from hfr.pose.export import export_yaw_estimator, load_yaw_estimator
from hfr.pose.model import YawNet
from hfr.recognizer.export import export_recognizer, load_recognizer
from hfr.safeload import load_weights_only


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LightCNN-9 at 32 px, RGB input, as recognizer.pt."""
    path = tmp_path_factory.mktemp("rec") / "rec.pt"
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=3), path)
    return path


def test_identity_loss_is_one_minus_cosine_and_reaches_only_the_synthesis(recognizer):
    rec = load_recognizer(recognizer)
    rec.model.requires_grad_(False)
    torch.manual_seed(1)
    ref = torch.rand(4, 3, 32, 32) * 2 - 1
    fake = ref.clone().requires_grad_(True)
    assert float(identity_loss(rec, fake, ref).detach()) == pytest.approx(0.0, abs=1e-5)
    other = (-ref.flip(-1)).requires_grad_(True)
    loss = identity_loss(rec, other, ref)
    with torch.no_grad():
        a = rec.model(rec.prepare(other * 0.5 + 0.5))
        b = rec.model(rec.prepare(ref * 0.5 + 0.5))
    expected = (1 - torch.nn.functional.cosine_similarity(a, b)).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-4) and float(loss.detach()) > 1e-6
    loss.backward()
    assert other.grad is not None and other.grad.abs().sum() > 0
    assert all(p.grad is None for p in rec.model.parameters())


@pytest.fixture(scope="module")
def pose_estimator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random YawNet at 16 px, gray input, with a non-zero head, as yaw_estimator.pt."""
    path = tmp_path_factory.mktemp("yaw") / "yaw_estimator.pt"
    torch.manual_seed(2)
    net = YawNet(channels=1, widths=(4, 8))
    torch.nn.init.normal_(net.head.weight, std=1.0)
    export_yaw_estimator(net, path, size=16, mirror=True)
    return path


def test_pose_loss_is_smooth_l1_of_the_mirror_averaged_yaw_and_reaches_only_the_synthesis(pose_estimator):
    est = load_yaw_estimator(pose_estimator)
    est.model.requires_grad_(False)
    est.model.train()  # the loss must run P in eval mode and give its mode back
    torch.manual_seed(3)
    fake = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_(True)
    target = torch.tensor([-60.0, 0.0, 15.0, 45.0])
    loss = pose_loss(est, fake, target)
    yaw = est.estimate(fake.detach() * 0.5 + 0.5)  # degrees, mirror-averaged, eval mode
    assert yaw.abs().max() > 0.1  # the random head answers something
    expected = torch.nn.functional.smooth_l1_loss(yaw / 90, target / 90, beta=0.05)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-4)
    assert est.model.training
    # at its own estimate the loss is zero; a mirrored face's estimate is exactly the negation
    assert float(pose_loss(est, fake.detach(), yaw)) == pytest.approx(0.0, abs=1e-6)
    assert float(pose_loss(est, fake.detach().flip(-1), -yaw)) == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in est.model.parameters())


def test_pose_weight_without_an_estimator_is_a_config_error(multipie, tmp_path, capsys):
    args = set_args(f"data.train={multipie}", "train.steps=1", "loss.pose_weight=1")
    assert main(["train-generator", "--config", DRGAN_RECIPE, "--runs", str(tmp_path), *DRGAN_TINY, *args]) == 2
    assert "data.pose_estimator" in capsys.readouterr().err


def _one_step(data: Path, runs: Path, *sets: str) -> Path:
    args = set_args(f"data.train={data}", "train.steps=1", "train.log_every=1", "augment.flip_p=0", *sets)
    assert main(["train-generator", "--config", DRGAN_RECIPE, "--runs", str(runs), *DRGAN_TINY, *args]) == 0
    (run,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    return run


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    (ck,) = (run / "checkpoints").glob("*.pt")
    return load_weights_only(ck)["task"]


@pytest.mark.parametrize(
    ("weight", "key", "instrument", "logged"),
    [
        ("loss.identity_weight", "data.recognizer", "recognizer", "loss_f_id"),
        ("loss.pose_weight", "data.pose_estimator", "pose_estimator", "loss_p_pose"),
    ],
)
def test_a_frozen_network_loss_changes_g_and_leaves_d(multipie, tmp_path, request, weight, key, instrument, logged):
    base = _one_step(multipie, tmp_path / "a", "train.checkpoint_every=1")
    frozen = request.getfixturevalue(instrument)
    with_term = _one_step(multipie, tmp_path / "b", "train.checkpoint_every=1", f"{weight}=1", f"{key}={frozen}")
    (log,) = [m for m in read_metrics(with_term) if "loss_d" in m]
    assert 0 < log[logged] <= 2
    wa, wb = _weights(base), _weights(with_term)
    assert all(torch.equal(wa["discriminator"][k], wb["discriminator"][k]) for k in wa["discriminator"])
    assert any(not torch.equal(wa["generator"][k], wb["generator"][k]) for k in wa["generator"])


def test_identity_weight_without_a_recognizer_is_a_config_error(multipie, tmp_path, capsys):
    args = set_args(f"data.train={multipie}", "train.steps=1", "loss.identity_weight=1", "data.recognizer=")
    assert main(["train-generator", "--config", DRGAN_RECIPE, "--runs", str(tmp_path), *DRGAN_TINY, *args]) == 2
    assert "data.recognizer" in capsys.readouterr().err


def test_diagnosis_sees_a_generator_that_ignores_its_pose_code(multipie, tmp_path):
    run = _one_step(multipie, tmp_path / "r", "train.checkpoint_every=1")
    (ck,) = (run / "checkpoints").glob("*.pt")
    figures = diagnose(ck, multipie, batch_size=8, batches=1)
    assert 0 <= figures["d_real_pose_acc_train"] <= 1 and 0 <= figures["d_fake_called_fake"] <= 1
    assert figures["g_pose_change"] > 0 and figures["grad_c_adv_pose"] > 0 and figures["real_pose_change"] > 0
    # zero the pose-code columns of G_dec's projection: the output no longer depends on c
    payload = torch.load(ck, weights_only=True)
    w = payload["task"]["generator"]["decoder.project.weight"]
    n_f = w.shape[1] - 9 - 50
    w[:, n_f : n_f + 9] = 0
    blind = tmp_path / "blind.pt"
    torch.save(payload, blind)
    figures = diagnose(blind, multipie, batch_size=8, batches=1, batch_statistics=True)
    assert figures["g_pose_change"] == 0 and figures["grad_c_adv_pose"] == 0 and figures["grad_c_adv_id"] == 0
    assert figures["g_identity_change"] > 0


def test_plain_cnn_baseline_exports_a_drgan_kind_recognizer_with_g_enc_shape(multipie, tmp_path):
    runs = tmp_path / "runs"
    args = set_args(f"data.train={multipie}", "train.steps=2", "train.log_every=1")
    cmd = ["train-generator", "--config", "configs/drgan/synth-multipie-cnn.yaml", "--runs", str(runs)]
    assert main([*cmd, *args, *DRGAN_TINY]) == 0
    (run,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    assert [m["loss_ce"] > 0 for m in read_metrics(run) if "loss_ce" in m] == [True, True]
    assert not (run / "generator.pt").exists()
    rec = load_recognizer(run / "recognizer.pt")
    assert rec.kind == "drgan" and rec.arch == "casia-w0.25" and rec.input_size == 32
    # the trunk has G_enc's exact layout: a DR-GAN generator's encoder weights load into it
    from drgan.models import Generator

    g = Generator(32, 9, 50, 3, 0.25)
    trunk = rec.model.encoder
    assert isinstance(trunk, torch.nn.Module)
    g.encoder.load_state_dict(trunk.state_dict())
    assert rec.embed(torch.rand(2, 3, 32, 32)).shape == (2, g.feature_dim)


def test_d_skip_leaves_d_untouched_while_its_accuracy_is_above_the_threshold(multipie, tmp_path, monkeypatch):
    import drgan.task

    perfect = {"acc_id": 1.0, "acc_pose": 1.0, "acc_fake": 1.0}
    monkeypatch.setattr(drgan.task, "d_accuracy", lambda *a: dict(perfect))
    skipped = _one_step(multipie, tmp_path / "s", "train.checkpoint_every=1", "loss.d_skip_accuracy=0.9")
    monkeypatch.setattr(drgan.task, "d_accuracy", lambda *a: {k: 0.5 for k in perfect})
    stepped = _one_step(multipie, tmp_path / "t", "train.checkpoint_every=1", "loss.d_skip_accuracy=0.9")
    (log,) = [m for m in read_metrics(skipped) if "loss_d" in m]
    assert log["d_skipped"] == 1.0
    assert _weights(skipped)["opt_d"]["state"] == {}  # Adam never stepped D
    assert _weights(stepped)["opt_d"]["state"] != {} and _weights(stepped)["opt_g"]["state"] != {}


def test_model_switching_copies_d_trunk_into_g_enc(multipie, tmp_path):
    run = _one_step(multipie, tmp_path / "r", "train.checkpoint_every=1", "loss.switch_every=1")
    w = _weights(run)
    d_trunk = {k[len("trunk.") :]: v for k, v in w["discriminator"].items() if k.startswith("trunk.")}
    g_trunk = {k[len("encoder.trunk.") :]: v for k, v in w["generator"].items() if k.startswith("encoder.trunk.")}
    assert d_trunk and all(torch.equal(g_trunk[k], v) for k, v in d_trunk.items())
    plain = _weights(_one_step(multipie, tmp_path / "p", "train.checkpoint_every=1"))
    assert not torch.equal(
        plain["generator"]["encoder.trunk.body.0.0.weight"], plain["discriminator"]["trunk.body.0.0.weight"]
    )


def test_adversarial_weight_zero_leaves_g_untouched_without_other_terms(multipie, tmp_path):
    # with L1 and identity off, a zero adversarial weight gives G no gradient at all: Adam never steps G
    run = _one_step(
        multipie, tmp_path / "z", "train.checkpoint_every=1", "loss.adversarial_weight=0", "loss.l1_weight=0"
    )
    w = _weights(run)
    assert all(s["exp_avg"].abs().sum() == 0 for s in w["opt_g"]["state"].values())
    assert _weights(_one_step(multipie, tmp_path / "o", "train.checkpoint_every=1"))["opt_g"]["state"]
