"""benchmarks/rerank_search.py: re-ranking a shortlist from a memory-mapped file, and the script end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import PNG_MAGIC, load_script


def test_rerank_picks_the_exact_best_of_each_shortlist(tmp_path: Path) -> None:
    bench = load_script("rerank_search")
    rng = np.random.default_rng(0)
    store = rng.standard_normal((50, 8)).astype(np.float32)
    np.save(tmp_path / "g.npy", store)
    mapped = np.load(tmp_path / "g.npy", mmap_mode="r")
    probes = rng.standard_normal((6, 8)).astype(np.float32)
    shortlist = np.stack([rng.choice(50, size=5, replace=False) for _ in range(6)])
    shortlist[0, 1:] = -1  # a query whose codes found one candidate only
    best = bench.rerank(mapped, probes, shortlist)
    for q in range(6):
        cand = shortlist[q][shortlist[q] >= 0]
        assert best[q] == cand[np.argmax(store[cand] @ probes[q])]
    exact_first = np.argmax(probes @ store.T, axis=1)
    top1, _ = bench.exact_top1(mapped, probes)
    assert np.array_equal(top1, exact_first)


def test_nlist_and_codes_per_size() -> None:
    bench = load_script("rerank_search")
    assert bench.nlist_for(100_000) == 1265 and bench.nlist_for(10_000_000) == 4096 and bench.nlist_for(100) == 2
    small = [c["code"] for c in bench.shortlist_codes(100_000, 1_000_000)]
    large = [c["code"] for c in bench.shortlist_codes(10_000_000, 1_000_000)]
    assert small == ["PQ32", "PQ64", "IVF-PQ32", "IVF-PQ64"] and large == ["IVF-PQ32", "IVF-PQ64"]


@pytest.mark.slow
def test_rerank_search_quick(tmp_path: Path) -> None:
    bench = load_script("rerank_search")
    scratch = tmp_path / "scratch"
    assert bench.main(["--quick", "--out", str(tmp_path), "--scratch", str(scratch), "--shortlists", "1,32"]) == 0
    out = json.loads((tmp_path / "rerank_search.json").read_text())
    (res,) = out["results"]
    assert res["size"] == 20_000 and res["probes"] == 200 and res["tuned"] is None
    rows = {(r["code"], r["nprobe"], r["shortlist"]): r for r in res["rows"]}
    for code in ("PQ32", "PQ64"):
        one, many = rows[(code, None, 1)], rows[(code, None, 32)]
        assert one["recall_at_1"] == one["code_recall_at_1"]  # a shortlist of one is the codes' own top-1
        assert many["recall_at_1"] > one["recall_at_1"]  # re-ranking recovers top-1s the codes misplace
        assert many["disk_bytes_per_face"] == 4 * 256 and many["memory_bytes_per_face"] < 100
    assert rows[("IVF-PQ64", 64, 32)]["recall_at_1"] >= rows[("IVF-PQ64", 16, 32)]["recall_at_1"] - 0.02
    assert not list(scratch.glob("*.npy"))  # gallery files removed without --keep
    assert (tmp_path / "rerank_search.png").read_bytes()[:8] == PNG_MAGIC


def test_tuned_only_updates_the_earlier_run(tmp_path: Path) -> None:
    bench = load_script("rerank_search")
    path = tmp_path / "rerank_search.json"
    path.write_text(json.dumps({"results": [{"size": 1000, "probes": 10, "rows": [{"code": "PQ32"}], "tuned": None}]}))
    assert bench.merge_tuned(path, [{"size": 1000, "probes": 10, "tuned": {"recall_at_1": 0.97}}], "cmd") == 0
    (res,) = json.loads(path.read_text())["results"]
    assert res["rows"] == [{"code": "PQ32"}]  # the shortlist rows stay
    assert res["tuned"]["recall_at_1"] == 0.97 and res["tuned"]["command"] == "cmd"
    with pytest.raises(bench.ArgumentError, match="no results at N=2,000"):
        bench.merge_tuned(path, [{"size": 2000, "probes": 10, "tuned": {}}], "cmd")
