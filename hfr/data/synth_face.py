"""SynthFace identities: seeded shape and appearance parameters and the surface they define.

An identity is a vector of continuous shape scores (head and face proportions, jaw, chin,
cheekbones, brow ridge, eyes, nose, lips, ears, asymmetry), appearance values (skin tone,
redness, iris, brow and hair colour, hairline and hairstyle, beard, lip tone) and seeded
patterns (smooth shape bumps, skin-tone blotches, moles, freckles). `sample_identity`
draws them from a generator seeded by (seed, namespace, subject index) only, so a subject
is the same person whatever else is rendered, in whichever batch or worker.

The surface is parametrised by longitude `lon` (0 = facing the camera, positive toward +x)
and latitude `lat` (positive up) on an ellipsoidal head whose radius is modulated by an
identity-specific height field. `surface_maps` evaluates, on a (lat, lon) grid and for
each (identity, expression) pair, the 3D points, their normals, the visible-light albedo
(linear RGB) and the near-infrared albedo (one channel): the NIR albedo is a different
function of the same appearance (melanin barely matters, irises and hair reflect more,
freckles vanish), as in real NIR imagery.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

SHAPE_NAMES: tuple[str, ...] = (
    "head_width", "head_height", "head_depth", "jaw_width", "chin_length", "chin_protrusion",
    "cheekbone_height", "cheekbone_prominence", "cheek_fullness", "brow_ridge", "forehead_slope",
    "eye_spacing", "eye_size", "eye_socket_depth", "eye_height", "eye_tilt", "nose_length",
    "nose_width", "nose_bridge", "nose_tip", "nose_tip_bulb", "mouth_width", "lip_upper",
    "lip_lower", "mouth_height", "ear_size", "ear_protrusion", "ear_height", "face_asymmetry",
    "temple_width",
)
"""Continuous shape parameters (standard-normal scores, clipped to +-2.5)."""

APPEARANCE_NAMES: tuple[str, ...] = (
    "melanin", "redness", "iris_hue", "iris_dark", "iris_nir", "hair_dark", "hair_red",
    "hair_grey", "brow_dark", "brow_thickness", "brow_arch", "hairline", "hair_side",
    "hair_long", "bangs", "hair_volume", "beard", "lip_tone", "hair_phase", "freckles",
    "skin_nir", "balding",
)
"""Appearance parameters, each in [0, 1]."""

EXPRESSIONS: tuple[str, ...] = ("neutral", "smile", "open_mouth", "eyes_closed")
"""Expressions in the order of their integer codes."""

LANDMARK_NAMES: tuple[str, ...] = (
    "eye_pos", "eye_neg", "nose_tip", "mouth_pos", "mouth_neg", "mouth_center", "chin",
    "ear_pos", "ear_neg", "nose_bridge",
)
"""Named 3D landmarks; `_pos`/`_neg` are the sides at positive/negative longitude."""

N_BUMPS = 10
N_TONE = 6
N_MARKS = 4
N_FRECKLES = 40
LAT_LIMIT = math.radians(86.0)
CHANNELS = 10  # x, y, z, nx, ny, nz, r, g, b, nir
GRID_DENSITY = (1.4, 2.3)
"""Surface grid points per output pixel of size: (latitude, longitude over the full circle)."""

_S = {name: i for i, name in enumerate(SHAPE_NAMES)}
_A = {name: i for i, name in enumerate(APPEARANCE_NAMES)}

# Iris colours (linear RGB) indexed by a hue in [0, 1): dark brown .. brown .. hazel .. green .. blue .. grey.
_IRIS = np.array([[0.10, 0.05, 0.03], [0.22, 0.11, 0.05], [0.30, 0.24, 0.10],
                  [0.18, 0.30, 0.14], [0.20, 0.32, 0.55], [0.38, 0.42, 0.46]], dtype=np.float32)


@dataclass(frozen=True)
class Identity:
    """The parameters of one synthetic person (all numpy float32 arrays).

    shape: (len(SHAPE_NAMES),) scores; appearance: (len(APPEARANCE_NAMES),) in [0, 1];
    bumps: (N_BUMPS, 5) smooth height bumps (lon, lat, sigma_lon, sigma_lat, amplitude);
    tone: (N_TONE, 5) skin-tone blotches in the same form; marks: (N_MARKS, 4) moles
    (lon, lat, radius, strength; strength 0 = absent); freckles: (N_FRECKLES, 3)
    (lon, lat, strength).
    """

    shape: np.ndarray
    appearance: np.ndarray
    bumps: np.ndarray
    tone: np.ndarray
    marks: np.ndarray
    freckles: np.ndarray


def namespace_code(namespace: str) -> int:
    """A stable integer for an identity namespace (CRC-32 of its name)."""
    return zlib.crc32(namespace.encode("utf-8"))


def identity_rng(seed: int, namespace: str, index: int) -> np.random.Generator:
    """The generator of subject `index` in `namespace`: seeded by those three values only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), namespace_code(namespace),
                                                                       int(index)])))


