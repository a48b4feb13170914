"""Face-like benchmark vectors: SynthFace features of a recognizer, and a generator calibrated to them.

Gallery search benchmarks on uniform random unit vectors say little about faces: face features
cluster by identity (several images of one person lie close together) and share a common mean
direction. This module gives search benchmarks vectors with that structure at any scale:

- `real_face_features` embeds SynthFace images (`hfr data synth` sets: webface, multipie, nirvis) with
  a recognizer file; labels are one per subject, `<preset>/<subject>` so subjects of different sets
  never collide. By default every split is used (train and test rows alike: this is a benchmark of
  search, not of the recognizer; the JSON reports the seen (train) and unseen (test) identities apart);
- `cosine_stats` summarises the within-identity (genuine) and between-identity (impostor) cosine
  distributions on random pairs (mean, std, skewness, quantiles) and the leave-one-out rank-1 within the set;
- `FaceVectorModel` fits a model in feature space: identity centre c ~ N(mu, Sigma_b), image
  x = normalize(c + t * w) with deviation w ~ N(0, Sigma_w), each covariance its top `rank` principal
  components plus an isotropic floor (Sigma_b corrected for the noise of per-identity means); a
  log-normal scale t per image and per identity (hard images, hard identities: the genuine left
  tail); look-alike families, a share of each centre drawn from one of a few prototypes (the impostor
  right tail). `calibrate` then tunes six knobs (the mean's and the deviations' scale, a power that
  sharpens or flattens each spectrum at constant trace, the scale spread, the family share) until the
  generated genuine and impostor cosine means and stds (and the impostor skewness) match the real
  ones. `sample` streams (vectors, labels) in chunks, deterministic given the seed and the same
  whatever the chunk size, so 10M x 256 (10 GB) need never sit in memory at once; `images` draws given
  identities again (probes: `variant=1` gives other images of the gallery's identities). `save`/`load`
  use a plain .npz.

`main` embeds the sets with the shared recognizer `benchmarks/judge.py` trained (the judge), fits and
calibrates the model, prints the real and generated statistics side by side and writes
`benchmarks/results/face_vectors.json` (statistics, settings, command, machine), the fitted model
`face_vectors_model.npz` and a histogram plot `face_vectors.png` beside it:

    python benchmarks/face_vectors.py                  # ~31k images: about 1-2 min on one core
    python benchmarks/face_vectors.py --recognizer runs/x/recognizer.pt --sets webface --per-subject 10
    python benchmarks/face_vectors.py --quick --out /tmp/fv --data <folder with sets> --recognizer <file>

In a search benchmark, a gallery of N identities with one image each and probes that are other
images of some of them:

    model = FaceVectorModel.load("benchmarks/results/face_vectors_model.npz")
    for vectors, labels in model.sample(10_000_000, 1, seed=0):
        gallery.add(vectors, labels)          # hfr.gallery.Gallery: ids = identity indices
    probes, truth = model.images(ids, per_identity=1, seed=0, variant=1)   # ids: identities to search for
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, finished_stage_file, script_main, start  # noqa: E402
from hfr.data.manifest import Manifest  # noqa: E402
from hfr.errors import HFRError  # noqa: E402
from hfr.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402

log = logging.getLogger("benchmarks.face_vectors")

RESULTS = ROOT / "benchmarks" / "results"
#: The SynthFace sets `main` embeds by default (folders under `--data`).
DEFAULT_SETS = ("webface", "multipie", "nirvis")
#: The `format` a saved model carries.
FORMAT = "hfr-face-vectors/1"
#: Identities drawn together from one random stream: what makes sampling independent of the chunk size.
IDENTITY_BLOCK = 1024
#: Quantiles `cosine_stats` reports (q0.1% and q99.9% beside the 1/5/50/95/99% asked: tails rule search at 10M).
QUANTILES = (0.001, 0.01, 0.05, 0.5, 0.95, 0.99, 0.999)
#: The statistics `calibrate` matches: (distribution, statistic).
CALIBRATED = (
    ("genuine", "mean"),
    ("genuine", "std"),
    ("impostor", "mean"),
    ("impostor", "std"),
    ("impostor", "skew"),
)
#: How much each calibrated statistic weighs (the skewness, unitless and noisier, a tenth of a cosine).
WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 0.1])
#: What `calibrate` tunes (`FaceVectorModel` fields); identity_spread follows image_spread in a fixed ratio.
KNOBS = (
    "mean_scale",
    "within_scale",
    "centre_power",
    "within_power",
    "image_spread",
    "family_share",
    "identity_spread",
)
#: Bounds of calibration's parameters: log mean_scale, log within_scale, log centre_power, log within_power,
#: image_spread, family_share.
THETA_LOW = np.array([-7.0, -5.0, -1.6, -1.6, 0.0, 0.0])
THETA_HIGH = np.array([3.0, 5.0, 1.6, 1.6, 2.0, 0.95])
#: Look-alike families of identities (`FaceVectorModel.families`): the prototypes are drawn once per model.
FAMILIES = 64
#: Seed of the family prototypes' random stream (beside the number of families).
FAMILY_STREAM = 0xFACE
#: Weight of calibration's pull towards its starting point (per unit of a parameter, against cosine units).
PULL = 3e-4


class FaceVectorError(HFRError):
    """Face vectors cannot be made: no images, too few identities, or a malformed model file."""


# ---------------------------------------------------------------------------------------- real features


def preset_name(manifest: Path) -> str:
    """The SynthFace preset of a set (`preset` in the preset.yaml beside its manifest), else its folder name."""
    import yaml

    folder = manifest if manifest.is_dir() else manifest.parent
    preset = folder / "preset.yaml"
    if preset.is_file():
        data = yaml.safe_load(preset.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("preset"):
            return str(data["preset"])
    return folder.name


@dataclass
class FaceRows:
    """The images `real_face_features` embeds: one manifest per set, and the set's name for its labels."""

    sets: list[tuple[str, Manifest]]

    def names(self) -> list[str]:
        """`<preset>/<subject>` of every row, in order."""
        return [f"{name}/{rec.subject}" for name, manifest in self.sets for rec in manifest]

    def column(self, what: str) -> np.ndarray:
        """A per-row string array: `set` (the preset) or `split` (the manifest's split column)."""
        if what == "set":
            return np.array([name for name, manifest in self.sets for _ in manifest.records])
        return np.array([rec.split for _, manifest in self.sets for rec in manifest])

    def labels(self) -> np.ndarray:
        """int64 labels, one per `<preset>/<subject>`, numbered in order of first appearance."""
        index: dict[str, int] = {}
        return np.array([index.setdefault(n, len(index)) for n in self.names()], np.int64)


