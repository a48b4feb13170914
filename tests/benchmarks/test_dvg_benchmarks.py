"""`benchmarks/cross_modal.py`: the pair-budget subsets, figures, intervals and tables (default tier), and its
smoke run (slow tier; its folds: tests/eval/test_folds.py)."""

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

from hfr.data.manifest import Manifest
from hfr.data.synth import SynthConfig, write_preset


@pytest.fixture(scope="module")
def cross_modal() -> ModuleType:
    """The cross_modal script as a module."""
    return load_script("cross_modal")


def test_a_pair_budget_is_the_renderers_paired_subjects_regime(cross_modal: ModuleType, tmp_path: Path) -> None:
    full, regime = tmp_path / "full", tmp_path / "regime"
    write_preset(SynthConfig(preset="nirvis", subjects=8, size=32, seed=3, workers=1), full)
    write_preset(SynthConfig(preset="nirvis", subjects=8, size=32, seed=3, workers=1, paired_subjects=2), regime)
    subset = cross_modal.pair_budget_manifest(Manifest.read(full), 2)
    rendered = Manifest.read(regime)
    # the same rows as the renderer's regime, each path absolute and naming a byte-identical image
    assert sorted((r.subject, r.modality, Path(r.path).name) for r in subset) == sorted(
        (r.subject, r.modality, Path(r.path).name) for r in rendered
    )
    assert all(Path(r.path).is_absolute() for r in subset)
    by_name = {(r.subject, Path(r.path).name): rendered.resolve(r.path) for r in rendered}
    assert all(Path(r.path).read_bytes() == by_name[(r.subject, Path(r.path).name)].read_bytes() for r in subset)
    nir_train = {r.subject for r in subset if r.split == "train" and r.modality == "nir"}
    assert len(nir_train) == 2 and {r.subject for r in subset if r.split == "test"}  # test subjects untouched
    with pytest.raises(Exception, match="pair budget of 99"):
        cross_modal.pair_budget_manifest(Manifest.read(full), 99)


def _report(tar: float, real: float) -> dict:
    return {
        "generated": {"tar@far=0.01": tar, "auc": 0.9},
        "real": {"tar@far=0.01": real, "auc": 0.95},
        "tar_ratio": tar / real,
        "fd": {"nir_generated_vs_real": 0.3, "vis_generated_vs_real": 0.4, "real_nir_vs_real_vis": 0.5},
        "novelty": {
            "nearest_training_identity_distance_median": 0.6,
            "within_subject_distance_median": 0.45,
            "fraction_farther_than_within": 0.9,
        },
    }


def test_pair_figures_and_the_paired_interval_by_seed(cross_modal: ModuleType) -> None:
    figs = cross_modal.pair_figures(_report(0.4, 0.5))
    assert figs["tar"] == 0.4 and figs["real_tar"] == 0.5 and abs(figs["tar_ratio"] - 0.8) < 1e-12
    assert (figs["novel"], figs["within"], figs["farther"]) == (0.6, 0.45, 0.9)
    fold = {"folds": [{m: v for m in cross_modal.METRICS} for v in (0.2, 0.4)]}
    assert cross_modal.fold_figures(fold)["rank1"] == pytest.approx(0.3)

    def rec(r: float) -> dict[str, float]:
        return {m: r for m in cross_modal.METRICS}

    per_seed = {
        "real pairs": {0: rec(0.50), 1: rec(0.60), 2: rec(0.40)},
        "real + DVG pairs": {0: rec(0.55), 1: rec(0.66), 2: rec(0.44)},  # +5, +6, +4 points on the same seeds
    }
    agg = cross_modal.aggregate(per_seed, "real pairs")
    diff = agg["real + DVG pairs"]["minus_real pairs"]["rank1"]
    assert diff["mean"] == pytest.approx(0.05) and diff["n"] == 3
    assert 0 < diff["low"] < 0.05 < diff["high"]  # paired by seed: the seed-to-seed spread of 10 points cancels
    unpaired = agg["real + DVG pairs"]["rank1"]
    assert unpaired["low"] < 0.5 - 0.05  # the methods' own intervals overlap widely
    assert "minus_real pairs" not in agg["real pairs"]


