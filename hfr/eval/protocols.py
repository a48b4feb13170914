"""Evaluation protocols on features: cross-modal, cross-pose and pair verification.

Each protocol takes a manifest and a feature matrix whose row i belongs to manifest row i
(any recognizer, or DR-GAN's fused encoder features, can supply them) and returns a plain,
JSON-serialisable dict. Scores are cosine similarities of L2-normalised features.

- `cross_modal` (CASIA NIR-VIS 2.0 style): gallery one VIS image per subject, probes NIR.
  With `fold_k` columns (as `hfr data index --format casia-nirvis2` writes them) every fold
  is evaluated with its own gallery/probe lists and the result is mean +- std over folds;
  otherwise the `test` split is used (all rows when no row is `test`), the gallery is the
  rows marked `gallery=1` when that column exists, else each subject's first VIS image.
- `cross_pose` (Multi-PIE Setting 2 style): the gallery is one frontal image per subject
  (`gallery=1` rows when marked, else the first frontal image, preferring the neutral
  light); every other image of a gallery subject with a known yaw is a probe. Rank-1 per
  signed 15-degree yaw bin and per |yaw|; `mean` is the mean over the |yaw| bins other
  than 0, the figure DR-GAN's tables average.
- `verification` (CFP FF/FP, LFW): pairs from the adapters' pairs sidecar; 10-fold
  accuracy (threshold chosen on the other 9 folds), EER and AUC per protocol.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from hfr import metrics
from hfr.data.manifest import Manifest, Record
from hfr.data.stats import yaw_bin
from hfr.errors import ArgumentError, DataError

FAR_LEVELS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)
FRONTAL_TOLERANCE = 7.5
_FOLD_COLUMN = re.compile(r"^fold_(\d+)$")


def _normalise(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.maximum(norms, 1e-12)


def _check(manifest: Manifest, features: np.ndarray) -> np.ndarray:
    if len(features) != len(manifest):
        raise DataError(
            f"{len(features)} feature rows for {len(manifest)} manifest rows; embed the same manifest that is evaluated"
        )
    return _normalise(features)


def _test_rows(manifest: Manifest) -> list[int]:
    rows = [i for i, r in enumerate(manifest) if r.split == "test"]
    return rows or list(range(len(manifest)))


def _is_gallery(rec: Record) -> bool:
    return rec.get("gallery") in ("1", "true", "yes")


def _identification(
    feats: np.ndarray, manifest: Manifest, gallery: Sequence[int], probes: Sequence[int]
) -> tuple[np.ndarray, list[str], list[str]]:
    g_labels = [manifest[i].subject for i in gallery]
    p_labels = [manifest[i].subject for i in probes]
    sim = metrics.similarity_matrix(feats[list(probes)], feats[list(gallery)])
    return sim, p_labels, g_labels


def rank1_hits(similarity: np.ndarray, probe_labels: Sequence[str], gallery_labels: Sequence[str]) -> np.ndarray:
    """Per probe, whether its subject's best gallery score beats every other subject's (ties lose)."""
    g = np.asarray(gallery_labels)
    p = np.asarray(probe_labels)
    same = p[:, None] == g[None, :]
    if not same.any(axis=1).all():
        raise DataError("a probe's subject has no gallery image; restrict probes to gallery subjects")
    true_best = np.where(same, similarity, -np.inf).max(axis=1)
    other_best = np.where(same, -np.inf, similarity).max(axis=1) if (~same).any() else np.full(len(p), -np.inf)
    return true_best > other_best


def fold_names(manifest: Manifest) -> list[str]:
    """The `fold_k` columns of a manifest, in fold order (`fold_dev` excluded)."""
    folds = [(int(m.group(1)), c) for c in manifest.columns if (m := _FOLD_COLUMN.match(c))]
    return [c for _, c in sorted(folds)]


def _cross_modal_split(
    manifest: Manifest, rows: Sequence[int], gallery_modality: str, probe_modality: str
) -> tuple[list[int], list[int]]:
    marked = "gallery" in manifest.columns
    gallery: list[int] = []
    seen: set[str] = set()
    for i in rows:
        rec = manifest[i]
        if rec.modality != gallery_modality or rec.subject in seen:
            continue
        if marked and not _is_gallery(rec):
            continue
        gallery.append(i)
        seen.add(rec.subject)
    probes = [i for i in rows if manifest[i].modality == probe_modality and manifest[i].subject in seen]
    return gallery, probes


def _identification_scores(
    sim: np.ndarray, p_labels: list[str], g_labels: list[str], far_levels: Sequence[float], max_rank: int
) -> dict[str, Any]:
    cmc = metrics.cmc(sim, p_labels, g_labels, max_rank=min(max_rank, len(set(g_labels))))
    scores, labels = metrics.pair_scores_from_labels(sim, p_labels, g_labels)
    roc = metrics.roc_counts(scores, labels)  # sort once, read every figure from it
    out: dict[str, Any] = {"rank1": float(cmc[0]), "cmc": [float(c) for c in cmc]}
    for far in far_levels:
        out[f"vr@far={far:g}"] = float(metrics.tar_at_far(roc, None, far))
    out["eer"] = float(metrics.eer(roc, None)[0])
    out["roc"] = _roc_points(roc)
    return out


def cross_modal(
    manifest: Manifest,
    features: np.ndarray,
    gallery_modality: str = "vis",
    probe_modality: str = "nir",
    far_levels: Sequence[float] = FAR_LEVELS,
    max_rank: int = 10,
) -> dict[str, Any]:
    """Rank-1, VR@FAR and CMC of `probe_modality` probes against a `gallery_modality` gallery.

    Returns {"folds": [...per-fold dicts...], "mean": {...}, "std": {...}, "n_folds": k}.
    """
    feats = _check(manifest, features)
    folds = fold_names(manifest)
    per_fold = []
    if folds:
        for col in folds:
            gallery = [i for i, r in enumerate(manifest) if r.get(col) == "gallery" and r.modality == gallery_modality]
            probes = [i for i, r in enumerate(manifest) if r.get(col) == "probe" and r.modality == probe_modality]
            if gallery and probes:
                per_fold.append((col, gallery, probes))
    else:
        gallery, probes = _cross_modal_split(manifest, _test_rows(manifest), gallery_modality, probe_modality)
        per_fold.append(("test", gallery, probes))
    results = []
    for name, gallery, probes in per_fold:
        if not gallery or not probes:
            raise DataError(
                f"cross-modal protocol: fold {name!r} has {len(gallery)} {gallery_modality} "
                f"gallery and {len(probes)} {probe_modality} probe images; the data needs "
                f"both modalities for the same subjects"
            )
        sim, p_labels, g_labels = _identification(feats, manifest, gallery, probes)
        known = set(g_labels)
        keep = [j for j, s in enumerate(p_labels) if s in known]
        sim, p_labels = sim[keep], [p_labels[j] for j in keep]
        res = _identification_scores(sim, p_labels, g_labels, far_levels, max_rank)
        res.update({"fold": name, "gallery": len(gallery), "probes": len(p_labels)})
        results.append(res)
    return {
        "protocol": "cross-modal",
        "gallery_modality": gallery_modality,
        "probe_modality": probe_modality,
        "n_folds": len(results),
        "folds": results,
        **_mean_std(results),
    }


def _mean_std(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = [k for k, v in results[0].items() if isinstance(v, float)]
    mean = {k: float(np.mean([r[k] for r in results])) for k in keys}
    std = {k: float(np.std([r[k] for r in results])) for k in keys}
    return {"mean": mean, "std": std}


def cross_pose_split(manifest: Manifest, rows: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
    """(gallery, probes) row indices of the cross-pose protocol (see the module docstring)."""
    rows = _test_rows(manifest) if rows is None else list(rows)
    marked = "gallery" in manifest.columns and any(_is_gallery(manifest[i]) for i in rows)
    chosen: dict[str, int] = {}
    for i in rows:
        rec = manifest[i]
        if rec.yaw is None:
            continue
        if marked:
            if _is_gallery(rec) and rec.subject not in chosen:
                chosen[rec.subject] = i
            continue
        if abs(rec.yaw) > FRONTAL_TOLERANCE:
            continue
        current = chosen.get(rec.subject)
        neutral = rec.get("illumination") in ("", "neutral") and rec.get("occlusion", "none") in ("", "none")
        if current is None or (neutral and not _neutral(manifest[current])):
            chosen[rec.subject] = i
    gallery = list(chosen.values())
    gset = set(gallery)
    probes = [i for i in rows if i not in gset and manifest[i].yaw is not None and manifest[i].subject in chosen]
    return gallery, probes


def _neutral(rec: Record) -> bool:
    return rec.get("illumination") in ("", "neutral") and rec.get("occlusion", "none") in ("", "none")


def cross_pose(manifest: Manifest, features: np.ndarray, bin_width: float = 15.0) -> dict[str, Any]:
    """Rank-1 against a frontal gallery, per yaw bin and per |yaw|; see the module docstring."""
    feats = _check(manifest, features)
    gallery, probes = cross_pose_split(manifest)
    if not gallery or not probes:
        raise DataError(
            f"cross-pose protocol: {len(gallery)} frontal gallery and {len(probes)} probe "
            f"images; the data needs yaw labels and a frontal image per subject"
        )
    sim, p_labels, g_labels = _identification(feats, manifest, gallery, probes)
    hit = rank1_hits(sim, p_labels, g_labels)
    by_bin: dict[float, list[bool]] = defaultdict(list)
    by_abs: dict[float, list[bool]] = defaultdict(list)
    for j, i in enumerate(probes):
        yaw = manifest[i].yaw
        assert yaw is not None  # cross_pose_split keeps rows with a yaw only
        b = yaw_bin(yaw, bin_width)
        by_bin[b].append(bool(hit[j]))
        by_abs[abs(b)].append(bool(hit[j]))
    rank1_bin = {f"{b:g}": float(np.mean(v)) for b, v in sorted(by_bin.items())}
    rank1_abs = {f"{b:g}": float(np.mean(v)) for b, v in sorted(by_abs.items())}
    off_frontal = [v for b, v in rank1_abs.items() if float(b) != 0.0]
    return {
        "protocol": "cross-pose",
        "gallery": len(gallery),
        "probes": len(probes),
        "rank1_by_yaw": rank1_bin,
        "rank1_by_abs_yaw": rank1_abs,
        "probes_by_yaw": {f"{b:g}": len(v) for b, v in sorted(by_bin.items())},
        "rank1_all": float(hit.mean()),
        "mean": float(np.mean(off_frontal)) if off_frontal else float(hit.mean()),
    }


def verification(manifest: Manifest, features: np.ndarray, pairs: Sequence[Any]) -> dict[str, Any]:
    """10-fold verification accuracy (mean, std, sem), EER and AUC for each pair protocol.

    `pairs` are `hfr.data.adapters.Pair` objects whose paths are manifest `path` strings.
    """
    feats = _check(manifest, features)
    index = {r.path: i for i, r in enumerate(manifest)}
    grouped: dict[str, list[Any]] = defaultdict(list)
    for p in pairs:
        grouped[p.protocol].append(p)
    if not grouped:
        raise DataError(
            "verification protocol: no pairs; index CFP or LFW with `hfr data index`, "
            "which writes the pairs file beside the manifest"
        )
    out: dict[str, Any] = {"protocol": "verification", "protocols": {}}
    for name, plist in sorted(grouped.items()):
        missing = [
            p.path_a if p.path_a not in index else p.path_b
            for p in plist
            if p.path_a not in index or p.path_b not in index
        ]
        if missing:
            raise DataError(
                f"verification protocol {name}: {len(missing)} pair images are not in the "
                f"manifest (first: {missing[0]}); use the manifest written with the pairs"
            )
        a = feats[[index[p.path_a] for p in plist]]
        b = feats[[index[p.path_b] for p in plist]]
        scores = (a * b).sum(axis=1)
        labels = np.array([bool(p.same) for p in plist])
        folds = np.array([int(p.fold) for p in plist])
        acc = metrics.verification_accuracy(scores, labels, folds, n_folds=len(set(folds.tolist())))
        roc = metrics.roc_counts(scores, labels)
        out["protocols"][name] = {
            "pairs": len(plist),
            "accuracy": float(acc["mean"]),
            "accuracy_std": float(acc["std"]),
            "accuracy_sem": float(acc["sem"]),
            "eer": float(metrics.eer(roc, None)[0]),
            "auc": float(metrics.auc(roc, None)),
            "roc": _roc_points(roc),
        }
    return out


def _roc_points(roc: metrics.RocCounts, n: int = 200) -> dict[str, list[float]]:
    """A thinned ROC (at most about `n` points) for plots and JSON: half the points evenly spaced
    along the curve, half at log-spaced FARs (1e-6 .. 1), so the low-FAR end that log-FAR plots
    show keeps its shape (evenly spaced points alone all sit at high FAR)."""
    far, tar = np.asarray(roc.far), np.asarray(roc.tar)
    if len(far) > n:
        even = np.linspace(0, len(far) - 1, n // 2).round().astype(int)
        at_log_far = np.searchsorted(far, np.logspace(-6, 0, n - n // 2), side="right") - 1
        keep = np.unique(np.clip(np.concatenate([even, at_log_far]), 0, len(far) - 1))
        far, tar = far[keep], tar[keep]
    return {"far": [float(x) for x in far], "tar": [float(x) for x in tar]}


#: The protocols a training task can evaluate on every `train.eval_every` steps.
TRAINING_PROTOCOLS: tuple[str, ...] = ("cross-pose", "cross-modal")


def training_metrics(manifest: Manifest, features: np.ndarray, protocol: str = "cross-pose") -> dict[str, float]:
    """The flat metrics a training run logs (`eval/...`) and may select `best.pt` by.

    cross-pose: `rank1_mean` (the non-frontal |yaw| bins' mean), `rank1_all`, `rank1@<|yaw|>`;
    cross-modal: the fold means (`rank1`, `vr@far=0.01`, ..., `eer`).
    """
    if protocol == "cross-modal":
        return dict(cross_modal(manifest, features)["mean"])
    if protocol != "cross-pose":
        raise ArgumentError(f"training evaluation protocol {protocol!r}: use one of {', '.join(TRAINING_PROTOCOLS)}")
    res = cross_pose(manifest, features)
    return {
        "rank1_mean": res["mean"],
        "rank1_all": res["rank1_all"],
        **{f"rank1@{k}": v for k, v in res["rank1_by_abs_yaw"].items()},
    }


def training_metric_names(manifest: Manifest, protocol: str = "cross-pose") -> set[str]:
    """The names `training_metrics` gives on `manifest`, found without a network (random features).

    Lets a run refuse a `train.best_metric` it cannot compute before its first step; a manifest
    the protocol cannot run on raises its DataError here too.
    """
    features = np.random.default_rng(0).standard_normal((len(manifest), 8)).astype(np.float32)
    return set(training_metrics(manifest, features, protocol))
