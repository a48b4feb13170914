"""Protocol folds: which rows are gallery and which are probes in each fold of an evaluation.

A manifest marks its folds with `fold_k` columns (k = 1, 2, ...; `fold_names` lists them): in
column `fold_k` a row is `gallery`, `probe` or blank (not in that fold). Real protocols bring
their own (`hfr data index --format casia-nirvis2` writes CASIA NIR-VIS 2.0's ten View 2 folds);
`random_subject_folds` draws folds for a set without any (SynthFace `nirvis`), and
`hfr.eval.protocols.cross_modal` evaluates every fold and reports mean +- std.
"""

from __future__ import annotations

import numpy as np

from hfr.data.manifest import Manifest, relabel
from hfr.errors import ArgumentError
from hfr.eval.protocols import fold_names

__all__ = ["fold_names", "random_subject_folds"]


def random_subject_folds(
    test: Manifest, folds: int, seed: int, gallery_modality: str = "vis", probe_modality: str = "nir"
) -> Manifest:
    """`test` with `fold_1` .. `fold_<folds>` columns: fold k is a random half of the subjects (at least
    one), drawn from `seed` independently per fold; in it, each chosen subject's `gallery=1` image of
    `gallery_modality` is `gallery` and every `probe_modality` image of it is `probe`. Other rows of the
    fold are blank. The same (manifest, folds, seed) always gives the same folds."""
    if folds < 1:
        raise ArgumentError(f"random_subject_folds: folds must be >= 1, got {folds}")
    subjects = test.subjects()
    rng = np.random.default_rng(seed)
    chosen = [set(rng.permutation(subjects)[: max(1, len(subjects) // 2)].tolist()) for _ in range(folds)]
    records = []
    for r in test:
        extra: dict[str, str] = {}
        for k, keep in enumerate(chosen, start=1):
            role = ""
            if r.subject in keep:
                if r.modality == probe_modality:
                    role = "probe"
                elif r.modality == gallery_modality and str(r.get("gallery", "0")) == "1":
                    role = "gallery"
            extra[f"fold_{k}"] = role
        records.append(relabel(r, **extra))
    return Manifest(records, test.root, source=test.source)
