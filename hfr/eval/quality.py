"""Metrics of the generated-face quality protocol: what images made by a face generator carry.

The functions are pure (no files, no models) and compare generated images or their features
with ground truth. Conventions: images are torch tensors ``(N, C, H, W)`` with values in
[0, 1], compared image by image (row i of ``a`` with row i of ``b``), and an optional mask is
``(N, 1, H, W)`` of bools or 0/1 values selecting the pixels that count (an image whose mask
selects nothing gets NaN); pixel metrics return one value per image as a float tensor.
Features are ``(N, D)`` numpy arrays or torch tensors, compared by the cosine of
L2-normalised features (a distance is 1 - cosine); labels are 1-D sequences of subject ids.
Verification and identification numbers follow :mod:`hfr.metrics` (accept ``score >= t``,
TAR at FAR is the conservative largest TAR with FAR <= target, rank ties count against the
probe). Shapes that do not fit, empty inputs and NaN features raise
:class:`hfr.errors.ArgumentError` (or its subclass :class:`hfr.errors.MetricError`, from
:mod:`hfr.metrics`) naming the argument.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hfr import metrics
from hfr.errors import ArgumentError
from hfr.nn.ranges import rgb_to_gray

SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# ----------------------------------------------------------------------------- images


def _check_images(a: Any, b: Any, mask: Any, fn: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Validated (a, b, mask) of an image metric: float tensors of one dtype (at least float32)."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor):
            raise ArgumentError(f"{fn}: {name} must be a torch tensor (N, C, H, W) (got {type(x).__name__})")
        if x.ndim != 4:
            raise ArgumentError(f"{fn}: {name} must be a batch of images (N, C, H, W) (got shape {tuple(x.shape)})")
        if x.numel() == 0:
            raise ArgumentError(f"{fn}: {name} is empty (shape {tuple(x.shape)}); give at least one image")
    if a.shape != b.shape:
        raise ArgumentError(
            f"{fn}: a and b must have the same shape (got {tuple(a.shape)} and {tuple(b.shape)}); "
            "compare each generated image with its ground truth"
        )
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    if not dtype.is_floating_point:
        raise ArgumentError(f"{fn}: a and b must be float images in [0, 1] (got {a.dtype} and {b.dtype})")
    a = a.to(dtype)
    b = b.to(device=a.device, dtype=dtype)
    if mask is None:
        return a, b, None
    if not isinstance(mask, torch.Tensor):
        raise ArgumentError(f"{fn}: mask must be a torch tensor (N, 1, H, W) or None (got {type(mask).__name__})")
    n, _, h, w = a.shape
    if tuple(mask.shape) != (n, 1, h, w):
        raise ArgumentError(
            f"{fn}: mask must have shape (N, 1, H, W) = {(n, 1, h, w)} to fit the images (got {tuple(mask.shape)})"
        )
    m = mask.to(device=a.device, dtype=dtype)
    if not bool(((m == 0) | (m == 1)).all()):
        raise ArgumentError(f"{fn}: mask must hold bools or 0/1 values (pixels selected or not)")
    return a, b, m


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of ``x`` (N, C, H, W) over the pixels (x channels) that ``mask`` selects; NaN if none."""
    if mask is None:
        return x.mean(dim=(1, 2, 3))
    m = mask.expand_as(x)
    return (x * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3))


def l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image mean absolute error between image batches ``a`` and ``b`` (N, C, H, W) in [0, 1].

    With ``mask`` (N, 1, H, W), bools or 0/1, the mean runs over the selected pixels times the
    channels; an image whose mask selects nothing gives NaN. Returns a float tensor (N,).
    """
    a, b, m = _check_images(a, b, mask, "l1")
    return _masked_mean((a - b).abs(), m)


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None, max_val: float = 1.0) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB: ``10 log10(max_val^2 / MSE)``.

    The MSE is the mean squared error over all pixels and channels, or over the pixels
    ``mask`` (N, 1, H, W) selects (times the channels). Identical images give ``+inf``, an
    empty mask NaN. ``max_val`` is the largest possible pixel value (1 for images in [0, 1]).
    Returns a float tensor (N,).
    """
    if not (isinstance(max_val, (int, float)) and math.isfinite(max_val) and max_val > 0):
        raise ArgumentError(f"psnr: max_val must be a positive number (got {max_val!r})")
    a, b, m = _check_images(a, b, mask, "psnr")
    mse = _masked_mean((a - b) ** 2, m)
    return 10.0 * torch.log10(float(max_val) ** 2 / mse)


