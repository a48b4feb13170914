"""Summary statistics of a manifest: subjects, images per modality and split, yaw histogram."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from hfr.data.manifest import Manifest

YAW_BIN_WIDTH = 15.0


def yaw_bin(yaw: float, width: float = YAW_BIN_WIDTH) -> float:
    """The centre of the `width`-degree bin holding `yaw` (bins centred on multiples of width)."""
    return float(width * math.floor(yaw / width + 0.5))


def dataset_stats(manifest: Manifest) -> dict[str, Any]:
    """Counts that describe a dataset; all keys are JSON-serialisable.

    Keys: images, subjects, modalities, splits, subjects_per_split, modalities_per_split
    (split -> modality -> images), subjects_per_split_modality (split -> modality -> subjects
    with at least one such image: e.g. the NIR-VIS pairs of a training split),
    images_per_subject (min/mean/max), yaw_histogram (bin centre -> count, 15-degree bins,
    plus "unknown"), occlusion (kind -> count, when the column exists).
    """
    per_subject = Counter(r.subject for r in manifest)
    split_subjects: dict[str, set] = {}
    split_modality_images: dict[str, Counter] = {}
    split_modality_subjects: dict[str, dict[str, set]] = {}
    for r in manifest:
        split = r.split or "(none)"
        split_subjects.setdefault(split, set()).add(r.subject)
        split_modality_images.setdefault(split, Counter())[r.modality] += 1
        split_modality_subjects.setdefault(split, {}).setdefault(r.modality, set()).add(r.subject)
    yaw_hist: Counter = Counter()
    for r in manifest:
        yaw_hist["unknown" if r.yaw is None else f"{yaw_bin(r.yaw):g}"] += 1
    ordered = sorted(yaw_hist, key=lambda k: (k == "unknown", float(k) if k != "unknown" else 0.0))
    counts = list(per_subject.values())
    stats: dict[str, Any] = {
        "images": len(manifest),
        "subjects": len(per_subject),
        "modalities": dict(sorted(manifest.modalities().items())),
        "splits": dict(sorted(Counter(r.split or "(none)" for r in manifest).items())),
        "subjects_per_split": {k: len(v) for k, v in sorted(split_subjects.items())},
        "modalities_per_split": {k: dict(sorted(v.items())) for k, v in sorted(split_modality_images.items())},
        "subjects_per_split_modality": {
            k: {m: len(v[m]) for m in sorted(v)} for k, v in sorted(split_modality_subjects.items())
        },
        "images_per_subject": {
            "min": min(counts) if counts else 0,
            "mean": round(sum(counts) / len(counts), 2) if counts else 0.0,
            "max": max(counts) if counts else 0,
        },
        "yaw_histogram": {k: yaw_hist[k] for k in ordered},
    }
    if "occlusion" in manifest.columns:
        stats["occlusion"] = dict(sorted(Counter(r.get("occlusion", "none") for r in manifest).items()))
    return stats
