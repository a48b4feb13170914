"""The batched SynthFace renderer: identities + per-image nuisances -> uint8 images.

`render_batch(identities, specs, size)` renders one image per `ImageSpec`. Each image takes
a window of its (identity, expression) surface grid around the visible side, rotates the
points (yaw, pitch, roll) about a pivot inside the head, projects them with a mild
perspective, and resolves visibility with a z-buffer: one `scatter_reduce(..., "amax")` of an
int64 key (quantised depth, then point index) per pixel, so the nearest point wins exactly
and ties cannot make the result depend on the batch; uncovered pixels between grid points take
the nearest point whose 2 x 2 footprint reaches them. Only the winning point of each pixel
is shaded (deferred shading), from its rotated normal (VIS: ambient + directional light,
specular, camera white balance; NIR: an active near-frontal source with distance falloff and
vignetting); then background and neck, blur, occluder, gamma and sensor noise are applied.

Conventions: image x grows to the right, y downward; a positive yaw turns the face toward
the image's right (the nose moves right and the negative-longitude side of the head comes
into view); a positive pitch tilts the face downward; roll turns it in the image plane. `_rotation`
builds R = Rz(roll) Rx(pitch) Ry(yaw) in a right-handed frame with z toward the camera.

Every operation works per image (element-wise, pooling, or a max-reduction; surface maps
per (identity, expression) pair), and random numbers come
from each spec's own seed, so an image does not depend on which other images share its
batch. The same code runs on a GPU (pass `device`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from hfr.data.synth_face import CHANNELS, LANDMARK_NAMES, LAT_LIMIT, Identity, surface_maps

OCCLUSIONS: tuple[str, ...] = ("sunglasses", "nose", "scarf", "hand", "block", "irregular")
"""Occluder kinds; "none" (or "") means no occluder."""

_LM = {name: i for i, name in enumerate(LANDMARK_NAMES)}
_DEPTH_Q = float(1 << 20)
_IDX_BITS = 22
_PIVOT = (0.0, -0.15, 0.35)
_PERSPECTIVE = 9.0
_BASE_SCALE = 0.4  # pixels per head unit, as a fraction of the image size
_WINDOW = math.radians(104.0)


@dataclass
class ImageSpec:
    """The nuisances of one image (angles in degrees; colours linear RGB in [0, 1]).

    identity: index into the identities passed to `render_batch`; expression: code in
    `synth_face.EXPRESSIONS`; light: direction toward the light in camera coordinates
    (x right, y up, z toward the camera); ambient/strength: light levels; light_colour:
    RGB of the directional light; specular: highlight strength; wb: camera white-balance
    gains; scale: multiplies the face size; shift: (dx, dy) in fractions of the image;
    blur: Gaussian sigma in pixels at size 64 (scaled with size); noise: sensor noise
    std; bg: two background colours and a gradient angle (radians); occlusion: a kind in
    OCCLUSIONS or "none"; occ: 16 uniforms that place and colour the occluder; seed:
    seeds the per-image noise.
    """

    identity: int
    modality: str = "vis"
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    expression: int = 0
    light: tuple[float, float, float] = (0.0, 0.3, 1.0)
    ambient: float = 0.45
    strength: float = 0.65
    light_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    specular: float = 0.05
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    blur: float = 0.0
    noise: float = 0.01
    bg: tuple[float, ...] = (0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.0)
    occlusion: str = "none"
    occ: tuple[float, ...] = field(default_factory=lambda: (0.5,) * 16)
    seed: int = 0


@dataclass
class RenderOutput:
    """Rendered images and their by-products.

    images: uint8 (B, H, W, 3) (NIR images have three equal channels; use `image(i)`);
    clean: uint8 (B, H, W, 3), the same renders without occluders (same noise);
    masks: uint8 (B, H, W), 255 where an occluder covers the pixel;
    landmarks: float (B, L, 2) pixel positions (x, y) of LANDMARK_NAMES;
    visible: bool (B, L), whether each landmark is the front-most surface at its pixel;
    modalities: per image "vis" or "nir".
    """

    images: np.ndarray
    clean: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    modalities: list[str]

    def image(self, i: int, clean: bool = False) -> np.ndarray:
        """Image i as stored: (H, W) for NIR, (H, W, 3) for VIS."""
        arr = self.clean[i] if clean else self.images[i]
        return arr[:, :, 0].copy() if self.modalities[i] == "nir" else arr


def _rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotation matrices R = Rz(roll) Rx(pitch) Ry(yaw), (B, 3, 3) float64; angles in radians."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    o, z = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([np.stack([cy, z, sy], -1), np.stack([z, o, z], -1), np.stack([-sy, z, cy], -1)], -2)
    rx = np.stack([np.stack([o, z, z], -1), np.stack([z, cp, -sp], -1), np.stack([z, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, z], -1), np.stack([sr, cr, z], -1), np.stack([z, z, o], -1)], -2)
    return rz @ rx @ ry


def _rotate(r: torch.Tensor, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Apply (B, 3, 3) rotations element-wise to (B, N) coordinates."""
    return tuple((r[:, i, 0:1] * x).add_(r[:, i, 1:2] * y).add_(r[:, i, 2:3] * z) for i in range(3))