def _reflect_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices that pad a length-``n`` axis by ``r`` on both sides, half-sample symmetric (d c b a | a b c d)."""
    p = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(p >= n, 2 * n - 1 - p, p)


def _gaussian_window(window: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``window`` taps (odd) and standard deviation ``sigma``."""
    x = torch.arange(window, dtype=dtype, device=device) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim_map(x: torch.Tensor, y: torch.Tensor, window: int, data_range: float) -> torch.Tensor:
    """The SSIM map (N, 1, H, W) of gray batches ``x`` and ``y`` (N, 1, H, W)."""
    n, _, h, w = x.shape
    r = window // 2
    g = _gaussian_window(window, SSIM_SIGMA, x.dtype, x.device)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5, H, W)
    stack = stack[:, :, _reflect_index(h, r, x.device)][:, :, :, _reflect_index(w, r, x.device)]
    stack = F.conv2d(stack, g.view(1, 1, window, 1).expand(5, 1, window, 1), groups=5)
    stack = F.conv2d(stack, g.view(1, 1, 1, window).expand(5, 1, 1, window), groups=5)
    mu_x, mu_y, e_xx, e_yy, e_xy = stack.unbind(dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).unsqueeze(1)


def _gray(x: torch.Tensor, fn: str) -> torch.Tensor:
    c = x.shape[1]
    if c == 1:
        return x
    if c == 3:
        return rgb_to_gray(x)
    raise ArgumentError(f"{fn}: images must have 1 (gray) or 3 (RGB) channels (got {c})")


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    mask: torch.Tensor | None = None,
    window: int = 11,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Per-image structural similarity (Wang et al. 2004) of image batches ``a`` and ``b`` (N, C, H, W).

    Standard SSIM with a Gaussian window of ``window`` taps (odd, e.g. 7 or 11; 11 is what
    scikit-image's ``gaussian_weights=True`` uses) and sigma 1.5, population (co)variances,
    ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` with ``L = data_range``. It is computed on gray
    images: 3-channel images are converted with ITU-R BT.601 weights (0.299, 0.587, 0.114;
    :func:`hfr.nn.ranges.rgb_to_gray`), 1-channel images are used as they are. The SSIM map has
    the images' size ('same' filtering; the borders are padded by half-sample symmetric
    reflection, scipy.ndimage's ``mode="reflect"``, as scikit-image does), so the result is the
    mean of the map over all pixels, or over those ``mask`` (N, 1, H, W) selects (NaN if none).
    Identical images give 1. Returns a float tensor (N,).
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise ArgumentError(f"ssim: window must be an odd integer >= 3, e.g. 7 or 11 (got {window!r})")
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise ArgumentError(f"ssim: data_range must be a positive number (got {data_range!r})")
    a, b, m = _check_images(a, b, mask, "ssim")
    smap = _ssim_map(_gray(a, "ssim"), _gray(b, "ssim"), window, float(data_range))
    return _masked_mean(smap, m)


# ----------------------------------------------------------------------------- features


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        return (t.double() if t.is_floating_point() else t).numpy()
    return np.asarray(x)


def _matrix(x: Any, name: str, fn: str, min_rows: int = 1) -> np.ndarray:
    """``x`` as a finite float64 (N, D) matrix with at least ``min_rows`` rows."""
    try:
        arr = np.asarray(_to_numpy(x), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{fn}: {name} must be a numeric (N, D) feature matrix: {exc}") from exc
    if arr.ndim != 2:
        raise ArgumentError(f"{fn}: {name} must be a 2-D (N, D) feature matrix (got shape {arr.shape})")
    if arr.shape[0] < min_rows or arr.shape[1] == 0:
        need = f"at least {min_rows} rows" if min_rows > 1 else "at least one row"
        raise ArgumentError(f"{fn}: {name} has shape {arr.shape}; give {need} of at least one dimension")
    if not np.isfinite(arr).all():
        raise ArgumentError(f"{fn}: {name} holds NaN or infinite values; check the features that produced them")
    return arr


def _normalised(x: Any, name: str, fn: str) -> np.ndarray:
    """``x`` as an (N, D) matrix of unit rows; a zero row is an ArgumentError."""
    f = _matrix(x, name, fn)
    norms = np.linalg.norm(f, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ArgumentError(f"{fn}: {name} row {int(zero[0])} is a zero vector and has no direction")
    return f / norms[:, None]


def _labels(x: Any, n: int, name: str, fn: str) -> np.ndarray:
    arr = _to_numpy(x)
    if arr.ndim != 1 or arr.size != n:
        raise ArgumentError(f"{fn}: {name} must be 1-D with one label per feature row ({n}) (got shape {arr.shape})")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, names: str, fn: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ArgumentError(
            f"{fn}: {names} have dimensions {a.shape[1]} and {b.shape[1]}; embed both with the same model"
        )


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding eigenvalues -> 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) (the FID formula).

    ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` with the sample means and the
    unbiased (ddof = 1) sample covariances, as pytorch-fid computes them, so each set needs
    at least 2 rows. ``Tr (S_a S_b)^(1/2)`` is computed through symmetric matrices as the sum
    of the square roots of the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)`` (similar to
    ``S_a S_b``, PSD), which stays real and exact when a covariance is singular (fewer
    samples than dimensions), unlike a general matrix square root; rounding below 0 is
    clamped. Inputs may be numpy arrays or torch tensors; returns a Python float.
    """
    fa = _matrix(feats_a, "feats_a", "frechet_distance", min_rows=2)
    fb = _matrix(feats_b, "feats_b", "frechet_distance", min_rows=2)
    _same_dim(fa, fb, "feats_a and feats_b", "frechet_distance")
    mu_a, mu_b = fa.mean(axis=0), fb.mean(axis=0)
    s_a = np.atleast_2d(np.cov(fa, rowvar=False))
    s_b = np.atleast_2d(np.cov(fb, rowvar=False))
    root_a = _sym_sqrt(s_a)
    middle = root_a @ s_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff) + float(np.trace(s_a) + np.trace(s_b)) - 2.0 * tr_sqrt
    return max(value, 0.0)


def genuine_impostor_scores(
    feats: Any, labels: Any, feats_b: Any = None, labels_b: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of feature pairs and whether each pair shares a label: ``(scores, same)``.

    Features are L2-normalised first. With ``feats_b`` / ``labels_b`` the pairs are every row
    of ``feats`` against every row of ``feats_b`` (row-major: row 0 of ``feats`` against all of
    ``feats_b`` first), e.g. generated images against real ones; without them, every pair
    ``i < j`` within ``feats`` (in ``np.triu_indices`` order). Returns float64 scores in
    [-1, 1] and a bool array (True: genuine pair, same subject), ready for
    :func:`verification_summary` or :mod:`hfr.metrics`.
    """
    fn = "genuine_impostor_scores"
    if (feats_b is None) != (labels_b is None):
        raise ArgumentError(f"{fn}: give feats_b and labels_b together (or neither, for pairs within feats)")
    fa = _normalised(feats, "feats", fn)
    la = _labels(labels, fa.shape[0], "labels", fn)
    if feats_b is None:
        if fa.shape[0] < 2:
            raise ArgumentError(f"{fn}: feats has {fa.shape[0]} row; pairs within one set need at least 2")
        i, j = np.triu_indices(fa.shape[0], k=1)
        scores = np.einsum("ij,ij->i", fa[i], fa[j])
        same = la[i] == la[j]
    else:
        fb = _normalised(feats_b, "feats_b", fn)
        lb = _labels(labels_b, fb.shape[0], "labels_b", fn)
        _same_dim(fa, fb, "feats and feats_b", fn)
        scores = (fa @ fb.T).reshape(-1)
        same = (la[:, None] == lb[None, :]).reshape(-1)
    return np.clip(scores, -1.0, 1.0), np.asarray(same, dtype=bool)


