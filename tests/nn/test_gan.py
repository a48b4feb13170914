"""hfr.nn.gan: the adversarial loss kinds, the L1 pixel loss, and the PatchGAN discriminator in the
layouts of DVG-Face's D_N / D_V and TSGAN's D_d / D_f (each checked against the layer list the
method had before the move, so trained checkpoints still load)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dvg.models import Discriminator as DVGDiscriminator
from hfr.errors import ConfigError
from hfr.nn.gan import (
    ADV_KINDS,
    D_NORMS,
    FOUR_STRIDE_2,
    PIX2PIX_70,
    PatchGAN,
    PatchLayout,
    adversarial_d,
    adversarial_g,
    check_feature_pair,
    l1,
)
from hfr.nn.layers import init_weights
from tsgan.models import PatchDiscriminator as TSGANDiscriminator


def close(t: torch.Tensor, value: float) -> bool:
    return math.isclose(float(t), value, rel_tol=1e-5, abs_tol=1e-6)


# ---------------------------------------------------------------- adversarial losses


def test_hinge_by_hand():
    real = torch.tensor([2.0, 0.5])  # relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> mean 0.25
    fake = torch.tensor([-3.0, 1.0])  # relu(1 - 3) = 0, relu(1 + 1) = 2 -> mean 1
    assert close(adversarial_d(real, fake, "hinge"), 1.25)
    assert close(adversarial_g(fake, "hinge"), 1.0)  # -mean(-3, 1)


def test_lsgan_by_hand():
    real = torch.tensor([1.0, 0.0])  # (0^2 + 1^2) / 2 = 0.5
    fake = torch.tensor([0.0, 2.0])  # (0 + 4) / 2 = 2
    assert close(adversarial_d(real, fake, "lsgan"), 0.5 * 0.5 + 0.5 * 2.0)
    assert close(adversarial_g(fake, "lsgan"), 0.5 * (1.0 + 1.0) / 2)  # ((0-1)^2 + (2-1)^2) / 2, halved


def test_bce_by_hand():
    assert close(adversarial_g(torch.zeros(3), "bce"), math.log(2))
    assert close(adversarial_d(torch.zeros(3), torch.zeros(3), "bce"), 2 * math.log(2))
    # D(x) = 2, D(x^) = -1: -log sigmoid(2) - log(1 - sigmoid(-1)) = softplus(-2) + softplus(-1)
    assert close(
        adversarial_d(torch.tensor([2.0]), torch.tensor([-1.0]), "bce"),
        math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)),
    )


def test_ideal_scores_and_patch_maps():
    ones, minus = torch.ones(2, 1, 3, 3), -torch.ones(2, 1, 3, 3)
    assert close(adversarial_d(ones, minus, "hinge"), 0.0)
    assert close(adversarial_d(ones, torch.zeros(2, 1, 3, 3), "lsgan"), 0.0)
    assert close(adversarial_g(ones, "lsgan"), 0.0)
    # every element of a patch map counts once: a map of one repeated score equals that score alone
    for kind in ADV_KINDS:
        assert close(
            adversarial_d(torch.full((2, 1, 3, 3), 0.7), torch.full((2, 1, 3, 3), -0.2), kind),
            float(adversarial_d(torch.tensor([0.7]), torch.tensor([-0.2]), kind)),
        )


@pytest.mark.parametrize("kind", ADV_KINDS)
def test_d_is_rewarded_for_telling_apart_and_g_for_fooling(kind):
    good_d = adversarial_d(torch.full((2, 1, 3, 3), 3.0), torch.full((2, 1, 3, 3), -3.0), kind)
    bad_d = adversarial_d(torch.full((2, 1, 3, 3), -3.0), torch.full((2, 1, 3, 3), 3.0), kind)
    assert float(good_d) < float(bad_d)
    fooled = adversarial_g(torch.full((2, 1, 3, 3), 3.0), kind)
    caught = adversarial_g(torch.full((2, 1, 3, 3), -3.0), kind)
    assert float(fooled) < float(caught)


def _definition(kind: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D's loss, G's loss) of each kind written with other torch functions than hfr.nn.gan uses."""
    real, fake = real.double(), fake.double()
    if kind == "lsgan":
        return (
            0.5 * F.mse_loss(real, torch.ones_like(real)) + 0.5 * F.mse_loss(fake, torch.zeros_like(fake)),
            0.5 * F.mse_loss(fake, torch.ones_like(fake)),
        )
    if kind == "bce":
        return (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)),
            F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)),
        )
    return torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean(), -fake.mean()