def _gather(maps_cf: torch.Tensor, first: int, last: int, idx: torch.Tensor) -> torch.Tensor:
    """Channels first..last-1 of `maps_cf` (C, M) at `idx` (K,), as (last - first, K): one
    contiguous gather per channel (faster than an index_select along dimension 1)."""
    out = torch.empty((last - first, idx.numel()), dtype=maps_cf.dtype, device=maps_cf.device)
    for c in range(first, last):
        torch.index_select(maps_cf[c], 0, idx, out=out[c - first])
    return out


def _blur(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with a per-image sigma (B,): 7 taps from
    shifted slices of a replicate-padded image (element-wise, so batch-independent)."""
    taps = torch.arange(-3, 4, device=img.device, dtype=img.dtype)
    s = sigma.clamp(min=1e-3).view(-1, 1)
    wts = torch.exp(-0.5 * (taps.view(1, -1) / s) ** 2)
    wts = (wts / wts.sum(dim=1, keepdim=True)).view(-1, 7, 1, 1, 1)
    h, w = img.shape[2], img.shape[3]
    p = torch.nn.functional.pad(img, (3, 3, 0, 0), mode="replicate")
    out = p[..., 0:w] * wts[:, 0]
    for k in range(1, 7):
        out = out + p[..., k : k + w] * wts[:, k]
    p = torch.nn.functional.pad(out, (0, 0, 3, 3), mode="replicate")
    out = p[:, :, 0:h] * wts[:, 0]
    for k in range(1, 7):
        out = out + p[:, :, k : k + h] * wts[:, k]
    return out


def _zbuffer(
    pu: torch.Tensor, pv: torch.Tensor, key: torch.Tensor, valid: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Per-pixel maximum of `key` over the points (B, N) that land on pixel (pv, pu) and are
    `valid`; -1 where none does. Returns (B, H, W) int64."""
    b = pu.shape[0]
    inside = valid & (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
    pix = torch.where(
        inside, torch.arange(b, device=pu.device).view(-1, 1) * (h * w) + pv * w + pu, torch.full_like(pu, b * h * w)
    )
    zbuf = torch.full((b * h * w + 1,), -1, dtype=torch.long, device=pu.device)
    zbuf.scatter_reduce_(0, pix.view(-1), key.reshape(-1), reduce="amax", include_self=True)
    return zbuf[:-1].view(b, h, w)


def _footprint(
    u: torch.Tensor, v: torch.Tensor, key: torch.Tensor, valid: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Per-pixel maximum of `key` over the points (B, N) at continuous image positions (u, v)
    whose 2 x 2 footprint (the four pixels around the point) covers the pixel; -1 where none.

    One scatter onto the footprints' top-left corners (a grid one pixel larger on each side),
    then a 2 x 2 maximum: the same as scattering each point four times, at a quarter of the cost.
    """
    corner = _zbuffer(torch.floor(u + 0.5).long(), torch.floor(v + 0.5).long(), key, valid, h + 1, w + 1)
    m = torch.maximum(corner[:, :, :-1], corner[:, :, 1:])
    return torch.maximum(m[:, :-1], m[:, 1:])


def _neighbours(mask: torch.Tensor) -> torch.Tensor:
    """Number of set pixels among the 8 neighbours of each pixel of a (B, H, W) bool mask."""
    m = torch.nn.functional.pad(mask.to(torch.uint8), (1, 1, 1, 1))
    rows = m[:, :, :-2] + m[:, :, 1:-1] + m[:, :, 2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:] - mask.to(torch.uint8)


def _capsule(px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from pixel centres (1, H, W) to segments a-b, each (B, 2) -> (B, H, W)."""
    ax, ay = a[:, 0].view(-1, 1, 1), a[:, 1].view(-1, 1, 1)
    dx, dy = (b[:, 0] - a[:, 0]).view(-1, 1, 1), (b[:, 1] - a[:, 1]).view(-1, 1, 1)
    t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy).clamp(min=1e-6)).clamp(0, 1)
    return torch.sqrt((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2)


def _ellipse(
    px: torch.Tensor, py: torch.Tensor, c: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor, ang: torch.Tensor
) -> torch.Tensor:
    """Pixels inside rotated ellipses: centres (B, 2), radii and angles (B,) -> bool (B, H, W)."""
    ca, sa = torch.cos(ang).view(-1, 1, 1), torch.sin(ang).view(-1, 1, 1)
    dx, dy = px - c[:, 0].view(-1, 1, 1), py - c[:, 1].view(-1, 1, 1)
    u = (dx * ca + dy * sa) / rx.view(-1, 1, 1)
    v = (-dx * sa + dy * ca) / ry.view(-1, 1, 1)
    return u * u + v * v <= 1.0


def occluder_masks(
    kinds: Sequence[str],
    occ: torch.Tensor,
    lm: torch.Tensor,
    scale: torch.Tensor,
    size: int,
    near_side: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary occluder masks (B, H, W) from kinds, 16 uniforms each (B, 16), projected
    landmarks (B, L, 2) and face scale in pixels per head unit (B,). `near_side` (B,) is
    +1/-1 when the positive/negative-longitude ear faces the camera, 0 near frontal."""
    if near_side is None:
        near_side = torch.zeros(len(kinds), device=occ.device)
    dev = occ.device
    b = len(kinds)
    ys, xs = torch.meshgrid(
        torch.arange(size, device=dev, dtype=torch.float32) + 0.5,
        torch.arange(size, device=dev, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    px, py = xs.unsqueeze(0), ys.unsqueeze(0)
    mask = torch.zeros(b, size, size, dtype=torch.bool, device=dev)
    eye_p, eye_n = lm[:, _LM["eye_pos"]], lm[:, _LM["eye_neg"]]
    eye_mid = 0.5 * (eye_p + eye_n)
    s = scale
    zero = torch.zeros(b, device=dev)
    for kind in set(kinds):
        if kind in ("", "none"):
            continue
        sel = torch.tensor([k == kind for k in kinds], device=dev)
        u = occ
        if kind == "sunglasses":
            ang = torch.atan2(eye_p[:, 1] - eye_n[:, 1], eye_p[:, 0] - eye_n[:, 0])
            sep = (eye_p - eye_n).norm(dim=1)
            m = zero.bool().view(-1, 1, 1)
            for e in (eye_p, eye_n):
                rx = (0.2 + 0.05 * u[:, 0]) * s * (0.35 + 0.65 * (sep / (0.62 * s)).clamp(0.3, 1.0))
                ry = (0.15 + 0.04 * u[:, 1]) * s
                m = m | _ellipse(px, py, e, rx.clamp(min=1.5), ry, ang)
            m = m | (_capsule(px, py, eye_n, eye_p) <= 0.035 * s.view(-1, 1, 1) + 0.5)
            near_pos = (near_side > 0).view(-1, 1)
            e = torch.where(near_pos, eye_p, eye_n)
            ear = torch.where(near_pos, lm[:, _LM["ear_pos"]], lm[:, _LM["ear_neg"]])
            arm = (_capsule(px, py, e, ear) <= 0.03 * s.view(-1, 1, 1) + 0.5) & (near_side != 0).view(-1, 1, 1)
            m = m | arm
        elif kind == "nose":
            c = 0.45 * lm[:, _LM["nose_bridge"]] + 0.55 * lm[:, _LM["nose_tip"]]
            c = c + (u[:, 2:4] - 0.5) * 0.06 * s.view(-1, 1)
            hw = (0.17 + 0.08 * u[:, 0]) * s
            hh = (0.3 + 0.08 * u[:, 1]) * s
            m = ((px - c[:, 0].view(-1, 1, 1)).abs() <= hw.view(-1, 1, 1)) & (
                (py - c[:, 1].view(-1, 1, 1)).abs() <= hh.view(-1, 1, 1)
            )
        elif kind == "scarf":
            tip, mouth, chin = lm[:, _LM["nose_tip"]], lm[:, _LM["mouth_center"]], lm[:, _LM["chin"]]
            amp = (0.02 + 0.03 * u[:, 1]) * s
            top = mouth[:, 1] - (0.2 + 0.3 * u[:, 0]) * (mouth[:, 1] - tip[:, 1]) - amp
            wave = amp.view(-1, 1, 1) * torch.sin(px / (0.12 * s.view(-1, 1, 1)) + 6.28 * u[:, 2].view(-1, 1, 1))
            half = (0.95 + 0.3 * u[:, 3]) * s
            m = (py >= top.view(-1, 1, 1) + wave) & ((px - chin[:, 0].view(-1, 1, 1)).abs() <= half.view(-1, 1, 1))
        elif kind == "hand":
            anchors = torch.stack(
                [
                    mouth_c := lm[:, _LM["mouth_center"]],
                    lm[:, _LM["eye_pos"]],
                    lm[:, _LM["eye_neg"]],
                    0.5 * (mouth_c + lm[:, _LM["chin"]]),
                ],
                dim=1,
            )
            pick = (u[:, 0] * 4).long().clamp(max=3)
            c = anchors[torch.arange(b, device=dev), pick] + (u[:, 1:3] - 0.5) * 0.3 * s.view(-1, 1)
            ang = u[:, 3] * 6.2832
            m = _ellipse(px, py, c, (0.3 + 0.08 * u[:, 4]) * s, (0.24 + 0.06 * u[:, 5]) * s, ang)
            d = torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
            perp = torch.stack([-d[:, 1], d[:, 0]], dim=1)
            for f in range(4):
                off = (f - 1.5) * 0.12 * s.view(-1, 1)
                base = c + d * 0.22 * s.view(-1, 1) + perp * off
                tipf = base + d * (0.3 + 0.12 * u[:, 6 + f].view(-1, 1) - 0.05 * abs(f - 1.5)) * s.view(-1, 1)
                m = m | (_capsule(px, py, base, tipf) <= 0.055 * s.view(-1, 1, 1))
            thumb = c - perp * 0.26 * s.view(-1, 1)
            m = m | (_capsule(px, py, thumb, thumb + (d - perp) * 0.2 * s.view(-1, 1)) <= 0.06 * s.view(-1, 1, 1))
        elif kind == "block":
            cx = eye_mid[:, 0] + (u[:, 0] - 0.5) * 0.8 * s
            cy = eye_mid[:, 1] + (u[:, 1] - 0.2) * 0.9 * s
            hw, hh = (0.15 + 0.25 * u[:, 2]) * s, (0.15 + 0.25 * u[:, 3]) * s
            m = ((px - cx.view(-1, 1, 1)).abs() <= hw.view(-1, 1, 1)) & (
                (py - cy.view(-1, 1, 1)).abs() <= hh.view(-1, 1, 1)
            )
        elif kind == "irregular":
            m = zero.bool().view(-1, 1, 1)
            width = (0.03 + 0.04 * u[:, 15]) * s
            for k in range(3):
                p0 = eye_mid + (u[:, 2 * k : 2 * k + 2] - torch.tensor([0.5, 0.2], device=dev)) * 1.2 * s.view(-1, 1)
                for j in range(2):
                    a = u[:, 6 + 3 * k + j] * 6.2832
                    p1 = p0 + torch.stack([torch.cos(a), torch.sin(a)], 1) * (0.25 + 0.2 * u[:, 12 + k]).view(
                        -1, 1
                    ) * s.view(-1, 1)
                    m = m | (_capsule(px, py, p0, p1) <= width.view(-1, 1, 1))
                    p0 = p1
        else:
            raise ValueError(f"unknown occlusion kind {kind!r}; use one of {', '.join(OCCLUSIONS)}")
        mask = torch.where(sel.view(-1, 1, 1), m.expand(b, size, size), mask)
    return mask


def _occluder_colour(kinds: Sequence[str], occ: torch.Tensor, size: int) -> torch.Tensor:
    """Linear RGB occluder layer (B, 3, H, W): dark lenses, skin-toned hands, coloured fabric."""
    dev = occ.device
    u = occ
    base = torch.stack([0.05 + 0.8 * u[:, 13], 0.05 + 0.8 * u[:, 14], 0.05 + 0.8 * u[:, 12]], dim=1)
    for i, k in enumerate(kinds):
        if k == "sunglasses":
            base[i] = torch.tensor([0.03, 0.03, 0.04], device=dev) * (1 + u[i, 5])
        elif k == "hand":
            t = u[i, 11]
            base[i] = torch.stack([0.75 - 0.5 * t, 0.55 - 0.42 * t, 0.45 - 0.36 * t])
    ys = torch.linspace(0, 1, size, device=dev).view(1, -1, 1)
    xs = torch.linspace(0, 1, size, device=dev).view(1, 1, -1)
    shade = 0.75 + 0.35 * (u[:, 7].view(-1, 1, 1) * xs + (1 - u[:, 7]).view(-1, 1, 1) * (1 - ys))
    stripes = 1 + 0.15 * torch.sin((xs * 0.6 + ys) * size / 3.0 + u[:, 9].view(-1, 1, 1) * 6.28) * torch.tensor(
        [k in ("scarf", "block") for k in kinds], device=dev, dtype=torch.float32
    ).view(-1, 1, 1)
    return base.view(-1, 3, 1, 1) * (shade * stripes).unsqueeze(1)


_CHUNK_POINTS = 1 << 19  # points per internal sub-batch (keeps the working set in cache)


def render_batch(
    identities: Sequence[Identity], specs: Sequence[ImageSpec], size: int, device: torch.device | str = "cpu"
) -> RenderOutput:
    """Render one image per spec of `identities[spec.identity]` at `size` x `size` pixels.

    The result of an image depends only on its identity, its spec and `size` (and the
    device's float arithmetic), never on the rest of the batch. Internally the batch is
    processed in sub-batches sized to stay in cache.
    """
    dev = torch.device(device)
    if len(specs) == 0:
        raise ValueError("render_batch needs at least one ImageSpec")
    pairs = sorted({(s.identity, s.expression) for s in specs})
    pair_index = {pr: i for i, pr in enumerate(pairs)}
    maps, lm3 = surface_maps([identities[i] for i, _ in pairs], [e for _, e in pairs], size, dev)
    g_lat, g_lon = maps.shape[1], maps.shape[2]
    maps_cf = maps.permute(3, 0, 1, 2).reshape(CHANNELS, -1).contiguous()  # a view: maps are stored channels first
    half = int(math.ceil(_WINDOW / (2 * math.pi) * g_lon))
    n_pts = g_lat * (2 * half + 1)
    step = max(1, _CHUNK_POINTS // n_pts) if dev.type == "cpu" else 256
    parts = []
    for i in range(0, len(specs), step):
        sub = specs[i : i + step]
        pid = torch.tensor([pair_index[(s.identity, s.expression)] for s in sub], device=dev)
        parts.append(_render_chunk(maps, maps_cf, lm3, pid, sub, size, half))
    return RenderOutput(
        images=np.concatenate([p[0] for p in parts]),
        clean=np.concatenate([p[1] for p in parts]),
        masks=np.concatenate([p[2] for p in parts]),
        landmarks=np.concatenate([p[3] for p in parts]),
        visible=np.concatenate([p[4] for p in parts]),
        modalities=[s.modality for s in specs],
    )


def _render_chunk(
    maps: torch.Tensor,
    maps_cf: torch.Tensor,
    lm3: torch.Tensor,
    pid: torch.Tensor,
    specs: Sequence[ImageSpec],
    size: int,
    half: int,
) -> tuple[np.ndarray, ...]:
    """Render `specs` whose surfaces are maps[pid] (`maps_cf`: the same, channels first,
    (CHANNELS, n * G_lat * G_lon)); returns images, clean, masks, landmarks, visible."""
    dev = maps.device
    b = len(specs)
    h = w = size
    n_pair, g_lat, g_lon, _ = maps.shape
    yaw = np.radians(np.array([s.yaw for s in specs], dtype=np.float64))
    pitch = np.radians(np.array([s.pitch for s in specs], dtype=np.float64))
    roll = np.radians(np.array([s.roll for s in specs], dtype=np.float64))
    rot = torch.from_numpy(_rotation(yaw, pitch, roll).astype(np.float32)).to(dev)
    # a window of longitudes around the visible side (centred on -yaw)
    win = 2 * half + 1
    centre = np.round((np.pi - yaw) / (2 * np.pi) * g_lon).astype(np.int64)
    cols = (torch.from_numpy(centre - half).to(dev).view(-1, 1) + torch.arange(win, device=dev).view(1, -1)) % g_lon
    flat = (
        pid.view(-1, 1, 1) * (g_lat * g_lon)
        + torch.arange(g_lat, device=dev).view(1, -1, 1) * g_lon
        + cols.view(b, 1, win)
    ).view(b, -1)
    pts = _gather(maps_cf, 0, 6, flat.view(-1)).view(6, b, -1)  # (6, B, N): positions and normals
    n_pts = pts.shape[2]
    piv = _PIVOT
    x, y, z = _rotate(rot, pts[0] - piv[0], pts[1] - piv[1], pts[2] - piv[2])
    nz = rot[:, 2, 0:1] * pts[3] + rot[:, 2, 1:2] * pts[4] + rot[:, 2, 2:3] * pts[5]
    # landmarks: rotate, project; centre the face on the mean of eyes, nose tip and mouth
    lmp = lm3[pid]
    lx, ly, lz = _rotate(rot, lmp[..., 0] - piv[0], lmp[..., 1] - piv[1], lmp[..., 2] - piv[2])
    scale = torch.tensor([_BASE_SCALE * size * s.scale for s in specs], device=dev, dtype=torch.float32)
    shift = torch.tensor([s.shift for s in specs], device=dev, dtype=torch.float32) * size
    fl = 1.0 / (1.0 - lz / _PERSPECTIVE)
    lu, lv = lx * fl, -ly * fl
    core = [_LM["eye_pos"], _LM["eye_neg"], _LM["nose_tip"], _LM["mouth_center"]]
    ox = size / 2 + shift[:, 0] - scale * lu[:, core].mean(dim=1)
    oy = size / 2 + shift[:, 1] - scale * (lv[:, core].mean(dim=1) + 0.1)
    lm2 = torch.stack([ox.view(-1, 1) + scale.view(-1, 1) * lu, oy.view(-1, 1) + scale.view(-1, 1) * lv], dim=-1)
    f = scale.view(-1, 1) / (1.0 - z / _PERSPECTIVE)
    u_img = ox.view(-1, 1) + x * f
    v_img = oy.view(-1, 1) - y * f
    # z-buffer: the nearest point per pixel wins; int64 key = quantised depth, then point index
    front = nz > -0.1
    key = (((z + 8.0) * _DEPTH_Q).long() << _IDX_BITS) + torch.arange(n_pts, device=dev).view(1, -1)
    win_key = _zbuffer(torch.floor(u_img).long(), torch.floor(v_img).long(), key, front, h, w)
    # gaps of the point grid: the nearest point among those within a pixel of the pixel centre
    # (a 2 x 2 footprint per point) fills uncovered pixels with at least 3 covered neighbours
    foot = _footprint(u_img, v_img, key, front, h, w)
    hit = win_key >= 0
    win_key = torch.where(~hit & (_neighbours(hit) >= 3), foot, win_key)
    covered = win_key >= 0
    widx = torch.where(covered, win_key & ((1 << _IDX_BITS) - 1), 0)
    # deferred shading: only the winning point of each pixel is shaded
    gidx = flat.gather(1, widx.view(b, -1))  # (B, H*W) indices into the maps
    att = _gather(maps_cf, 3, 10, gidx.view(-1)).view(7, b, -1)  # (7, B, H*W): normals, albedo
    nx, ny, nz = _rotate(rot, att[0], att[1], att[2])
    z = z.gather(1, widx.view(b, -1))
    nir_list = [s.modality == "nir" for s in specs]
    any_nir, all_nir = any(nir_list), all(nir_list)
    is_nir = torch.tensor(nir_list, device=dev)
    light = torch.tensor([s.light for s in specs], device=dev, dtype=torch.float32)
    light = light / light.norm(dim=1, keepdim=True).clamp(min=1e-6)
    lam = (nx * light[:, 0:1] + ny * light[:, 1:2] + nz * light[:, 2:3]).clamp_(min=0)
    hv = light + torch.tensor([0.0, 0.0, 1.0], device=dev)
    hv = hv / hv.norm(dim=1, keepdim=True).clamp(min=1e-6)
    spec_term = (nx * hv[:, 0:1] + ny * hv[:, 1:2] + nz * hv[:, 2:3]).clamp_(min=0) ** 16
    amb = torch.tensor([s.ambient for s in specs], device=dev).view(-1, 1)
    strength = torch.tensor([s.strength for s in specs], device=dev).view(-1, 1)
    spec_k = torch.tensor([s.specular for s in specs], device=dev).view(-1, 1)
    direct = strength * lam
    spec_term = spec_k * spec_term
    if any_nir:
        d0 = _PERSPECTIVE * 0.45
        falloff = torch.where(is_nir.view(-1, 1), (d0 - 0.9) / (d0 - z), torch.ones_like(z))
        direct = direct * falloff
        spec_term = spec_term * falloff
    lcol = torch.tensor([s.light_colour for s in specs], device=dev, dtype=torch.float32)
    if all_nir:
        alb = att[6:7].expand(3, -1, -1)
    elif any_nir:
        alb = torch.where(is_nir.view(1, -1, 1), att[6:7], att[3:6])
    else:
        alb = att[3:6]
    col = alb * (amb + direct * lcol.t().unsqueeze(-1)) + spec_term  # (3, B, H*W)
    face = col.view(3, b, h, w).transpose(0, 1)
    cov = covered.unsqueeze(1).float()
    # landmark visibility: its depth is (nearly) the winning depth at its pixel
    lpu, lpv = torch.floor(lm2[..., 0]).long(), torch.floor(lm2[..., 1]).long()
    lin = (lpu >= 0) & (lpu < w) & (lpv >= 0) & (lpv < h)
    lk = win_key[torch.arange(b, device=dev).view(-1, 1), lpv.clamp(0, h - 1), lpu.clamp(0, w - 1)]
    wz = (lk >> _IDX_BITS).float() / _DEPTH_Q - 8.0
    visible = lin & (lk >= 0) & (lz >= wz - 0.12)
    # background gradient and a neck under the head
    bgp = torch.tensor([s.bg for s in specs], device=dev, dtype=torch.float32)
    ys = (torch.arange(h, device=dev, dtype=torch.float32).view(1, 1, -1, 1) + 0.5) / h - 0.5
    xs = (torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, 1, -1) + 0.5) / w - 0.5
    ang = bgp[:, 6].view(-1, 1, 1, 1)
    t = (0.5 + torch.cos(ang) * xs + torch.sin(ang) * ys).clamp(0, 1)
    bg = bgp[:, 0:3].view(-1, 3, 1, 1) * (1 - t) + bgp[:, 3:6].view(-1, 3, 1, 1) * t
    one = torch.ones_like(ox).view(-1, 1)
    nk = _rotate(rot, -piv[0] * one, (-0.75 - piv[1]) * one, (-0.2 - piv[2]) * one)
    neck_x = (ox + scale * nk[0][:, 0]).view(-1, 1, 1, 1)
    neck_y = (oy - scale * nk[1][:, 0]).view(-1, 1, 1, 1)
    sc4 = scale.view(-1, 1, 1, 1)
    py_pix, px_pix = ys * h + h / 2, xs * w + w / 2
    neck_w = 0.42 * sc4 * (1 + 0.15 * (py_pix - neck_y).clamp(min=0) / sc4)
    neck = ((px_pix - neck_x).abs() <= neck_w) & (py_pix >= neck_y - 0.3 * sc4)
    lat_i = int(round((-0.3 + LAT_LIMIT) / (2 * LAT_LIMIT) * (g_lat - 1)))
    neck_alb = maps[pid, lat_i, int(g_lon / 2 + 0.6 / (2 * math.pi) * g_lon)][:, 6:10]
    neck_col = (
        torch.where(is_nir.view(-1, 1), neck_alb[:, 3:4].expand(-1, 3), neck_alb[:, 0:3])
        * (amb + 0.4 * strength)
        * 0.75
    )
    neck_shade = 0.8 + 0.4 * xs * torch.sign(light[:, 0]).view(-1, 1, 1, 1)
    bg = torch.where(neck, neck_col.view(-1, 3, 1, 1) * neck_shade, bg)
    img = torch.where(cov > 0, face, bg)
    if any_nir:  # vignetting of the active NIR source
        img = img * torch.where(is_nir.view(-1, 1, 1, 1), 1.0 - 0.35 * (xs**2 + ys**2), torch.ones_like(xs + ys))
    wb = torch.tensor([s.wb for s in specs], device=dev, dtype=torch.float32).view(-1, 3, 1, 1)
    img = img * wb
    sig = np.array([s.blur for s in specs], dtype=np.float32) * (size / 64.0)
    blur_idx = np.nonzero(sig > 0.05)[0]
    if len(blur_idx):
        bi = torch.from_numpy(blur_idx).to(dev)
        img = img.index_copy(0, bi, _blur(img.index_select(0, bi), torch.from_numpy(sig[blur_idx]).to(dev)))
    # occluders, composited on the camera image (so clean and occluded differ only under the mask)
    kinds = [s.occlusion if s.occlusion else "none" for s in specs]
    if any(k != "none" for k in kinds):
        occ_u = torch.tensor([list(s.occ) for s in specs], device=dev, dtype=torch.float32)
        ear_dz = lz[:, _LM["ear_pos"]] - lz[:, _LM["ear_neg"]]
        near_side = torch.where(ear_dz.abs() > 0.3, torch.sign(ear_dz), torch.zeros_like(ear_dz))
        mask = occluder_masks(kinds, occ_u, lm2, scale, size, near_side)
        layer = _occluder_colour(kinds, occ_u, size) * wb
        if any_nir:
            layer = torch.where(is_nir.view(-1, 1, 1, 1), layer.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1), layer)
        occl = torch.where(mask.unsqueeze(1), layer, img)
    else:
        mask = None
        occl = img
    # gamma, then sensor noise (shared by the clean and occluded versions), then quantisation
    noise = np.empty((b, 3, h, w), dtype=np.float32)
    for i, s in enumerate(specs):
        gen = np.random.default_rng(s.seed)
        if s.modality == "nir":  # one noise plane, the same in the three channels
            gen.standard_normal((1, h, w), dtype=np.float32, out=noise[i, :1])
            noise[i, 1:] = noise[i, :1]
        else:
            gen.standard_normal((3, h, w), dtype=np.float32, out=noise[i])
    noise *= np.array([s.noise for s in specs], dtype=np.float32).reshape(-1, 1, 1, 1)
    noise_t = torch.from_numpy(noise).to(dev)

    def finish(im: torch.Tensor) -> np.ndarray:
        im = im.clamp(min=0).pow_(1 / 2.2)
        if any_nir:
            im.add_(noise_t * torch.where(is_nir.view(-1, 1, 1, 1), 0.5 + 0.5 * im.sqrt(), torch.ones_like(im)))
        else:
            im.add_(noise_t)
        return im.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()

    images = finish(occl)
    if mask is None:
        clean, mask_np = images, np.zeros((b, h, w), dtype=np.uint8)
    else:
        clean, mask_np = finish(img), (mask.to(torch.uint8) * 255).cpu().numpy()
    return images, clean, mask_np, lm2.cpu().numpy(), visible.cpu().numpy()
