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
    "head_width",
    "head_height",
    "head_depth",
    "jaw_width",
    "chin_length",
    "chin_protrusion",
    "cheekbone_height",
    "cheekbone_prominence",
    "cheek_fullness",
    "brow_ridge",
    "forehead_slope",
    "eye_spacing",
    "eye_size",
    "eye_socket_depth",
    "eye_height",
    "eye_tilt",
    "nose_length",
    "nose_width",
    "nose_bridge",
    "nose_tip",
    "nose_tip_bulb",
    "mouth_width",
    "lip_upper",
    "lip_lower",
    "mouth_height",
    "ear_size",
    "ear_protrusion",
    "ear_height",
    "face_asymmetry",
    "temple_width",
)
"""Continuous shape parameters (standard-normal scores, clipped to +-2.5)."""

APPEARANCE_NAMES: tuple[str, ...] = (
    "melanin",
    "redness",
    "iris_hue",
    "iris_dark",
    "iris_nir",
    "hair_dark",
    "hair_red",
    "hair_grey",
    "brow_dark",
    "brow_thickness",
    "brow_arch",
    "hairline",
    "hair_side",
    "hair_long",
    "bangs",
    "hair_volume",
    "beard",
    "lip_tone",
    "hair_phase",
    "freckles",
    "skin_nir",
    "balding",
)
"""Appearance parameters, each in [0, 1]."""

EXPRESSIONS: tuple[str, ...] = ("neutral", "smile", "open_mouth", "eyes_closed")
"""Expressions in the order of their integer codes."""

LANDMARK_NAMES: tuple[str, ...] = (
    "eye_pos",
    "eye_neg",
    "nose_tip",
    "mouth_pos",
    "mouth_neg",
    "mouth_center",
    "chin",
    "ear_pos",
    "ear_neg",
    "nose_bridge",
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
_IRIS = np.array(
    [
        [0.10, 0.05, 0.03],
        [0.22, 0.11, 0.05],
        [0.30, 0.24, 0.10],
        [0.18, 0.30, 0.14],
        [0.20, 0.32, 0.55],
        [0.38, 0.42, 0.46],
    ],
    dtype=np.float32,
)


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
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int(seed), namespace_code(namespace), int(index)]))
    )


def sample_identity(seed: int, namespace: str, index: int) -> Identity:
    """Draw the identity of subject `index` (0-based) in `namespace` for `seed`."""
    rng = identity_rng(seed, namespace, index)
    shape = np.clip(rng.standard_normal(len(SHAPE_NAMES)), -2.5, 2.5).astype(np.float32)
    app = rng.random(len(APPEARANCE_NAMES)).astype(np.float32)
    bumps = np.stack(
        [
            rng.uniform(-1.0, 1.0, N_BUMPS),
            rng.uniform(-0.9, 0.7, N_BUMPS),
            rng.uniform(0.08, 0.25, N_BUMPS),
            rng.uniform(0.06, 0.2, N_BUMPS),
            rng.normal(0.0, 0.03, N_BUMPS),
        ],
        axis=1,
    ).astype(np.float32)
    tone = np.stack(
        [
            rng.uniform(-1.0, 1.0, N_TONE),
            rng.uniform(-0.9, 0.6, N_TONE),
            rng.uniform(0.1, 0.3, N_TONE),
            rng.uniform(0.08, 0.25, N_TONE),
            rng.normal(0.0, 0.09, N_TONE),
        ],
        axis=1,
    ).astype(np.float32)
    n_marks = int(rng.choice(5, p=[0.35, 0.3, 0.2, 0.1, 0.05]))
    marks = np.stack(
        [
            rng.uniform(-0.85, 0.85, N_MARKS),
            rng.uniform(-0.75, 0.45, N_MARKS),
            rng.uniform(0.02, 0.04, N_MARKS),
            rng.uniform(0.5, 0.85, N_MARKS),
        ],
        axis=1,
    )
    marks[n_marks:, 3] = 0.0
    freckle_amount = max(0.0, float(app[_A["freckles"]]) - 0.7) / 0.3  # about 30% of people have freckles
    freckles = np.stack(
        [
            rng.normal(0.0, 0.32, N_FRECKLES),
            rng.normal(-0.12, 0.16, N_FRECKLES),
            rng.uniform(0.3, 1.0, N_FRECKLES) * freckle_amount,
        ],
        axis=1,
    )
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


