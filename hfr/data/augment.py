"""Batched image augmentation on float (B, C, H, W) batches in [0, 1] (kornia), CPU or GPU.

`AugmentConfig` lists each operation's probability and magnitude (all off by default);
`augment(images, config, generator=...)` is the seedable functional form and
`Augment(config, seed=...)` the nn.Module. The geometric operations (random crop with
padding, random resized crop, horizontal flip, small affine) are composed into one affine
matrix per sample and applied with a single `kornia.geometry.transform.warp_affine`; then
brightness/contrast, gaussian blur (`kornia.filters.gaussian_blur2d`) and gaussian noise.
Each operation is applied to each sample independently with its probability; samples that
no operation picked are returned bit-for-bit unchanged. A horizontal flip mirrors the head,
so it negates yaw: both forms report which samples were flipped, e.g.
`yaw = torch.where(flipped, -yaw, yaw)`.

Face alignment (5-point similarity warps) lives in `hfr.data.align`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from kornia.enhance import adjust_brightness
from kornia.filters import gaussian_blur2d
from kornia.geometry.transform import warp_affine
from torch import nn

from hfr.errors import ArgumentError, ConfigError

__all__ = ["AugmentConfig", "Augment", "augment"]


@dataclass
class AugmentConfig:
    """Probabilities (per sample, in [0, 1]) and magnitudes of each augmentation; all off by default.

    - crop: pad by `crop_padding` pixels (zeros) and crop back at a random offset.
    - resized crop: crop a random square window of `resized_crop_min_area`..1 of the image
      area and resize it back to the full size.
    - flip: horizontal mirror (negates yaw; the flips are reported).
    - affine: rotation in +-`affine_degrees`, scale in 1 +- `affine_scale`, translation in
      +-`affine_translate` of the image size, about the image centre.
    - color: additive brightness in +-`brightness`, contrast factor in 1 +- `contrast`
      (about each image's mean).
    - blur: gaussian blur with sigma uniform in [0.1, `blur_sigma`] pixels.
    - noise: additive gaussian noise whose std is uniform in [0, `noise_std`].
    `padding_mode` fills pixels warped in from outside: "zeros", "border" or "reflection".
    """

    crop_p: float = 0.0
    crop_padding: int = 4
    resized_crop_p: float = 0.0
    resized_crop_min_area: float = 0.8
    flip_p: float = 0.0
    affine_p: float = 0.0
    affine_degrees: float = 10.0
    affine_translate: float = 0.05
    affine_scale: float = 0.05
    color_p: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    blur_p: float = 0.0
    blur_sigma: float = 1.0
    noise_p: float = 0.0
    noise_std: float = 0.02
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "padding_mode":
                if value not in ("zeros", "border", "reflection"):
                    raise ConfigError(f"augment.padding_mode must be zeros, border or reflection, not {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"augment.{f.name} must be a number, not {value!r}")
            if f.name.endswith("_p") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment.{f.name} is a probability and must be in [0, 1], not {value}")
            if value < 0:
                raise ConfigError(f"augment.{f.name} must be >= 0, not {value}")
        if not isinstance(self.crop_padding, int):
            raise ConfigError(f"augment.crop_padding must be a whole number of pixels, not {self.crop_padding!r}")
        if not 0.0 < self.resized_crop_min_area <= 1.0:
            raise ConfigError(f"augment.resized_crop_min_area must be in (0, 1], not {self.resized_crop_min_area}")
        if self.blur_sigma < 0.1 and self.blur_p > 0:
            raise ConfigError(f"augment.blur_sigma must be >= 0.1 when blur_p > 0, not {self.blur_sigma}")

    @property
    def enabled(self) -> bool:
        """Whether any operation has a non-zero probability."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_p"))


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    return (torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * (high - low) + low).cpu()


