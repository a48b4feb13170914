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


def test_templates_group_by_subject_and_yaw(cross_pose: ModuleType, tmp_path: Path) -> None:
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


def test_fusion_weights_by_confidence(cross_pose: ModuleType, tmp_path: Path) -> None:
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


# ---------------------------------------------------------------------- cross_pose: quick run
@pytest.fixture(scope="module")
def quick_run(cross_pose: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One `--quick` run: 12 subjects at 32 px, 3 training steps per model."""
    out = tmp_path_factory.mktemp("cross_pose")
    assert cross_pose.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "cross_pose.json").read_text())


METHODS = ["lightcnn", "drgan", "drgan-multi n=1", "drgan-multi n=2", "drgan-multi n=4", "lightcnn-frontalized"]


def test_cross_pose_quick_results(quick_run: tuple[Path, dict]) -> None:
    out, result = quick_run
    assert list(result["results"]) == METHODS
    data = result["data"]
    assert data["rendered_now"] and data["subjects"] == 12 and data["size"] == 32
    assert data["test_subjects"] == 5 and data["test_images"] == 5 * 36  # 9 yaws x 4 lights
    for name, r in result["results"].items():
        by_yaw = r["rank1_by_abs_yaw"]
        assert list(by_yaw) == ["0", "15", "30", "45", "60"], name
        assert all(0.0 <= v <= 1.0 for v in by_yaw.values())
        assert r["mean"] == pytest.approx(np.mean([by_yaw[k] for k in ("15", "30", "45", "60")]))
        assert r["gallery"] == 5
    # templates: 8 non-frontal yaws x 4 lights and 3 non-gallery frontal images per subject
    assert result["results"]["drgan-multi n=1"]["templates"] == 5 * (8 * 4 + 3)
    assert result["results"]["drgan-multi n=2"]["template_sizes"] == {"2": 5 * (8 * 2 + 1)}
    assert result["results"]["drgan-multi n=4"]["template_sizes"] == {"3": 5, "4": 5 * 8}
    for method in ("lightcnn", "drgan", "drgan-multi"):
        model = result["models"][method]
        assert model["steps"] == 3 and not model["reused"]
        assert f"train.seed={result['seed']}" in model["sets"]
    assert set(result["seconds"]) >= {"render", "train_lightcnn", "train_drgan", "train_drgan-multi", "evaluate"}
    assert result["machine"]["cpu_count"] >= 1
    for name in ("cross_pose.png", "cross_pose_sweep.png", "cross_pose_frontalized.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name


def test_cross_pose_reuse_skips_training(cross_pose: ModuleType, quick_run: tuple[Path, dict], tmp_path: Path) -> None:
    out, first = quick_run
    runs = out / "runs"
    before = sorted(p.name for p in runs.glob("*/*"))
    models = first["models"]
    argv = [
        "--quick",
        "--out",
        str(tmp_path),
        "--data",
        first["data"]["manifest"],
        "--runs",
        str(runs),
        "--reuse",
        models["lightcnn"]["run_dir"],
        models["drgan-multi"]["run_dir"],
        "--drgan",
        str(Path(models["drgan"]["run_dir"]) / "generator.pt"),
    ]
    assert cross_pose.main(argv) == 0
    again = json.loads((tmp_path / "cross_pose.json").read_text())
    assert sorted(p.name for p in runs.glob("*/*")) == before  # nothing trained
    assert all(again["models"][m]["reused"] for m in ("lightcnn", "drgan", "drgan-multi"))
    assert not again["data"]["rendered_now"]
    for name in METHODS:  # same models, same data, same seed: the same figures
        assert again["results"][name]["rank1_by_abs_yaw"] == first["results"][name]["rank1_by_abs_yaw"], name


def test_cross_pose_quick_needs_out(cross_pose: ModuleType) -> None:
    with pytest.raises(SystemExit, match="--out"):
        cross_pose.main(["--quick"])