def _bump_sum(
    lon: torch.Tensor,
    lat: torch.Tensor,
    c_lon: torch.Tensor,
    c_lat: torch.Tensor,
    s_lon: torch.Tensor,
    s_lat: torch.Tensor,
    amp: torch.Tensor,
) -> torch.Tensor:
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
        a, cl, sl, ct, st = (t[:, k].view(-1, 1, 1) for t in (amp, c_lon, s_lon, c_lat, s_lat))
        out = out + a * _g(_wrap(lon - cl), sl) * _g(lat - ct, st)
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
        lon = torch.cat(
            [self.eye_dx * (1 + self.asym), -self.eye_dx, z, self.mouth_w, -self.mouth_w, z, z, z + ear, z - ear, z],
            dim=2,
        )
        lat = torch.cat(
            [
                self.eye_lat,
                self.eye_lat,
                self.tip_lat,
                self.mouth_lat,
                self.mouth_lat,
                self.mouth_lat,
                self.chin_lat + 0.05,
                self.ear_lat,
                self.ear_lat,
                self.eye_lat,
            ],
            dim=2,
        )
        return lon, lat


# ----------------------------------------------------------------------------- regions
def _take(t: torch.Tensor, idx: torch.Tensor | None, dim: int = 0) -> torch.Tensor:
    """Rows of an identity-level tensor for each (identity, expression) pair.

    `idx` (n_pairs,) maps pairs to identities along `dim`; None means `t` is already per pair.
    A tensor whose size along `dim` is 1 does not depend on the identity and broadcasts as it is.
    """
    if idx is None or t.shape[dim] == 1:
        return t
    return t.index_select(dim, idx)


def _id_regions(p: _Params, lon: torch.Tensor, lat: torch.Tensor) -> dict[str, torch.Tensor]:
    """The expression-independent soft masks and local coordinates of facial regions."""
    side = torch.where(lon > 0, 1.0 + p.asym, 1.0 - p.asym)
    # eyes: local coordinates around the nearer eye
    ecx = torch.where(lon > 0, p.eye_dx * (1 + p.asym), -p.eye_dx)
    dx = lon - ecx
    ex = dx / p.eye_w
    ey = (lat - p.eye_lat - p.tilt * dx * torch.sign(lon)) / p.eye_h
    r: dict[str, torch.Tensor] = {"ex": ex, "ey": ey, "eye": _sig((1.0 - ex**2 - ey**2) * 7.0)}
    # brows (their height moves with a smile: see _expr_regions)
    bx = dx / (p.eye_w * 1.5) + 0.15 * torch.sign(lon)
    arch = 0.02 + 0.03 * p.a("brow_arch")
    r["brow_base"] = p.eye_lat + 0.095 + arch * (1 - bx**2)
    r["brow_x"] = _sig((1.0 - bx.abs()) * 8.0)
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
    # beard: lower face below the nose (the lips are cut out per expression)
    beard_amt = (p.a("beard") - 0.72).clamp(min=0) / 0.28
    r["beard_base"] = beard_amt * _sig((p.tip_lat - 0.05 - lat) / 0.03) * _sig((1.45 - wl.abs()) / 0.08)
    r["side"] = side
    return r


