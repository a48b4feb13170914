"""DR-GAN networks: shapes at 64 and 96 px, the paper's layer widths, omega, fusion."""

from __future__ import annotations

import pytest
import torch

from drgan.models import (
    DECODER_LAYERS,
    ENCODER_LAYERS,
    FEATURE_DIM,
    Discriminator,
    Generator,
    build_models,
    copy_trunk,
    fuse_features,
)
from hfr.errors import ConfigError


@pytest.mark.parametrize("size", [64, 96])
def test_shapes_at_paper_width(size):
    g, d = build_models(size, num_identities=7, num_poses=9, noise_dim=50, width=1.0, multi_image=True)
    g.eval()
    d.eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        f, omega = g.encode(x)
    assert omega is not None
    assert f.shape == (2, FEATURE_DIM) and omega.shape == (2,)
    assert bool(((omega > 0) & (omega < 1)).all())
    with torch.no_grad():
        y = g.decode(f, torch.tensor([0, 8]))
    assert y.shape == (2, 3, size, size)
    assert float(y.abs().max()) <= 1.0
    ids, poses = d(y)
    assert ids.shape == (2, 8) and poses.shape == (2, 9)
    # the paper's decoder projection: S/16 x S/16 x N_f (6 x 6 x 320 at 96 px)
    assert g.decoder.project.out_features == FEATURE_DIM * (size // 16) ** 2


def test_encoder_widths_follow_the_paper_table():
    g = Generator(96, 9, width=1.0)
    convs = [m for m in g.encoder.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == list(ENCODER_LAYERS)
    assert all(c.kernel_size == (3, 3) for c in convs)
    dec = [m for m in g.decoder.body.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(c.out_channels, c.stride[0]) for c in dec] == list(DECODER_LAYERS)


def test_width_multiplier_scales_feature_and_params():
    small, big = Generator(64, 9, width=0.25), Generator(64, 9, width=1.0)
    assert small.feature_dim == 80 and big.feature_dim == 320
    assert sum(p.numel() for p in small.parameters()) * 8 < sum(p.numel() for p in big.parameters())


def test_size_must_be_multiple_of_16():
    with pytest.raises(ConfigError, match="multiple of 16"):
        Generator(72, 9)


def test_init_is_normal_002():
    g, _ = build_models(64, 5, 9, width=0.5)
    w = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.001


def test_pose_code_changes_the_output():
    torch.manual_seed(0)
    g = Generator(32, 5, width=0.25).eval()
    f, _ = g.encode(torch.rand(1, 3, 32, 32) * 2 - 1)
    z = g.noise(1)
    a = g.decode(f, torch.tensor([0]), z)
    b = g.decode(f, torch.tensor([4]), z)
    assert not torch.allclose(a, b)
    assert torch.equal(a, g.decode(f, torch.tensor([0]), z))


def test_fusion_weights_normalise():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [4.0, 0.0]])
    omega = torch.tensor([0.75, 0.25, 0.5, 0.5])
    fused = fuse_features(f, omega, 2, eps=0.0)
    assert torch.allclose(fused, torch.tensor([[0.75, 0.25], [3.0, 1.0]]))
    # scaling every omega of a group leaves the fused feature unchanged
    assert torch.allclose(fuse_features(f, omega * 7, 2, eps=0.0), fused)


def test_fusion_of_one_image_is_its_feature():
    f = torch.randn(3, 5)
    assert torch.allclose(fuse_features(f, torch.tensor([0.1, 0.6, 0.9]), 1), f, atol=1e-5)


def test_fusion_is_permutation_invariant():
    torch.manual_seed(1)
    f, omega = torch.randn(4, 6), torch.rand(4)
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.allclose(fuse_features(f, omega, 4), fuse_features(f[perm], omega[perm], 4), atol=1e-6)


def test_fusion_rejects_partial_groups():
    with pytest.raises(ValueError, match="groups of n=2"):
        fuse_features(torch.zeros(3, 2), torch.ones(3), 2)


def test_model_switching_copies_the_trunk_but_keeps_omega():
    g = Generator(32, 3, width=0.25, multi_image=True)
    d = Discriminator(4, 3, width=0.25)
    confidence = g.encoder.trunk.confidence
    assert confidence is not None
    head = {k: v.clone() for k, v in confidence.state_dict().items()}
    copy_trunk(d.trunk, g.encoder.trunk)
    for (k, a), b in zip(d.trunk.state_dict().items(), [g.encoder.trunk.state_dict()[k] for k in d.trunk.state_dict()]):
        assert torch.equal(a, b), k
    for k, v in confidence.state_dict().items():
        assert torch.equal(v, head[k])