@pytest.mark.parametrize("kind", ADV_KINDS)
@pytest.mark.parametrize("shape", [(7,), (3, 1, 5, 5)])
def test_kinds_match_their_definitions_on_random_scores(kind, shape):
    g = torch.Generator().manual_seed(11)
    for _ in range(5):
        real, fake = torch.randn(shape, generator=g) * 3, torch.randn(shape, generator=g) * 3
        want_d, want_g = _definition(kind, real, fake)
        torch.testing.assert_close(adversarial_d(real, fake, kind).double(), want_d, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(adversarial_g(fake, kind).double(), want_g, rtol=1e-6, atol=1e-6)


def test_kinds_give_the_values_of_the_per_method_copies_they_replace():
    # Recorded with tsgan.losses (and, for lsgan and hinge, dvg.losses: the same values) at commit
    # b2555a7, before the move, on these seeded scores.
    g = torch.Generator().manual_seed(2024)
    real = torch.randn(2, 1, 3, 3, generator=g) * 2
    fake = torch.randn(2, 1, 3, 3, generator=g) * 2
    before = {
        "lsgan": (4.409412384033203, 2.490250587463379),
        "bce": (2.028777837753296, 0.9485398530960083),
        "hinge": (2.683314085006714, -0.3530592620372772),
    }
    for kind, (d, gen) in before.items():
        assert float(adversarial_d(real, fake, kind)) == pytest.approx(d, rel=1e-6)
        assert float(adversarial_g(fake, kind)) == pytest.approx(gen, rel=1e-6)


@pytest.mark.parametrize("kind", ADV_KINDS)
def test_losses_compute_in_float32_and_give_gradients(kind):
    g = torch.Generator().manual_seed(3)
    score = torch.randn(3, 1, 2, 2, generator=g).requires_grad_(True)
    other = torch.randn(3, 1, 2, 2, generator=g)
    for loss in (adversarial_d(score, other - 0.5, kind), adversarial_g(score, kind)):
        (grad,) = torch.autograd.grad(loss, score)
        assert bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0
    assert adversarial_d(score.bfloat16(), other.bfloat16(), kind).dtype == torch.float32
    assert adversarial_g(score.bfloat16(), kind).dtype == torch.float32


def test_an_unknown_kind_is_one_config_error_naming_the_kinds():
    for call in (
        lambda: adversarial_d(torch.zeros(2), torch.zeros(2), "wgan"),
        lambda: adversarial_g(torch.zeros(2), "wgan"),
    ):
        with pytest.raises(ConfigError, match=r"loss\.adv_kind.*lsgan, bce, hinge, got 'wgan'"):
            call()


# ---------------------------------------------------------------- l1


def test_l1_by_hand_and_shape_check():
    x = torch.zeros(1, 1, 2, 2)
    x_hat = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    assert close(l1(x_hat, x), 0.625)
    a = torch.rand(2, 3, 8, 8)
    assert float(l1(a, a)) == 0.0 and close(l1(a, a + 0.25), 0.25)
    assert l1(a.bfloat16(), a.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="shapes differ"):
        l1(a, a[:, :1])  # no broadcasting


def test_check_feature_pair():
    check_feature_pair(torch.zeros(3, 8), torch.ones(3, 8), "f")
    for a, b in ((torch.zeros(3, 8), torch.zeros(2, 8)), (torch.zeros(3, 8, 1), torch.zeros(3, 8, 1))):
        with pytest.raises(ValueError, match=r"identity_loss: expected two \(B, D\) tensors"):
            check_feature_pair(a, b, "identity_loss")


# ---------------------------------------------------------------- PatchGAN

#: state-dict keys and shapes of DVG-Face's D (64 px, 3 channels, width 0.25, instance norm) and of
#: TSGAN's conditional D_d (cond 4 channels) before the move (commit b2555a7): the checkpoint contract.
DVG_KEYS = {
    "net.0.weight": (16, 3, 4, 4),
    "net.0.bias": (16,),
    "net.2.weight": (32, 16, 4, 4),
    "net.2.bias": (32,),
    "net.5.weight": (64, 32, 4, 4),
    "net.5.bias": (64,),
    "net.8.weight": (128, 64, 4, 4),
    "net.8.bias": (128,),
    "net.11.weight": (1, 128, 3, 3),
    "net.11.bias": (1,),
}
TSGAN_KEYS = {
    "net.0.weight": (16, 7, 4, 4),
    "net.0.bias": (16,),
    "net.2.weight": (32, 16, 4, 4),
    "net.2.bias": (32,),
    "net.3.weight": (32,),
    "net.3.bias": (32,),
    "net.5.weight": (64, 32, 4, 4),
    "net.5.bias": (64,),
    "net.6.weight": (64,),
    "net.6.bias": (64,),
    "net.8.weight": (128, 64, 4, 4),
    "net.8.bias": (128,),
    "net.9.weight": (128,),
    "net.9.bias": (128,),
    "net.11.weight": (1, 128, 4, 4),
    "net.11.bias": (1,),
}

#: The layers before the move, written out: (in, out, kernel, stride, normed) per convolution at width 0.25.
DVG_LAYERS = [
    (3, 16, 4, 2, False),
    (16, 32, 4, 2, True),
    (32, 64, 4, 2, True),
    (64, 128, 4, 2, True),
    (128, 1, 3, 1, False),
]
TSGAN_LAYERS = [
    (7, 16, 4, 2, False),
    (16, 32, 4, 2, True),
    (32, 64, 4, 2, True),
    (64, 128, 4, 1, True),
    (128, 1, 4, 1, False),
]


def _written_out(
    layers: list[tuple[int, int, int, int, bool]], norm: str, affine: bool, init: str | None
) -> nn.Sequential:
    """A discriminator from its written-out layer list, built in the order the per-method code built it."""
    modules: list[nn.Module] = []
    for cin, cout, k, s, normed in layers:
        conv = nn.Conv2d(cin, cout, k, s, 1)
        if init is not None:
            init_weights(conv, init)
        modules.append(nn.utils.parametrizations.spectral_norm(conv) if norm == "spectral" else conv)
        if normed and norm == "instance":
            modules.append(nn.InstanceNorm2d(cout, affine=affine))
        if cout > 1:
            modules.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*modules)