def _expr_regions(
    p: _Params,
    lon: torch.Tensor,
    lat: torch.Tensor,
    expr: torch.Tensor,
    rid: dict[str, torch.Tensor],
    idx: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """The expression-dependent masks per (identity, expression) pair; `p` and `expr` (n, 1, 1)
    are per pair, `rid` comes from `_id_regions` (per identity, mapped to pairs by `idx`)."""
    smile = (expr == 1).float()
    open_m = (expr == 2).float()
    closed = (expr == 3).float()
    r: dict[str, torch.Tensor] = {"smile": smile, "open": open_m, "closed": closed}
    brow_lat = _take(rid["brow_base"], idx) + 0.02 * smile
    thick = 0.014 + 0.014 * p.a("brow_thickness")
    r["brow"] = _take(rid["brow_x"], idx) * _g(lat - brow_lat, thick)
    # mouth and lips
    mw = p.mouth_w * (1 + 0.15 * smile)
    mx = lon / mw
    curve = (0.035 * smile - 0.004) * mx**2
    my = lat - p.mouth_lat - curve
    lip_h = torch.where(my > 0, p.lip_u, p.lip_l) * (1 - 0.3 * smile)
    r["lips"] = _sig((1.0 - mx**2 - (my / lip_h) ** 2) * 6.0)
    gap = 0.004 + 0.045 * open_m
    r["mouth_gap"] = _sig((1.0 - (mx / 0.85) ** 2 - (my / gap) ** 2) * 6.0)
    r["teeth"] = r["mouth_gap"] * open_m * _sig((my - 0.15 * gap) / 0.006)
    r["beard"] = _take(rid["beard_base"], idx) * (1 - r["lips"]) * (1 - r["mouth_gap"])
    return r


# ----------------------------------------------------------------------------- geometry
def _geometry(
    pi: _Params,
    pp: _Params,
    idx: torch.Tensor | None,
    lon: torch.Tensor,
    lat: torch.Tensor,
    rid: dict[str, torch.Tensor],
    reg: dict[str, torch.Tensor],
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Surface points (3, n, ...) (x, y, z first) at (lon, lat), one per (identity, expression) pair,
    written into `out` when given (a full (3, n, G_lat, G_lon) grid).

    The expression-independent parts of the height field are evaluated once per identity
    (`pi`, `rid`) and mapped to the pairs (`pp`, `reg`) by `idx` (None: `pi` is `pp`).
    """
    p = pi
    wl = _wrap(lon)
    face = _sig((1.25 - wl.abs()) / 0.1)  # the front of the head
    side = rid["side"]
    h = torch.zeros_like(wl * lat)
    ecx = torch.where(lon > 0, p.eye_dx * (1 + p.asym), -p.eye_dx)
    h = h + p.brow * _g(lat - p.eye_lat - 0.11, 0.04) * _g(wl, 0.42)
    h.sub_(p.socket * side * _g(lon - ecx, p.eye_w * 1.1) * _g(lat - p.eye_lat, p.eye_h * 1.6))
    h.add_(0.5 * p.socket * _g(lon - ecx, p.eye_w * 0.8) * _g(lat - p.eye_lat, p.eye_h * 1.0))
    # nose: a ridge from the bridge to the tip, wings and the tip bulb
    t = ((p.eye_lat - lat) / (p.eye_lat - p.tip_lat)).clamp(-0.2, 1.15)
    ridge = _sig((lat - p.tip_lat + 0.02) / 0.015) * _sig((p.eye_lat + 0.04 - lat) / 0.03)
    h.add_(p.bridge * (0.35 + 0.65 * t) * ridge * _g(wl, p.nose_w * (0.35 + 0.45 * t)))
    h.add_(p.tip * _g(wl, p.bulb) * _g(lat - p.tip_lat - 0.01, p.bulb * 0.8))
    h.add_(0.4 * p.tip * _g(wl.abs() - p.nose_w * 0.85, p.bulb * 0.7) * _g(lat - p.tip_lat + 0.005, 0.03))
    # identity-only terms added after the expression-dependent cheeks and lips
    cheek = p.cheek * side * _g(wl.abs() - 0.55, 0.2)
    cheek_full = p.cheek_full * _g(wl.abs() - 0.72, 0.22) * _g(lat - p.mouth_lat, 0.15)
    chin = p.chin * _g(wl, 0.2) * _g(lat - p.chin_lat - 0.06, 0.09)
    ear = math.pi / 2 + 0.06
    ears = p.ear_prot * _g(wl.abs() - ear, 0.1 * p.ear_size) * _g(lat - p.ear_lat, 0.17 * p.ear_size)
    b = p.bumps
    bumps = face * _bump_sum(lon, lat, b[..., 0], b[..., 1], b[..., 2], b[..., 3], b[..., 4])
    hair = p.hair_vol * rid["hair_geo"]
    low = _sig((-0.2 - lat) / 0.14)
    xs = p.ax * (1 - p.jaw * low * face - 0.05) * (1 + p.temple * _sig((lat - 0.3) / 0.1))
    zs = p.az * (1 - p.forehead * (lat - 0.35).clamp(min=0) * face)
    # per (identity, expression) pair: cheeks, lips, chin, ears, bumps, hair, beard
    q = pp
    h = _take(h, idx) + _take(cheek, idx) * _g(lat - q.cheek_lat - 0.02 * reg["smile"], 0.11)
    h.add_(0.025 * reg["smile"] * _g(wl.abs() - 0.42, 0.12) * _g(lat - q.mouth_lat - 0.07, 0.07))
    h.add_(_take(cheek_full, idx))
    h.add_(0.03 * reg["lips"]).sub_(0.05 * reg["mouth_gap"] * reg["open"])
    h.add_(_take(chin, idx))
    h.add_(_take(ears, idx))
    h.add_(_take(bumps, idx))
    h.add_(_take(hair, idx)).add_(0.012 * reg["beard"])
    cl, sl = torch.cos(lat), torch.sin(lat)
    rad = h.add_(1)
    # open mouth: the jaw drops
    drop = reg["open"] * 0.11 * _sig((q.mouth_lat - 0.01 - lat) / 0.02) * face * _sig((0.4 - lat) / 0.1)
    if out is None:
        x = _take(xs, idx) * rad * cl * torch.sin(lon)
        y = q.ay * rad * sl - drop
        z = _take(zs, idx) * rad * cl * torch.cos(lon)
        x, y, z = torch.broadcast_tensors(x, y, z)
        return torch.stack([x, y, z], dim=0)
    torch.mul(_take(xs, idx), rad, out=out[0]).mul_(cl).mul_(torch.sin(lon))
    torch.mul(q.ay, rad, out=out[1]).mul_(sl).sub_(drop)
    torch.mul(_take(zs, idx), rad, out=out[2]).mul_(cl).mul_(torch.cos(lon))
    return out


def _normals(pts: torch.Tensor, out: torch.Tensor) -> None:
    """Write into `out` the outward unit normals (3, n, G_lat, G_lon) of a (3, n, G_lat, G_lon)
    grid wrapping in longitude."""
    d_lon = torch.empty_like(pts)
    torch.sub(pts[..., 2:], pts[..., :-2], out=d_lon[..., 1:-1])
    d_lon[..., :1] = pts[..., 1:2] - pts[..., -1:]
    d_lon[..., -1:] = pts[..., :1] - pts[..., -2:-1]
    d_lat = torch.empty_like(pts)
    torch.sub(pts[:, :, 2:], pts[:, :, :-2], out=d_lat[:, :, 1:-1])
    d_lat[:, :, :1] = pts[:, :, 1:2] - pts[:, :, 0:1]
    d_lat[:, :, -1:] = pts[:, :, -1:] - pts[:, :, -2:-1]
    ax, ay, az = d_lon.unbind(0)
    bx, by, bz = d_lat.unbind(0)
    torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=0, out=out)
    out.div_(torch.sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2]).clamp(min=1e-8))


# ----------------------------------------------------------------------------- albedo
def _albedo(
    pi: _Params,
    idx: torch.Tensor,
    lon: torch.Tensor,
    lat: torch.Tensor,
    rid: dict[str, torch.Tensor],
    reg: dict[str, torch.Tensor],
    out: torch.Tensor,
) -> None:
    """Write the linear RGB and NIR albedo into `out` (4, n, G_lat, G_lon), channels first,
    one per (identity, expression) pair (`idx` maps the pairs to the identities of `pi`).

    Skin, marks, eye colours, hair and ears are evaluated once per identity (`pi`, `rid`);
    the layers that move with the expression (beard, lips, mouth, eyelids, brows) are
    composited per pair (`reg`), in the same order, then the hair and ear layers on top.
    """
    p = pi
    a = p.a
    wl = _wrap(lon)
    m = a("melanin")
    skin = torch.stack([0.82 - 0.62 * m, 0.62 - 0.49 * m, 0.52 - 0.43 * m], dim=0)  # (3, n, 1, 1)
    skin = skin * torch.tensor([1.0, 0.93, 0.9], device=lon.device).view(3, 1, 1, 1) ** (a("redness") * 2)
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
    rgb0 = skin * (1 + tone)
    rgb0 = rgb0 * (1 - torch.stack([0.0 * blush, 0.35 * blush, 0.3 * blush], dim=0))
    rgb0 = rgb0 * (1 - 0.45 * fr) * (1 - moles)
    nir0 = skin_nir * (1 + 0.25 * tone) * (1 - 0.35 * moles)
    hair_col = _hair_colour(p)
    hair_nir = 0.1 + 0.32 * (1 - a("hair_dark")) + 0.2 * a("hair_grey") ** 2
    lip_col = skin * torch.tensor([0.95, 0.62, 0.62], device=lon.device).view(3, 1, 1, 1) * (0.75 + 0.3 * a("lip_tone"))
    # eyes: sclera, iris, pupil
    eye = rid["eye"] * _g(wl, 0.9)
    ri = torch.sqrt((rid["ex"] * p.eye_w) ** 2 + (rid["ey"] * p.eye_h) ** 2) / (p.eye_h * 0.95)
    iris = _sig((1 - ri) * 10)
    pupil = _sig((0.42 - ri) * 20)
    hue = a("iris_hue") * (len(_IRIS) - 1)
    lo = hue.floor().clamp(max=len(_IRIS) - 2)
    frac = hue - lo
    iris_tab = torch.from_numpy(_IRIS).to(lon.device)
    iris_rgb = (
        iris_tab[lo.long().view(-1)].t().reshape(3, -1, 1, 1) * (1 - frac)
        + iris_tab[(lo + 1).long().view(-1)].t().reshape(3, -1, 1, 1) * frac
    )
    iris_rgb = iris_rgb * (1.15 - 0.5 * a("iris_dark"))
    eye_rgb = 0.7 * (1 - iris) + iris_rgb * iris
    eye_rgb = eye_rgb * (1 - 0.95 * pupil)
    iris_nir = 0.12 + 0.4 * a("iris_nir")
    eye_nir = 0.8 * (1 - iris) + iris_nir * iris
    eye_nir = eye_nir * (1 - 0.9 * pupil)
    lash_shape = _g(rid["ey"] + 0.2, 0.25)
    brow_k = 0.55 + 0.45 * a("brow_thickness")
    brow_col = hair_col * (1.0 - 0.5 * a("brow_dark"))
    # hair with a strand texture
    hair = rid["hair"]
    strands = 1 + 0.25 * torch.sin(lon * (20 + 40 * a("hair_phase")) + lat * 5) * torch.sin(
        lat * (8 + 20 * a("bangs")) + 1.3
    )
    hair_rgb = hair_col * strands
    hair_nir_s = hair_nir * strands * hair
    # ears: darker rim
    ear = math.pi / 2 + 0.06
    ear_rim = _g(wl.abs() - ear, 0.05 * p.ear_size) * _g(lat - p.ear_lat, 0.12 * p.ear_size) * (1 - hair)

    def tk(t: torch.Tensor) -> torch.Tensor:
        return _take(t, idx)

    def tk3(t: torch.Tensor) -> torch.Tensor:
        return _take(t, idx, 1)

    # per (identity, expression) pair, composited in place in `out`
    rgb, nir = out[0:3], out[3]
    torch.index_select(rgb0, 1, idx, out=rgb)
    torch.index_select(nir0, 0, idx, out=nir)
    beard = reg["beard"] * 0.8
    rgb.mul_(1 - beard).add_(tk3(hair_col) * beard)
    nir.mul_(1 - beard).add_(tk(hair_nir) * beard)
    lips = reg["lips"] * (1 - reg["mouth_gap"])
    rgb.mul_(1 - lips).add_(tk3(lip_col) * lips)
    nir.mul_(1 - 0.12 * lips)
    gap = reg["mouth_gap"]
    rgb.mul_(1 - 0.85 * gap)
    nir.mul_(1 - 0.8 * gap)
    teeth = reg["teeth"]
    rgb.mul_(1 - teeth).add_(0.75 * teeth)
    nir.mul_(1 - teeth).add_(0.7 * teeth)
    # open eyes show the eye; closed eyes show the lid and a lash line
    eye_p = tk(eye)
    open_e = eye_p * (1 - reg["closed"])
    lash = eye_p * reg["closed"] * tk(lash_shape)
    rgb.mul_(1 - open_e).add_(tk3(eye_rgb) * open_e)
    nir.mul_(1 - open_e).add_(tk(eye_nir) * open_e)
    rgb.mul_(1 - 0.7 * lash)
    nir.mul_(1 - 0.5 * lash)
    brow = reg["brow"] * tk(brow_k)
    rgb.mul_(1 - brow).add_(tk3(brow_col) * brow)
    nir.mul_(1 - brow).add_(tk(hair_nir * 0.8) * brow)
    hair = tk(hair)
    rgb.mul_(1 - hair).add_(tk3(hair_rgb) * hair)
    nir.mul_(1 - hair).add_(tk(hair_nir_s))
    ear_rim = tk(ear_rim)
    rgb.mul_(1 - 0.25 * ear_rim)
    nir.mul_(1 - 0.15 * ear_rim)
    out.clamp_(0.0, 1.0)


def _hair_colour(p: _Params) -> torch.Tensor:
    """Linear RGB hair colour (3, n, 1, 1): black .. brown .. auburn .. blond, greying."""
    a = p.a
    dark = a("hair_dark") ** 0.6
    red = (a("hair_red") > 0.85).float() * (1 - dark) * 0.6
    light = 0.6 * (1 - dark) + 0.03
    col = torch.stack([light * (1.0 + red), light * 0.78, light * (0.55 - 0.3 * red)], dim=0)
    grey = (a("hair_grey") - 0.8).clamp(min=0) / 0.2
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


def surface_maps(
    ids: Sequence[Identity], exprs: Sequence[int], size: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surface of each (identity, expression) pair on the grid of `grid_coords(size)`.

    Returns maps (n, G_lat, G_lon, CHANNELS) with channels x, y, z, nx, ny, nz, r, g, b, nir
    and landmarks (n, len(LANDMARK_NAMES), 3) in the same head coordinates. The maps are a
    view of channels-first storage (`maps.permute(3, 0, 1, 2)` is contiguous). The parts that
    do not depend on the expression are evaluated once per distinct `Identity` object in `ids`.
    """
    device = torch.device(device)
    # expression-independent parts are evaluated once per distinct identity
    unique: list[Identity] = []
    slot: dict[int, int] = {}
    inv = []
    for ident in ids:
        if id(ident) not in slot:
            slot[id(ident)] = len(unique)
            unique.append(ident)
        inv.append(slot[id(ident)])
    pi = _Params(unique, device)
    pp = _Params(ids, device)
    idx = torch.tensor(inv, device=device, dtype=torch.long)
    expr = torch.tensor(list(exprs), device=device, dtype=torch.long).view(-1, 1, 1)
    lat, lon = grid_coords(size, device)
    lat = lat.view(1, -1, 1)
    lon = lon.view(1, 1, -1)
    rid = _id_regions(pi, lon, lat)
    reg = _expr_regions(pp, lon, lat, expr, rid, idx)
    # channels-first storage, filled in place
    maps = torch.empty((CHANNELS, len(ids), lat.shape[1], lon.shape[2]), device=device)
    _geometry(pi, pp, idx, lon, lat, rid, reg, out=maps[0:3])
    _normals(maps[0:3], maps[3:6])
    _albedo(pi, idx, lon, lat, rid, reg, maps[6:10])
    llon, llat = pp.landmark_coords()
    lrid = _id_regions(pp, llon, llat)
    lreg = _expr_regions(pp, llon, llat, expr, lrid, None)
    lm = _geometry(pp, pp, None, llon, llat, lrid, lreg)[:, :, 0].permute(1, 2, 0)
    return maps.permute(1, 2, 3, 0), lm
