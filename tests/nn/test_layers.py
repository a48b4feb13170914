"""Tests of the MFM, Group and ResBlock layers and of init_weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hfr.errors import ArgumentError
from hfr.nn import MFM, Group, ResBlock, init_weights


def test_mfm_conv_is_max_of_the_two_output_halves() -> None:
    torch.manual_seed(0)
    layer = MFM(3, 4, kernel_size=3, stride=1, padding=1)
    x = torch.randn(2, 3, 7, 7)
    y = layer.filter(x)
    assert y.shape == (2, 8, 7, 7)
    out = layer(x)
    expected = torch.where(y[:, :4] > y[:, 4:], y[:, :4], y[:, 4:])
    assert out.shape == (2, 4, 7, 7)
    assert torch.equal(out, expected)
    # Channel i competes with channel i + 4, not with a neighbour.
    assert not torch.equal(out, y.view(2, 4, 2, 7, 7).amax(2))


def test_mfm_linear_and_gradient_goes_to_the_winning_half_only() -> None:
    layer = MFM(5, 3, linear=True)
    assert isinstance(layer.filter, nn.Linear) and layer.filter.out_features == 6
    with torch.no_grad():
        layer.filter.weight.zero_()
        layer.filter.bias.copy_(torch.tensor([1.0, -1.0, 2.0, 0.0, 0.0, 0.0]))
    out = layer(torch.randn(4, 5))
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 2.0]]).expand(4, 3))
    out.sum().backward()
    grad = layer.filter.bias.grad
    assert grad is not None and grad.tolist() == [4.0, 0.0, 4.0, 0.0, 4.0, 0.0]


def test_group_is_1x1_then_kxk_mfm() -> None:
    g = Group(6, 10, 3, 1, 1)
    assert g.conv_a.filter.kernel_size == (1, 1) and g.conv_a.filter.out_channels == 12
    assert g.conv.filter.kernel_size == (3, 3) and g.conv.filter.out_channels == 20
    x = torch.randn(1, 6, 5, 5)
    assert torch.equal(g(x), g.conv(g.conv_a(x)))
    assert g(x).shape == (1, 10, 5, 5)


def test_resblock_adds_the_identity() -> None:
    block = ResBlock(4)
    conv = block.conv2.filter
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([0.0, 1.0, 0.0, 0.0, 0.5, -3.0, 0.0, 0.0]))
    x = torch.randn(2, 4, 6, 6)
    shift = torch.tensor([0.5, 1.0, 0.0, 0.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(block(x), x + shift)


def test_init_weights_normal002_and_xavier() -> None:
    torch.manual_seed(0)
    conv, bn, fc = nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.Linear(400, 300)
    net = nn.Sequential(conv, bn, fc)
    for p in net.parameters():
        nn.init.constant_(p, 5.0)
    assert init_weights(net, "normal002") is net
    assert abs(conv.weight.std().item() - 0.02) < 0.002 and abs(conv.weight.mean().item()) < 0.002
    assert abs(fc.weight.std().item() - 0.02) < 0.002
    assert conv.bias is not None
    assert torch.all(conv.bias == 0) and torch.all(fc.bias == 0) and torch.all(bn.bias == 0)
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and 0.01 < bn.weight.std().item() < 0.03

    init_weights(net, "xavier")
    assert abs(fc.weight.std().item() - math.sqrt(2.0 / 700)) < 0.005
    assert torch.all(bn.weight == 1) and torch.all(fc.bias == 0)

    init_weights(net, "kaiming")
    assert abs(conv.weight.std().item() - math.sqrt(2.0 / (64 * 9))) < 0.005


def test_init_weights_rejects_unknown_kind() -> None:
    with pytest.raises(ArgumentError, match="normal002"):
        init_weights(nn.Linear(2, 2), "uniform")


def test_resblock_gradients_are_those_of_the_out_of_place_sum() -> None:
    torch.manual_seed(0)
    block = ResBlock(3).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))
    out = block(x)
    out.square().sum().backward()
    assert x.grad is not None
    grad_inplace = x.grad.clone()
    x.grad = None
    (block.conv2(block.conv1(x)) + x).square().sum().backward()
    torch.testing.assert_close(grad_inplace, x.grad)
