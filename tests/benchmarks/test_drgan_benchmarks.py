"""Smoke tests of the DR-GAN benchmarks' `--quick` modes and of the cross-pose template fusion.

`benchmarks/train_speed.py` and `benchmarks/cross_pose.py` are scripts, not package modules:
they are loaded from their files and their `main(argv)` is called in-process.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from benchmark_scripts import (
    PNG_MAGIC,
    ROOT,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

from hfr.data.manifest import Manifest, make_record
from hfr.errors import HFRError

pytestmark = pytest.mark.slow  # the benchmark scripts' smoke runs train small models


@pytest.fixture(scope="module")
def train_speed() -> ModuleType:
    """The train_speed script as a module."""
    return load_script("train_speed")


@pytest.fixture(scope="module")
def cross_pose() -> ModuleType:
    """The cross_pose script as a module."""
    return load_script("cross_pose")


# ---------------------------------------------------------------------- train_speed
@pytest.fixture(scope="module")
def speed_result(train_speed: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `--quick` run (32 px, batch 8, 2 timed steps: widths 0.25 and 1, single and multi-image)."""
    out = tmp_path_factory.mktemp("train_speed")
    committed = ROOT / "benchmarks" / "results" / "train_speed.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    assert train_speed.main(["--quick", "--out", str(out)]) == 0
    after = committed.stat().st_mtime_ns if committed.exists() else None
    assert before == after, "--quick must not write the committed results"
    assert (out / "train_speed.png").read_bytes()[:8] == PNG_MAGIC
    return json.loads((out / "train_speed.json").read_text())


def test_train_speed_quick_measures_every_case(speed_result: dict) -> None:
    rows = speed_result["results"]
    assert speed_result["quick"] and speed_result["batch"] == 8 and speed_result["steps"] == 2
    assert {(r["width"], r["multi_image"]) for r in rows} == {(0.25, 0), (0.25, 4), (1.0, 0), (1.0, 4)}
    for r in rows:
        assert r["method"] == "drgan" and r["device"] == "cpu" and r["size"] == 32
        assert r["timed_steps"] == 2 and r["images_per_step"] == 8
        assert r["images_per_s"] > 0
        # images/s and ms/step describe the same timed steps
        assert r["images_per_s"] == pytest.approx(8 * 1000 / r["ms_per_step"], rel=0.01)
        assert r["synthesized_per_step"] == (10 if r["multi_image"] == 4 else 8)  # + one fused image per run of 4
        if Path("/proc/self/status").exists():
            assert r["peak_mem_mb"] is not None and r["peak_mem_mb"] >= 0
    machine = speed_result["machine"]
    assert machine["torch_threads"] == 1 and machine["cpu_count"] >= 1 and machine["torch"]


def test_train_speed_variants_reach_the_model(speed_result: dict) -> None:
    by = {(r["width"], r["multi_image"]): r for r in speed_result["results"]}
    # width multiplies every channel count: about width^2 as many conv weights
    assert by[(1.0, 0)]["params_g"] > 8 * by[(0.25, 0)]["params_g"]
    # the multi-image encoder has the confidence head omega on top of the same network
    assert by[(0.25, 4)]["params_g"] > by[(0.25, 0)]["params_g"]
    assert by[(0.25, 4)]["params_d"] == by[(0.25, 0)]["params_d"]
    assert any("net.multi_image=4" in s for s in by[(0.25, 4)]["sets"])