def sample_identity(seed: int, namespace: str, index: int) -> Identity:
    """Draw the identity of subject `index` (0-based) in `namespace` for `seed`."""
    rng = identity_rng(seed, namespace, index)
    shape = np.clip(rng.standard_normal(len(SHAPE_NAMES)), -2.5, 2.5).astype(np.float32)
    app = rng.random(len(APPEARANCE_NAMES)).astype(np.float32)
    bumps = np.stack([rng.uniform(-1.0, 1.0, N_BUMPS), rng.uniform(-0.9, 0.7, N_BUMPS),
                      rng.uniform(0.08, 0.25, N_BUMPS), rng.uniform(0.06, 0.2, N_BUMPS),
                      rng.normal(0.0, 0.03, N_BUMPS)], axis=1).astype(np.float32)
    tone = np.stack([rng.uniform(-1.0, 1.0, N_TONE), rng.uniform(-0.9, 0.6, N_TONE),
                     rng.uniform(0.1, 0.3, N_TONE), rng.uniform(0.08, 0.25, N_TONE),
                     rng.normal(0.0, 0.09, N_TONE)], axis=1).astype(np.float32)
    n_marks = int(rng.choice(5, p=[0.35, 0.3, 0.2, 0.1, 0.05]))
    marks = np.stack([rng.uniform(-0.85, 0.85, N_MARKS), rng.uniform(-0.75, 0.45, N_MARKS),
                      rng.uniform(0.02, 0.04, N_MARKS), rng.uniform(0.5, 0.85, N_MARKS)], axis=1)
    marks[n_marks:, 3] = 0.0
    freckle_amount = max(0.0, float(app[_A["freckles"]]) - 0.7) / 0.3  # about 30% of people have freckles
    freckles = np.stack([rng.normal(0.0, 0.32, N_FRECKLES), rng.normal(-0.12, 0.16, N_FRECKLES),
                         rng.uniform(0.3, 1.0, N_FRECKLES) * freckle_amount], axis=1)
    return Identity(shape, app, bumps, tone, marks.astype(np.float32), freckles.astype(np.float32))


