"""hfr.nn.sizing: width scaling, size / width / choice checks and parameter counts, and the methods' size rules."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from drgan.models import check_size as drgan_size
from dvg.models import check_size as dvg_size
from hfr.errors import ConfigError
from hfr.nn.sizing import check_choice, check_size, check_width, count_parameters, scaled
from tsgan.models import check_size as tsgan_size


def test_scaled_rounds_and_keeps_at_least_four():
    assert scaled(64, 1.0) == 64 and scaled(64, 0.25) == 16 and scaled(320, 0.25) == 80
    assert scaled(96, 0.3) == 29  # 28.8 rounds up
    assert scaled(10, 0.25) == 4 and scaled(3, 1.0) == 4  # never below 4


def test_check_size_rules_and_messages():
    assert check_size(64, "x size", multiple=16, minimum=16) == 64
    assert check_size(np.int64(128), "x size", minimum=32, power_of_two=True) == 128  # numpy integers pass
    with pytest.raises(ConfigError, match=r"^x size must be a multiple of 16 \(four stages\), got 72$"):
        check_size(72, "x size", multiple=16, minimum=16, why="four stages")
    with pytest.raises(ConfigError, match=r"^y must be a power of two >= 32, got 96$"):
        check_size(96, "y", minimum=32, power_of_two=True)
    for bad in (16, 0, -64, 64.0, "64", True):
        with pytest.raises(ConfigError, match="power of two"):
            check_size(bad, "y", minimum=32, power_of_two=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="an integer >= 1"):
        check_size(0, "n")


@pytest.mark.parametrize(
    "check,good,bad,match",
    [
        (drgan_size, (16, 32, 48, 64, 96, 112), (8, 0, 72, 100), r"DR-GAN image size must be a multiple of 16"),
        (
            dvg_size,
            (32, 64, 128, 256),
            (16, 48, 96, 100),
            r"DVG-Face image size must be a power of two >= 32 "
            r"\(the encoder halves it down to 4 x 4",
        ),
        (tsgan_size, (32, 64, 128, 256), (16, 48, 96, 100), r"TSGAN image size must be a power of two >= 32"),
    ],
)
def test_each_methods_size_rule(check, good, bad, match):
    for size in good:
        assert check(size) == size
    for size in bad:
        with pytest.raises(ConfigError, match=match):
            check(size)


def test_check_width_and_check_choice():
    assert check_width(0.5) == 0.5
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match=r"net\.width must be > 0"):
            check_width(bad, "net.width")
    assert check_choice("b", ("a", "b"), "k") == "b"
    with pytest.raises(ConfigError, match=r"^loss\.kind must be one of a, b, got 'c'$"):
        check_choice("c", ("a", "b"), "loss.kind")


def test_count_parameters():
    assert count_parameters(nn.Linear(3, 4)) == 3 * 4 + 4
    assert count_parameters(nn.Sequential(nn.Conv2d(2, 5, 3), nn.InstanceNorm2d(5, affine=True))) == 2 * 5 * 9 + 5 + 10
