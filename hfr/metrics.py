"""Face recognition metrics: exact ROC, VR/TAR@FAR, EER, AUC, CMC / rank-k, 10-fold accuracy.

Conventions (shared by every function here):

- A score is a similarity (the cosine of L2-normalised features): higher means more alike.
  A pair is *accepted* at threshold ``t`` when ``score >= t``.
- Verification labels: 1 / True for a genuine pair (same subject), 0 / False for an impostor
  pair. FAR is the fraction of impostor pairs accepted, TAR (= VR, the verification rate) the
  fraction of genuine pairs accepted, FRR = 1 - TAR.
- The ROC is exact: one point per distinct score, so pairs with equal scores are accepted
  together (ties never produce points "in between"), starting at (FAR, TAR) = (0, 0) with
  threshold ``+inf``.
- Inputs may be numpy arrays, lists or torch tensors (any device, any float dtype); they are
  converted to float64 numpy. Results are Python floats or numpy arrays.
- FAR targets are read as the decimal number they print as (``1e-3`` is exactly 1/1000), and
  compared with the exact fractions ``fp / n_impostor``, so ``FAR <= 0.001`` with 1000
  impostors allows exactly one false accept, whatever the binary rounding of 0.001.
- Bad input (NaN, shapes that differ, no genuine or no impostor pair, an unknown option)
  raises :class:`hfr.errors.MetricError` with a message that says what to do.

Everything is vectorised numpy: the ROC costs one sort of all scores plus a binary search
per score of the rarer kind (usually the genuine pairs), so the full verification report
on 10^7 impostor scores takes about 2 s on one (shared, busy) CPU core.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from hfr.errors import MetricError

log = logging.getLogger(__name__)

TAR_MODES = ("conservative", "nearest")
OPEN_SET_MODES = ("error", "ignore", "miss")


# ----------------------------------------------------------------------------- conversion


def _to_numpy(x: Any) -> np.ndarray:
    """`x` as a numpy array; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "is_floating_point"):
        t = x.detach().cpu()
        if t.is_floating_point():
            t = t.double()  # bf16 / fp16 have no numpy dtype
        return t.numpy()
    return np.asarray(x)


def _as_float(x: Any, name: str, allow_inf: bool = False) -> np.ndarray:
    """`x` as a float64 array; NaN (and infinity unless `allow_inf`) is a MetricError."""
    try:
        arr = np.asarray(_to_numpy(x), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"{name} must be numbers (got {type(x).__name__}): {exc}") from exc
    if np.isnan(arr).any():
        n = int(np.isnan(arr).sum())
        raise MetricError(
            f"{name} holds {n} NaN value(s); remove those pairs or fix the features "
            "that produced them (a zero feature vector gives NaN cosines)"
        )
    if not allow_inf and np.isinf(arr).any():
        raise MetricError(
            f"{name} holds infinite values; scores must be finite similarities "
            "(drop masked pairs instead of giving them -inf)"
        )
    return arr


def _as_labels(x: Any, name: str) -> np.ndarray:
    """Identity labels (ints, strings, ...) as a 1-D numpy array."""
    arr = _to_numpy(x)
    if arr.ndim != 1:
        raise MetricError(f"{name} must be a 1-D sequence of subject labels (got shape {arr.shape})")
    return arr


