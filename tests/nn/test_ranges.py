"""hfr.nn.ranges: [0, 1] <-> [-1, 1], RGB -> gray (ITU-R BT.601) and channel conversion."""

from __future__ import annotations

import pytest
import torch

from hfr.errors import ImageError
from hfr.nn.ranges import rgb_to_gray, to_channels, to_signed, to_unit


def test_to_signed_and_to_unit_by_hand():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.equal(to_signed(x), torch.tensor([-1.0, -0.5, 0.0, 1.0]))
    assert torch.equal(to_unit(torch.tensor([-1.0, -0.5, 0.0, 1.0])), x)
    # to_unit clamps what a generator overshoots; to_signed does not touch out-of-range values
    assert torch.equal(to_unit(torch.tensor([-1.5, 1.2])), torch.tensor([0.0, 1.0]))
    assert torch.equal(to_signed(torch.tensor([1.5])), torch.tensor([2.0]))


def test_round_trip_is_exact_in_range():
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(to_unit(to_signed(x)), x)


def test_rgb_to_gray_uses_bt601_weights():
    pure = torch.eye(3).view(3, 3, 1, 1)  # red, green, blue
    assert torch.allclose(rgb_to_gray(pure).flatten(), torch.tensor([0.299, 0.587, 0.114]))
    x = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    y = rgb_to_gray(x)
    assert y.shape == (2, 1, 5, 5)
    # the weighted sum hfr computed before (Recognizer.prepare, drgan.rotate), to float rounding
    expected = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    assert torch.allclose(rgb_to_gray(torch.full((1, 3, 2, 2), 0.4)), torch.full((1, 1, 2, 2), 0.4))  # gray stays


def test_to_channels():
    rgb = torch.rand(2, 3, 4, 4)
    gray = torch.rand(2, 1, 4, 4)
    assert to_channels(rgb, 3) is rgb and to_channels(gray, 1) is gray
    assert torch.equal(to_channels(rgb, 1), rgb_to_gray(rgb))
    up = to_channels(gray, 3)
    assert up.shape == (2, 3, 4, 4) and all(torch.equal(up[:, c], gray[:, 0]) for c in range(3))
    with pytest.raises(ImageError, match="cannot convert 2-channel images to the recognizer's 1 channels"):
        to_channels(torch.zeros(1, 2, 4, 4), 1, "the recognizer's")