def _method_d(method: str, norm: str, init: str | None) -> nn.Module:
    if method == "dvg":
        return DVGDiscriminator(64, 3, 0.25, norm, init)
    return TSGANDiscriminator(64, 3, 0.25, 4, norm, init)


@pytest.mark.parametrize("method,keys", [("dvg", DVG_KEYS), ("tsgan", TSGAN_KEYS)])
def test_each_methods_d_keeps_its_state_dict_layout(method, keys):
    d = _method_d(method, "instance", None)
    assert isinstance(d, PatchGAN)
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == keys
    assert list(d.state_dict()) == list(keys)  # the order too


@pytest.mark.parametrize("method", ["dvg", "tsgan"])
@pytest.mark.parametrize("norm", D_NORMS)
@pytest.mark.parametrize("init", [None, "normal002"])
def test_each_methods_d_equals_its_written_out_layers_for_one_seed(method, norm, init):
    layers, affine = (DVG_LAYERS, False) if method == "dvg" else (TSGAN_LAYERS, True)
    torch.manual_seed(7)
    reference = _written_out(layers, norm, affine, init)
    torch.manual_seed(7)
    d = _method_d(method, norm, init)
    ref_state = {f"net.{k}": v for k, v in reference.state_dict().items()}
    state = d.state_dict()
    assert list(state) == list(ref_state)
    for k, v in ref_state.items():
        assert torch.equal(state[k], v), k
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    cond = torch.rand(2, 4, 64, 64, generator=torch.Generator().manual_seed(2))
    inputs = torch.cat([cond, x], dim=1) if method == "tsgan" else x
    for train in (True, False):  # spectral norm's power iteration runs in training mode only
        d.train(train)
        reference.train(train)
        with torch.no_grad():
            out = d(x, cond) if method == "tsgan" else d(x)
            assert torch.equal(out, reference(inputs))


@pytest.mark.parametrize(
    "layout,size,patches", [(FOUR_STRIDE_2, 64, 4), (FOUR_STRIDE_2, 128, 8), (PIX2PIX_70, 64, 6), (PIX2PIX_70, 128, 14)]
)
def test_score_map_sizes(layout, size, patches):
    d = PatchGAN(1, layout, width=0.125).eval()
    with torch.no_grad():
        assert d(torch.zeros(2, 1, size, size)).shape == (2, 1, patches, patches)


def test_conditional_and_unconditional_inputs_are_checked():
    x = torch.zeros(2, 3, 32, 32)
    cond = PatchGAN(3, PIX2PIX_70, width=0.125, cond_channels=1)
    assert cond.conditional and cond(x, torch.zeros(2, 1, 32, 32)).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match=r"cond of shape \(B, 1, S, S\), got None"):
        cond(x)
    with pytest.raises(ValueError, match="got \\(2, 3, 32, 32\\)"):
        cond(x, x)
    plain = PatchGAN(3, PIX2PIX_70, width=0.125)
    with pytest.raises(ValueError, match="PatchGAN is unconditional"):
        plain(x, x)


def test_norms_width_and_init():
    inst = PatchGAN(3, PIX2PIX_70, width=0.25, norm="instance")
    none = PatchGAN(3, PIX2PIX_70, width=0.25, norm="none")
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in inst.modules()) == 3
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in none.modules())
    assert [m.out_channels for m in none.modules() if isinstance(m, nn.Conv2d)] == [16, 32, 64, 128, 1]
    torch.manual_seed(0)
    sn = PatchGAN(3, FOUR_STRIDE_2, width=1.0, norm="spectral", init="normal002")
    raw = sn.net[2].get_parameter("parametrizations.weight.original")  # the init reaches the raw weight
    assert abs(float(raw.detach().std()) - 0.02) < 0.004
    with pytest.raises(ConfigError, match="discriminator norm must be one of instance, spectral, none"):
        PatchGAN(3, norm="batch")
    with pytest.raises(ConfigError, match="discriminator width must be > 0"):
        PatchGAN(3, width=0.0)
    with pytest.raises(ValueError, match="3 channel counts but 2 strides"):
        PatchLayout((64, 128, 256), (2, 2), 4, True)
