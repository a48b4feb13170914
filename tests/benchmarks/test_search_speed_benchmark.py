"""benchmarks/search_speed.py end to end at toy sizes: uniform and face-like vectors, the tuned indexes."""

from __future__ import annotations

import json

import pytest
from benchmark_scripts import PNG_MAGIC, load_script


@pytest.mark.slow
def test_search_speed_uniform_and_face_like(tmp_path, capsys):
    bench = load_script("search_speed")
    out = tmp_path / "search_speed.json"
    argv = ["--sizes", "2000", "--face-sizes", "2500", "--probes", "60", "--sweep", "1,4", "--out", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert out.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)
    uniform = {r["method"]: r for r in result["results"]}
    assert uniform["flat"]["equals_brute_force"]["different"] == 0
    face = {r["method"]: r for r in result["face_results"]}
    assert set(face) == {"brute", "flat", "ivf", "recall-0.99", "hnsw-0.99", "compressed", "ivfpq-32", "ivfpq-64"}
    assert face["flat"]["recall_at_1_vs_brute"] == 1.0 and face["flat"]["rank1"] == face["brute"]["rank1"]
    tuned = face["recall-0.99"]["params"]["tuning"]
    assert tuned["target_recall"] == 0.99 and tuned["recall_at_1"] >= 0.99 or tuned["chosen"] == "flat"
    assert face["hnsw-0.99"]["params"]["kind"] in ("hnsw", "flat")
    assert 0.5 < face["brute"]["rank1"] <= 1.0  # other images of enrolled identities are mostly found
    assert "recall-0.99" in capsys.readouterr().out
