"""Smoke test of `benchmarks/cross_modal.py --quick` (its folds: tests/eval/test_folds.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_scripts import (
    PNG_MAGIC,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

pytestmark = pytest.mark.slow  # the benchmark scripts' smoke runs train small models


@pytest.fixture(scope="module")
def cross_modal() -> ModuleType:
    """The cross_modal script as a module."""
    return load_script("cross_modal")


def test_quick_run_writes_the_table_json_and_figures(cross_modal: ModuleType, tmp_path: Path) -> None:
    assert cross_modal.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cross_modal.json").read_text())
    methods = ["vis-only", "real pairs", "real + DVG pairs", "real + DVG pairs, no L_ort", "real + DVG pairs, no L_ip"]
    assert list(result["results"]) == methods
    for name in methods:
        summary = result["results"][name]["summary"]
        assert set(summary) == {"rank1", "vr@far=0.01", "vr@far=0.001", "vr@far=0.0001"}
        assert summary["rank1"]["n"] == 2 and 0 <= summary["rank1"]["mean"] <= 1  # quick: 2 folds, 1 seed
    for name in methods[2:]:  # the generated-pairs methods, against real pairs on the same seed and fold
        diff = result["results"][name]["minus_real_pairs"]["rank1"]
        folds = {(f["seed"], f["fold"]): f["rank1"] for f in result["results"]["real pairs"]["folds"]}
        mine = [f["rank1"] - folds[(f["seed"], f["fold"])] for f in result["results"][name]["folds"]]
        assert diff["n"] == 2 and abs(diff["mean"] - sum(mine) / 2) < 1e-9
    assert "minus_real_pairs" not in result["results"]["real pairs"]
    stages = result["stages"]
    assert "loss.ort=0" in stages["dvg-no-ort"]["sets"] and "loss.ip=0" in stages["dvg-no-ip"]["sets"]
    assert any(s.startswith("data.generated=") and s != "data.generated=" for s in stages["finetune-dvg-seed0"]["sets"])
    assert "data.generated=" in stages["finetune-real-seed0"]["sets"]  # the real-pairs baseline adds none
    for name in ("dvg", "dvg-no-ort", "dvg-no-ip"):
        assert set(result["pair_statistics"][name]) == {"pairs", "consistency", "diversity"}
    table = (tmp_path / "cross_modal.md").read_text()
    assert all(f"| {name} |" in table for name in methods)
    for png in ("cross_modal_roc.png", "cross_modal_pairs.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC
    # --reuse skips the finished stages: same files, nothing retrained
    assert cross_modal.main(["--quick", "--reuse", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "cross_modal.json").read_text())
    assert all(s["reused"] for s in again["stages"].values())
    assert again["results"] == result["results"]