def verification_summary(scores: Any, same: Any, far: float = 0.01) -> dict[str, Any]:
    """The verification numbers of a set of scored pairs (higher score = more alike).

    Keys: ``auc`` (:func:`hfr.metrics.auc`), ``f"tar@far={far:g}"`` (e.g. ``"tar@far=0.01"``:
    :func:`hfr.metrics.tar_at_far`, conservative, the largest TAR with FAR <= ``far``),
    ``genuine_mean`` and ``impostor_mean`` (mean score of each kind), ``n_genuine`` and
    ``n_impostor``. ``same`` is True / 1 for a genuine pair; both kinds must be present
    (:class:`hfr.errors.MetricError` otherwise). Values are Python floats and ints.
    """
    rc = metrics.roc_counts(scores, same)
    s = np.asarray(_to_numpy(scores), dtype=np.float64).reshape(-1)
    lab = np.asarray(_to_numpy(same)).reshape(-1).astype(bool)
    return {
        "auc": float(metrics.auc(rc, None)),
        f"tar@far={far:g}": float(metrics.tar_at_far(rc, None, far)),
        "genuine_mean": float(s[lab].mean()),
        "impostor_mean": float(s[~lab].mean()),
        "n_genuine": rc.n_genuine,
        "n_impostor": rc.n_impostor,
    }


def rank1(probe_feats: Any, probe_labels: Any, gallery_feats: Any, gallery_labels: Any) -> float:
    """Rank-1 identification rate of probes against a gallery, by cosine similarity.

    :func:`hfr.metrics.rank_k` with k = 1 on :func:`hfr.metrics.similarity_matrix`: a gallery
    subject scores its best image, a tie with another subject counts against the probe, and
    a probe whose subject is absent from the gallery raises :class:`hfr.errors.MetricError`.
    """
    sim = metrics.similarity_matrix(probe_feats, gallery_feats)
    return metrics.rank_k(sim, probe_labels, gallery_labels, k=1)