def face_rows(
    manifests: Sequence[Path], per_subject: int | None = None, splits: Sequence[str] | None = None, seed: int = 0
) -> FaceRows:
    """The rows of each manifest (a manifest.csv or its folder) in `splits` (None: all), at most
    `per_subject` per subject (a seeded random choice, kept in manifest order; None: all)."""
    rng = np.random.default_rng(seed)
    wanted = set(splits) if splits is not None else None
    sets = []
    for path in manifests:
        path = Path(path)
        manifest = Manifest.read(path)
        if wanted is not None:
            manifest = manifest.filter(lambda r: r.split in wanted)
        if per_subject is not None:
            rows: dict[str, list[int]] = {}
            for i, rec in enumerate(manifest.records):
                rows.setdefault(rec.subject, []).append(i)
            keep: list[int] = []
            for subject_rows in rows.values():
                if len(subject_rows) > per_subject:
                    subject_rows = sorted(rng.choice(subject_rows, per_subject, replace=False).tolist())
                keep += subject_rows
            manifest = manifest.with_records([manifest.records[i] for i in sorted(keep)])
        sets.append((preset_name(path), manifest))
    if not any(len(m) for _, m in sets):
        raise FaceVectorError(f"no images in {', '.join(str(p) for p in manifests)} (splits {splits})")
    return FaceRows(sets)


def embed_rows(
    recognizer: Path, rows: FaceRows, batch_size: int = 128, progress: Callable[[str, int, int], None] | None = None
) -> np.ndarray:
    """Unit features (N, d) float32 of every row of `rows`, in order, with the recognizer file `recognizer`."""
    from hfr.embed import embed_manifest
    from hfr.recognizer.export import load_recognizer

    model = load_recognizer(recognizer)
    parts = []
    for name, manifest in rows.sets:
        if not len(manifest):
            continue
        report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
        parts.append(embed_manifest(model, manifest, batch_size=batch_size, progress=report))
    features = np.concatenate(parts).astype(np.float32)
    features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return features


