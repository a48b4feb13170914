"""DR-GAN losses on tiny hand-computed cases."""

from __future__ import annotations

import math

import torch

from drgan.losses import d_accuracy, d_loss, g_loss, target_l1


def test_d_loss_by_hand():
    # N_d = 2 identities (+ the synthesized class 2), N_p = 2 poses; uniform logits give ln(K)
    real_id = torch.zeros(1, 3)
    real_pose = torch.zeros(1, 2)
    fake_id = torch.tensor([[0.0, 0.0, math.log(2.0)]])  # p(fake) = 2 / 4
    parts = d_loss(real_id, real_pose, torch.tensor([1]), torch.tensor([0]), fake_id)
    assert math.isclose(float(parts["id"]), math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["pose"]), math.log(2), rel_tol=1e-6)
    assert math.isclose(float(parts["fake"]), math.log(2), rel_tol=1e-6)
    assert math.isclose(float(parts["total"]), math.log(3) + 2 * math.log(2), rel_tol=1e-6)


def test_d_loss_rewards_calling_syntheses_fake():
    y = torch.tensor([0])
    confident = torch.tensor([[-5.0, -5.0, 5.0]])
    fooled = torch.tensor([[5.0, -5.0, -5.0]])
    real = torch.tensor([[5.0, -5.0, -5.0]]), torch.tensor([[5.0, -5.0]])
    assert d_loss(*real, y, y, confident)["fake"] < d_loss(*real, y, y, fooled)["fake"]


def test_g_loss_targets_identity_and_target_pose():
    fake_id = torch.tensor([[0.0, 2.0, 0.0]])
    fake_pose = torch.tensor([[0.0, 0.0, 3.0]])
    right = g_loss(fake_id, fake_pose, torch.tensor([1]), torch.tensor([2]))
    wrong = g_loss(fake_id, fake_pose, torch.tensor([0]), torch.tensor([0]))
    expected_id = -math.log(math.exp(2) / (2 + math.exp(2)))
    assert math.isclose(float(right["id"]), expected_id, rel_tol=1e-6)
    assert right["total"] < wrong["total"]


def test_label_smoothing_raises_the_floor():
    logits = torch.tensor([[20.0, -20.0, -20.0]])
    plain = d_loss(logits, logits[:, :2], torch.tensor([0]), torch.tensor([0]), logits.flip(1))
    smooth = d_loss(logits, logits[:, :2], torch.tensor([0]), torch.tensor([0]), logits.flip(1), label_smoothing=0.1)
    assert float(plain["id"]) < 1e-6 < float(smooth["id"])


def test_target_l1_only_where_valid():
    fake = torch.zeros(3, 1, 2, 2)
    target = torch.stack([torch.full((1, 2, 2), v) for v in (0.5, 9.0, -1.0)])
    assert math.isclose(float(target_l1(fake, target, torch.tensor([True, False, True]))), 0.75)
    assert float(target_l1(fake, target, torch.tensor([False, False, False]))) == 0.0


def test_d_accuracy():
    real_id = torch.tensor([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    real_pose = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    fake_id = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    acc = d_accuracy(real_id, real_pose, torch.tensor([0, 1]), torch.tensor([1, 1]), fake_id)
    assert acc == {"acc_id": 0.5, "acc_pose": 1.0, "acc_fake": 0.5}
