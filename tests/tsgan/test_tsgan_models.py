"""TSGAN networks: the mask-attention module, shapes at 64 and 128 px, widths, options, gradients through the MAM."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import nn

from hfr.errors import ConfigError
from hfr.nn.sizing import count_parameters
from tsgan.models import DeocclusionGenerator, FrontalizationGenerator, MaskAttention, PatchDiscriminator, build_tsgan


def _mask(b: int, s: int) -> torch.Tensor:
    """A block occlusion over the lower-left quarter of every image."""
    m = torch.zeros(b, 1, s, s)
    m[:, :, s // 2 :, : s // 2] = 1.0
    return m


def test_mam_shapes_and_attention_rows_sum_to_one():
    torch.manual_seed(0)
    mam = MaskAttention(8, kernel_size=3, prior="gate")
    torch.nn.init.normal_(mam.key.weight, 0, 1.0)
    torch.nn.init.normal_(mam.query.weight, 0, 1.0)
    x = torch.randn(5, 8, 6, 6)
    out, a = mam(x, _mask(5, 24), return_attention=True)
    assert out.shape == x.shape and a.shape == (5, 5)
    assert torch.allclose(a.sum(-1), torch.ones(5), atol=1e-6)
    assert bool((a >= 0).all())
    # the attention is not uniform once K and Q carry weight
    assert float(a.detach().std()) > 1e-3
    # output = X + A @ X_v with X_v = X * (1 - m) (the "gate" prior), checked by hand
    m = torch.nn.functional.adaptive_avg_pool2d(_mask(5, 24), (6, 6))
    v = x * (1 - m)
    assert torch.allclose(out, x + (a @ v.flatten(1)).view_as(x), atol=1e-5)


def test_mam_without_mask_equals_prior_none():
    torch.manual_seed(1)
    gate, none = MaskAttention(6, prior="gate"), MaskAttention(6, prior="none")
    none.load_state_dict(gate.state_dict())
    x = torch.randn(3, 6, 4, 4)
    assert torch.allclose(gate(x, None), none(x, _mask(3, 4)))
    # with no prior the result is x + A x
    out, a = none(x, None, return_attention=True)
    assert torch.allclose(out, x + (a @ x.flatten(1)).view_as(x), atol=1e-6)


def test_gate_prior_changes_the_output_only_where_occluded_for_one_sample():
    torch.manual_seed(2)
    mam = MaskAttention(4, prior="gate")
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        clear = mam(x, torch.zeros(1, 1, 16, 16))
        occl = mam(x, _mask(1, 16))
    m = torch.nn.functional.adaptive_avg_pool2d(_mask(1, 16), (8, 8)).expand_as(x)
    diff = (clear - occl).abs()
    assert float(diff[m > 0].min()) > 0  # every occluded cell changes
    assert float(diff[m == 0].max()) == 0.0  # visible cells do not
    # a batch of one attends only to itself: out = x + x * (1 - m)
    assert torch.allclose(clear, 2 * x)


def test_gate_prior_changes_attention_of_a_batch():
    torch.manual_seed(3)
    mam = MaskAttention(8, prior="gate")
    torch.nn.init.normal_(mam.key.weight, 0, 1.0)
    torch.nn.init.normal_(mam.query.weight, 0, 1.0)
    x = torch.randn(4, 8, 8, 8)
    mask = torch.zeros(4, 1, 8, 8)
    mask[0, :, :6] = 1.0  # only sample 0 is (heavily) occluded
    with torch.no_grad():
        _, a_clear = mam(x, torch.zeros_like(mask), return_attention=True)
        _, a_occl = mam(x, mask, return_attention=True)
    assert float((a_clear - a_occl).abs().max()) > 1e-4


def test_scale_prior_adds_the_attention_term_only_where_occluded():
    torch.manual_seed(4)
    mam = MaskAttention(4, prior="scale")
    x = torch.randn(3, 4, 8, 8)
    with torch.no_grad():
        out = mam(x, _mask(3, 8))
    m = _mask(3, 8).expand_as(x)
    assert torch.equal(out[m == 0], x[m == 0])
    assert float((out - x)[m > 0].abs().min()) > 0


def test_mam_rejects_bad_inputs():
    mam = MaskAttention(4)
    with pytest.raises(ValueError, match="expected"):
        mam(torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match="mask"):
        mam(torch.randn(2, 4, 4, 4), torch.zeros(3, 1, 4, 4))
    with pytest.raises(ConfigError, match="prior"):
        MaskAttention(4, prior="soft")
    with pytest.raises(ConfigError, match="odd"):
        MaskAttention(4, kernel_size=2)


@pytest.mark.parametrize("size,patches", [(64, 6), (128, 14)])
def test_shapes_at_64_and_128(size, patches):
    models = build_tsgan(size, width=0.125)
    for m in (models.g_d, models.g_f, models.d_d, models.d_f):
        m.eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    mask = _mask(2, size)
    with torch.no_grad():
        y = models.g_d(x, mask)
        z = models.g_f(y)
        z_prior = models.g_f(y, mask)
        assert y.shape == z.shape == z_prior.shape == (2, 3, size, size)
        assert float(y.abs().max()) <= 1.0 and float(z.abs().max()) <= 1.0  # tanh
        assert models.d_d(y).shape == models.d_f(z).shape == (2, 1, patches, patches)
    # the U-Net has log2(S) - 2 stages and one MAM per skip connection
    stages = {64: 4, 128: 5}[size]
    assert models.g_d.num_stages == stages and models.g_d.mam is not None and len(models.g_d.mam) == stages - 1


def test_gray_images_and_paper_widths():
    g = DeocclusionGenerator(64, channels=1, width=1.0)
    assert isinstance(g.down[0], nn.Sequential) and g.down[0][0].in_channels == 2  # [x, mask]
    assert g.widths == [64, 128, 256, 512]
    assert g.to_image.out_channels == 1
    f = FrontalizationGenerator(128, channels=1, width=1.0)
    assert isinstance(f.down[0], nn.Sequential) and f.down[0][0].in_channels == 1
    assert f.widths == [64, 128, 256, 512, 512]
    with torch.no_grad():
        assert g(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)


def test_width_scales_parameters():
    small, big = build_tsgan(64, width=0.25), build_tsgan(64, width=1.0)
    assert count_parameters(small.g_d) * 10 < count_parameters(big.g_d)
    assert small.parameter_counts()["d_f"] * 10 < big.parameter_counts()["d_f"]


def test_mam_off_gives_plain_unet_and_a_different_output():
    torch.manual_seed(5)
    with_mam = build_tsgan(64, width=0.125, mam=True).g_d.eval()
    plain = build_tsgan(64, width=0.125, mam=False).g_d.eval()
    assert plain.mam is None
    # the MAMs hold only the K and Q kernels: the rest of the weights load across
    missing = plain.load_state_dict(with_mam.state_dict(), strict=False)
    assert all(k.startswith("mam.") for k in missing.unexpected_keys) and not missing.missing_keys
    x, mask = torch.rand(2, 3, 64, 64) * 2 - 1, _mask(2, 64)
    with torch.no_grad():
        assert not torch.allclose(with_mam(x, mask), plain(x, mask))


def test_g_d_mask_matters_and_composite_keeps_visible_pixels():
    torch.manual_seed(6)
    g = DeocclusionGenerator(64, width=0.125, composite=True).eval()
    x, mask = torch.rand(2, 3, 64, 64) * 2 - 1, _mask(2, 64)
    with torch.no_grad():
        y = g(x, mask)
        y0 = g(x, torch.zeros_like(mask))
    vis = mask.expand_as(x) == 0
    assert torch.equal(y[vis], x[vis])
    assert not torch.allclose(y[~vis], x[~vis])
    assert torch.equal(y0, x)  # nothing occluded: the input comes back


def test_conditional_discriminators():
    models = build_tsgan(64, width=0.125, d_conditional=True, d_norm="spectral")
    x, mask = torch.rand(2, 3, 64, 64) * 2 - 1, _mask(2, 64)
    assert models.d_d(x, torch.cat([x, mask], 1)).shape == (2, 1, 6, 6)
    assert models.d_f(x, x).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="cond"):
        models.d_d(x)
    with pytest.raises(ValueError, match="unconditional"):
        PatchDiscriminator(64, width=0.125)(x, x)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": 96}, "power of two"),
        ({"size": 16}, "power of two"),
        ({"width": 0}, "width"),
        ({"norm": "layer"}, "norm"),
        ({"d_norm": "batch"}, "norm"),
        ({"channels": 2}, "channels"),
        ({"prior": "x"}, "prior"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_options_raise_config_error(kwargs, match):
    args = {"size": 64, "width": 0.125, **kwargs}
    with pytest.raises(ConfigError, match=match):
        build_tsgan(**args)


def test_generator_rejects_wrong_shapes():
    g = DeocclusionGenerator(64, width=0.125)
    with pytest.raises(ValueError, match="occlusion masks"):
        g(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="occluded images"):
        g(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))


def test_g_d_learns_a_fixed_batch_and_mam_gets_gradients():
    torch.manual_seed(7)
    g = build_tsgan(32, width=0.125).g_d
    # smooth faces-like targets (bilinear upsampling of 4 x 4 noise): learnable in a few steps
    clean = torch.nn.functional.interpolate(
        torch.rand(4, 3, 4, 4) * 2 - 1, size=32, mode="bilinear", align_corners=False
    )
    mask = _mask(4, 32)
    occluded = clean * (1 - mask) + mask * 0.8
    opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    assert g.mam is not None
    mams = cast(list[MaskAttention], list(g.mam))
    losses: list[float] = []
    for _ in range(12):
        loss = (g(occluded, mask) - clean).abs().mean()
        opt.zero_grad()
        loss.backward()
        if not losses:
            grads = [m.key.weight.grad for m in mams] + [m.query.weight.grad for m in mams]
            assert all(gr is not None and bool(torch.isfinite(gr).all()) for gr in grads)
            assert any(gr is not None and float(gr.abs().max()) > 0 for gr in grads)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(b < a for a, b in zip(losses[:4], losses[1:5]))  # falls from the first steps
