"""Augmentation (hfr.data.augment): shapes, no-op, flips, determinism, config validation, GPU."""

from __future__ import annotations

import pytest
import torch

from hfr.data.augment import Augment, AugmentConfig, augment
from hfr.errors import ArgumentError, ConfigError, HFRError, OptionError

ALL_ON = AugmentConfig(crop_p=0.5, resized_crop_p=0.5, flip_p=0.5, affine_p=0.5, color_p=0.5, blur_p=0.5, noise_p=0.5)


# ------------------------------------------------------------------------------ augmentation
def test_noop_when_everything_off():
    x = torch.rand(3, 2, 9, 7)
    out, flipped = augment(x, AugmentConfig(), seed=0)
    assert out is x and flipped.tolist() == [False] * 3
    module = Augment(AugmentConfig(flip_p=1.0), seed=0).eval()
    assert torch.equal(module(x), x) and module.last_flipped is not None and not module.last_flipped.any()


def test_flip_reported_and_applied():
    x = torch.rand(16, 1, 8, 10)
    out, flipped = augment(x, AugmentConfig(flip_p=0.5), seed=1)
    assert 0 < int(flipped.sum()) < 16
    torch.testing.assert_close(out[flipped], x[flipped].flip(-1), atol=1e-5, rtol=0)
    assert torch.equal(out[~flipped], x[~flipped])  # untouched samples are bit-identical
    yaw = torch.linspace(-40, 40, 16)
    fixed = torch.where(flipped, -yaw, yaw)
    assert torch.equal(fixed[~flipped], yaw[~flipped]) and torch.equal(fixed[flipped], -yaw[flipped])


def test_module_records_flips():
    module = Augment(AugmentConfig(flip_p=1.0), seed=0)
    x = torch.rand(2, 3, 5, 6)
    out, flipped = module.forward_with_flips(x)
    assert flipped.all() and torch.allclose(out, x.flip(-1), atol=1e-5)
    module(x)
    assert module.last_flipped is not None and module.last_flipped.tolist() == [True, True]


def test_all_ops_shapes_range_and_seed():
    x = torch.rand(12, 3, 16, 16)
    a, fa = augment(x, ALL_ON, seed=7)
    b, fb = augment(x, ALL_ON, seed=7)
    c, _ = augment(x, ALL_ON, seed=8)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and torch.equal(fa, fb)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_pad_crop_is_an_integer_shift():
    x = torch.rand(6, 1, 12, 12)
    out, _ = augment(x, AugmentConfig(crop_p=1.0, crop_padding=3), seed=2)
    for i in range(6):
        matches = [
            (dx, dy)
            for dx in range(-3, 4)
            for dy in range(-3, 4)
            if torch.allclose(
                out[i, :, max(dy, 0) : 12 + min(dy, 0), max(dx, 0) : 12 + min(dx, 0)],
                x[i, :, max(-dy, 0) : 12 + min(-dy, 0), max(-dx, 0) : 12 + min(-dx, 0)],
                atol=1e-5,
            )
        ]
        assert matches, f"sample {i} is not a shifted copy"


def test_color_blur_noise_change_pixels_only():
    x = torch.rand(4, 1, 10, 10) * 0.5 + 0.25
    for cfg in (
        AugmentConfig(color_p=1.0),
        AugmentConfig(blur_p=1.0, blur_sigma=1.5),
        AugmentConfig(noise_p=1.0, noise_std=0.1),
    ):
        out, flipped = augment(x, cfg, seed=3)
        assert out.shape == x.shape and not flipped.any()
        assert (out - x).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # every sample changed
    blurred, _ = augment(x, AugmentConfig(blur_p=1.0, blur_sigma=1.5), seed=3)
    assert float(blurred.std()) < float(x.std())


@pytest.mark.parametrize(
    "bad",
    [
        dict(flip_p=1.5),
        dict(brightness=-0.1),
        dict(padding_mode="wrap"),
        dict(resized_crop_min_area=0.0),
        dict(crop_padding=2.5),
    ],
)
def test_config_validation(bad):
    with pytest.raises(ConfigError):
        AugmentConfig(**bad)


@pytest.mark.parametrize("images", [torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.rand(1, 8, 8)])
def test_bad_batch_is_a_library_error(images):
    with pytest.raises(ArgumentError, match=r"float \(B, C, H, W\) batch") as err:
        augment(images, AugmentConfig(flip_p=1.0), seed=0)
    assert isinstance(err.value, HFRError) and not isinstance(err.value, OptionError)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_augment_on_gpu():
    x = torch.rand(8, 3, 16, 16, device="cuda")
    out, flipped = augment(x, ALL_ON, seed=0)
    assert out.device.type == "cuda" and flipped.device.type == "cuda" and out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    no_noise = AugmentConfig(**{**ALL_ON.__dict__, "noise_p": 0.0})
    gpu, gpu_flipped = augment(x, no_noise, seed=0)
    ref, ref_flipped = augment(x.cpu(), no_noise, seed=0)  # parameters come from the same CPU generator
    assert torch.equal(gpu_flipped.cpu(), ref_flipped)
    torch.testing.assert_close(gpu.cpu(), ref, atol=1e-4, rtol=0)