def real_face_features(
    recognizer: Path,
    manifests: list[Path],
    per_subject: int | None = None,
    splits: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of SynthFace images with a recognizer file: (float32 (N, d) unit rows, int64 (N,) labels).

    `manifests` are manifest.csv files (or their folders); `splits` the manifest splits to take (None:
    all); `per_subject` at most that many images per subject (seeded random choice; None: all). Labels
    number the subjects `<preset>/<subject>` in order of first appearance (see `face_rows`).
    """
    rows = face_rows(manifests, per_subject, splits, seed)
    return embed_rows(recognizer, rows, batch_size), rows.labels()


# ---------------------------------------------------------------------------------------- statistics


def _groups(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows sorted by label, each row's position in that order, group start and size per sorted row)."""
    order = np.argsort(labels, kind="stable")
    _, first, counts = np.unique(labels[order], return_index=True, return_counts=True)
    size = np.repeat(counts, counts)
    begin = np.repeat(first, counts)
    position = np.empty(len(labels), np.int64)
    position[order] = np.arange(len(labels))
    return order, position, begin, size


def _row_dots(features: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosines of rows a[i] and b[i] (float64; rows re-normalised)."""
    out = np.empty(len(a), np.float64)
    for s in range(0, len(a), chunk):
        x = features[a[s : s + chunk]].astype(np.float64)
        y = features[b[s : s + chunk]].astype(np.float64)
        num = np.einsum("ij,ij->i", x, y)
        out[s : s + chunk] = num / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-24)
    return out


def pair_cosines(
    features: np.ndarray, labels: np.ndarray, pairs: int = 100_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of `pairs` random genuine pairs (a random row of an identity with 2+ rows and another row
    of its identity) and `pairs` random impostor pairs (two random rows of different identities)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order, position, begin, size = _groups(labels)
    eligible = np.flatnonzero(size[position] >= 2)
    genuine = np.zeros(0)
    if len(eligible):
        anchor = rng.choice(eligible, pairs)
        pos = position[anchor]
        offset = pos - begin[pos]
        step = rng.integers(1, size[pos])  # another row of the same identity
        partner = order[begin[pos] + (offset + step) % size[pos]]
        genuine = _row_dots(features, anchor, partner)
    impostor = np.zeros(0)
    if len(np.unique(labels)) >= 2:
        a = rng.integers(0, len(labels), pairs)
        b = rng.integers(0, len(labels), pairs)
        same = labels[a] == labels[b]
        while same.any():
            b[same] = rng.integers(0, len(labels), int(same.sum()))
            same = labels[a] == labels[b]
        impostor = _row_dots(features, a, b)
    return genuine, impostor


def _skew(values: np.ndarray) -> float:
    """Skewness E[(v - mean)^3] / std^3 (0 for a constant sample)."""
    std = float(values.std())
    return float(((values - values.mean()) ** 3).mean() / std**3) if std > 0 else 0.0


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, std, skewness, the `QUANTILES` and the count of a sample of cosines."""
    if not len(values):
        return {"n": 0}
    out = {"n": len(values), "mean": float(values.mean()), "std": float(values.std()), "skew": _skew(values)}
    for q, v in zip(QUANTILES, np.quantile(values, QUANTILES)):
        out[f"q{100 * q:g}"] = float(v)
    return out


def loo_rank1(features: np.ndarray, labels: np.ndarray, probes: int = 2000, seed: int = 0, chunk: int = 256) -> float:
    """Leave-one-out identification rank-1 within the set: for up to `probes` random rows of identities
    with 2+ rows, is the most similar other row of the set of the same identity? (NaN without such rows.)

    It depends on the set's size (more identities, more chances of a closer impostor)."""
    labels = np.asarray(labels)
    _, position, _, size = _groups(labels)
    eligible = np.flatnonzero(size[position] >= 2)
    if not len(eligible):
        return float("nan")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, min(probes, len(eligible)), replace=False))
    gallery = np.asarray(features, np.float32)
    hits = 0
    for s in range(0, len(chosen), chunk):
        rows = chosen[s : s + chunk]
        scores = gallery[rows] @ gallery.T
        scores[np.arange(len(rows)), rows] = -np.inf
        hits += int((labels[scores.argmax(axis=1)] == labels[rows]).sum())
    return hits / len(chosen)


def cosine_stats(
    features: np.ndarray, labels: np.ndarray, pairs: int = 100_000, seed: int = 0, rank1_probes: int = 2000
) -> dict[str, Any]:
    """Genuine and impostor cosine distributions of a labelled set (`distribution` of `pair_cosines`), their
    separation d' = |mean_g - mean_i| / sqrt((std_g^2 + std_i^2) / 2), and the leave-one-out rank-1
    (`loo_rank1` on `rank1_probes` probes; left out when 0)."""
    labels = np.asarray(labels)
    genuine, impostor = pair_cosines(features, labels, pairs, seed)
    g, i = distribution(genuine), distribution(impostor)
    out: dict[str, Any] = {
        "rows": len(labels),
        "identities": len(np.unique(labels)),
        "dim": int(features.shape[1]) if features.ndim == 2 else 0,
        "pairs": pairs,
        "genuine": g,
        "impostor": i,
    }
    if g["n"] and i["n"]:
        out["d_prime"] = abs(g["mean"] - i["mean"]) / max(float(np.sqrt((g["std"] ** 2 + i["std"] ** 2) / 2)), 1e-12)
    if rank1_probes:
        out["rank1_loo"] = loo_rank1(features, labels, rank1_probes, seed)
        out["rank1_probes"] = rank1_probes
    return out


# ---------------------------------------------------------------------------------------- the model


