"""benchmarks/compressed_search.py: the score-noise model of recall@1, and the script end to end at 5k faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_scripts import PNG_MAGIC, load_script


def test_recall_under_noise_follows_the_gap() -> None:
    bench = load_script("compressed_search")
    wide = np.array([[0.9, 0.5, 0.4]] * 50, np.float32)  # gap 0.4: small noise never flips the top-1
    close = np.array([[0.5001, 0.5, 0.4]] * 50, np.float32)  # gap 1e-4: any noise flips about half
    assert bench.recall_under_noise(wide, 0.01) == 1.0
    assert bench.recall_under_noise(close, 0.0) == 1.0
    assert 0.4 < bench.recall_under_noise(close, 0.01) < 0.6
    curve = [{"sigma": s, "recall": r} for s, r in ((0.001, 1.0), (0.01, 0.9), (0.1, 0.5))]
    sigma = bench.sigma_for(curve, 0.95)
    assert 0.001 < sigma < 0.01  # between the bracketing points, log-interpolated
    assert bench.sigma_for(curve, 0.2) == 0.1 and bench.sigma_for(curve[1:], 0.95) is None


@pytest.mark.slow
def test_compressed_search_quick(tmp_path: Path) -> None:
    bench = load_script("compressed_search")
    assert bench.main(["--quick", "--out", str(tmp_path), "--max-bytes", "64"]) == 0
    out = json.loads((tmp_path / "compressed_search.json").read_text())
    (res,) = out["results"]
    assert res["size"] == 5000 and res["probes"] == 100
    assert [c["code"] for c in res["codes"]] == [n for n, _, b in bench.CODES if b <= 64]
    by = {c["code"]: c for c in res["codes"]}
    for c in res["codes"]:
        assert 0.0 <= c["recall_at_1"] <= 1.0 and c["score_error_std"] > 0, c["code"]
    assert by["PQ64"]["score_error_std"] < by["PQ16"]["score_error_std"]  # more bytes, smaller error
    assert by["PQ64"]["recall_at_1"] >= by["PQ16"]["recall_at_1"]
    assert [p["sigma"] for p in res["noise_curve"]] == bench.SIGMAS
    assert (tmp_path / "compressed_search.png").read_bytes()[:8] == PNG_MAGIC