def test_markdown_shows_every_budget_method_and_curve(cross_modal: ModuleType) -> None:
    stat = {"mean": 0.5, "std": 0.01, "n": 3, "low": 0.48, "high": 0.52}
    per_method = {m: stat for m in cross_modal.METRICS}
    figs = {k: stat for k in cross_modal.PAIR_FIGURES}
    result = {
        "recognition": {
            "20": {
                "vis-only": per_method,
                "real pairs": per_method,
                "real + DVG pairs": {**per_method, "minus_real pairs": per_method},
            }
        },
        "pair_quality": {"dvg, P=20": figs},
        "generator_curve": [{"step": 400, **cross_modal.pair_figures(_report(0.3, 0.5))}],
        "finetune_curve": {"real pairs, P=20": [{"step": 0, "rank1": 0.3}, {"step": 300, "rank1": 0.5}]},
    }
    table = cross_modal.markdown(result)
    assert "| 20 | real + DVG pairs | 50.0 [48.0, 52.0]" in table
    assert "| 20 | real + DVG pairs | +50.0 [+48.0, +52.0]" in table  # the paired-difference table
    assert "| dvg, P=20 | 50.0 [48.0, 52.0] | 50.0 | 0.50 [0.48, 0.52]" in table
    assert "| 400 | 30.0 | 0.60 |" in table and "| 300 | 50.0 |" in table


@pytest.mark.slow  # trains tiny instruments, generators and fine-tunings
def test_quick_run_writes_the_tables_json_and_figures(cross_modal: ModuleType, tmp_path: Path) -> None:
    assert cross_modal.main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cross_modal.json").read_text())
    budget = cross_modal.BUDGETS["quick"]
    assert list(result["recognition"]) == [str(p) for p in budget.pair_budgets]
    small = result["recognition"][str(budget.variant_budget)]
    expected = {"vis-only", "real pairs", "real + DVG pairs", "real + DVG pairs, no-ip"}
    expected |= {f"real + DVG pairs, L_ct weight {w:g}" for w in budget.contrastive}
    assert set(small) == expected
    for method, stats in small.items():
        assert 0 <= stats["rank1"]["mean"] <= 1
        assert ("minus_real pairs" in stats) == (method != "real pairs")
    stages = result["stages"]
    p = budget.variant_budget
    assert "loss.ip=0" in stages[f"no-ip-p{p}-s0"]["sets"]
    assert any(s.startswith("data.generated=") and s != "data.generated=" for s in stages[f"ft-dvg-p{p}-s0"]["sets"])
    assert "data.generated=" in stages[f"ft-realpairs-p{p}-s0"]["sets"]  # the real-pairs baseline adds none
    assert "finetune.contrastive_weight=0.1" in stages[f"ft-dvg-L_ctweight0.1-p{p}-s0"]["sets"]
    assert any(s.endswith(f"pairs-{p}") for s in stages[f"dvg-p{p}-s0"]["sets"] if s.startswith("data.train="))
    assert set(result["pair_quality"]) == {f"dvg, P={q}" for q in budget.pair_budgets} | {f"no-ip, P={p}"}
    assert [c["step"] for c in result["generator_curve"]] == [2, 4]
    assert all(c[0]["step"] == 0 and c[-1]["step"] == budget.finetune_steps for c in result["finetune_curve"].values())
    for png in ("cross_modal.png", "cross_modal_pairs.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC
    # --reuse skips the finished stages and measurements: same figures, nothing retrained
    assert cross_modal.main(["--quick", "--reuse", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "cross_modal.json").read_text())
    assert all(s["reused"] for s in again["stages"].values())
    assert again["recognition"] == result["recognition"] and again["pair_quality"] == result["pair_quality"]
