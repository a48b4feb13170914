"""`benchmarks/drgan_seed_quality.py`: figures of protocol reports, their mean and std, the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script

from hfr.errors import HFRError


def _report(in_bin: float, auc: float) -> dict:
    gen = {"yaw_bin_acc": in_bin, "yaw_mae": 4.0, "auc": auc, "tar@far=0.01": 0.3, "rank1": 0.2, "n": 10}
    truth = {"yaw_bin_acc": 0.9, "yaw_mae": 3.0, "n": 10}
    by_target = {"-60": {"generated": {**gen, "yaw_bin_acc": in_bin / 2}}, "0": {"generated": gen}}
    front = {
        "45": {"generated": {"rank1": 0.2, "n": 30}, "input": {"rank1": 0.8, "n": 30}},
        "60": {"generated": {"rank1": 0.1, "n": 10}, "input": {"rank1": 0.6, "n": 10}},
    }
    return {
        "tasks": {
            "rotate": {"groups": {"all": {"all": {"generated": gen, "truth": truth}}, "target_yaw": by_target}},
            "frontalize": {"groups": {"source_abs_yaw": front}},
        }
    }


def test_seed_quality_reads_reports_and_aggregates(tmp_path: Path) -> None:
    script = load_script("drgan_seed_quality")
    for name, (b, a) in {"s0": (0.8, 0.9), "s1": (0.9, 0.94)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(_report(b, a)))
    out = tmp_path / "out"
    args = ["--report", f"s0={tmp_path / 's0.json'}", "--report", f"s1={tmp_path / 's1.json'}", "--out", str(out)]
    assert script.main(args) == 0
    result = json.loads((out / "drgan_seed_quality.json").read_text())
    s0 = result["per_generator"]["s0"]
    assert s0["in_bin_by_target"] == {"-60": pytest.approx(0.4), "0": pytest.approx(0.8)}
    assert s0["frontalized_rank1_45_60_generated"] == pytest.approx((0.2 * 30 + 0.1 * 10) / 40)  # n-weighted
    assert s0["truth_in_bin"] == pytest.approx(0.9)
    agg = result["aggregate"]
    assert agg["pose_in_bin"]["mean"] == pytest.approx(0.85) and agg["pose_in_bin"]["std"] == pytest.approx(
        0.0707, 1e-3
    )
    table = (out / "drgan_seed_quality.md").read_text()
    assert "| s1 | 90.0 |" in table and "| mean ± std | 85.0 ± 7.1 |" in table


def test_seed_quality_needs_a_source_and_names_a_bad_report(tmp_path: Path) -> None:
    script = load_script("drgan_seed_quality")
    with pytest.raises(HFRError, match="at least one"):
        script.main(["--out", str(tmp_path)])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HFRError, match="bad.json"):
        script.main(["--report", f"s0={tmp_path / 'bad.json'}", "--out", str(tmp_path)])
