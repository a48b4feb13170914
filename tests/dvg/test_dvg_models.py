"""Tests of the DVG-Face networks (dvg/models.py): shapes, sampling, heads, AdaIN, sizes of the release."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dvg.models import AdaIN, AttributeEncoder, DualGenerator, IdentitySampler, build_dvg, reparameterize
from hfr.errors import ArgumentError, ConfigError
from hfr.nn.sizing import count_parameters

W = 0.25  # CPU-sized width for the shape tests


def _unit(n: int, d: int = 256, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("deterministic", [False, True])
def test_every_module_has_the_right_shapes(size: int, deterministic: bool) -> None:
    torch.manual_seed(0)
    m = build_dvg(size, W, deterministic, nir_channels=1, vis_channels=3)
    g = m.generator
    nir, vis = torch.rand(2, 1, size, size), torch.rand(2, 3, size, size)
    c_n, c_v = g.encode(nir, "nir"), g.encode(vis, "vis")
    for c in (c_n, c_v):
        assert c.z.shape == c.mu.shape == (2, 256)
        assert (c.logvar is None) == deterministic
        if not deterministic:
            assert c.logvar is not None and c.logvar.shape == (2, 256)
    f = _unit(2)
    out_n, out_v = g.decode(f, c_n.z, "nir"), g.decode(f, c_v.z, "vis")
    assert out_n.shape == (2, 1, size, size) and out_v.shape == (2, 3, size, size)
    assert 0.0 <= float(out_n.detach().min()) and float(out_v.detach().max()) <= 1.0  # sigmoid heads
    assert g.encoder_nir.style(c_n.z).shape == (2, g.decoder.num_adain_params)
    assert m.disc_nir(out_n).shape == (2, 1, size // 16, size // 16)
    assert m.disc_vis(vis).shape == (2, 1, size // 16, size // 16)
    feats = torch.randn(3, 256)
    mu, logvar = m.sampler.encode(feats)
    assert mu.shape == logvar.shape == (3, 256)
    rec, _, _ = m.sampler(feats)
    assert rec.shape == (3, 256) and m.sampler.sample(5).shape == (5, 256)


def test_reparameterisation_collapses_to_mu_and_has_unit_noise() -> None:
    mu = torch.randn(4, 256)
    z = reparameterize(mu, torch.full_like(mu, -1e4), torch.Generator().manual_seed(1))
    assert torch.equal(z, mu)
    big = torch.zeros(4000, 256)
    s = reparameterize(
        big + 3.0, torch.full_like(big, float(2 * torch.log(torch.tensor(0.5)))), torch.Generator().manual_seed(2)
    )
    assert abs(float(s.mean()) - 3.0) < 0.01 and abs(float(s.std()) - 0.5) < 0.01


def test_variational_encoder_samples_in_training_and_uses_mu_in_eval() -> None:
    torch.manual_seed(0)
    enc = AttributeEncoder(64, 3, W, deterministic=False)
    x = torch.rand(2, 3, 64, 64)
    enc.train()
    a = enc(x, generator=torch.Generator().manual_seed(0))
    b = enc(x, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a.z, a.mu) and not torch.allclose(a.z, b.z)
    assert torch.allclose(a.mu, b.mu)
    enc.eval()
    c = enc(x)
    assert torch.equal(c.z, c.mu)
    assert enc.prior(7).shape == (7, 256)


def test_deterministic_encoder_gives_unit_norm_codes() -> None:
    torch.manual_seed(0)
    enc = AttributeEncoder(64, 1, W, deterministic=True)
    enc.train()
    code = enc(torch.rand(3, 1, 64, 64) * 5)
    assert code.logvar is None and torch.equal(code.z, code.mu)
    assert torch.allclose(code.z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(enc.prior(4).norm(dim=1), torch.ones(4), atol=1e-5)


def test_identity_sampler_outputs_unit_norm_features_reproducibly() -> None:
    torch.manual_seed(0)
    fs = IdentitySampler(width=W)
    a = fs.sample(16, torch.Generator().manual_seed(3))
    b = fs.sample(16, torch.Generator().manual_seed(3))
    c = fs.sample(16, torch.Generator().manual_seed(4))
    assert torch.allclose(a.norm(dim=1), torch.ones(16), atol=1e-5)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    rec, _, _ = fs(torch.randn(4, 256) * 10)
    assert torch.allclose(rec.norm(dim=1), torch.ones(4), atol=1e-5)
    # The encoder sees the direction of f only: scaling f changes nothing.
    f = torch.randn(4, 256)
    assert torch.allclose(fs.encode(f)[0], fs.encode(3 * f)[0], atol=1e-5)


def test_nir_and_vis_heads_differ() -> None:
    torch.manual_seed(0)
    g = DualGenerator(64, W, deterministic=True)
    f, z = _unit(2), _unit(2, seed=1)
    style = g.encoder_nir.style(z)
    nir = g.decoder(f, z, style, "nir")
    vis = g.decoder(f, z, style, "vis")
    assert nir.shape == vis.shape
    assert (nir - vis).abs().mean() > 1e-3


def test_adain_attribute_changes_output_with_identity_fixed() -> None:
    torch.manual_seed(0)
    g = DualGenerator(64, W, deterministic=False)
    g.eval()
    f = _unit(2)
    z1, z2 = torch.randn(2, 256), torch.randn(2, 256)
    base = g.decode(f, z1, "vis")
    assert (g.decode(f, z2, "vis") - base).abs().mean() > 1e-4
    # Through AdaIN alone: same concatenated z, another style vector.
    other_style = g.decoder(f, z1, g.encoder_vis.style(z2), "vis")
    assert (other_style - base).abs().mean() > 1e-4
    # And the identity matters too, with the attribute fixed.
    assert (g.decode(_unit(2, seed=5), z1, "vis") - base).abs().mean() > 1e-5
    # Each sample's output depends only on its own style (per-sample AdaIN).
    mixed = g.decoder(f, z1, torch.cat([g.encoder_vis.style(z1[:1]), g.encoder_vis.style(z2[1:])]), "vis")
    assert torch.allclose(mixed[0], base[0], atol=1e-6) and not torch.allclose(mixed[1], base[1], atol=1e-4)


def test_adain_normalises_then_applies_shift_and_scale() -> None:
    x = torch.randn(2, 3, 5, 5) * 4 + 7
    shift, scale = torch.tensor([[1.0, 2.0, 3.0]] * 2), torch.tensor([[0.5, 1.0, 2.0]] * 2)
    y = AdaIN(3)(x, torch.cat([shift, scale], dim=1))
    assert torch.allclose(y.mean(dim=(2, 3)), shift, atol=1e-4)
    assert torch.allclose(y.std(dim=(2, 3), unbiased=False), scale, atol=1e-3)


def test_gradients_reach_encoder_decoder_and_style_mlp() -> None:
    torch.manual_seed(0)
    g = DualGenerator(64, W)
    g.train()
    out, code = g(_unit(2), torch.rand(2, 3, 64, 64), "nir")
    (out.mean() + code.mu.pow(2).mean()).backward()
    for name in (
        "encoder_nir.conv.0.conv.weight",
        "encoder_nir.fc_style.0.weight",
        "decoder.fc.0.weight",
        "decoder.nir_output.weight",
    ):
        grad = dict(g.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert g.decoder.vis_output.weight.grad is None  # the other head is untouched
    assert g.get_parameter("encoder_vis.conv.0.conv.weight").grad is None


def test_width_one_counts_equal_the_released_modules() -> None:
    # Released BradyFU/DVG-Face at ndf=32, 3-channel images, 128 px: encoder 5,899,264 each,
    # decoder 2,033,190 (448 AdaIN parameters), identity-sampler decoder 1,968,896.
    m = build_dvg(128, 1.0, deterministic=True)
    g = m.generator
    assert count_parameters(g.encoder_nir) == count_parameters(g.encoder_vis) == 5_899_264
    assert count_parameters(g.decoder) == 2_033_190
    assert g.decoder.num_adain_params == 448
    assert count_parameters(m.sampler.decoder) == 1_968_896
    # The variational head is the only difference: 4096 -> 512 instead of 4096 -> 256.
    v = build_dvg(128, 1.0, deterministic=False).generator
    assert count_parameters(v.encoder_nir) - count_parameters(g.encoder_nir) == 4096 * 256 + 256


def test_width_scales_channels() -> None:
    small, big = build_dvg(64, 0.25), build_dvg(64, 0.5)
    assert count_parameters(small.generator) < count_parameters(big.generator)
    assert count_parameters(small.disc_nir) < count_parameters(big.disc_nir)
    assert small.generator.decoder.num_adain_params == 2 * 7 * 8


def test_bad_sizes_domains_and_options_raise() -> None:
    # (the size rule itself: tests/nn/test_sizing.py)
    with pytest.raises(ConfigError, match="power of two"):
        build_dvg(96, W)
    with pytest.raises(ConfigError, match=r"net\.width"):
        build_dvg(64, width=0)
    with pytest.raises(ConfigError, match=r"net\.d_width"):
        build_dvg(64, W, d_width=-1.0)
    g = DualGenerator(64, W)
    with pytest.raises(ArgumentError, match="domain"):
        g.decode(_unit(1), torch.randn(1, 256), "thermal")
    with pytest.raises(ArgumentError, match="AdaIN"):
        g.decoder(_unit(1), torch.randn(1, 256), torch.randn(1, 3), "nir")
    with pytest.raises(ConfigError, match="norm"):
        build_dvg(64, W, d_norm="batch")


def test_init_and_spectral_discriminator_build_and_run() -> None:
    torch.manual_seed(0)
    m = build_dvg(64, W, d_norm="spectral", init="normal002")
    assert m.disc_vis(torch.rand(2, 3, 64, 64)).shape == (2, 1, 4, 4)
    w = m.generator.get_parameter("decoder.fc.0.weight")
    assert abs(float(w.detach().std()) - 0.02) < 0.002
    raw = m.disc_nir.net[2].get_parameter("parametrizations.weight.original")  # the init reaches the raw weight
    assert abs(float(raw.detach().std()) - 0.02) < 0.004
    assert m.discriminator("nir") is m.disc_nir and m.to("cpu") is m


def test_style_normalises_the_attribute_code_as_the_released_encoder() -> None:
    enc = AttributeEncoder(32, width=0.125, deterministic=False)
    z = torch.randn(3, 256, generator=torch.Generator().manual_seed(4)) * 20  # a variational code, |z| ~ 320
    with torch.no_grad():
        by_hand = enc.fc_style(z / z.norm(dim=1, keepdim=True))
        assert torch.allclose(enc.style(z), by_hand, atol=1e-6)
        # the AdaIN parameters depend on the code's direction only, not on its norm
        assert torch.allclose(enc.style(z), enc.style(z / 7.0), atol=1e-6)
        assert (enc.style(z) - enc.style(-z)).abs().max() > 1e-4