# ----------------------------------------------------------------------------- helpers
def _g(x: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """Unnormalised Gaussian exp(-x^2 / 2 s^2)."""
    return torch.exp(-0.5 * (x / s) ** 2)


def _sig(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def _wrap(d: torch.Tensor) -> torch.Tensor:
    """Wrap an angle difference into (-pi, pi]."""
    return torch.remainder(d + math.pi, 2 * math.pi) - math.pi


def _bump_sum(lon: torch.Tensor, lat: torch.Tensor, c_lon: torch.Tensor, c_lat: torch.Tensor,
              s_lon: torch.Tensor, s_lat: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
    """Sum over k of amp_k * g(wrap(lon - c_lon_k), s_lon_k) * g(lat - c_lat_k, s_lat_k).

    Bump parameters are (n, K). On a grid (lon (1, 1, G_lon), lat (1, G_lat, 1)) each
    Gaussian is separable, so the sum is one batched matrix product; at other points
    (for example landmarks, (n, 1, L)) it is evaluated directly.
    """
    if lon.dim() == 3 and lon.shape[0] == 1 and lon.shape[1] == 1 and lat.shape[0] == 1 and lat.shape[2] == 1:
        g_lon = _g(_wrap(lon.view(1, 1, -1) - c_lon.unsqueeze(-1)), s_lon.unsqueeze(-1))  # (n, K, G_lon)
        g_lat = _g(lat.view(1, 1, -1) - c_lat.unsqueeze(-1), s_lat.unsqueeze(-1)) * amp.unsqueeze(-1)  # (n, K, G_lat)
        return torch.bmm(g_lat.transpose(1, 2), g_lon)
    out = torch.zeros_like(lon * lat * c_lon[:, :1].unsqueeze(-1))
    for k in range(c_lon.shape[1]):
        def col(t: torch.Tensor) -> torch.Tensor:
            return t[:, k].view(-1, 1, 1)
        out = out + col(amp) * _g(_wrap(lon - col(c_lon)), col(s_lon)) * _g(lat - col(c_lat), col(s_lat))
    return out


class _Params:
    """Physical parameters of a batch of identities as (n, 1, 1) tensors."""

    def __init__(self, ids: Sequence[Identity], device: torch.device) -> None:
        sh = torch.from_numpy(np.stack([i.shape for i in ids])).to(device)
        ap = torch.from_numpy(np.stack([i.appearance for i in ids])).to(device)
        self.bumps = torch.from_numpy(np.stack([i.bumps for i in ids])).to(device)  # (n, K, 5)
        self.tone = torch.from_numpy(np.stack([i.tone for i in ids])).to(device)
        self.marks = torch.from_numpy(np.stack([i.marks for i in ids])).to(device)
        self.freckles = torch.from_numpy(np.stack([i.freckles for i in ids])).to(device)

        def z(name: str) -> torch.Tensor:
            return sh[:, _S[name]].view(-1, 1, 1)

        def a(name: str) -> torch.Tensor:
            return ap[:, _A[name]].view(-1, 1, 1)

        self.a = a
        self.ax = 1.0 + 0.09 * z("head_width")
        self.ay = 1.3 + 0.1 * z("head_height")
        self.az = 1.1 + 0.08 * z("head_depth")
        self.jaw = 0.2 + 0.11 * z("jaw_width")
        self.temple = 0.08 * z("temple_width")
        self.asym = 0.05 * z("face_asymmetry")
        self.eye_dx = 0.34 + 0.05 * z("eye_spacing")
        self.eye_lat = 0.13 + 0.045 * z("eye_height")
        self.eye_w = 0.105 * (1 + 0.2 * z("eye_size"))
        self.eye_h = 0.045 * (1 + 0.2 * z("eye_size"))
        self.socket = 0.045 + 0.02 * z("eye_socket_depth")
        self.tilt = 0.2 * z("eye_tilt")
        self.brow = 0.035 + 0.02 * z("brow_ridge")
        self.forehead = 0.16 + 0.12 * z("forehead_slope")
        self.tip_lat = self.eye_lat - (0.37 + 0.07 * z("nose_length"))
        self.nose_w = 0.085 * (1 + 0.28 * z("nose_width"))
        self.bridge = 0.075 + 0.035 * z("nose_bridge")
        self.tip = 0.1 + 0.04 * z("nose_tip")
        self.bulb = 0.055 * (1 + 0.28 * z("nose_tip_bulb"))
        self.mouth_lat = self.tip_lat - (0.17 + 0.04 * z("mouth_height"))
        self.mouth_w = 0.22 * (1 + 0.18 * z("mouth_width"))
        self.lip_u = 0.028 * (1 + 0.3 * z("lip_upper"))
        self.lip_l = 0.036 * (1 + 0.3 * z("lip_lower"))
        self.chin_lat = self.mouth_lat - (0.3 + 0.07 * z("chin_length"))
        self.chin = 0.07 + 0.035 * z("chin_protrusion")
        self.cheek_lat = self.eye_lat - 0.22 + 0.04 * z("cheekbone_height")
        self.cheek = 0.045 + 0.025 * z("cheekbone_prominence")
        self.cheek_full = 0.03 + 0.025 * z("cheek_fullness")
        self.ear_size = 1 + 0.2 * z("ear_size")
        self.ear_prot = 0.12 + 0.04 * z("ear_protrusion")
        self.ear_lat = self.eye_lat - 0.12 + 0.05 * z("ear_height")
        self.hair_vol = 0.02 + 0.18 * a("hair_volume")

    def landmark_coords(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lon, lat) of LANDMARK_NAMES, each (n, 1, L)."""
        z = torch.zeros_like(self.eye_dx)
        ear = math.pi / 2 + 0.06
        lon = torch.cat([self.eye_dx * (1 + self.asym), -self.eye_dx, z, self.mouth_w, -self.mouth_w, z, z,
                         z + ear, z - ear, z], dim=2)
        lat = torch.cat([self.eye_lat, self.eye_lat, self.tip_lat, self.mouth_lat, self.mouth_lat,
                         self.mouth_lat, self.chin_lat + 0.05, self.ear_lat, self.ear_lat, self.eye_lat], dim=2)
        return lon, lat


# ----------------------------------------------------------------------------- regions
def _regions(p: _Params, lon: torch.Tensor, lat: torch.Tensor, expr: torch.Tensor) -> dict[str, torch.Tensor]:
    """Soft masks and local coordinates of facial regions; `expr` is (n, 1, 1) integer codes."""
    smile = (expr == 1).float()
    open_m = (expr == 2).float()
    closed = (expr == 3).float()
    side = torch.where(lon > 0, 1.0 + p.asym, 1.0 - p.asym)
    r: dict[str, torch.Tensor] = {"smile": smile, "open": open_m, "closed": closed}
    # eyes: local coordinates around the nearer eye
    ecx = torch.where(lon > 0, p.eye_dx * (1 + p.asym), -p.eye_dx)
    dx = lon - ecx
    ex = dx / p.eye_w
    ey = (lat - p.eye_lat - p.tilt * dx * torch.sign(lon)) / p.eye_h
    r["ex"], r["ey"] = ex, ey
    r["eye"] = _sig((1.0 - ex ** 2 - ey ** 2) * 7.0)
    # brows
    bx = dx / (p.eye_w * 1.5) + 0.15 * torch.sign(lon)
    arch = 0.02 + 0.03 * p.a("brow_arch")
    brow_lat = p.eye_lat + 0.095 + arch * (1 - bx ** 2) + 0.02 * smile
    thick = 0.014 + 0.014 * p.a("brow_thickness")
    r["brow"] = _sig((1.0 - bx.abs()) * 8.0) * _g(lat - brow_lat, thick)
    # mouth and lips
    mw = p.mouth_w * (1 + 0.15 * smile)
    mx = lon / mw
    curve = (0.035 * smile - 0.004) * mx ** 2
    my = lat - p.mouth_lat - curve
    lip_h = torch.where(my > 0, p.lip_u, p.lip_l) * (1 - 0.3 * smile)
    r["lips"] = _sig((1.0 - mx ** 2 - (my / lip_h) ** 2) * 6.0)
    gap = 0.004 + 0.045 * open_m
    r["mouth_gap"] = _sig((1.0 - (mx / 0.85) ** 2 - (my / gap) ** 2) * 6.0)
    r["teeth"] = r["mouth_gap"] * open_m * _sig((my - 0.15 * gap) / 0.006)
    # hair: above a hairline, on the sides and the back
    wl = _wrap(lon)
    hl = 0.18 + 0.45 * p.a("hairline") + 0.35 * p.a("balding") ** 4
    bangs = p.a("bangs") ** 2 * 0.35
    front_line = hl - bangs * _g(wl, 0.7) + (p.a("hair_phase") - 0.5) * 0.5 * wl
    side_low = -0.1 - 0.75 * p.a("hair_long") ** 1.5 - 0.15 * p.a("hair_side")
    side_w = _sig((wl.abs() - (1.3 + 0.2 * (1 - p.a("hair_side")))) / 0.06)
    line = front_line * (1 - side_w) + side_low * side_w
    r["hair"] = _sig((lat - line) / 0.025)
    r["hair_geo"] = _sig((lat - line - 0.06) / 0.07)  # a smooth rise keeps the splatting dense
    # beard: lower face below the nose, outside the lips
    beard_amt = (p.a("beard") - 0.72).clamp(min=0) / 0.28
    beard_zone = _sig((p.tip_lat - 0.05 - lat) / 0.03) * _sig((1.45 - wl.abs()) / 0.08)
    r["beard"] = beard_amt * beard_zone * (1 - r["lips"]) * (1 - r["mouth_gap"])
    r["side"] = side
    return r


# ----------------------------------------------------------------------------- geometry
def _geometry(p: _Params, lon: torch.Tensor, lat: torch.Tensor, expr: torch.Tensor,
              reg: dict[str, torch.Tensor]) -> torch.Tensor:
    """Surface points (n, ..., 3) at (lon, lat) for identities `p` and expressions `expr`."""
    wl = _wrap(lon)
    face = _sig((1.25 - wl.abs()) / 0.1)  # the front of the head
    side = reg["side"]
    h = torch.zeros_like(wl * lat)
    ecx = torch.where(lon > 0, p.eye_dx * (1 + p.asym), -p.eye_dx)
    h = h + p.brow * _g(lat - p.eye_lat - 0.11, 0.04) * _g(wl, 0.42)
    h = h - p.socket * side * _g(lon - ecx, p.eye_w * 1.1) * _g(lat - p.eye_lat, p.eye_h * 1.6)
    h = h + 0.5 * p.socket * _g(lon - ecx, p.eye_w * 0.8) * _g(lat - p.eye_lat, p.eye_h * 1.0)
    # nose: a ridge from the bridge to the tip, wings and the tip bulb
    t = ((p.eye_lat - lat) / (p.eye_lat - p.tip_lat)).clamp(-0.2, 1.15)
    ridge = _sig((lat - p.tip_lat + 0.02) / 0.015) * _sig((p.eye_lat + 0.04 - lat) / 0.03)
    h = h + p.bridge * (0.35 + 0.65 * t) * ridge * _g(wl, p.nose_w * (0.35 + 0.45 * t))
    h = h + p.tip * _g(wl, p.bulb) * _g(lat - p.tip_lat - 0.01, p.bulb * 0.8)
    h = h + 0.4 * p.tip * _g(wl.abs() - p.nose_w * 0.85, p.bulb * 0.7) * _g(lat - p.tip_lat + 0.005, 0.03)
    # cheeks, lips, chin
    h = h + p.cheek * side * _g(wl.abs() - 0.55, 0.2) * _g(lat - p.cheek_lat - 0.02 * reg["smile"], 0.11)
    h = h + 0.025 * reg["smile"] * _g(wl.abs() - 0.42, 0.12) * _g(lat - p.mouth_lat - 0.07, 0.07)
    h = h + p.cheek_full * _g(wl.abs() - 0.72, 0.22) * _g(lat - p.mouth_lat, 0.15)
    h = h + 0.03 * reg["lips"] - 0.05 * reg["mouth_gap"] * reg["open"]
    h = h + p.chin * _g(wl, 0.2) * _g(lat - p.chin_lat - 0.06, 0.09)
    # ears (side bumps)
    ear = math.pi / 2 + 0.06
    h = h + p.ear_prot * _g(wl.abs() - ear, 0.1 * p.ear_size) * _g(lat - p.ear_lat, 0.17 * p.ear_size)
    # identity bumps
    b = p.bumps
    h = h + face * _bump_sum(lon, lat, b[..., 0], b[..., 1], b[..., 2], b[..., 3], b[..., 4])
    h = h + p.hair_vol * reg["hair_geo"] + 0.012 * reg["beard"]
    cl, sl = torch.cos(lat), torch.sin(lat)
    low = _sig((-0.2 - lat) / 0.14)
    xs = p.ax * (1 - p.jaw * low * face - 0.05) * (1 + p.temple * _sig((lat - 0.3) / 0.1))
    zs = p.az * (1 - p.forehead * (lat - 0.35).clamp(min=0) * face)
    rad = 1 + h
    x = xs * rad * cl * torch.sin(lon)
    y = p.ay * rad * sl
    z = zs * rad * cl * torch.cos(lon)
    # open mouth: the jaw drops
    drop = reg["open"] * 0.11 * _sig((p.mouth_lat - 0.01 - lat) / 0.02) * face * _sig((0.4 - lat) / 0.1)
    y = y - drop
    x, y, z = torch.broadcast_tensors(x, y, z)
    return torch.stack([x, y, z], dim=-1)


def _normals(pts: torch.Tensor) -> torch.Tensor:
    """Outward unit normals of a (n, G_lat, G_lon, 3) grid wrapping in longitude."""
    d_lon = torch.roll(pts, -1, dims=2) - torch.roll(pts, 1, dims=2)
    d_lat = torch.cat([pts[:, 1:2] - pts[:, 0:1], pts[:, 2:] - pts[:, :-2], pts[:, -1:] - pts[:, -2:-1]], dim=1)
    n = torch.cross(d_lon, d_lat, dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp(min=1e-8)


# ----------------------------------------------------------------------------- albedo
def _albedo(p: _Params, lon: torch.Tensor, lat: torch.Tensor, reg: dict[str, torch.Tensor]) -> torch.Tensor:
    """Linear RGB and NIR albedo, (n, ..., 4)."""
    a = p.a
    wl = _wrap(lon)
    m = a("melanin")
    skin = torch.cat([0.82 - 0.62 * m, 0.62 - 0.49 * m, 0.52 - 0.43 * m], dim=2).view(-1, 1, 1, 3)
    skin = skin * torch.tensor([1.0, 0.93, 0.9], device=lon.device) ** (a("redness").unsqueeze(-1) * 2)
    skin_nir = 0.6 + 0.1 * a("skin_nir") - 0.2 * m  # NIR skin is bright; melanin matters less than in VIS
    # blotches, blush and freckles change VIS tone; NIR sees little of them
    tn = p.tone
    tone = _bump_sum(lon, lat, tn[..., 0], tn[..., 1], tn[..., 2], tn[..., 3], tn[..., 4])
    blush = 0.25 * a("redness") * _g(wl.abs() - 0.5, 0.16) * _g(lat - p.cheek_lat + 0.05, 0.1)
    fk = p.freckles
    fs = torch.full_like(fk[..., 0], 0.012)
    fr = _bump_sum(lon, lat, fk[..., 0], fk[..., 1], fs, fs, fk[..., 2])
    mk = p.marks
    moles = _bump_sum(lon, lat, mk[..., 0], mk[..., 1], mk[..., 2] * 0.6, mk[..., 2] * 0.6, mk[..., 3] * 1.6)
    moles = moles.clamp(max=0.9)
    fr = fr.clamp(max=0.6)
    rgb = skin * (1 + tone).unsqueeze(-1)
    rgb = rgb * (1 - torch.stack([0.0 * blush, 0.35 * blush, 0.3 * blush], dim=-1))
    rgb = rgb * (1 - 0.45 * fr).unsqueeze(-1) * (1 - moles).unsqueeze(-1)
    nir = skin_nir * (1 + 0.25 * tone) * (1 - 0.35 * moles)
    # beard / stubble
    hair_col = _hair_colour(p)
    beard = reg["beard"] * 0.8
    rgb = rgb * (1 - beard.unsqueeze(-1)) + hair_col * beard.unsqueeze(-1)
    hair_nir = 0.1 + 0.32 * (1 - a("hair_dark")) + 0.2 * a("hair_grey") ** 2
    nir = nir * (1 - beard) + hair_nir * beard
    # lips
    lips = reg["lips"] * (1 - reg["mouth_gap"])
    lip_col = skin * torch.tensor([0.95, 0.62, 0.62], device=lon.device) * (0.75 + 0.3 * a("lip_tone")).unsqueeze(-1)
    rgb = rgb * (1 - lips.unsqueeze(-1)) + lip_col * lips.unsqueeze(-1)
    nir = nir * (1 - 0.12 * lips)
    # mouth interior and teeth
    gap = reg["mouth_gap"]
    rgb = rgb * (1 - 0.85 * gap.unsqueeze(-1))
    nir = nir * (1 - 0.8 * gap)
    teeth = reg["teeth"]
    rgb = rgb * (1 - teeth.unsqueeze(-1)) + 0.75 * teeth.unsqueeze(-1)
    nir = nir * (1 - teeth) + 0.7 * teeth
    # eyes: sclera, iris, pupil; closed eyes show the lid and a lash line
    eye = reg["eye"] * _g(wl, 0.9)
    ri = torch.sqrt((reg["ex"] * p.eye_w) ** 2 + (reg["ey"] * p.eye_h) ** 2) / (p.eye_h * 0.95)
    iris = _sig((1 - ri) * 10)
    pupil = _sig((0.42 - ri) * 20)
    hue = a("iris_hue") * (len(_IRIS) - 1)
    lo = hue.floor().clamp(max=len(_IRIS) - 2)
    frac = (hue - lo).unsqueeze(-1)
    iris_tab = torch.from_numpy(_IRIS).to(lon.device)
    iris_rgb = iris_tab[lo.long().squeeze(-1).squeeze(-1)].view(-1, 1, 1, 3) * (1 - frac) + \
        iris_tab[(lo + 1).long().squeeze(-1).squeeze(-1)].view(-1, 1, 1, 3) * frac
    iris_rgb = iris_rgb * (1.15 - 0.5 * a("iris_dark")).unsqueeze(-1)
    eye_rgb = 0.7 * (1 - iris.unsqueeze(-1)) + iris_rgb * iris.unsqueeze(-1)
    eye_rgb = eye_rgb * (1 - 0.95 * pupil.unsqueeze(-1))
    iris_nir = 0.12 + 0.4 * a("iris_nir")
    eye_nir = 0.8 * (1 - iris) + iris_nir * iris
    eye_nir = eye_nir * (1 - 0.9 * pupil)
    open_e = eye * (1 - reg["closed"])
    lash = eye * reg["closed"] * _g(reg["ey"] + 0.2, 0.25)
    rgb = rgb * (1 - open_e.unsqueeze(-1)) + eye_rgb * open_e.unsqueeze(-1)
    nir = nir * (1 - open_e) + eye_nir * open_e
    rgb = rgb * (1 - 0.7 * lash.unsqueeze(-1))
    nir = nir * (1 - 0.5 * lash)
    # brows
    brow = reg["brow"] * (0.55 + 0.45 * a("brow_thickness"))
    brow_col = hair_col * (1.0 - 0.5 * a("brow_dark")).unsqueeze(-1)
    rgb = rgb * (1 - brow.unsqueeze(-1)) + brow_col * brow.unsqueeze(-1)
    nir = nir * (1 - brow) + (hair_nir * 0.8) * brow
    # hair with a strand texture
    hair = reg["hair"]
    strands = 1 + 0.25 * torch.sin(lon * (20 + 40 * a("hair_phase")) + lat * 5) * torch.sin(lat * (8 + 20 * a("bangs")) + 1.3)
    hair_rgb = hair_col * strands.unsqueeze(-1)
    rgb = rgb * (1 - hair.unsqueeze(-1)) + hair_rgb * hair.unsqueeze(-1)
    nir = nir * (1 - hair) + hair_nir * strands * hair
    # ears: darker rim
    ear = math.pi / 2 + 0.06
    ear_rim = _g(wl.abs() - ear, 0.05 * p.ear_size) * _g(lat - p.ear_lat, 0.12 * p.ear_size) * (1 - hair)
    rgb = rgb * (1 - 0.25 * ear_rim.unsqueeze(-1))
    nir = nir * (1 - 0.15 * ear_rim)
    rgb, nir = torch.broadcast_tensors(rgb, nir.unsqueeze(-1))
    return torch.cat([rgb, nir[..., :1]], dim=-1).clamp(0.0, 1.0)


def _hair_colour(p: _Params) -> torch.Tensor:
    """Linear RGB hair colour (n, 1, 1, 3): black .. brown .. auburn .. blond, greying."""
    a = p.a
    dark = a("hair_dark") ** 0.6
    red = (a("hair_red") > 0.85).float() * (1 - dark) * 0.6
    light = 0.6 * (1 - dark) + 0.03
    col = torch.stack([light * (1.0 + red), light * 0.78, light * (0.55 - 0.3 * red)], dim=-1)
    grey = ((a("hair_grey") - 0.8).clamp(min=0) / 0.2).unsqueeze(-1)
    return col * (1 - grey) + 0.55 * grey


# ----------------------------------------------------------------------------- public
def grid_coords(size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The (lat, lon) sample grid for output `size`: (G_lat, 1) and (1, G_lon) tensors.

    Longitude covers the full circle (the renderer takes a window around the visible side);
    the density (`GRID_DENSITY`, points per output pixel) puts neighbouring points about a pixel
    apart on the face; the renderer's 2 x 2 footprint pass fills the gaps between them.
    """
    g_lat = int(math.ceil(GRID_DENSITY[0] * size))
    g_lon = int(math.ceil(GRID_DENSITY[1] * size))
    lat = torch.linspace(-LAT_LIMIT, LAT_LIMIT, g_lat, device=device).view(g_lat, 1)
    lon = (torch.arange(g_lon, device=device, dtype=torch.float32) * (2 * math.pi / g_lon) - math.pi).view(1, g_lon)
    return lat, lon


def surface_maps(ids: Sequence[Identity], exprs: Sequence[int], size: int,
                 device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Surface of each (identity, expression) pair on the grid of `grid_coords(size)`.

    Returns maps (n, G_lat, G_lon, CHANNELS) with channels x, y, z, nx, ny, nz, r, g, b, nir
    and landmarks (n, len(LANDMARK_NAMES), 3) in the same head coordinates.
    """
    device = torch.device(device)
    p = _Params(ids, device)
    expr = torch.tensor(list(exprs), device=device, dtype=torch.long).view(-1, 1, 1)
    lat, lon = grid_coords(size, device)
    lat = lat.view(1, -1, 1)
    lon = lon.view(1, 1, -1)
    reg = _regions(p, lon, lat, expr)
    pts = _geometry(p, lon, lat, expr, reg)
    nrm = _normals(pts)
    alb = _albedo(p, lon, lat, reg)
    maps = torch.cat([pts, nrm, alb], dim=-1).contiguous()
    llon, llat = p.landmark_coords()
    lreg = _regions(p, llon, llat, expr)
    lm = _geometry(p, llon, llat, expr, lreg)[:, 0]
    return maps, lm