def _coin(n: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    return _uniform(n, 0.0, 1.0, generator) < p


def _geometry(
    cfg: AugmentConfig, b: int, h: int, w: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample (3, 3) src->dst matrices (float64, CPU), the samples they move, and the flips."""
    eye = torch.eye(3, dtype=torch.float64).repeat(b, 1, 1)
    total = eye.clone()
    moved = torch.zeros(b, dtype=torch.bool)
    flipped = torch.zeros(b, dtype=torch.bool)
    if cfg.resized_crop_p > 0:
        on = _coin(b, cfg.resized_crop_p, generator)
        s = _uniform(b, cfg.resized_crop_min_area, 1.0, generator).sqrt()
        x0 = _uniform(b, 0.0, 1.0, generator) * (1 - s) * (w - 1)
        y0 = _uniform(b, 0.0, 1.0, generator) * (1 - s) * (h - 1)
        m = eye.clone()
        m[:, 0, 0] = 1 / s
        m[:, 1, 1] = 1 / s
        m[:, 0, 2] = -x0 / s
        m[:, 1, 2] = -y0 / s
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    if cfg.crop_p > 0 and cfg.crop_padding > 0:
        on = _coin(b, cfg.crop_p, generator)
        dev = generator.device if generator is not None else torch.device("cpu")
        shift = (
            torch.randint(-cfg.crop_padding, cfg.crop_padding + 1, (b, 2), generator=generator, device=dev)
            .cpu()
            .to(torch.float64)
        )
        m = eye.clone()
        m[:, 0, 2] = shift[:, 0]
        m[:, 1, 2] = shift[:, 1]
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    if cfg.flip_p > 0:
        flipped = _coin(b, cfg.flip_p, generator)
        m = eye.clone()
        m[:, 0, 0] = -1
        m[:, 0, 2] = w - 1
        total = torch.where(flipped[:, None, None], m @ total, total)
        moved |= flipped
    if cfg.affine_p > 0:
        on = _coin(b, cfg.affine_p, generator)
        angle = _uniform(b, -cfg.affine_degrees, cfg.affine_degrees, generator) * math.pi / 180
        scale = 1 + _uniform(b, -cfg.affine_scale, cfg.affine_scale, generator)
        tx = _uniform(b, -cfg.affine_translate, cfg.affine_translate, generator) * w
        ty = _uniform(b, -cfg.affine_translate, cfg.affine_translate, generator) * h
        cx, cy = (w - 1) / 2, (h - 1) / 2
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        m = eye.clone()
        m[:, 0, 0], m[:, 0, 1] = cos, -sin
        m[:, 1, 0], m[:, 1, 1] = sin, cos
        m[:, 0, 2] = cx + tx - cos * cx + sin * cy
        m[:, 1, 2] = cy + ty - sin * cx - cos * cy
        total = torch.where(on[:, None, None], m @ total, total)
        moved |= on
    return total, moved, flipped


def augment(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a float (B, C, H, W) batch in [0, 1]; returns (augmented, flipped).

    `flipped` is a bool (B,) tensor on the images' device: True where the sample was mirrored
    (negate its yaw label). Randomness comes from `generator`, else a fresh generator seeded
    with `seed`, else torch's global RNG; the same seed, input and device give the same
    output (per-sample parameters are drawn on the generator's device, the noise pixels on the
    images' device, so CPU and GPU agree except for the noise). With every probability zero
    the input tensor itself is returned.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ArgumentError(f"augment expects a float (B, C, H, W) batch, got {images.dtype} {tuple(images.shape)}")
    b, _, h, w = images.shape
    device = images.device
    if seed is not None and generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    if not config.enabled or b == 0:
        return images, torch.zeros(b, dtype=torch.bool, device=device)
    out = images
    matrices, moved, flipped = _geometry(config, b, h, w, generator)
    if moved.any():
        idx = moved.nonzero().squeeze(1).to(device)
        m = matrices[moved, :2].to(device=device, dtype=images.dtype)
        warped = warp_affine(
            images.index_select(0, idx),
            m,
            (h, w),
            mode="bilinear",
            padding_mode=config.padding_mode,
            align_corners=True,
        )
        out = images.index_copy(0, idx, warped)
    if config.color_p > 0:
        on = _coin(b, config.color_p, generator)
        delta = _uniform(b, -config.brightness, config.brightness, generator)
        factor = _uniform(b, 1 - config.contrast, 1 + config.contrast, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            sel = out.index_select(0, idx)
            mean = sel.mean(dim=(1, 2, 3), keepdim=True)
            f = factor[on].to(device=device, dtype=images.dtype).view(-1, 1, 1, 1)
            sel = ((sel - mean) * f + mean).clamp(0.0, 1.0)
            sel = adjust_brightness(sel, delta[on].to(device=device, dtype=images.dtype))
            out = out.index_copy(0, idx, sel)
    if config.blur_p > 0:
        on = _coin(b, config.blur_p, generator)
        sigma = _uniform(b, 0.1, config.blur_sigma, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            k = 2 * math.ceil(3 * config.blur_sigma) + 1
            k = max(3, min(k, 2 * ((min(h, w) - 1) // 2) + 1))
            sig = sigma[on].to(device=device, dtype=images.dtype).view(-1, 1).repeat(1, 2)
            out = out.index_copy(0, idx, gaussian_blur2d(out.index_select(0, idx), (k, k), sig))
    if config.noise_p > 0:
        on = _coin(b, config.noise_p, generator)
        std = _uniform(b, 0.0, config.noise_std, generator)
        if on.any():
            idx = on.nonzero().squeeze(1).to(device)
            shape = (int(on.sum()),) + tuple(images.shape[1:])
            noise_gen = None
            if generator is not None:
                # draw the noise on the images' device from a generator seeded by `generator`
                noise_gen = torch.Generator(device=device).manual_seed(
                    int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
                )
            noise = torch.randn(shape, generator=noise_gen, device=device, dtype=images.dtype)
            s = std[on].to(device=device, dtype=images.dtype).view(-1, 1, 1, 1)
            out = out.index_copy(0, idx, (out.index_select(0, idx) + noise * s).clamp(0.0, 1.0))
    return out, flipped.to(device)


class Augment(nn.Module):
    """nn.Module form of `augment`: active in training mode, the identity in eval mode.

    `forward(images)` returns the augmented batch and records the flips in `last_flipped`;
    `forward_with_flips(images)` returns both. With `seed` the module owns a generator, so a
    run is reproducible; without it torch's global RNG is used.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AugmentConfig()
        self.generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        self.last_flipped: torch.Tensor | None = None

    def forward_with_flips(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(augmented batch, bool (B,) flipped mask); unchanged and no flips in eval mode."""
        if not self.training:
            out, flipped = images, torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        else:
            out, flipped = augment(images, self.config, generator=self.generator)
        self.last_flipped = flipped
        return out, flipped

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The augmented batch; which samples were flipped is left in `self.last_flipped`."""
        return self.forward_with_flips(images)[0]
