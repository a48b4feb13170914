"""Random subject folds (`hfr.eval.folds`): halves of the test subjects, gallery VIS and NIR probes per fold."""

from __future__ import annotations

import numpy as np
import pytest

from hfr.data.manifest import Manifest, make_record
from hfr.errors import ArgumentError
from hfr.eval.folds import fold_names, random_subject_folds
from hfr.eval.protocols import cross_modal


def _test_set() -> Manifest:
    recs = []
    for s in ("A", "B", "C", "D"):
        recs += [
            make_record(f"{s}/g.png", s, "vis", 0.0, "test", gallery=1),
            make_record(f"{s}/v.png", s, "vis", 10.0, "test", gallery=0),
            make_record(f"{s}/n0.png", s, "nir", 0.0, "test", gallery=0),
            make_record(f"{s}/n1.png", s, "nir", 5.0, "test", gallery=0),
        ]
    return Manifest(recs, "/data")


def test_folds_are_halves_of_the_subjects_with_gallery_vis_and_nir_probes() -> None:
    folded = random_subject_folds(_test_set(), folds=6, seed=1)
    assert fold_names(folded) == [f"fold_{k}" for k in range(1, 7)]
    draws = set()
    for k in range(1, 7):
        roles = {(r.path, r.get(f"fold_{k}")) for r in folded if r.get(f"fold_{k}")}
        gallery = sorted(p for p, role in roles if role == "gallery")
        probes = sorted(p for p, role in roles if role == "probe")
        subjects = sorted(p.split("/")[0] for p in gallery)
        assert len(subjects) == 2 and all(p.endswith("/g.png") for p in gallery)  # one gallery VIS each
        assert probes == sorted(f"{s}/n{i}.png" for s in subjects for i in (0, 1))  # every NIR image of them
        draws.add(tuple(subjects))
    assert len(draws) > 1  # the folds draw different halves


def test_folds_are_reproducible_and_feed_the_cross_modal_protocol() -> None:
    test = _test_set()
    a, b = random_subject_folds(test, 3, seed=7), random_subject_folds(test, 3, seed=7)
    assert [r.extra for r in a] == [r.extra for r in b]
    # each subject's features point its own way: every fold identifies its probes perfectly
    axis = {s: i for i, s in enumerate("ABCD")}
    feats = np.stack([np.eye(4, dtype=np.float32)[axis[r.subject]] for r in a])
    result = cross_modal(a, feats)
    assert result["n_folds"] == 3 and [f["fold"] for f in result["folds"]] == ["fold_1", "fold_2", "fold_3"]
    assert all(f["gallery"] == 2 and f["probes"] == 4 and f["rank1"] == 1.0 for f in result["folds"])


def test_folds_need_at_least_one() -> None:
    with pytest.raises(ArgumentError, match="folds must be >= 1"):
        random_subject_folds(_test_set(), 0, seed=0)
