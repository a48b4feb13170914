"""Smoke tests of the DR-GAN diagnosis and quality-curve scripts on a tiny run with tiny instruments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_scripts import (
    PNG_MAGIC,
    ROOT,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

from hfr.cli import main
from hfr.data.synth import SynthConfig, write_preset
from hfr.models.lightcnn import build_lightcnn
from hfr.pose.export import export_yaw_estimator
from hfr.pose.model import YawNet
from hfr.recognizer.export import export_recognizer

pytestmark = pytest.mark.slow  # trains a tiny DR-GAN and runs the quality protocol


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny multipie set, F, a judge, a yaw estimator and a 2-step DR-GAN run with a checkpoint per step."""
    root = tmp_path_factory.mktemp("drgan-fix")
    write_preset(SynthConfig(preset="multipie", subjects=6, size=32, seed=0, workers=1), root / "multipie")
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9bn-w0.5", input_size=32), root / "f.pt")
    export_recognizer(build_lightcnn("lightcnn9bn-w0.5", input_size=32), root / "judge.pt")
    export_yaw_estimator(YawNet(1, [4, 8, 8, 8]), root / "yaw_estimator.pt", size=32)
    sets = [
        f"data.train={root / 'multipie'}",
        f"data.recognizer={root / 'f.pt'}",
        "data.eval=none",
        "data.size=32",
        "batch_size=8",
        "train.steps=2",
        "train.checkpoint_every=1",
        "train.num_workers=0",
        "train.progress=false",
        "train.best_metric=null",
        "train.sample_every=0",
    ]
    args = ["train-generator", "--config", "configs/drgan/synth-multipie.yaml", "--runs", str(root / "runs")]
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    (run,) = [p for p in (root / "runs").glob("*/*") if p.is_dir() and not p.is_symlink()]
    return {"root": root, "run": run}


def _untouched(name: str) -> float | None:
    committed = ROOT / "benchmarks" / "results" / name
    return committed.stat().st_mtime_ns if committed.exists() else None


def test_diagnosis_writes_a_column_per_run(tiny: dict[str, Path], tmp_path: Path) -> None:
    script = load_script("drgan_diagnosis")
    before = _untouched("drgan_diagnosis.json")
    root = tiny["root"]
    argv = ["--run", f"a={tiny['run']}", "--run", f"b={tiny['run'] / 'checkpoints' / 'step-0000001.pt'}"]
    argv += ["--data", str(root / "multipie"), "--recognizer", str(root / "f.pt")]
    argv += ["--yaw-estimator", str(root / "yaw_estimator.pt"), "--batches", "1", "--eval-mode"]
    assert script.main([*argv, "--threads", "1", "--out", str(tmp_path)]) == 0
    assert _untouched("drgan_diagnosis.json") == before
    result = json.loads((tmp_path / "drgan_diagnosis.json").read_text())
    a, b = result["runs"]["a"], result["runs"]["b"]
    assert a["checkpoint"].endswith("step-0000002.pt") and b["checkpoint"].endswith("step-0000001.pt")
    assert 0 <= a["batch_statistics"]["yaw_estimator_in_target_bin"] <= 1 and "running_statistics" in a
    table = (tmp_path / "drgan_diagnosis.md").read_text()
    assert table.startswith("| figure | a | b |") and "gradient at c: identity loss through F" in table


def test_quality_curve_measures_every_checkpoint(tiny: dict[str, Path], tmp_path: Path) -> None:
    script = load_script("drgan_quality_curve")
    before = _untouched("drgan_quality_curve.json")
    root = tiny["root"]
    argv = ["--run", f"tiny={tiny['run']}", "--data", str(root / "multipie"), "--judge", str(root / "judge.pt")]
    argv += ["--yaw-estimator", str(root / "yaw_estimator.pt"), "--max-inputs", "8", "--threads", "1"]
    assert script.main([*argv, "--out", str(tmp_path)]) == 0
    assert _untouched("drgan_quality_curve.json") == before
    result = json.loads((tmp_path / "drgan_quality_curve.json").read_text())
    points = result["curves"]["tiny"]
    assert [p["step"] for p in points] == [1, 2] and [p["images"] for p in points] == [8, 16]
    for p in points:
        assert 0 <= p["pose_in_bin"] <= 1 and 0 <= p["judge_auc"] <= 1
        assert p["frontalized_rank1_45_60_input"] is not None
    assert (tmp_path / "drgan_quality_curve.png").read_bytes()[:8] == PNG_MAGIC
