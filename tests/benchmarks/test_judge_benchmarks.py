"""Smoke tests of `benchmarks/judge.py --quick` and `benchmarks/generator_quality.py --quick`: the
instruments train as stages with a learning curve, and every generator plus the two references is
measured by the quality protocol and lands in the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import (
    PNG_MAGIC,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

pytestmark = pytest.mark.slow  # the smoke runs render small sets and train every model a few steps


def test_judge_quick_writes_curves_and_the_floor(tmp_path: Path) -> None:
    judge = load_script("judge")
    assert judge.main(["--quick", "--out", str(tmp_path), "--threads", "1"]) == 0
    data = json.loads((tmp_path / "judge.json").read_text())
    assert set(data["roles"]) == {"F", "judge"}
    for role in data["roles"].values():
        assert role["curve"] and all(0.0 <= p["frontal_rank1"] <= 1.0 for p in role["curve"])
        assert role["curve"][-1]["images"] == data["steps"] * 8  # quick batch
    assert 0 <= data["yaw_estimator"]["multipie"]["mae"] < 180
    assert (tmp_path / "judge_curve.png").read_bytes().startswith(PNG_MAGIC)
    assert "| F |" in (tmp_path / "judge.md").read_text()


def test_generator_quality_quick_measures_every_generator(tmp_path: Path) -> None:
    gq = load_script("generator_quality")
    assert gq.main(["--quick", "--out", str(tmp_path), "--threads", "1", "--max-inputs", "6", "--pairs", "6"]) == 0
    data = json.loads((tmp_path / "generator_quality.json").read_text())
    assert {"drgan", "tsgan", "dvg", "truth-multipie", "grey-occluded", "truth-nirvis"} <= set(data["generators"])
    assert set(data["generators"]["drgan"]["tasks"]) == {"rotate", "frontalize"}
    assert set(data["generators"]["tsgan"]["tasks"]) == {"deocclude", "frontalize"}
    assert set(data["generators"]["dvg"]["tasks"]) == {"pairs"}
    truth = data["generators"]["truth-multipie"]["tasks"]["rotate"]["groups"]["all"]["all"]
    assert truth["generated"]["auc"] == pytest.approx(1.0)
    table = (tmp_path / "generator_quality.md").read_text()
    assert "| drgan | rotate |" in table and "| dvg | pairs |" in table
    assert (tmp_path / "generator_quality_drgan_rotate.png").read_bytes().startswith(PNG_MAGIC)