def _check_pairs(scores: Any, labels: Any, require_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validated flat (scores float64, labels bool) of a verification set."""
    s = _as_float(scores, "scores")
    raw = _to_numpy(labels)
    if s.shape != raw.shape:
        raise MetricError(
            f"scores and labels must have the same shape (got {s.shape} and {raw.shape}); give one label per score"
        )
    if raw.dtype == bool:
        lab = raw.reshape(-1)
    else:
        try:
            num = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise MetricError(f"labels must be 1 (genuine) / 0 (impostor) or booleans (got dtype {raw.dtype})") from exc
        bad = ~((num == 0) | (num == 1))
        if bad.any():
            raise MetricError(
                "labels must be 1 (genuine) / 0 (impostor) or booleans; found "
                f"{num[bad][0]!r} at index {int(np.flatnonzero(bad)[0])}"
            )
        lab = num == 1
    s = s.reshape(-1)
    if require_both:
        n_gen = int(lab.sum())
        if n_gen == 0 or n_gen == lab.size:
            missing = "genuine (label 1)" if n_gen == 0 else "impostor (label 0)"
            raise MetricError(
                f"the verification set has no {missing} pair among {lab.size} scores; a ROC needs both kinds"
            )
    return s, lab


# ----------------------------------------------------------------------------- the exact ROC


@dataclass(frozen=True)
class RocCounts:
    """The exact ROC as integer counts, shared by the ROC-based metrics.

    ``thresholds[k]`` (descending; ``thresholds[0] = +inf``) accepts ``tp[k]`` of the
    ``n_genuine`` genuine pairs and ``fp[k]`` of the ``n_impostor`` impostor pairs.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_genuine: int
    n_impostor: int

    @property
    def far(self) -> np.ndarray:
        """False accept rate of each ROC point."""
        return self.fp / self.n_impostor

    @property
    def tar(self) -> np.ndarray:
        """True accept rate of each ROC point."""
        return self.tp / self.n_genuine


def roc_counts(scores: Any, labels: Any) -> RocCounts:
    """Exact ROC as counts (see :class:`RocCounts`); the building block of the other metrics.

    Compute it once and pass it to :func:`tar_at_far`, :func:`eer` and :func:`auc` (they accept
    a ``RocCounts`` in place of ``scores`` with ``labels=None``) to sort the scores only once.
    """
    s, lab = _check_pairs(scores, labels)
    distinct, tp, fp = _accept_counts(s, lab)
    thresholds = np.concatenate([[np.inf], distinct])
    tp = np.concatenate([[0], tp])
    fp = np.concatenate([[0], fp])
    n_gen = int(tp[-1])
    return RocCounts(thresholds, tp, fp, n_gen, int(s.size - n_gen))


def _group_counts(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values ascending, index of each value's first occurrence) of sorted scores."""
    first = np.empty(sorted_scores.size, dtype=bool)
    first[0] = True
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return sorted_scores[starts], starts


def _accept_counts(s: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (descending) and how many genuine / impostor scores are ``>=`` each.

    One sort of all scores gives the distinct values and, from each value's first position,
    how many scores of either kind are ``>=`` it; the smaller kind is then located among the
    distinct values (a binary search per score of that kind) and counted with a cumulative
    sum, the other kind is the difference. Counts are int64.
    """
    distinct, starts = _group_counts(np.sort(s))
    total_ge = s.size - starts
    n_gen = int(lab.sum())
    few_are_genuine = n_gen <= s.size - n_gen
    few = s[lab] if few_are_genuine else s[~lab]
    per_value = np.bincount(np.searchsorted(distinct, few), minlength=distinct.size)
    few_ge = np.cumsum(per_value[::-1])[::-1]
    many_ge = total_ge - few_ge
    tp, fp = (few_ge, many_ge) if few_are_genuine else (many_ge, few_ge)
    return distinct[::-1], tp[::-1].astype(np.int64), fp[::-1].astype(np.int64)


def _counts(scores: Any, labels: Any) -> RocCounts:
    """`scores` itself when it is a RocCounts (labels must be None), else roc_counts(...)."""
    if isinstance(scores, RocCounts):
        if labels is not None:
            raise MetricError("pass labels=None together with a precomputed RocCounts")
        return scores
    return roc_counts(scores, labels)


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC: ``(far, tar, thresholds)``, one point per distinct score.

    The first point is (0, 0) with threshold ``+inf``; point k accepts every pair whose score
    is ``>= thresholds[k]`` (all pairs sharing a score move together). FAR and TAR are
    non-decreasing, the last point is (1, 1) at the lowest score. ``labels``: 1 / True for
    genuine, 0 / False for impostor. NaN or infinite scores, shapes that differ, or a set
    without genuine or without impostor pairs raise MetricError.
    """
    rc = roc_counts(scores, labels)
    return rc.far, rc.tar, rc.thresholds.copy()


# ----------------------------------------------------------------------------- TAR @ FAR


def _far_target(x: Any) -> Fraction:
    """A FAR target as an exact fraction of the decimal it prints as; checked to lie in [0, 1]."""
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"FAR target {x!r} is not a number; give e.g. 1e-3") from exc
    if not (0.0 <= v <= 1.0):
        raise MetricError(f"FAR target {x!r} must lie in [0, 1] (e.g. 1e-3 for 0.1%)")
    return Fraction(repr(v))


def _tar_index(rc: RocCounts, target: Fraction, mode: str) -> int:
    """Index of the ROC point that reports TAR at FAR `target` (see tar_at_far for the rules)."""
    n = rc.n_impostor
    fp = rc.fp
    # last point with fp / n <= target, i.e. fp <= floor(target * n) (exact integer test)
    limit = math.floor(target * n)
    lo = int(np.searchsorted(fp, limit, side="right")) - 1  # >= 0: fp[0] = 0
    if mode == "conservative" or lo == fp.size - 1:
        return lo
    # nearest: the FAR value just above the target competes with fp[lo] / n
    hi_fp = int(fp[lo + 1])
    if target - Fraction(int(fp[lo]), n) <= Fraction(hi_fp, n) - target:
        return lo
    return int(np.searchsorted(fp, hi_fp, side="right")) - 1


def tar_at_far(
    scores: Any, labels: Any, far: float | Sequence[float], mode: str = "conservative"
) -> float | np.ndarray:
    """TAR (VR) at FAR = `far`; a float, or an array when `far` is a sequence.

    mode ``"conservative"`` (the project's convention): the largest TAR among the ROC points
    whose FAR is ``<= far``. With no impostor score above some genuine scores, FAR = 0 is
    reachable, so the result is never undefined.

    mode ``"nearest"`` (the variant many papers' code uses, for comparison with the
    literature): take the ROC's FAR values, pick the one closest to `far` (a tie between one
    below and one above goes to the lower FAR), and return the largest TAR at exactly that
    FAR (the top of the ROC's vertical step there). It can report a TAR whose FAR exceeds the
    target, so it is >= the conservative value. Note: insightface's IJB evaluation takes the
    first (lowest-TAR) sklearn ROC point at the nearest FAR, which can be lower than this.

    `far` targets are read as decimals (see the module docstring) and must lie in [0, 1].
    `scores` may be a precomputed :class:`RocCounts` with ``labels=None``.
    """
    if mode not in TAR_MODES:
        raise MetricError(f"unknown TAR@FAR mode {mode!r}; choose one of {', '.join(TAR_MODES)}")
    rc = _counts(scores, labels)
    scalar = np.ndim(far) == 0
    targets = [far] if scalar else list(np.asarray(_to_numpy(far), dtype=object).reshape(-1))
    out = np.array([rc.tp[_tar_index(rc, _far_target(t), mode)] / rc.n_genuine for t in targets], dtype=np.float64)
    return float(out[0]) if scalar else out


def threshold_at_far(scores: Any, labels: Any, far: float, mode: str = "conservative") -> float:
    """The score threshold of the operating point :func:`tar_at_far` reports for `far`.

    Accepting ``score >= threshold`` on the same data reproduces that TAR and a FAR that is
    ``<= far`` in the conservative mode. ``+inf`` when no finite threshold qualifies (every
    genuine score ties with or falls below the top impostor score and `far` allows none).
    """
    if mode not in TAR_MODES:
        raise MetricError(f"unknown TAR@FAR mode {mode!r}; choose one of {', '.join(TAR_MODES)}")
    rc = _counts(scores, labels)
    return float(rc.thresholds[_tar_index(rc, _far_target(far), mode)])


# ----------------------------------------------------------------------------- EER, AUC


def eer(scores: Any, labels: Any) -> tuple[float, float]:
    """Equal error rate and its threshold: ``(eer, threshold)``.

    Picked on the exact (discrete) ROC, without interpolation: the ROC point minimising
    ``|FAR - FRR|`` (FRR = 1 - TAR); the EER is ``(FAR + FRR) / 2`` at that point and the
    threshold is the point's threshold (accept ``score >= threshold``). ``FAR - FRR`` strictly
    increases along the ROC, so at most two points tie (one on each side of the crossing): the
    one with the smaller ``(FAR + FRR) / 2`` wins, and on an exact tie the lower threshold.
    Comparisons are exact (integer counts). Perfect separation gives 0, fully reversed
    scores give 1, all-equal scores give 0.5. `scores` may be a :class:`RocCounts`.
    """
    rc = _counts(scores, labels)
    p, n = rc.n_genuine, rc.n_impostor
    # FAR - FRR strictly increases along the ROC: find its sign change in floats, then settle
    # the few points around it exactly, with (FAR - FRR) * n * p as Python integers.
    d = rc.fp / n + rc.tp / p - 1.0
    k = int(np.searchsorted(d, 0.0, side="left"))
    window = range(max(0, k - 3), min(d.size, k + 3))

    def key(i: int) -> tuple[int, int, int]:
        """Sort key of ROC point i: |FAR - FRR|, then FAR + FRR, then the lower threshold."""
        fp_i, tp_i = int(rc.fp[i]), int(rc.tp[i])
        return abs(fp_i * p - (p - tp_i) * n), fp_i * p + (p - tp_i) * n, -i

    best = min(window, key=key)
    far_k = int(rc.fp[best]) / n
    frr_k = (p - int(rc.tp[best])) / p
    return (far_k + frr_k) / 2.0, float(rc.thresholds[best])


def auc(scores: Any, labels: Any) -> float:
    """Area under the exact ROC (trapezoids, so a tie block adds a diagonal segment).

    Equals the Mann-Whitney statistic ``P(genuine > impostor) + P(genuine == impostor) / 2``
    over all genuine x impostor pairs. Computed exactly in integers, then divided once.
    `scores` may be a :class:`RocCounts`.
    """
    rc = _counts(scores, labels)
    dfp = np.diff(rc.fp)
    twice = int(np.dot(dfp, rc.tp[1:] + rc.tp[:-1]))
    return twice / (2 * rc.n_genuine * rc.n_impostor)


def verification_report(scores: Any, labels: Any, fars: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1)) -> dict[str, Any]:
    """The usual verification numbers from one sort of the scores; JSON-serialisable.

    Keys: ``n_genuine``, ``n_impostor``, ``auc``, ``eer``, ``eer_threshold``,
    ``tar_at_far`` (``{"1e-3": tar, ...}``, conservative), ``tar_at_far_nearest`` (same keys,
    the literature's nearest-point variant), ``threshold_at_far`` (conservative thresholds;
    ``None`` where it is ``+inf``). A FAR below ``1 / n_impostor`` is still reported (it means
    FAR = 0) but logged as a warning, since the data cannot resolve it.
    """
    rc = _counts(scores, labels)
    e, thr = eer(rc, None)
    conservative = np.atleast_1d(tar_at_far(rc, None, list(fars)))
    nearest = np.atleast_1d(tar_at_far(rc, None, list(fars), mode="nearest"))
    thresholds = [threshold_at_far(rc, None, f) for f in fars]
    for f in fars:
        if 0 < float(f) < 1.0 / rc.n_impostor:
            log.warning(
                "FAR %g is below 1 / %d impostor pairs: it is reported as TAR at FAR = 0", float(f), rc.n_impostor
            )
    keys = [f"{float(f):g}" for f in fars]
    return {
        "n_genuine": rc.n_genuine,
        "n_impostor": rc.n_impostor,
        "auc": auc(rc, None),
        "eer": e,
        "eer_threshold": thr if math.isfinite(thr) else None,
        "tar_at_far": dict(zip(keys, map(float, conservative))),
        "tar_at_far_nearest": dict(zip(keys, map(float, nearest))),
        "threshold_at_far": {k: (t if math.isfinite(t) else None) for k, t in zip(keys, thresholds)},
    }


# ----------------------------------------------------------------------------- identification


def similarity_matrix(probe_feats: Any, gallery_feats: Any) -> np.ndarray:
    """Cosine similarities ``(P, G)`` of the rows of two feature matrices, after L2 normalising.

    Both inputs are 2-D ``(n, D)`` with the same D. A zero (or non-finite) feature vector
    cannot be normalised and raises MetricError naming its row.
    """
    out = []
    for name, feats in (("probe_feats", probe_feats), ("gallery_feats", gallery_feats)):
        f = _as_float(feats, name)
        if f.ndim != 2:
            raise MetricError(f"{name} must be a 2-D (n, D) feature matrix (got shape {f.shape})")
        norms = np.linalg.norm(f, axis=1)
        bad = np.flatnonzero(norms == 0)
        if bad.size:
            raise MetricError(
                f"{name} row {int(bad[0])} is a zero vector and has no direction; "
                f"{bad.size} such row(s) in all — check the features"
            )
        out.append(f / norms[:, None])
    p, g = out
    if p.shape[1] != g.shape[1]:
        raise MetricError(
            f"probe features have dimension {p.shape[1]} but gallery features "
            f"{g.shape[1]}; embed both with the same model"
        )
    return np.clip(p @ g.T, -1.0, 1.0)


def _check_identification(
    similarity: Any, probe_labels: Any, gallery_labels: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (similarity (P, G) float64, probe labels, gallery labels)."""
    sim = _as_float(similarity, "similarity", allow_inf=True)
    if sim.ndim != 2:
        raise MetricError(f"similarity must be a (probes, gallery) matrix (got shape {sim.shape})")
    if np.isposinf(sim).any():
        raise MetricError("similarity holds +inf; only -inf is allowed (to mask a pair out)")
    pl = _as_labels(probe_labels, "probe_labels")
    gl = _as_labels(gallery_labels, "gallery_labels")
    textual = [a.dtype.kind in "USO" for a in (pl, gl)]
    if textual[0] != textual[1]:
        raise MetricError(
            f"probe labels ({pl.dtype}) and gallery labels ({gl.dtype}) are of "
            "different kinds (text vs numbers); give both as the same type"
        )
    if pl.size != sim.shape[0] or gl.size != sim.shape[1]:
        raise MetricError(
            f"similarity has shape {sim.shape} but there are {pl.size} probe labels "
            f"and {gl.size} gallery labels; give one label per row / column"
        )
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise MetricError(f"similarity has shape {sim.shape}: no probes or an empty gallery")
    return sim, pl, gl


def subject_ranks(similarity: Any, probe_labels: Any, gallery_labels: Any, open_set: str = "error") -> np.ndarray:
    """The rank (1 = best) of each probe's true subject among the gallery's subjects.

    A subject's score for a probe is its best-scoring gallery image, so several images per
    subject count once. Ties are pessimistic: the rank is the number of gallery subjects whose
    score is ``>=`` the true subject's, so a tie with an impostor subject counts against.
    ``-inf`` similarities are allowed (to mask pairs out). Probes whose subject is not in the
    gallery: ``open_set="error"`` (default) raises MetricError, ``"ignore"`` gives them rank 0
    (callers drop them), ``"miss"`` gives them rank ``n_subjects + 1`` (never matched).
    """
    if open_set not in OPEN_SET_MODES:
        raise MetricError(f"unknown open_set {open_set!r}; choose one of {', '.join(OPEN_SET_MODES)}")
    sim, pl, gl = _check_identification(similarity, probe_labels, gallery_labels)
    subjects, g_idx = np.unique(gl, return_inverse=True)
    n_sub = subjects.size
    order = np.argsort(g_idx, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(g_idx[order]) != 0])
    best = np.maximum.reduceat(sim[:, order], starts, axis=1)  # (P, n_sub)
    pos = np.searchsorted(subjects, pl)
    found = (pos < n_sub) & (subjects[np.minimum(pos, n_sub - 1)] == pl)
    if not found.all() and open_set == "error":
        missing = np.flatnonzero(~found)
        raise MetricError(
            f"{missing.size} probe(s) have a subject absent from the gallery "
            f"(first: probe {int(missing[0])}, subject {pl[missing[0]]!r}); use "
            "open_set='ignore' or 'miss' for an open-set evaluation"
        )
    rows = np.flatnonzero(found)
    true_score = best[rows, pos[rows]]
    ranks = np.full(pl.size, n_sub + 1 if open_set == "miss" else 0, dtype=np.int64)
    ranks[rows] = (best[rows] >= true_score[:, None]).sum(axis=1)
    return ranks


def cmc(
    similarity: Any, probe_labels: Any, gallery_labels: Any, max_rank: int | None = None, open_set: str = "error"
) -> np.ndarray:
    """Cumulative match characteristic: ``cmc[k-1]`` = fraction of probes matched within rank k.

    ``similarity`` is ``(P, G)``; ranks count distinct gallery subjects (a subject scores its
    best image) and ties with other subjects count against the probe (see
    :func:`subject_ranks`). ``max_rank`` defaults to the number of gallery subjects; larger
    values are allowed (the curve stays flat). ``open_set``: ``"error"`` (default) when a probe's
    subject is absent from the gallery, ``"ignore"`` to leave such probes out of the fraction,
    ``"miss"`` to count them as never matched (the curve then ends below 1).
    """
    ranks = subject_ranks(similarity, probe_labels, gallery_labels, open_set=open_set)
    n_sub = np.unique(_as_labels(gallery_labels, "gallery_labels")).size
    if max_rank is None:
        max_rank = n_sub
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise MetricError(f"max_rank must be a positive integer (got {max_rank!r})")
    kept = ranks[ranks > 0]
    if kept.size == 0 or (kept > n_sub).all():
        raise MetricError("no probe has its subject in the gallery; nothing to rank")
    kept = np.where(kept > n_sub, max_rank + 1, kept)  # open_set="miss": never matched
    hist = np.bincount(np.minimum(kept, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    return np.cumsum(hist) / kept.size


def rank_k(similarity: Any, probe_labels: Any, gallery_labels: Any, k: int = 1, open_set: str = "error") -> float:
    """Rank-k identification rate: ``cmc(...)[k - 1]`` (rank-1 accuracy by default)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise MetricError(f"k must be a positive integer (got {k!r})")
    return float(cmc(similarity, probe_labels, gallery_labels, max_rank=int(k), open_set=open_set)[-1])


def pair_scores_from_labels(similarity: Any, probe_labels: Any, gallery_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every probe-gallery pair as a flat verification set: ``(scores, labels)``.

    ``scores`` is ``similarity.ravel()`` (row-major: probe 0 against every gallery image
    first), ``labels`` is True where the probe's and the gallery image's subjects agree. This
    is how VR@FAR is measured on identification data (e.g. CASIA NIR-VIS 2.0).
    """
    sim, pl, gl = _check_identification(similarity, probe_labels, gallery_labels)
    labels = pl[:, None] == gl[None, :]
    return sim.reshape(-1), np.asarray(labels, dtype=bool).reshape(-1)


# ----------------------------------------------------------------------------- k-fold accuracy


def _best_cut(distinct: np.ndarray, tp: np.ndarray, fp: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) of the best cut given descending distinct scores and >= counts."""
    n_gen, n_imp = int(tp[-1]), int(fp[-1])
    # cut j accepts the j highest distinct scores; cut 0 accepts nothing
    correct = np.concatenate([[n_imp], tp + (n_imp - fp)])
    j = int(np.argmax(correct))
    if j == 0:
        thr = float(np.nextafter(distinct[0], np.inf))
    elif j == distinct.size:
        thr = float(distinct[-1])
    else:
        hi, lo = distinct[j - 1], distinct[j]
        mid = hi / 2.0 + lo / 2.0
        thr = float(mid if lo < mid <= hi else hi)
    return thr, float(correct[j]) / (n_gen + n_imp)


def best_threshold(scores: Any, labels: Any) -> tuple[float, float]:
    """The threshold maximising accuracy on a set of pairs: ``(threshold, accuracy)``.

    Every cut between two consecutive distinct scores is tried (plus accepting nothing and
    accepting everything); the first best cut from the top (the highest threshold) wins.
    The threshold returned is the midpoint between the lowest accepted and the highest
    rejected distinct score, so it generalises to unseen scores with the widest margin;
    accepting everything gives the lowest score, accepting nothing the next float above the
    highest. Unlike the ROC functions, a set with only one kind of pair is allowed.
    """
    s, lab = _check_pairs(scores, labels, require_both=False)
    if s.size == 0:
        raise MetricError("cannot choose a threshold on an empty set of pairs")
    return _best_cut(*_accept_counts(s, lab))


def verification_accuracy(scores: Any, labels: Any, folds: Any = None, n_folds: int = 10) -> dict[str, Any]:
    """k-fold verification accuracy (LFW / CFP protocol).

    For each fold, :func:`best_threshold` is chosen on the other folds and applied to the
    held-out fold (accept ``score >= threshold``). ``folds`` gives each pair's fold (any
    labels: ints, ``"fold_3"`` strings; exactly `n_folds` distinct values, taken in sorted
    order); ``None`` splits the pairs, in order, into `n_folds` consecutive blocks as LFW's
    and CFP's pair lists are laid out (``np.array_split`` sizes).

    Returns ``{"mean", "std", "sem", "std_population", "accuracies", "thresholds"}``:
    ``mean`` is the mean of the fold accuracies; ``std`` the sample standard deviation
    (ddof = 1, LFW's sigma-hat); ``sem`` = std / sqrt(n_folds), the standard error of the mean
    that LFW's results tables print as "mean ± SE"; ``std_population`` (ddof = 0) is what
    facenet / insightface print after "±", given for comparison with those numbers.
    The scores are sorted once; each fold then costs O(n).
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise MetricError(f"n_folds must be an integer >= 2 (got {n_folds!r})")
    s, lab = _check_pairs(scores, labels, require_both=False)
    if folds is None:
        if s.size < n_folds:
            raise MetricError(f"{s.size} pairs cannot be split into {n_folds} folds")
        sizes = [len(b) for b in np.array_split(np.arange(s.size), n_folds)]
        fold_id = np.repeat(np.arange(n_folds), sizes)
    else:
        f = np.asarray(_to_numpy(folds)).reshape(-1)
        if f.size != s.size:
            raise MetricError(f"folds has {f.size} entries but there are {s.size} pairs; give one fold per pair")
        values, fold_id = np.unique(f, return_inverse=True)
        if values.size != n_folds:
            raise MetricError(
                f"folds holds {values.size} distinct fold(s) but n_folds={n_folds}; every fold needs at least one pair"
            )
    order = np.argsort(s)
    distinct, starts = _group_counts(s[order])
    group = np.empty(s.size, dtype=np.int64)
    group[order] = np.repeat(np.arange(distinct.size), np.diff(np.r_[starts, s.size]))
    m = distinct.size
    gen_all = np.bincount(group[lab], minlength=m)
    imp_all = np.bincount(group[~lab], minlength=m)
    accuracies = np.empty(n_folds)
    thresholds = np.empty(n_folds)
    for k in range(n_folds):
        test = fold_id == k
        gen = gen_all - np.bincount(group[test & lab], minlength=m)
        imp = imp_all - np.bincount(group[test & ~lab], minlength=m)
        present = (gen + imp) > 0  # distinct values of the training folds
        tp = np.cumsum(gen[present][::-1])
        fp = np.cumsum(imp[present][::-1])
        thr, _ = _best_cut(distinct[present][::-1], tp, fp)
        thresholds[k] = thr
        accuracies[k] = float(np.mean((s[test] >= thr) == lab[test]))
    std = float(np.std(accuracies, ddof=1))
    return {
        "mean": float(np.mean(accuracies)),
        "std": std,
        "sem": std / math.sqrt(n_folds),
        "std_population": float(np.std(accuracies, ddof=0)),
        "accuracies": accuracies,
        "thresholds": thresholds,
    }