def test_train_speed_dvg_run_keeps_the_other_rows(train_speed: ModuleType, speed_result: dict, tmp_path: Path) -> None:
    out = tmp_path / "train_speed.json"
    out.write_text(json.dumps(speed_result))
    assert train_speed.main(["--quick", "--methods", "dvg,dvg-generate", "--widths", "0.25", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r for r in rows if r["method"] == "drgan"] == speed_result["results"]  # kept as they were
    (dvg,) = [r for r in rows if r["method"] == "dvg"]  # no multi-image variant for DVG
    assert dvg["images_per_step"] == 16 and dvg["images_per_s"] > 0  # 8 pairs, 2 images each
    (gen,) = [r for r in rows if r["method"] == "dvg-generate"]
    assert gen["images_per_step"] == 16 and gen["params_g"] == dvg["params_g"]  # the same E_N, E_V, G
    # generation is a forward pass only: faster per image than a training step of the same networks
    assert gen["images_per_s"] > dvg["images_per_s"]


def test_train_speed_skips_cpu_autocast_and_refuses_unknown_methods(train_speed: ModuleType) -> None:
    variant = train_speed.Variant(width=0.25, multi_image=0, amp=True)
    assert train_speed.bench_drgan(32, 8, "cpu", 1, variant) is None  # autocast is CUDA-only
    with pytest.raises(SystemExit, match="unknown method"):
        train_speed.main(["--quick", "--methods", "stylegan", "--out", "/nonexistent"])


# ---------------------------------------------------------------------- cross_pose: templates
def _manifest(tmp_path: Path, probes: dict[tuple[str, float], int]) -> Manifest:
    """Gallery rows for subjects A and B, then `count` probe rows per (subject, yaw)."""
    recs = [make_record(f"{s}/gallery.png", s, "vis", 0.0, "test", gallery=1) for s in ("A", "B")]
    for (s, yaw), count in probes.items():
        recs += [make_record(f"{s}/{yaw:+g}_{k}.png", s, "vis", yaw, "test", gallery=0) for k in range(count)]
    return Manifest(recs, tmp_path)


def test_cross_pose_templates_group_by_subject_and_yaw(cross_pose: ModuleType, tmp_path: Path) -> None:
    m = _manifest(tmp_path, {("A", 15.0): 5, ("B", 30.0): 1, ("A", -15.0): 4})
    probes = list(range(2, len(m)))
    templates = cross_pose.build_templates(m, probes, 2, seed=0)
    # 5 images -> 2 templates of 2 (one left out); 1 image -> 1 template of 1; 4 -> 2 of 2
    assert sorted(len(t) for t in templates) == [1, 2, 2, 2, 2]
    for t in templates:
        assert len({(m[i].subject, m[i].yaw) for i in t}) == 1
    flat = [i for t in templates for i in t]
    assert len(flat) == len(set(flat)) == 9  # of 10 probes: one of A at +15 left out
    assert cross_pose.build_templates(m, probes, 2, seed=0) == templates
    assert [len(t) for t in cross_pose.build_templates(m, probes, 4, seed=0)] == [4, 4, 1]


def test_cross_pose_fusion_weights_by_confidence(cross_pose: ModuleType, tmp_path: Path) -> None:
    m = _manifest(tmp_path, {("A", 30.0): 2, ("B", 30.0): 2})
    e_a, e_b = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    # each subject's probe pair: one image looking like the other subject, one like itself
    feats = np.stack([e_a, e_b, e_b * 1.2, e_a * 0.9, e_a * 1.1, e_b * 0.8])
    confident_right = np.array([1, 1, 0.1, 0.9, 0.1, 0.9], np.float32)
    confident_wrong = np.array([1, 1, 0.9, 0.1, 0.9, 0.1], np.float32)
    right = cross_pose.fused_cross_pose(m, feats, confident_right, 2, seed=0)
    wrong = cross_pose.fused_cross_pose(m, feats, confident_wrong, 2, seed=0)
    assert right["templates"] == 2 and right["template_sizes"] == {"2": 2}
    assert right["rank1_by_abs_yaw"] == {"30": 1.0}
    assert wrong["rank1_by_abs_yaw"] == {"30": 0.0}
    single = cross_pose.fused_cross_pose(m, feats, confident_right, 1, seed=0)
    assert single["templates"] == 4 and single["rank1_by_abs_yaw"] == {"30": 0.5}


# ---------------------------------------------------------------------- cross_pose: aggregation
def _result(by_yaw: dict[str, float]) -> dict:
    return {"rank1_by_abs_yaw": by_yaw, "mean": float(np.mean([v for k, v in by_yaw.items() if k != "0"]))}


def test_cross_pose_aggregate_means_stds_and_the_drop(cross_pose: ModuleType) -> None:
    a = _result({"0": 1.0, "15": 0.9, "30": 0.8, "45": 0.7, "60": 0.5})
    b = _result({"0": 0.8, "15": 0.7, "30": 0.6, "45": 0.5, "60": 0.5})
    agg = cross_pose.aggregate([a, b])
    assert agg["seeds"] == 2
    assert agg["rank1_by_abs_yaw"]["15"]["mean"] == pytest.approx(0.8)
    assert agg["rank1_by_abs_yaw"]["15"]["std"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    assert agg["rank1_by_abs_yaw"]["60"]["std"] == pytest.approx(0.0)
    assert agg["drop_15_60"]["values"] == pytest.approx([0.4, 0.2])  # rank-1 at 15 minus rank-1 at 60
    assert agg["mean"]["mean"] == pytest.approx(np.mean([a["mean"], b["mean"]]))
    one = cross_pose.aggregate([a])
    assert one["mean"]["std"] is None and one["drop_15_60"]["mean"] == pytest.approx(0.4)
    assert cross_pose.aggregate([_result({"0": 1.0, "30": 0.5})])["drop_15_60"] is None


def _previous_json(cross_pose: ModuleType, path: Path, fixed: dict, seeds: list[int]) -> Path:
    methods = list(cross_pose.RECIPES)
    prev = {
        "fixed": fixed,
        "seeds": seeds,
        "per_seed": {str(s): {"drgan": _result({"0": 0.1 * s, "30": 0.05 * s})} for s in seeds},
        "frontalization": {"per_seed": {str(s): {"0": float(s)} for s in seeds}},
        "records": {f"{m}-s{s}": {"steps": 7} for s in seeds for m in methods},
        "curves": {f"{m}-s{s}": [{"step": 7, "rank1_mean": 0.1 * s}] for s in seeds for m in methods},
    }
    path.write_text(json.dumps(prev))
    return path


def test_cross_pose_previous_seeds_join_only_with_equal_instrument_figures(
    cross_pose: ModuleType, tmp_path: Path
) -> None:
    fixed = {"F": {"rank1_all": 0.8, "mean": 0.81}, "judge": {"rank1_all": 0.9, "mean": 0.91}}
    path = _previous_json(cross_pose, tmp_path / "prev.json", fixed, [0, 1, 2])
    taken = cross_pose.previous_seeds(path, fixed, [2])  # seed 2 trained here: the earlier one is not taken
    assert taken["seeds"] == [0, 1] and sorted(taken["per_seed"]) == ["0", "1"]
    assert taken["per_seed"]["1"]["drgan"]["rank1_by_abs_yaw"]["0"] == pytest.approx(0.1)
    assert taken["frontal_yaw"] == {"0": {"0": 0.0}, "1": {"0": 1.0}}
    assert all(r["from_previous"] == str(path) for r in taken["records"].values())
    assert set(taken["curves"]) == set(taken["records"]) and len(taken["records"]) == 2 * len(cross_pose.RECIPES)
    other = {**fixed, "judge": {"rank1_all": 0.89, "mean": 0.91}}
    with pytest.raises(HFRError, match="judge figures differ"):
        cross_pose.previous_seeds(path, other, [2])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HFRError, match="not a readable cross_pose.json"):
        cross_pose.previous_seeds(tmp_path / "bad.json", fixed, [2])


def test_cross_pose_mean_curve_averages_seeds_by_step(cross_pose: ModuleType) -> None:
    s0 = [{"step": 5, "images": 320, "train_seconds": 2.0, "rank1_mean": 0.2}, {"step": 10, "rank1_mean": 0.4}]
    s1 = [{"step": 5, "images": 320, "train_seconds": 4.0, "rank1_mean": 0.4}, {"step": 10, "rank1_mean": 0.6}]
    curve = cross_pose.mean_curve([s0, s1])
    assert [p["step"] for p in curve] == [5, 10] and [p["seeds"] for p in curve] == [2, 2]
    assert curve[0]["rank1_mean"] == pytest.approx(0.3) and curve[0]["images"] == 320
    assert curve[0]["train_seconds"] == pytest.approx(3.0) and curve[1]["images"] is None
    assert curve[1]["rank1_mean_std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))


def test_cross_pose_budgets_and_their_estimates(cross_pose: ModuleType, tmp_path: Path) -> None:
    default = cross_pose.parse_args(["--out", str(tmp_path)])
    assert default.seeds == [0] and default.steps_scale == 1.0 and default.steps is None
    long = cross_pose.parse_args(["--budget", "long", "--out", str(tmp_path)])
    assert long.seeds == [0, 1, 2]
    assert cross_pose.parse_args(["--budget", "long", "--seeds", "4", "--steps-scale", "2"]).seeds == [4]
    # the documented budgets on a quiet 2-core CPU: default <= 30 min, long <= 2 h
    assert cross_pose.expected_seconds(default) <= 30 * 60
    assert cross_pose.expected_seconds(long) <= 2 * 3600
    # every stage's curve has --points evaluations, the last at the end
    assert cross_pose.eval_every(700, 4) == 175 and cross_pose.eval_every(3, 4) == 1


# ---------------------------------------------------------------------- cross_pose: quick run
RESULT_FILES = ("cross_pose.json", "cross_pose.md", "cross_pose.png", "cross_pose_curve.png")
PNGS = ("cross_pose.png", "cross_pose_curve.png", "cross_pose_sweep.png", "cross_pose_frontalized.png")
TRAINED = ("drgan", "drgan-multi", "drgan-cnn")
PER_SEED = ["drgan-cnn", "drgan", "drgan-multi n=1", "drgan-multi n=2", "drgan-multi n=4", "judge-frontalized"]
METHODS = ["F", "judge", *PER_SEED]


def _mtimes() -> dict[str, int | None]:
    committed = ROOT / "benchmarks" / "results"
    return {n: (committed / n).stat().st_mtime_ns if (committed / n).exists() else None for n in RESULT_FILES}


@pytest.fixture(scope="module")
def quick_run(cross_pose: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One `--quick` run: shared sets of 12 multipie subjects at 32 px, tiny instruments, 3 steps per model."""
    out = tmp_path_factory.mktemp("cross_pose")
    before = _mtimes()
    assert cross_pose.main(["--quick", "--out", str(out)]) == 0
    assert _mtimes() == before, "--quick must not write the committed results"
    return out, json.loads((out / "cross_pose.json").read_text())


def _check_result(r: dict, name: str) -> None:
    by_yaw = r["rank1_by_abs_yaw"]
    assert list(by_yaw) == ["0", "15", "30", "45", "60"], name
    assert all(0.0 <= v <= 1.0 for v in by_yaw.values()), name
    assert r["mean"] == pytest.approx(np.mean([by_yaw[k] for k in ("15", "30", "45", "60")])), name
    assert r["gallery"] == 5, name


def test_cross_pose_quick_results(quick_run: tuple[Path, dict]) -> None:
    out, result = quick_run
    assert result["quick"] and result["seeds"] == [0] and result["budget"]["name"] == "default"
    assert result["budget"]["steps"] == {m: 3 for m in TRAINED}
    data = result["data"]
    assert data["subjects"] == 12 and data["size"] == 32
    assert data["test_subjects"] == 5 and data["test_images"] == 5 * 36  # 9 yaws x 4 lights
    assert Path(data["manifest"]).parent == out / "work" / "data" / "multipie"  # the shared set, under --out
    assert all(Path(p).is_file() and str(out) in p for p in result["instruments"].values())
    assert set(result["instruments"]) == {"F", "judge", "yaw_estimator", "pose_estimator"}
    assert result["instruments"]["pose_estimator"] != result["instruments"]["yaw_estimator"]  # P never judges
    assert list(result["methods"]) == METHODS
    assert list(result["fixed"]) == ["F", "judge"]
    assert list(result["per_seed"]) == ["0"] and list(result["per_seed"]["0"]) == PER_SEED
    for name, r in [*result["fixed"].items(), *result["per_seed"]["0"].items()]:
        _check_result(r, name)
    assert list(result["aggregate"]) == METHODS
    for name, agg in result["aggregate"].items():
        assert agg["seeds"] == 1, name
        assert set(agg["rank1_by_abs_yaw"]) == {"0", "15", "30", "45", "60"}, name
        assert agg["mean"]["std"] is None and agg["drop_15_60"] is not None, name
        source = result["fixed"].get(name) or result["per_seed"]["0"][name]
        assert agg["mean"]["mean"] == pytest.approx(source["mean"]), name
        by = source["rank1_by_abs_yaw"]
        assert agg["drop_15_60"]["mean"] == pytest.approx(by["15"] - by["60"]), name
    seed0 = result["per_seed"]["0"]
    # templates: 8 non-frontal yaws x 4 lights and 3 non-gallery frontal images per subject
    assert seed0["drgan-multi n=1"]["templates"] == 5 * (8 * 4 + 3)
    assert seed0["drgan-multi n=2"]["template_sizes"] == {"2": 5 * (8 * 2 + 1)}
    assert seed0["drgan-multi n=4"]["template_sizes"] == {"3": 5, "4": 5 * 8}
    front = result["frontalization"]
    assert set(front["aggregate"]) == {"0", "15", "30", "45", "60"} and list(front["per_seed"]) == ["0"]


def test_cross_pose_quick_stages_and_curves(quick_run: tuple[Path, dict]) -> None:
    out, result = quick_run
    f_file = result["instruments"]["F"]
    for method in TRAINED:
        stage = f"{method}-s0"
        record = result["records"][stage]
        assert record["steps"] == 3 and not record["reused"] and Path(record["file"]).is_file()
        sets = record["sets"]
        assert "train.seed=0" in sets and f"data.recognizer={f_file}" in sets
        assert f"data.pose_estimator={result['instruments']['pose_estimator']}" in sets
        assert f"data.eval={result['data']['eval_manifest']}" in sets and "train.best_metric=null" in sets
        assert f"data.train={Path(result['data']['manifest']).parent}" in sets
        curve = result["curves"][stage]
        assert [p["step"] for p in curve] == [1, 2, 3], stage  # train.eval_every=1 of 3 steps
        assert [p["images"] for p in curve] == [16, 32, 48], stage
        assert all(0.0 <= p["rank1_mean"] <= 1.0 for p in curve), stage
        mean = result["curve_mean"][method]
        assert [p["rank1_mean"] for p in mean] == pytest.approx([p["rank1_mean"] for p in curve])
    assert Path(result["records"]["drgan-cnn-s0"]["file"]).name == "recognizer.pt"
    # the last in-training evaluation is the final model on the same test subjects
    last = result["curves"]["drgan-s0"][-1]["rank1_mean"]
    assert last == pytest.approx(result["per_seed"]["0"]["drgan"]["mean"])
    eval_rows = Manifest.read(result["data"]["eval_manifest"])
    assert len(eval_rows) == result["data"]["test_images"] and {r.split for r in eval_rows} == {"test"}
    for name in PNGS:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    table = (out / "cross_pose.md").read_text()
    assert "| method | 0 | 15 | 30 | 45 | 60 | mean 15-60 | drop 15->60 |" in table
    assert all(f"| {name} |" in table for name in METHODS) and "±" not in table.split("\n\n")[1]
    assert result["machine"]["cpu_count"] >= 1 and result["seconds"]["total"] > 0


def test_cross_pose_reuse_and_seeds(cross_pose: ModuleType, quick_run: tuple[Path, dict], tmp_path: Path) -> None:
    out, first = quick_run
    work = out / "work"
    argv = ["--quick", "--out", str(tmp_path), "--reuse", "--seeds", "0", "1"]
    argv += ["--data", str(work / "data"), "--instruments", str(work / "instruments"), "--runs", str(work / "runs")]
    assert cross_pose.main(argv) == 0
    again = json.loads((tmp_path / "cross_pose.json").read_text())
    assert again["instruments"] == first["instruments"]  # taken from their done.json
    for method in TRAINED:
        assert again["records"][f"{method}-s0"]["reused"], method  # seed 0: nothing trained
        assert not again["records"][f"{method}-s1"]["reused"], method
        assert "train.seed=1" in again["records"][f"{method}-s1"]["sets"]
        assert again["curves"][f"{method}-s0"] == first["curves"][f"{method}-s0"]
        assert [p["seeds"] for p in again["curve_mean"][method]] == [2, 2, 2]
    assert list(again["per_seed"]) == ["0", "1"]
    for name in PER_SEED:  # same models, same data, same seed: the same figures
        assert again["per_seed"]["0"][name] == first["per_seed"]["0"][name], name
        agg = again["aggregate"][name]
        assert agg["seeds"] == 2 and len(agg["mean"]["values"]) == 2 and agg["mean"]["std"] is not None
    assert again["aggregate"]["F"]["seeds"] == 1  # the shared recognizers do not depend on the seed
    assert again["fixed"] == first["fixed"]
    assert "±" in (tmp_path / "cross_pose.md").read_text()


def test_cross_pose_quick_needs_out(cross_pose: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cross_pose.main(["--quick"])
    assert "--out" in capsys.readouterr().err


def test_train_speed_pose_recipe_row(train_speed: ModuleType, speed_result: dict, tmp_path: Path) -> None:
    out = tmp_path / "train_speed.json"
    out.write_text(json.dumps(speed_result))
    argv = ["--quick", "--methods", "drgan-pose", "--widths", "0.25", "--multi", "0", "--out", str(out)]
    assert train_speed.main(argv) == 0
    (pose,) = [r for r in json.loads(out.read_text())["results"] if r["method"] == "drgan-pose"]
    (plain,) = [r for r in speed_result["results"] if (r["width"], r["multi_image"]) == (0.25, 0)]
    assert pose["recipe"].endswith("synth-multipie-pose.yaml") and pose["images_per_s"] > 0
    assert pose["params_g"] == plain["params_g"]  # the same networks; the step adds P's forward and backward
