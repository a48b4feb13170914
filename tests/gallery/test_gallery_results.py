"""Search results: per-image entries, per-subject results and their rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gallery_data import DIM, feats

from hfr.errors import ArgumentError
from hfr.gallery import Gallery, GalleryEntry, SearchResult, l2_normalize
from hfr.gallery.results import distinct_subjects


def test_entries_and_subject_lookup(flat):
    res = flat.search(feats(60)[[4, 9]], k=2)
    top = res.entries(1)[0]
    assert top == GalleryEntry(9, "s003", "nir", "img/9.png")
    assert res.subjects[0, 0] == "s001" and res.modalities[0, 0] == "vis"
    assert flat.entry(9) == top
    assert flat.subjects() == [f"s{i:03d}" for i in range(20)]


def test_search_subjects_distinct_best_score():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((5, DIM)).astype(np.float32)
    # subject "a" has 6 near copies of base[0]; the others one vector each
    g = np.concatenate([base[0] + 0.01 * rng.standard_normal((6, DIM)).astype(np.float32), base[1:]])
    subjects = ["a"] * 6 + ["b", "c", "d", "e"]
    gallery = Gallery.build(g, subjects, "fp", use_gpu=False)
    res = gallery.search_subjects(base[0], k=3)
    assert res.subjects[0][0] == "a"
    assert len(set(res.subjects[0])) == 3
    ref = l2_normalize(g) @ l2_normalize(base[0])[0]
    best = {s: max(ref[i] for i in range(10) if subjects[i] == s) for s in set(subjects)}
    expected = sorted(best, key=lambda s: best[s], reverse=True)[:3]
    assert res.subjects[0] == expected
    np.testing.assert_allclose(res.scores[0], [best[s] for s in expected], atol=1e-5)
    rows = list(res.rows(["probe.png"]))
    assert rows[0] == ("probe.png", 1, "a", pytest.approx(best["a"], abs=1e-5))
    assert [r[1] for r in rows] == [1, 2, 3]


def test_search_subjects_clamps_to_subject_count(flat, caplog):
    with caplog.at_level(logging.INFO, logger="hfr.gallery"):
        res = flat.search_subjects(feats(2, 5), k=50)
    assert "20 subjects" in caplog.text
    assert all(len(set(s)) == 20 for s in res.subjects)


def test_rows_need_one_name_per_probe(flat):
    res = flat.search_subjects(feats(2, 5), k=2)
    assert [r[0] for r in res.rows()] == ["0", "0", "1", "1"]
    with pytest.raises(ArgumentError, match="got 1 probe names for 2 probes"):
        list(res.rows(["only-one.png"]))


def _objects(rows: list[list[str]]) -> np.ndarray:
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    out[:] = rows
    return out


def test_distinct_subjects_keeps_each_subjects_best_and_reports_completeness():
    subjects = [["a", "a", "b", "c"], ["a", "b", "", ""]]
    result = SearchResult(
        scores=np.array([[0.9, 0.8, 0.7, 0.6], [0.9, 0.5, -np.inf, -np.inf]], np.float32),
        ids=np.array([[1, 2, 3, 4], [1, 3, -1, -1]], np.int64),
        subjects=_objects(subjects),
        modalities=_objects([[""] * 4] * 2),
        paths=_objects([[""] * 4] * 2),
    )
    best, complete = distinct_subjects(result, 3)
    assert best.subjects == [["a", "b", "c"], ["a", "b", ""]]
    np.testing.assert_array_equal(best.ids, [[1, 3, 4], [1, 3, -1]])
    np.testing.assert_array_equal(best.scores, np.array([[0.9, 0.7, 0.6], [0.9, 0.5, -np.inf]], np.float32))
    # probe 1 ran out of vectors (-1 in its last place): deeper search cannot help, so complete
    assert complete
    assert [r[1:3] for r in best.rows()] == [(1, "a"), (2, "b"), (3, "c"), (1, "a"), (2, "b")]
    # a probe short of subjects whose search was cut off at the depth is incomplete
    short, complete = distinct_subjects(
        SearchResult(
            result.scores[:1, :2],
            result.ids[:1, :2],
            result.subjects[:1, :2],
            result.modalities[:1, :2],
            result.paths[:1, :2],
        ),
        2,
    )
    assert short.subjects == [["a", ""]] and not complete