def _pca(cov: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-`rank` eigenvectors (d, r) and eigenvalues (r,) of a covariance, and the mean of the rest (the floor)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    values = np.clip(values[::-1], 0.0, None)
    vectors = vectors[:, ::-1]
    r = min(rank, len(values))
    floor = float(values[r:].mean()) if r < len(values) else 0.0
    return vectors[:, :r].copy(), values[:r].copy(), floor


def _spectrum(var: np.ndarray, floor: float, dim: int, power: float) -> tuple[np.ndarray, float]:
    """The eigenvalues raised to `power` and rescaled to the same total variance (power > 1 sharpens)."""
    rest = dim - len(var)
    total = float(var.sum()) + floor * rest
    if total <= 0:
        return var, floor
    v, f = var**power, floor**power if floor > 0 else 0.0
    scale = total / (float(v.sum()) + f * rest)
    return v * scale, f * scale


def _spreads(residual: np.ndarray, group: np.ndarray, counts: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """Log-std of the per-image and per-identity scales of the deviations, from the log squared norms of
    the residuals: their variance within identities beyond a Gaussian's (2 tr(S^2) / tr(S)^2), and
    the variance of their per-identity means beyond what the within variance leaves in a mean."""
    n2 = (residual**2).sum(axis=1) * counts / (counts - 1)  # unbiased for the deviation's squared norm
    logs = np.log(np.maximum(n2, 1e-12))
    ids, local = np.unique(group, return_inverse=True)
    size = np.bincount(local).astype(np.float64)
    mean = np.bincount(local, logs) / size
    within = float(((logs - mean[local]) ** 2).sum() / max(len(logs) - len(ids), 1))
    gaussian = 2 * float(np.trace(cov @ cov)) / max(float(np.trace(cov)) ** 2, 1e-24)
    image = np.sqrt(max(within - gaussian, 0.0) / 4)
    between = float(mean.var(ddof=1)) - within * float(np.mean(1 / size)) if len(ids) > 1 else 0.0
    identity = np.sqrt(max(between, 0.0) / 4)
    return float(image), float(identity)


@dataclass
class FaceVectorModel:
    """A generator of face-like unit vectors.

    Identity centres c = mean_scale * mean + sqrt(family_share) * p_f + sqrt(1 - family_share) * g with
    g ~ N(0, Sigma_b) and p_f one of `families` look-alike prototypes (drawn once from N(0, Sigma_b), the
    family f at random per identity: a share of impostor pairs is closer than a Gaussian makes them,
    the right tail of real impostor cosines). Images normalize(c + within_scale * t * w) with
    w ~ N(0, Sigma_w) and a log-normal scale t (E t^2 = 1) of log-std `image_spread` per image and
    `identity_spread` per identity (hard images and identities: the left tail of genuine cosines). Each
    Sigma = basis diag(var) basis^T + floor on the rest, its spectrum raised to a power at constant
    trace. Build with `fit`, tune with `calibrate`.
    """

    mean: np.ndarray
    centre_basis: np.ndarray
    centre_var: np.ndarray
    centre_floor: float
    within_basis: np.ndarray
    within_var: np.ndarray
    within_floor: float
    image_spread: float = 0.0
    """Log-std of a per-image scale of the deviation (hard images: profile, NIR, stray further from their centre)."""
    identity_spread: float = 0.0
    """Log-std of a per-identity scale of the deviations (some identities vary more than others)."""
    mean_scale: float = 1.0
    within_scale: float = 1.0
    centre_power: float = 1.0
    within_power: float = 1.0
    family_share: float = 0.0
    """Share of the centres' variance that look-alike families hold (0: Gaussian centres)."""
    families: int = FAMILIES
    """Number of look-alike families (their prototypes are fixed by this number and the spectrum)."""
    info: dict[str, Any] = field(default_factory=dict)
    """What it was fitted on and how calibration went (`fit_rows`, `fit_identities`, `rank`, `calibration`)."""

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return len(self.mean)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        rank: int = 64,
        calibrate: bool = True,
        targets: dict[str, Any] | None = None,
        pairs: int = 100_000,
        seed: int = 0,
        calibration: dict[str, Any] | None = None,
    ) -> FaceVectorModel:
        """Estimate the model from labelled features (N, d).

        The identity centres' distribution: the mean and the top-`rank` principal components of the
        per-identity means (their covariance less the share of the within-identity covariance that
        averaging n_k images leaves in it, Sigma_w * mean(1/n_k)), the remaining variance as an isotropic
        floor. The deviations': the same on the residuals from the identity means (identities with 2+
        rows, unbiased); the per-image and per-identity spreads of their scale from the residuals' log
        squared norms. Then, unless `calibrate` is False, `calibrate` to `targets` (a `cosine_stats`
        dict; default: `cosine_stats` of these features on `pairs` pairs), `calibration` its keyword arguments.
        """
        x = np.asarray(features, np.float64)
        labels = np.asarray(labels)
        if x.ndim != 2 or len(x) != len(labels):
            raise FaceVectorError(f"features {x.shape} and labels {labels.shape} do not match")
        ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        if len(ids) < 2 or counts.max() < 2:
            raise FaceVectorError(
                f"{len(ids)} identities, at most {counts.max()} rows each: need 2+ identities and one with 2+ rows"
            )
        dim = x.shape[1]
        order = np.argsort(inverse, kind="stable")
        means = np.add.reduceat(x[order], np.concatenate([[0], np.cumsum(counts)[:-1]])) / counts[:, None]
        several = counts[inverse] >= 2
        residual = (x - means[inverse])[several]
        dof = len(residual) - int((counts >= 2).sum())
        within_cov = residual.T @ residual / max(dof, 1)
        image_spread, identity_spread = _spreads(residual, inverse[several], counts[inverse[several]], within_cov)
        centre = means.mean(axis=0)
        centred = means - centre
        centre_cov = centred.T @ centred / (len(ids) - 1) - within_cov * float(np.mean(1.0 / counts))
        cb, cv, cf = _pca(centre_cov, rank)
        wb, wv, wf = _pca(within_cov, rank)
        model = cls(centre, cb, cv, cf, wb, wv, wf, image_spread=image_spread, identity_spread=identity_spread)
        model.info = {"fit_rows": len(x), "fit_identities": len(ids), "rank": min(rank, dim), "dim": dim}
        if calibrate:
            model.calibrate(targets or cosine_stats(x, labels, pairs, seed, rank1_probes=0), **(calibration or {}))
        return model

    # ------------------------------------------------------------------ calibration
    def knobs(self) -> dict[str, float]:
        """The calibrated settings by name (`KNOBS`)."""
        return {name: float(getattr(self, name)) for name in KNOBS}

    def _theta(self) -> np.ndarray:
        v = self.knobs()
        return np.array([np.log(v[k]) for k in KNOBS[:4]] + [v["image_spread"], v["family_share"]])

    def _set_theta(self, theta: np.ndarray, spread_ratio: float) -> np.ndarray:
        theta = np.clip(theta, THETA_LOW, THETA_HIGH)
        self.mean_scale, self.within_scale, self.centre_power, self.within_power = (float(np.exp(v)) for v in theta[:4])
        self.image_spread, self.family_share = float(theta[4]), float(theta[5])
        self.identity_spread = spread_ratio * self.image_spread
        return theta

    def calibrate(
        self,
        targets: dict[str, Any],
        identities: int = 2048,
        per_identity: int = 4,
        tol: float = 0.002,
        iterations: int = 30,
        seed: int = 12345,
        start_family_share: float | None = 0.3,
    ) -> dict[str, Any]:
        """Tune the `KNOBS` so that the genuine and impostor cosine means and stds and the impostor skewness
        of generated vectors match `targets` (a `cosine_stats` dict; the `CALIBRATED` statistics).

        mean_scale moves the impostor mean, within_scale the genuine mean, centre_power the impostor std,
        image_spread (identity_spread following it in the ratio `fit` estimated) and within_power the
        genuine std, family_share (started at `start_family_share`; the skewness barely moves near 0)
        the impostor skewness. Levenberg-Marquardt on (log scales, log powers, spread, share), a
        finite-difference Jacobian, a light pull towards the starting point (six knobs for five
        targets), every evaluation on the same random numbers (`identities` x `per_identity` vectors of
        seed `seed`: every within-identity pair; the first image of each identity of one half against the
        second of each of the other half as impostor pairs), until every statistic is within `tol` (the
        skewness weighted by `WEIGHTS`) or no step improves. Returns (and keeps in `info["calibration"]`)
        the targets, the statistics before and after, the knobs, the iterations and whether it converged.
        """
        target = np.array([targets[d][s] for d, s in CALIBRATED], np.float64)
        ratio = self.identity_spread / self.image_spread if self.image_spread > 1e-3 else 0.0
        per = max(2, per_identity)
        half = max(identities // 2, 1)
        a, b = np.triu_indices(per, 1)

        def stats(theta: np.ndarray) -> np.ndarray:
            self._set_theta(theta, ratio)
            v, _ = self.sample_array(2 * half, per, seed)
            v = v.reshape(2 * half, per, -1)
            g = np.einsum("kij,kij->ki", v[:, a], v[:, b], dtype=np.float64).ravel()  # every genuine pair
            i = (v[:half, 0] @ v[half:, 1].T).astype(np.float64).ravel()  # half x half impostor pairs
            return np.array([g.mean(), g.std(), i.mean(), i.std(), _skew(i)])

        def residual(theta: np.ndarray, values: np.ndarray) -> np.ndarray:
            return np.concatenate([WEIGHTS * (values - target), PULL * (theta - theta0)])

        if start_family_share is not None:
            self.family_share = start_family_share
        theta0 = theta = self._set_theta(self._theta(), ratio)
        current = before = stats(theta)
        damping, steps, h = 1e-2, 0, 0.02
        for steps in range(1, iterations + 1):
            if np.abs(WEIGHTS * (current - target)).max() < tol:
                steps -= 1
                break
            jac = np.zeros((len(target) + len(theta), len(theta)))
            for k in range(len(theta)):
                step = np.zeros(len(theta))
                step[k] = h if theta[k] + h <= THETA_HIGH[k] else -h
                jac[: len(target), k] = WEIGHTS * (stats(theta + step) - current) / step[k]
            jac[len(target) :] = PULL * np.eye(len(theta))
            res = residual(theta, current)
            jtj, jtr = jac.T @ jac, jac.T @ res
            while damping < 1e6:
                delta = np.clip(-np.linalg.solve(jtj + damping * np.diag(np.diag(jtj)), jtr), -0.5, 0.5)
                trial_theta = np.clip(theta + delta, THETA_LOW, THETA_HIGH)
                trial = stats(trial_theta)
                if (residual(trial_theta, trial) ** 2).sum() < (res**2).sum():
                    theta, current, damping = trial_theta, trial, max(damping / 3, 1e-6)
                    break
                damping *= 10
            else:
                break  # no step improves: as close as these knobs get
        self._set_theta(theta, ratio)
        names = [f"{d}_{s}" for d, s in CALIBRATED]
        report = {
            "target": dict(zip(names, target.tolist())),
            "before": dict(zip(names, before.tolist())),
            "after": dict(zip(names, current.tolist())),
            "max_abs_error": float(np.abs(WEIGHTS * (current - target)).max()),
            "weights": dict(zip(names, WEIGHTS.tolist())),
            "converged": bool(np.abs(WEIGHTS * (current - target)).max() < tol),
            "iterations": steps,
            "knobs": self.knobs(),
            "sample": {"identities": 2 * half, "per_identity": per, "impostor_pairs": half * half, "seed": seed},
        }
        self.info["calibration"] = report
        return report

    # ------------------------------------------------------------------ sampling
    def _prototypes(self, var: np.ndarray, floor: float) -> np.ndarray:
        """The look-alike family prototypes (families, d) float32 from N(0, Sigma_b) (spectrum `var`, `floor`),
        centred (their mean would shift every centre) and rescaled to Sigma_b's total variance."""
        f32 = np.float32
        rng = np.random.default_rng([FAMILY_STREAM, self.families])
        z = rng.standard_normal((self.families, len(var)), dtype=f32) * np.sqrt(var).astype(f32)
        noise = rng.standard_normal((self.families, self.dim), dtype=f32)
        out = z @ self.centre_basis.T.astype(f32) + np.float32(np.sqrt(floor)) * noise
        out -= out.mean(axis=0)
        total = float(var.sum()) + floor * (self.dim - len(var))
        out *= np.float32(np.sqrt(total / max(float((out**2).sum(axis=1).mean()), 1e-24)))
        return out

    def _block(self, block: int, per_identity: int, seed: int, variant: int) -> tuple[np.ndarray, np.ndarray]:
        """Identities block*IDENTITY_BLOCK ... + IDENTITY_BLOCK - 1: their centres, and per_identity unit
        vectors each (identity-major), from random streams fixed by (seed, block) and (seed, block, variant)."""
        cv, cf = _spectrum(self.centre_var, self.centre_floor, self.dim, self.centre_power)
        wv, wf = _spectrum(self.within_var, self.within_floor, self.dim, self.within_power)
        f32 = np.float32
        rng = np.random.default_rng([seed, block, 0])
        z = rng.standard_normal((IDENTITY_BLOCK, len(cv)), dtype=f32) * np.sqrt(cv).astype(f32)
        centres = z @ self.centre_basis.T.astype(f32)
        centres += np.float32(np.sqrt(cf)) * rng.standard_normal((IDENTITY_BLOCK, self.dim), dtype=f32)
        identity_z = rng.standard_normal(IDENTITY_BLOCK)
        family = rng.integers(0, max(self.families, 1), IDENTITY_BLOCK)
        centres *= np.float32(np.sqrt(1 - self.family_share))
        if self.family_share > 0:
            centres += np.float32(np.sqrt(self.family_share)) * self._prototypes(cv, cf)[family]
        centres += (self.mean_scale * self.mean).astype(f32)
        rng = np.random.default_rng([seed, block, 1 + variant])
        rows = IDENTITY_BLOCK * per_identity
        z = rng.standard_normal((rows, len(wv)), dtype=f32) * np.sqrt(wv).astype(f32)
        vectors = z @ self.within_basis.T.astype(f32)
        vectors += np.float32(np.sqrt(wf)) * rng.standard_normal((rows, self.dim), dtype=f32)
        a, b = self.image_spread, self.identity_spread
        log_t = a * rng.standard_normal(rows) + b * np.repeat(identity_z, per_identity) - a * a - b * b
        vectors *= (self.within_scale * np.exp(log_t)).astype(f32)[:, None]
        vectors += np.repeat(centres, per_identity, axis=0)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))
        return centres, vectors

    def sample(
        self, n_identities: int, per_identity: int = 1, seed: int = 0, chunk: int = 65536, variant: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks of (float32 (m, d) unit vectors, int64 (m,) labels) of n_identities x per_identity vectors,
        identity-major (identity k's images are rows k * per_identity ...), label = identity index; every
        chunk has `chunk` rows but the last.

        The vectors depend on the seed (and `variant`: other images of the same identities) only, not on
        the chunk size nor on n_identities (a smaller draw is a prefix of a larger one). About
        IDENTITY_BLOCK x per_identity x d floats are made at a time, beside the chunk.
        """
        if n_identities < 0 or per_identity < 1 or chunk < 1:
            raise FaceVectorError(f"sample: n_identities {n_identities}, per_identity {per_identity}, chunk {chunk}")
        total = n_identities * per_identity
        pending: list[np.ndarray] = []
        held = 0
        start = 0
        blocks = -(-n_identities // IDENTITY_BLOCK)
        for block in range(blocks):
            _, vectors = self._block(block, per_identity, seed, variant)
            room = total - block * IDENTITY_BLOCK * per_identity
            pending.append(vectors[:room])
            held += min(len(vectors), room)
            while held >= chunk or (held and block == blocks - 1):
                take = min(chunk, held)
                held -= take
                yield _take(pending, take), np.arange(start, start + take, dtype=np.int64) // per_identity
                start += take

    def sample_array(
        self, n_identities: int, per_identity: int = 1, seed: int = 0, variant: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """All of `sample` in one (float32 (n * per, d), int64 labels) pair, filled in place (no concatenation)."""
        vectors = np.empty((n_identities * per_identity, self.dim), np.float32)
        labels = np.empty(n_identities * per_identity, np.int64)
        at = 0
        for v, lab in self.sample(n_identities, per_identity, seed, chunk=65536, variant=variant):
            vectors[at : at + len(v)], labels[at : at + len(v)] = v, lab
            at += len(v)
        return vectors, labels

    def images(
        self, ids: np.ndarray, per_identity: int = 1, seed: int = 0, variant: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """per_identity vectors of each identity in `ids` (float32 (len(ids) * per, d), labels = ids repeated),
        the rows `sample(..., seed, variant=variant)` gives them. `variant` 0 repeats the gallery's images;
        another variant gives new images of the same identities (probes)."""
        ids = np.asarray(ids, np.int64)
        if ids.size and ids.min() < 0:
            raise FaceVectorError("images: identity ids must be >= 0")
        out = np.empty((len(ids) * per_identity, self.dim), np.float32)
        blocks = ids // IDENTITY_BLOCK
        for block in np.unique(blocks):
            _, vectors = self._block(int(block), per_identity, seed, variant)
            where = np.flatnonzero(blocks == block)
            local = (ids[where] % IDENTITY_BLOCK)[:, None] * per_identity + np.arange(per_identity)
            rows = (where[:, None] * per_identity + np.arange(per_identity)).ravel()
            out[rows] = vectors[local.ravel()]
        return out, np.repeat(ids, per_identity)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model as an .npz (arrays and scalars only; `info` as JSON text) atomically."""
        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.array(FORMAT),
            mean=self.mean,
            centre_basis=self.centre_basis,
            centre_var=self.centre_var,
            centre_floor=np.array(self.centre_floor),
            within_basis=self.within_basis,
            within_var=self.within_var,
            within_floor=np.array(self.within_floor),
            knobs=np.array([getattr(self, k) for k in KNOBS], np.float64),
            families=np.array(self.families),
            info=np.array(json.dumps(self.info)),
        )
        path = Path(path)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> FaceVectorModel:
        """Read a model `save` wrote (`np.load(..., allow_pickle=False)`)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise FaceVectorError(f"{path}: format {str(data['format'])!r}, expected {FORMAT!r}")
                knobs = dict(zip(KNOBS, (float(k) for k in data["knobs"])))
                return cls(
                    data["mean"].astype(np.float64),
                    data["centre_basis"].astype(np.float64),
                    data["centre_var"].astype(np.float64),
                    float(data["centre_floor"]),
                    data["within_basis"].astype(np.float64),
                    data["within_var"].astype(np.float64),
                    float(data["within_floor"]),
                    families=int(data["families"]),
                    info=json.loads(str(data["info"])),
                    **knobs,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise FaceVectorError(f"{path}: not a face-vector model ({exc})") from None


def _take(pending: list[np.ndarray], n: int) -> np.ndarray:
    """The first n rows of the arrays queued in `pending` (removed from it); a view when one array holds them."""
    if len(pending[0]) >= n:
        out = pending[0][:n]
        pending[0] = pending[0][n:]
        if not len(pending[0]):
            pending.pop(0)
        return out
    parts, got = [], 0
    while got < n:
        need = n - got
        head = pending[0]
        parts.append(head[:need])
        got += min(len(head), need)
        if len(head) <= need:
            pending.pop(0)
        else:
            pending[0] = head[need:]
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------- the script


def stats_table(real: dict[str, Any], generated: dict[str, Any]) -> str:
    """Real and generated `cosine_stats` side by side, as text."""
    lines = [f"{'':<20}{'real':>10}{'generated':>11}{'diff':>9}", "-" * 50]
    for kind in ("genuine", "impostor"):
        for key in ["mean", "std", "skew", *(f"q{100 * q:g}" for q in QUANTILES)]:
            r, g = real[kind][key], generated[kind][key]
            lines.append(f"{kind if key == 'mean' else '':<9}{key:<11}{r:>10.4f}{g:>11.4f}{g - r:>+9.4f}")
    for key, label in (("d_prime", "d'"), ("rank1_loo", "rank-1 (LOO)")):
        if key in real and key in generated:
            lines.append(f"{label:<20}{real[key]:>10.4f}{generated[key]:>11.4f}{generated[key] - real[key]:>+9.4f}")
    sizes = [f"{s['rows']}/{s['identities']}" for s in (real, generated)]
    lines.append(f"{'rows / identities':<20}{sizes[0]:>10}{sizes[1]:>11}")
    return "\n".join(lines)


def plot(real: tuple[np.ndarray, np.ndarray], generated: tuple[np.ndarray, np.ndarray], path: Path, title: str) -> None:
    """Genuine and impostor cosine histograms, real (filled) against generated (lines); linear and log density."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.concatenate([*real, *generated])
    bins = np.linspace(min(-0.2, float(values.min())), 1.0, 121)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, log_scale in zip(axes, (False, True)):
        for (name, r, g), colour in zip(
            (("genuine", real[0], generated[0]), ("impostor", real[1], generated[1])), ("C2", "C3")
        ):
            ax.hist(r, bins, density=True, alpha=0.35, color=colour, label=f"{name}, real")
            ax.hist(g, bins, density=True, histtype="step", lw=1.6, color=colour, label=f"{name}, generated")
        ax.set(xlabel="cosine", ylabel="density", yscale="log" if log_scale else "linear")
        ax.set_title(("log density (tails)" if log_scale else title), fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def generation_speed(model: FaceVectorModel, vectors: int = 262_144) -> dict[str, float]:
    """Seconds to draw `vectors` vectors (one per identity) with `sample`, and the rate."""
    t0 = time.perf_counter()
    for _ in model.sample(vectors, 1, seed=999):
        pass
    seconds = time.perf_counter() - t0
    return {"vectors": vectors, "seconds": seconds, "vectors_per_s": vectors / seconds}


def main(argv: list[str] | None = None) -> int:
    """Embed the SynthFace sets, fit and calibrate the model, compare real and generated statistics, write
    the JSON, the model and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recognizer",
        type=Path,
        default=None,
        help="recognizer file (default: the judge benchmarks/judge.py finished under --runs)",
    )
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "judge" / "runs", help="judge.py's runs folder")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="folder of the SynthFace sets")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="sets (folders under --data)")
    parser.add_argument("--splits", nargs="+", default=None, help="manifest splits to embed (default: all)")
    parser.add_argument("--per-subject", type=int, default=None, help="at most this many images per subject")
    parser.add_argument("--rank", type=int, default=64, help="principal components of each covariance")
    parser.add_argument("--pairs", type=int, default=200_000, help="genuine and impostor pairs for the statistics")
    parser.add_argument("--rank1-probes", type=int, default=2000, help="probes of the leave-one-out rank-1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 4 images per subject, few pairs, rank 8")
    parser.add_argument("--out", type=Path, default=RESULTS / "face_vectors.json", help="result JSON")
    args = parser.parse_args(argv)
    if args.quick:
        if args.out == parser.get_default("out"):
            parser.error("--quick writes smoke-test results: give --out (not benchmarks/results)")
        args.per_subject = args.per_subject or 4
        args.pairs, args.rank1_probes, args.rank = min(args.pairs, 4000), min(args.rank1_probes, 200), 8
    start(args.threads)
    started = time.perf_counter()
    recognizer = args.recognizer or finished_stage_file(args.runs, "recognizer-judge")
    if recognizer is None:
        raise FaceVectorError(
            f"no finished recognizer-judge under {args.runs}: run benchmarks/judge.py or give --recognizer"
        )

    rows = face_rows([args.data / s for s in args.sets], args.per_subject, args.splits, args.seed)
    t0 = time.perf_counter()

    def progress(name: str, done: int, total: int) -> None:
        if done == total or done % 4096 < 128:
            log.info("embedding %s: %d / %d images", name, done, total)

    features = embed_rows(recognizer, rows, progress=progress)
    labels = rows.labels()
    embed_s = time.perf_counter() - t0
    print(f"embedded {len(features)} images of {labels.max() + 1} subjects in {embed_s:.0f}s", flush=True)

    real = cosine_stats(features, labels, args.pairs, args.seed, args.rank1_probes)
    by_group: dict[str, dict[str, Any]] = {}
    for what in ("set", "split"):
        column = rows.column(what)
        for value in dict.fromkeys(column.tolist()):
            keep = column == value
            by_group[f"{what}={value}"] = cosine_stats(
                features[keep], labels[keep], args.pairs // 4, args.seed, args.rank1_probes
            )
    t0 = time.perf_counter()
    model = FaceVectorModel.fit(
        features,
        labels,
        rank=args.rank,
        targets=real,
        seed=args.seed,
        calibration={"identities": 512, "iterations": 4} if args.quick else None,
    )
    fit_s = time.perf_counter() - t0
    per = max(2, round(len(labels) / real["identities"]))
    vectors, gen_labels = model.sample_array(real["identities"], per, seed=args.seed + 1)
    generated = cosine_stats(vectors, gen_labels, args.pairs, args.seed, args.rank1_probes)
    speed = generation_speed(model, 16_384 if args.quick else 262_144)

    model_path = model.save(args.out.with_name(args.out.stem + "_model.npz"))
    calibration: dict[str, Any] = model.info.get("calibration") or {}
    result: dict[str, Any] = {
        "benchmark": "face-like vectors: real SynthFace features and the calibrated generator",
        "command": command_line(argv),
        "settings": {
            "recognizer": str(recognizer),
            "sets": {name: str(m.source) for name, m in rows.sets},
            "splits": args.splits or "all",
            "images_per_set": {name: len(m) for name, m in rows.sets},
            "per_subject": args.per_subject,
            "rank": args.rank,
            "pairs": args.pairs,
            "rank1_probes": args.rank1_probes,
            "seed": args.seed,
            "quick": args.quick,
            "generated_set": {"identities": real["identities"], "per_identity": per, "seed": args.seed + 1},
            "labels": "<preset>/<subject>; rank-1 is leave-one-out within the set (depends on its size)",
        },
        "real": real,
        "generated": generated,
        "real_by_group": by_group,
        "calibration": calibration,
        "generation_speed": speed,
        "model_file": str(model_path),
        "timings_s": {"embed": embed_s, "fit_and_calibrate": fit_s, "total": time.perf_counter() - started},
        "machine": machine_info(numpy=np.__version__),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    png = args.out.with_suffix(".png")
    plot(
        pair_cosines(features, labels, args.pairs, args.seed),
        pair_cosines(vectors, gen_labels, args.pairs, args.seed),
        png,
        f"{len(labels)} SynthFace features ({', '.join(args.sets)}) vs generated, rank {args.rank}",
    )
    print(stats_table(real, generated))
    for name, stats in by_group.items():
        g, i = stats["genuine"], stats["impostor"]
        print(
            f"  real {name:<16} genuine {g['mean']:.3f} +- {g['std']:.3f}   impostor {i['mean']:.3f} +- "
            f"{i['std']:.3f}   rank-1 {stats.get('rank1_loo', float('nan')):.3f} ({stats['identities']} identities)"
        )
    knobs = ", ".join(f"{k} {v:.3f}" for k, v in calibration.get("knobs", {}).items())
    print(f"calibration: {calibration.get('iterations')} iterations, converged {calibration.get('converged')}; {knobs}")
    print(f"generation: {speed['vectors_per_s']:,.0f} vectors/s ({1e7 / speed['vectors_per_s']:.0f}s for 10M)")
    print(f"wrote {args.out}, {png} and {model_path} ({result['timings_s']['total']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