def _angles(x: Any, name: str, fn: str) -> np.ndarray:
    try:
        arr = np.asarray(_to_numpy(x), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{fn}: {name} must be numbers (degrees): {exc}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ArgumentError(f"{fn}: {name} must be a non-empty 1-D sequence of angles (got shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise ArgumentError(f"{fn}: {name} holds NaN or infinite values")
    return arr


def yaw_errors(estimated: Any, target: Any, bins: Any) -> dict[str, Any]:
    """How well estimated yaw angles (degrees) match the target yaws, e.g. of pose-edited faces.

    Keys: ``mae``, the mean of ``|estimated - target|`` in degrees (no wrap-around: face yaws
    lie in [-90, 90]); ``bin_accuracy``, the fraction of images whose estimated yaw and target
    yaw have the same nearest bin centre among ``bins`` (a tie between two centres goes to the
    one listed first); ``n``, the number of images. Values are Python floats and an int.
    """
    fn = "yaw_errors"
    est = _angles(estimated, "estimated", fn)
    tgt = _angles(target, "target", fn)
    centres = _angles(bins, "bins", fn)
    if est.size != tgt.size:
        raise ArgumentError(f"{fn}: estimated has {est.size} angles but target {tgt.size}; give one target per image")
    est_bin = np.argmin(np.abs(est[:, None] - centres[None, :]), axis=1)
    tgt_bin = np.argmin(np.abs(tgt[:, None] - centres[None, :]), axis=1)
    return {
        "mae": float(np.abs(est - tgt).mean()),
        "bin_accuracy": float((est_bin == tgt_bin).mean()),
        "n": int(est.size),
    }


def nearest_identity_distance(query_feats: Any, reference_feats: Any, reference_labels: Any) -> np.ndarray:
    """For each query, the cosine distance to its nearest reference identity: ``1 - max_k cos(q, c_k)``.

    ``c_k`` is identity k's centre: the mean of its L2-normalised reference features, itself
    L2-normalised. Used to check that generated identities are new (far from every training
    identity). Compared with :func:`within_identity_distance` this is conservative: when a
    query's mean cosine to an identity's images is >= 0, its cosine to the centre is at least
    that mean (the unnormalised mean is shorter than 1), so the distance to the centre is at
    most the mean distance to the images. Returns a float64 array (Q,) in [0, 2].
    """
    fn = "nearest_identity_distance"
    q = _normalised(query_feats, "query_feats", fn)
    ref = _normalised(reference_feats, "reference_feats", fn)
    lab = _labels(reference_labels, ref.shape[0], "reference_labels", fn)
    _same_dim(q, ref, "query_feats and reference_feats", fn)
    ids, inverse = np.unique(lab, return_inverse=True)
    centres = np.zeros((ids.size, ref.shape[1]))
    np.add.at(centres, inverse.reshape(-1), ref)
    norms = np.linalg.norm(centres, axis=1)
    zero = np.flatnonzero(norms <= 1e-12)
    if zero.size:
        raise ArgumentError(
            f"{fn}: the features of reference identity {ids[zero[0]]!r} cancel out (zero mean direction)"
        )
    centres /= norms[:, None]
    cos = np.clip(q @ centres.T, -1.0, 1.0)
    return np.asarray(1.0 - cos.max(axis=1), dtype=np.float64)


def within_identity_distance(feats: Any, labels: Any) -> np.ndarray:
    """For each identity with at least 2 images, the mean cosine distance ``1 - cos`` over its image pairs.

    One value per such identity, in the order of the sorted distinct labels (identities
    with a single image are left out). It is the yardstick for
    :func:`nearest_identity_distance`: how far apart two images of one real subject are.
    Raises ArgumentError when no identity has two images. Returns a float64 array.
    """
    fn = "within_identity_distance"
    f = _normalised(feats, "feats", fn)
    lab = _labels(labels, f.shape[0], "labels", fn)
    ids, inverse = np.unique(lab, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = []
    for k in range(ids.size):
        rows = f[inverse == k]
        n = rows.shape[0]
        if n < 2:
            continue
        i, j = np.triu_indices(n, k=1)
        cos = np.clip(np.einsum("ij,ij->i", rows[i], rows[j]), -1.0, 1.0)
        out.append(float((1.0 - cos).mean()))
    if not out:
        raise ArgumentError(f"{fn}: no identity among {ids.size} has two or more images; nothing to compare")
    return np.asarray(out, dtype=np.float64)
