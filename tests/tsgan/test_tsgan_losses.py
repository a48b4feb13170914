"""TSGAN objectives on tiny hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hfr.errors import ConfigError
from tsgan.losses import (
    TSGANLossWeights,
    dual_triplet_loss,
    identity_loss,
    pixel_loss,
    symmetry_loss,
    total_variation,
    triplet_loss,
    weighted_total,
)


def test_pixel_loss():
    # (l1 itself: tests/nn/test_gan.py)
    a = torch.rand(2, 3, 8, 8)
    parts = pixel_loss(a, a, a, a - 0.5)
    assert float(parts["d"]) == 0.0 and float(parts["f"]) == pytest.approx(0.5)
    assert float(parts["total"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_loss(a, a[:, :1], a, a)


def test_symmetry_loss():
    half = torch.rand(2, 3, 6, 4)
    symmetric = torch.cat([half, half.flip(-1)], dim=-1)
    assert float(symmetry_loss(symmetric)) == 0.0
    # one column pair differing by 1 in a 1x1x1x2 image: |1-0| and |0-1| -> mean 1
    assert float(symmetry_loss(torch.tensor([[[[1.0, 0.0]]]]))) == pytest.approx(1.0)
    # a left-right ramp 0..3: |0-3|, |1-2|, |2-1|, |3-0| -> mean 2
    ramp = torch.arange(4.0).view(1, 1, 1, 4)
    assert float(symmetry_loss(ramp)) == pytest.approx(2.0)


def test_total_variation():
    const = torch.full((2, 3, 5, 5), 0.3)
    assert float(total_variation(const)) == 0.0 and float(total_variation(const, "l1")) == 0.0
    # horizontal ramp with step 0.5: dx = 0.5 everywhere, dy = 0
    ramp = (torch.arange(4.0) * 0.5).view(1, 1, 1, 4).expand(1, 1, 3, 4)
    assert float(total_variation(ramp, "l1")) == pytest.approx(0.5)
    assert float(total_variation(ramp, "l2")) == pytest.approx(0.25)
    # vertical too: a checkerboard of 0/1 has every difference 1 in both directions
    checker = ((torch.arange(4).view(-1, 1) + torch.arange(4).view(1, -1)) % 2).float().view(1, 1, 4, 4)
    assert float(total_variation(checker, "l1")) == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="total-variation"):
        total_variation(const, "l3")


@pytest.mark.parametrize("kind", ["cosine", "l1", "l2"])
def test_identity_loss_is_minimal_for_identical_features(kind):
    torch.manual_seed(0)
    f = torch.randn(4, 16)
    same = float(identity_loss(f, f.clone(), kind))
    assert same == pytest.approx(0.0, abs=1e-6)
    for _ in range(5):
        assert float(identity_loss(f + 0.3 * torch.randn(4, 16), f, kind)) > same + 1e-4


def test_identity_loss_values():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    assert float(identity_loss(a, b, "cosine")) == pytest.approx(1.0)  # orthogonal
    assert float(identity_loss(a, -a, "cosine")) == pytest.approx(2.0)  # opposite
    assert float(identity_loss(a, 3 * a, "cosine")) == pytest.approx(0.0, abs=1e-6)  # norm-blind
    assert float(identity_loss(a, b, "l1")) == pytest.approx(1.5)
    assert float(identity_loss(a, b, "l2")) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="identity_loss"):
        identity_loss(a, torch.zeros(1, 3))


def test_triplet_hand_computed():
    # anchor at (1, 0); positive at 90 degrees (distance sqrt 2); negative opposite (distance 2)
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    per_anchor = [
        F.softplus(torch.tensor(math.sqrt(2) - 2.0)),  # anchor 0: p = 1, n = 2
        F.softplus(torch.tensor(math.sqrt(2) - math.sqrt(2))),  # anchor 1: p = 0, n = 2
    ]  # anchor 2 has no positive: skipped
    expected = float(sum(per_anchor) / 2)
    assert float(triplet_loss(f, labels)) == pytest.approx(expected, rel=1e-5)
    assert float(triplet_loss(f, labels, mining="all")) == pytest.approx(expected, rel=1e-5)


def test_triplet_loss_falls_as_the_anchor_moves_to_the_positive():
    pos, neg = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])
    ref = torch.stack([pos, neg])
    ref_labels = torch.tensor([0, 1])
    values = []
    for t in torch.linspace(0.1, 1.0, 6):  # anchor angle from near the negative to the positive
        angle = float(t) * math.pi / 2
        anchor = torch.tensor([[math.cos(angle), math.sin(angle)]])
        values.append(float(triplet_loss(anchor, torch.tensor([0]), ref, ref_labels)))
    assert all(b < a for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(math.log1p(math.exp(-math.sqrt(2))), rel=1e-4)


def test_batch_hard_picks_the_hardest_pair():
    # anchor 0 with two positives (near, far) and two negatives (far, near)
    f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    fn = F.normalize(f, dim=1)
    d = torch.cdist(fn, fn)
    hard = float(F.softplus(d[0, 2] - d[0, 4]))  # farthest positive 2, nearest negative 4
    single = triplet_loss(f[:1], labels[:1], f[1:], labels[1:])
    assert float(single) == pytest.approx(hard, rel=1e-5)
    easy = float(F.softplus(d[0, 1] - d[0, 3]))
    assert float(single) > easy


def test_triplet_edge_cases_and_gradients():
    f = torch.randn(3, 4, requires_grad=True)
    zero = triplet_loss(f, torch.tensor([0, 1, 2]))  # no positives at all
    assert float(zero.detach()) == 0.0
    zero.backward()
    assert f.grad is not None and float(f.grad.abs().max()) == 0.0
    g = torch.randn(4, 4, requires_grad=True)
    loss = triplet_loss(g, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert g.grad is not None and bool(torch.isfinite(g.grad).all()) and float(g.grad.abs().max()) > 0
    with pytest.raises(ValueError, match="reference"):
        triplet_loss(g, torch.tensor([0, 0, 1, 1]), reference=torch.randn(2, 4))
    with pytest.raises(ConfigError, match="mining"):
        triplet_loss(g, torch.tensor([0, 0, 1, 1]), mining="semi")


def test_dual_triplet_sums_both_stages():
    torch.manual_seed(1)
    fd, ff = torch.randn(4, 8), torch.randn(4, 8)
    rd, rf = torch.randn(4, 8), torch.randn(4, 8)
    labels = torch.tensor([0, 1, 2, 3])
    parts = dual_triplet_loss(fd, ff, labels, rd, rf, labels)
    assert float(parts["d"]) == pytest.approx(float(triplet_loss(fd, labels, rd, labels)))
    assert float(parts["f"]) == pytest.approx(float(triplet_loss(ff, labels, rf, labels)))
    assert float(parts["total"]) == pytest.approx(float(parts["d"] + parts["f"]))
    # one image per subject: with references every anchor has a positive (its own target)
    assert float(parts["d"]) > 0
    assert float(dual_triplet_loss(fd, ff, labels)["total"]) == 0.0  # no positives in-batch


def test_weights_defaults_and_validation():
    w = TSGANLossWeights()
    assert w.lambdas() == (20.0, 4.0, 40.0, 1.0, 0.3, 1e-3)
    w.validate()
    with pytest.raises(ConfigError, match="loss.tv"):
        TSGANLossWeights(tv=-1.0).validate()
    with pytest.raises(ConfigError, match=r"loss\.adv_kind must be one of lsgan, bce, hinge"):
        TSGANLossWeights(adv_kind="wgan").validate()
    with pytest.raises(ConfigError, match="loss.triplet_mining"):
        TSGANLossWeights(triplet_mining="semi").validate()


def test_weighted_total():
    w = TSGANLossWeights()
    one = torch.tensor(1.0)
    parts = {
        "pixel_d": one,
        "pixel_f": 2 * one,
        "symmetry": one,
        "tv": one,
        "identity_f": one,
        "triplet": one,
        "adversarial_d": one,
        "adversarial_f": one,
    }
    expected = 20 * 3 + 4 + 40 + 1 + 0.3 + 2e-3
    assert float(weighted_total(parts, w)) == pytest.approx(expected)
    off = TSGANLossWeights(tv=0.0)
    assert float(weighted_total({"tv": torch.tensor(5.0), "pixel": one}, off)) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="unknown loss term"):
        weighted_total({"pix": one}, w)
    with pytest.raises(ValueError, match="unknown loss term"):
        weighted_total({"pixel_x": one}, w)
    with pytest.raises(ValueError, match="at least one"):
        weighted_total({}, w)
