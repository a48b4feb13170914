"""DVG-Face losses on tiny hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from dvg.losses import (
    DVGLossWeights,
    angular_orthogonal,
    identity_preserving,
    identity_sampler_loss,
    kl_standard_normal,
    pair_l1,
    weighted_total,
)
from hfr.errors import ConfigError


def close(t: torch.Tensor, value: float) -> bool:
    return math.isclose(float(t), value, rel_tol=1e-5, abs_tol=1e-6)


def test_orthogonal_codes_give_zero_parallel_give_one():
    f = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert close(angular_orthogonal(torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, -1.0]]), f), 0.0)
    assert close(angular_orthogonal(torch.tensor([[2.0, 0.0, 0.0], [0.0, -5.0, 0.0]]), f), 1.0)  # sign ignored
    # 45 degrees and orthogonal -> mean(|cos|) = (sqrt(1/2) + 0) / 2, not squared
    assert close(angular_orthogonal(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), f), math.sqrt(0.5) / 2)


def test_orthogonal_matches_released_dot_product_on_unit_vectors():
    g = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    f = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
    assert close(angular_orthogonal(z, f), float((z * f).sum(1).abs().sum() / 4))


def test_kl_zero_at_prior_and_grows_with_mu():
    zeros = torch.zeros(2, 4)
    assert close(kl_standard_normal(zeros, zeros), 0.0)
    # one sample: mu = (1, 2), logvar = 0 -> 1/2 (1 + 4) = 2.5; second sample at the prior -> mean 1.25
    mu = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    assert close(kl_standard_normal(mu, torch.zeros(2, 2)), 1.25)
    values = [float(kl_standard_normal(torch.full((1, 3), m), torch.zeros(1, 3))) for m in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] < values[-1]
    # logvar = ln 2, mu = 0: 1/2 (2 - 1 - ln 2) per dimension
    assert close(kl_standard_normal(torch.zeros(1, 1), torch.full((1, 1), math.log(2.0))), 0.5 * (1 - math.log(2.0)))


def test_pair_l1_by_hand():
    # (l1 itself: tests/nn/test_gan.py)
    x = torch.zeros(1, 1, 2, 2)
    x_hat = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    assert close(pair_l1(x_hat, x_hat * 2, x, x), 0.625 + 1.25)
    with pytest.raises(ValueError, match="shapes differ"):
        pair_l1(x_hat, x_hat, torch.zeros(1, 1, 2, 3), x)


def test_identical_features_give_the_best_identity_score():
    f = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    best = identity_preserving(f, f * 3, f)  # cosine ignores scale
    assert close(best["rec"], 0.0) and close(best["pair"], 0.0) and close(best["total"], 0.0)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        other = identity_preserving(f + torch.randn(2, 3, generator=g), f + torch.randn(2, 3, generator=g), f)
        assert float(other["total"]) > float(best["total"])


def test_identity_parts_by_hand():
    f_id = torch.tensor([[1.0, 0.0]])
    f_nir = torch.tensor([[1.0, 0.0]])  # cos with f_id 1
    f_vis = torch.tensor([[0.0, 1.0]])  # cos with f_id 0, with f_nir 0
    parts = identity_preserving(f_nir, f_vis, f_id, pair_weight=0.05)
    assert close(parts["rec"], 1.0)
    assert close(parts["pair"], 1.0)
    assert close(parts["total"], 1.05)
    opposite = identity_preserving(-f_id, -f_id, f_id)  # agree with each other, not with the source
    assert close(opposite["pair"], 0.0) and close(opposite["rec"], 4.0)


def test_identity_sampler_loss_parts():
    f = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    f_hat = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # exact, then orthogonal: ||.||^2 = 0 and 2
    mu, logvar = torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.zeros(2, 2)  # KL 2 and 0 -> 1
    parts = identity_sampler_loss(f, f_hat, mu, logvar, kl_weight=0.5)
    assert close(parts["rec"], 1.0) and close(parts["kl"], 1.0) and close(parts["total"], 1.5)


def test_gradients_flow_through_every_term():
    g = torch.Generator().manual_seed(2)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(True)

    z, f, mu, logvar, img = leaf(3, 6), leaf(3, 6), leaf(3, 6), leaf(3, 6), leaf(3, 1, 4, 4)
    target = torch.rand(3, 1, 4, 4, generator=g)
    losses = {
        "ort": angular_orthogonal(z, f),
        "kl": kl_standard_normal(mu, logvar),
        "pix": pair_l1(img, img, target, target),
        "ip": identity_preserving(z, mu, f)["total"],
        "sampler": identity_sampler_loss(f, z, mu, logvar)["total"],
    }
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, (z, f, mu, logvar, img), allow_unused=True)
        used = [gr for gr in grads if gr is not None]
        assert used, name
        assert all(torch.isfinite(gr).all() for gr in used), name
        assert any(float(gr.abs().sum()) > 0 for gr in used), name


def test_weights_default_to_the_released_values_and_validate():
    w = DVGLossWeights()
    assert (w.ort, w.pix, w.pix_swap, w.pix_sampled, w.ip, w.ip_pair) == (50.0, 100.0, 10.0, 10.0, 0.1, 0.05)
    w.validate()
    with pytest.raises(ConfigError, match="loss.ort"):
        DVGLossWeights(ort=-1.0).validate()
    with pytest.raises(ConfigError, match=r"loss\.adv_kind must be one of lsgan, bce, hinge"):
        DVGLossWeights(adv_kind="wgan").validate()
    for kind in ("lsgan", "bce", "hinge"):  # the kinds of hfr.nn.gan, shared with TSGAN
        DVGLossWeights(adv_kind=kind).validate()


def test_weighted_total_reproduces_the_released_objective():
    w = DVGLossWeights()
    terms = {
        "ort": torch.tensor(0.2),
        "pix": torch.tensor(0.1),
        "pix_swap": torch.tensor(0.3),
        "pix_sampled": torch.tensor(0.4),
        "ip": torch.tensor(2.0),
    }
    assert close(weighted_total(terms, w), 50 * 0.2 + 100 * 0.1 + 10 * 0.3 + 10 * 0.4 + 0.1 * 2.0)
    with pytest.raises(ValueError, match="unknown loss terms"):
        weighted_total({"l2": torch.tensor(1.0)}, w)
