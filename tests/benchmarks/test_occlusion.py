"""Unit tests of `benchmarks/occlusion.py`: the figures it reads from a quality-protocol report, the
aggregation over seeds (paired differences, intervals), its tables and its grid's probe choice. The
smoke run of the whole script is in test_tsgan_benchmarks.py (slow tier)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from benchmark_scripts import load_script

from hfr.data.manifest import Manifest, make_record


@pytest.fixture(scope="module")
def occlusion() -> ModuleType:
    """The occlusion script as a module."""
    return load_script("occlusion")


def _entry(gen: dict[str, float], raw: dict[str, float], n: int) -> dict[str, Any]:
    return {"generated": {**gen, "n": n}, "input": {**raw, "n": n}, "truth": {}}


def fake_report(shift: float = 0.0) -> dict[str, Any]:
    """A protocol report with two occluders and two source yaws; x_d beats raw by 0.2 (+ shift)."""
    d = {
        "all": {
            "all": _entry(
                {"rank1": 0.6 + shift, "psnr_in_mask": 20.0, "psnr_out_mask": 100.0, "auc": 0.99},
                {"rank1": 0.4, "psnr_in_mask": 12.0, "psnr_out_mask": 100.0},
                40,
            )
        },
        "occlusion": {
            "scarf": _entry({"rank1": 0.5 + shift, "psnr_in_mask": 19.0}, {"rank1": 0.1, "psnr_in_mask": 11.0}, 20),
            "hand": _entry({"rank1": 0.7 + shift, "psnr_in_mask": 21.0}, {"rank1": 0.7, "psnr_in_mask": 13.0}, 20),
        },
        "source_abs_yaw": {
            "45": _entry({"rank1": 0.5}, {"rank1": 0.3}, 30),
            "60": _entry({"rank1": 0.3}, {"rank1": 0.1}, 10),
        },
    }
    f = {
        "all": {"all": _entry({"rank1": 0.3, "yaw_bin_acc": 0.95, "yaw_mae": 2.0}, {"rank1": 0.4}, 40)},
        # weighted over 45 (n 30) and 60 (n 10): x_f (0.4 * 30 + 0.2 * 10) / 40 = 0.35, raw 0.25
        "source_abs_yaw": {
            "45": _entry({"rank1": 0.4}, {"rank1": 0.3}, 30),
            "60": _entry({"rank1": 0.2}, {"rank1": 0.1}, 10),
        },
    }
    return {"tasks": {"deocclude": {"groups": d}, "frontalize": {"groups": f}}}


def test_figures_read_the_report(occlusion: ModuleType) -> None:
    f = occlusion.figures(fake_report())
    assert f["rank1_x_d"] == pytest.approx(0.6) and f["rank1_raw"] == pytest.approx(0.4)
    assert f["rank1_x_d_scarf"] == pytest.approx(0.5) and f["rank1_raw_hand"] == pytest.approx(0.7)
    assert f["psnr_in_mask_x_d"] == pytest.approx(20.0) and f["psnr_in_mask_raw_scarf"] == pytest.approx(11.0)
    assert f["rank1_45_60_x_f"] == pytest.approx(0.35) and f["rank1_45_60_raw"] == pytest.approx(0.25)
    assert f["rank1_45_60_x_d"] == pytest.approx(0.45)
    assert f["frontal_bin_x_f"] == pytest.approx(0.95)
    assert occlusion.occluders_of({"a": f}) == ["hand", "scarf"]  # not the per-|yaw| keys
    assert f["rank1_x_d_yaw60"] == pytest.approx(0.3) and f["rank1_raw_yaw45"] == pytest.approx(0.3)
    assert f["rank1_x_f_yaw45"] == pytest.approx(0.4) and "rank1_raw_yaw45" in f
    assert occlusion.yaws_of({"a": f}) == ["45", "60"]


def test_aggregate_pairs_seeds_and_variants(occlusion: ModuleType) -> None:
    budget = occlusion.Budget((0, 1, 2), ("main", "no-mam"), 600, 1200, 300, 100)
    per_run = {}
    for s, noise in enumerate((0.0, 0.1, -0.1)):
        per_run[f"main-s{s}"] = occlusion.figures(fake_report(noise))
        per_run[f"no-mam-s{s}"] = occlusion.figures(fake_report(noise - 0.05))  # 5 points worse on every seed
    agg = occlusion.aggregate(per_run, budget)
    main = agg["variants"]["main"]
    assert main["seeds"] == [0, 1, 2]
    assert main["figures"]["rank1_x_d"]["mean"] == pytest.approx(0.6)
    assert main["figures"]["rank1_x_d"]["std"] == pytest.approx(0.1)
    gain = main["gains"]["x_d - raw rank-1"]
    assert gain["mean"] == pytest.approx(0.2) and gain["low"] < 0.2 < gain["high"]
    assert main["gains"]["x_d - raw rank-1 scarf"]["mean"] == pytest.approx(0.4)
    assert main["gains"]["x_d - raw PSNR in mask hand"]["mean"] == pytest.approx(8.0)
    # paired by seed, the seed noise cancels: exactly -5 points, a zero-width interval
    d = agg["vs_main"]["no-mam"]["rank1_x_d"]
    assert d["mean"] == pytest.approx(-0.05) and d["low"] == pytest.approx(-0.05) and d["n"] == 3
    table = occlusion.markdown(agg, budget, [{"step": 300, "images": 4800, **per_run["main-s0"]}])
    assert "| main | 60.0 ± 10.0 | 40.0 ± 0.0 | +20.0 [" in table
    assert "| scarf | 50.0 ± 10.0 | 10.0 ± 0.0 | +40.0 [" in table
    assert "| no-mam | -5.0 [-5.0, -5.0] |" in table
    assert "| 300 | 4800 | 60.0 | 40.0 | 35.0 | 25.0 | 95.0 |" in table
    # per occluder and per |yaw|: the raw row, then a row per variant (x_d 45, 60 | x_f 45, 60)
    assert "| raw occluded | 70.0 ± 0.0 | 10.0 ± 0.0 |" in table
    assert "| no-mam | 65.0 ± 10.0 | 45.0 ± 10.0 |" in table
    assert "| raw occluded | 30.0 ± 0.0 | 10.0 ± 0.0 | 30.0 ± 0.0 | 10.0 ± 0.0 |" in table
    assert "| main | 50.0 ± 0.0 | 30.0 ± 0.0 | 40.0 ± 0.0 | 20.0 ± 0.0 |" in table


def test_one_seed_has_no_interval(occlusion: ModuleType) -> None:
    budget = occlusion.Budget((0,), ("main",), 2, 4, 2, 8)
    agg = occlusion.aggregate({"main-s0": occlusion.figures(fake_report())}, budget)
    gain = agg["variants"]["main"]["gains"]["x_d - raw rank-1"]
    assert gain["mean"] == pytest.approx(0.2) and gain["low"] is None
    assert "| main | 60.0 | 40.0 | +20.0 |" in occlusion.markdown(agg, budget, [])


def test_grid_rows_one_probe_per_occluder(occlusion: ModuleType, tmp_path: Path) -> None:
    recs = [make_record("A/g.png", "A", "vis", 0.0, "test", gallery=1, occlusion="none")]
    for s in "AB":
        for yaw in (15.0, 45.0):
            for kind in ("scarf", "hand"):
                recs.append(make_record(f"{s}/{kind}{yaw:g}.png", s, "vis", yaw, "test", occlusion=kind))
    m = Manifest(recs, tmp_path)
    picks = occlusion.grid_rows(m)
    assert [m[i].get("occlusion") for i in picks] == ["hand", "scarf"]
    assert all(m[i].yaw == 45.0 for i in picks)  # |yaw| 30-45 preferred
    assert m[picks[0]].subject != m[picks[1]].subject  # another subject where possible


def test_every_variant_names_its_source(occlusion: ModuleType) -> None:
    assert set(occlusion.BUDGETS["long"].variants) == set(occlusion.VARIANTS)
    for v, (sets, what) in occlusion.VARIANTS.items():
        assert what and all("=" in s for s in sets), v
    sets = occlusion.sets_for("no-mam", 1, 600, 0, Path("d"), Path("f.pt"), quick=False)
    assert "net.mam=false" in sets and "train.seed=1" in sets and "data.recognizer=f.pt" in sets
    assert [s for s in sets if s.startswith("train.checkpoint_every")] == ["train.checkpoint_every=0"]
    curve = occlusion.sets_for("main", 0, 2400, 300, Path("d"), Path("f.pt"), quick=False)
    assert "train.checkpoint_every=300" in curve and "train.keep_checkpoints=8" in curve  # every curve point kept


def test_missing_curve_checkpoint_names_the_file(occlusion: ModuleType, tmp_path: Path) -> None:
    from hfr.errors import HFRError

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-0000300.pt").write_bytes(b"x")
    assert occlusion.checkpoint_at(tmp_path / "generator.pt", 300).name == "step-0000300.pt"
    with pytest.raises(HFRError, match="step-0000600.pt: missing"):
        occlusion.checkpoint_at(tmp_path / "generator.pt", 600)
