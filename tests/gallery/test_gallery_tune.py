"""Choosing a gallery's index for a recall target (`hfr.gallery.tune`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gallery_data import clustered

import hfr.gallery.tune as tune
from hfr.errors import ArgumentError
from hfr.gallery import Gallery, brute_force_topk
from hfr.gallery.tune import build_for_recall, candidates, default_nlist


def record(gallery: Gallery) -> dict[str, Any]:
    """The gallery's tuning record (it has one)."""
    assert gallery.tuning is not None
    return gallery.tuning


def held_out_recall(gallery: Gallery, vectors: np.ndarray, probes: np.ndarray) -> float:
    _, exact = brute_force_topk(vectors, probes, 1)
    return float(np.mean(gallery.search(probes, 1).ids[:, 0] == exact.numpy()[:, 0]))


def test_candidates_and_nlist():
    assert default_nlist(10_000) == 256 and default_nlist(40_000) == 800  # 4 sqrt(n), at most n / 39
    assert default_nlist(1_000_000) == 4000 and default_nlist(100) == 2
    tried = candidates(256, 100_000)
    kinds = [k for k, _ in tried]
    assert kinds == ["flat", "ivf", *["ivfpq"] * 6]  # 16/32/64 bytes, OPQ at 16, 32/64 re-ranked; no hnsw
    assert [(p["pq_m"], p.get("rerank", 0)) for k, p in tried if k == "ivfpq" and not p.get("opq")] == [
        (16, 0),
        (32, 0),
        (64, 0),
        (32, 64),
        (64, 64),
    ]
    assert "hnsw" in [k for k, _ in candidates(256, 100_000, removable=False)]
    assert [k for k, _ in candidates(256, 100)] == ["flat", "ivf"]  # too few vectors to train a quantiser
    assert [p["pq_m"] for k, p in candidates(48, 10_000) if k == "ivfpq"] == [16, 16]  # divisors of 48 only


def test_small_gallery_is_flat():
    x, subjects = clustered(100, 5, 0.2, 0)
    g = build_for_recall(x, subjects, "fp", recall=0.99, use_gpu=False)
    assert g.kind == "flat" and record(g)["recall_at_1"] == 1.0 and "fewer than 2000" in record(g)["reason"]


def test_tuned_ivf_meets_the_target_on_held_out_probes(tmp_path):
    x, subjects = clustered(600, 5, 0.35, 1)
    probes = clustered(600, 1, 0.35, 1)[0]  # new draws around the same centres
    g = build_for_recall(x, subjects, "fp", recall=0.95, kinds=["ivf"], queries=400, use_gpu=False)
    t = record(g)
    assert g.kind == "ivf" and t["chosen"] == "ivf" and t["met"] and t["recall_at_1"] >= 0.95
    assert g.nprobe == t["setting"]["nprobe"] < g.nlist_effective  # fewer lists than all: faster than flat
    assert held_out_recall(g, x, probes) >= 0.93
    loaded = Gallery.load(g.save(tmp_path / "g"), use_gpu=False)
    assert loaded.tuning == t and loaded.info()["tuning"]["recall_at_1"] == t["recall_at_1"]
    assert [c["kind"] for c in t["candidates"]] == ["ivf"]


@pytest.mark.slow  # trains several product quantisers (~60 s on a busy 2-core machine)
def test_memory_limit_and_unreachable_target(monkeypatch):
    x, subjects = clustered(600, 5, 0.35, 2)
    g = build_for_recall(x, subjects, "fp", recall=0.5, max_bytes_per_vector=40, kinds=["ivf", "ivfpq"], use_gpu=False)
    over = [c for c in record(g)["candidates"] if not c["meets"]]
    assert g.kind == "ivfpq" and record(g)["bytes_per_vector"] <= 40
    assert any("memory limit" in c["note"] for c in over)  # ivf stores 4 * 32 bytes per vector
    exact = build_for_recall(x, subjects, "fp", recall=1.0, kinds=["ivfpq"], use_gpu=False)
    reached = [c for c in record(exact)["candidates"] if c["meets"]]
    assert reached and all(c["params"].get("rerank") for c in reached)  # codes alone never reach recall 1
    assert exact.kind == "ivfpq" and exact.rerank > 0
    plain = [(k, p) for k, p in candidates(32, len(x)) if k == "ivfpq" and not p.get("rerank")][:1]
    monkeypatch.setattr(tune, "candidates", lambda dim, n, removable=True: plain)
    flat = build_for_recall(x, subjects, "fp", recall=1.0, use_gpu=False)
    assert flat.kind == "flat" and "no candidate met" in record(flat)["reason"]


def test_argument_errors():
    x, subjects = clustered(10, 2, 0.2, 3)
    with pytest.raises(ArgumentError, match="recall must be in"):
        build_for_recall(x, subjects, "fp", recall=1.5)
    big, names = clustered(500, 5, 0.2, 3)
    with pytest.raises(ArgumentError, match="no candidate index"):
        build_for_recall(big, names, "fp", kinds=["hnsw"])  # hnsw only when removal is not needed
