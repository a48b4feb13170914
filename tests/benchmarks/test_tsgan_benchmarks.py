"""Smoke tests of `benchmarks/occlusion.py --quick` and `benchmarks/train_speed.py --methods tsgan --quick`,
and unit tests of the occlusion benchmark's rank-1 breakdown and restoration metrics.

The benchmarks are scripts, not package modules: they are loaded from their files and their
`main(argv)` is called in-process.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from benchmark_scripts import (
    PNG_MAGIC,
    ROOT,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

from hfr.data.manifest import Manifest, make_record

pytestmark = pytest.mark.slow  # the benchmark scripts' smoke runs train small models


@pytest.fixture(scope="module")
def occlusion() -> ModuleType:
    """The occlusion script as a module."""
    return load_script("occlusion")


# ---------------------------------------------------------------------- rank-1 breakdown
def test_rank1_breakdown_per_kind_and_yaw(occlusion: ModuleType, tmp_path: Path) -> None:
    e = np.eye(3, dtype=np.float32)
    recs = [make_record(f"{s}/g.png", s, "vis", 0.0, "test", gallery=1, occlusion="none") for s in "ABC"]
    feats = [e[0], e[1], e[2]]
    # (subject, yaw, kind, feature): a right probe looks like its own gallery image, a wrong one like another's
    probes = [
        ("A", 30.0, "scarf", e[0]),
        ("B", -30.0, "scarf", e[0] * 2),  # right, wrong
        ("C", 45.0, "scarf", e[2] + 0.1 * e[0]),
        ("A", -45.0, "hand", e[1]),  # right, wrong
        ("B", 15.0, "hand", e[1]),
        ("C", 14.0, "hand", e[2] * 0.5),
    ]  # right, right (14 -> bin 15)
    for k, (s, yaw, kind, f) in enumerate(probes):
        recs.append(make_record(f"{s}/p{k}.png", s, "vis", yaw, "test", gallery=0, occlusion=kind))
        feats.append(f)
    r = occlusion.rank1_breakdown(Manifest(recs, tmp_path), np.stack(feats))
    assert r["gallery"] == 3 and r["probes"] == 6
    assert r["rank1_all"] == pytest.approx(4 / 6)
    assert r["rank1_by_occlusion"] == pytest.approx({"hand": 2 / 3, "scarf": 2 / 3})
    assert r["rank1_by_abs_yaw"] == pytest.approx({"15": 1.0, "30": 0.5, "45": 0.5})
    assert r["rank1_by_occlusion_and_abs_yaw"] == {"hand": {"15": 1.0, "45": 0.0}, "scarf": {"30": 0.5, "45": 1.0}}
    assert r["probes_by_occlusion"] == {"hand": 3, "scarf": 3}
    assert r["probes_by_abs_yaw"] == {"15": 2, "30": 2, "45": 2}


def test_rank1_breakdown_refuses_mismatched_features(occlusion: ModuleType, tmp_path: Path) -> None:
    from hfr.errors import DataError

    m = Manifest([make_record("A/g.png", "A", "vis", 0.0, "test", gallery=1)], tmp_path)
    with pytest.raises(DataError, match="feature rows"):
        occlusion.rank1_breakdown(m, np.zeros((2, 4), np.float32))


# ---------------------------------------------------------------------- restoration metrics
def test_image_metrics_identical_and_noisier(occlusion: ModuleType) -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 32, 32, generator=g)
    same = occlusion.image_metrics(clean, clean.clone())
    assert np.allclose(same["l1"], 0.0)
    assert np.allclose(same["psnr"], occlusion.PSNR_CAP)  # infinite PSNR is capped, never inf or nan
    assert np.allclose(same["ssim"], 1.0, atol=1e-4)
    noise = torch.randn(3, 3, 32, 32, generator=g)
    little = occlusion.image_metrics((clean + 0.02 * noise).clamp(0, 1), clean)
    more = occlusion.image_metrics((clean + 0.2 * noise).clamp(0, 1), clean)
    assert (more["l1"] > little["l1"]).all() and (little["l1"] > 0).all()
    assert (more["psnr"] < little["psnr"]).all() and (little["psnr"] < occlusion.PSNR_CAP).all()
    assert (more["ssim"] < little["ssim"]).all() and (little["ssim"] < 1.0).all()
    # PSNR of a known error: every pixel off by 0.1 -> 10 log10(1 / 0.01) = 20 dB
    shifted = occlusion.image_metrics(torch.full((1, 1, 16, 16), 0.5), torch.full((1, 1, 16, 16), 0.4))
    assert shifted["psnr"][0] == pytest.approx(20.0, abs=1e-3) and shifted["l1"][0] == pytest.approx(0.1, abs=1e-6)


def test_metric_summary_per_kind(occlusion: ModuleType) -> None:
    values = {"l1": np.array([0.1, 0.3, 0.5]), "psnr": np.array([20.0, 10.0, 30.0]), "ssim": np.array([1.0, 0.5, 0.0])}
    s = occlusion.metric_summary(values, ["hand", "scarf", "hand"])
    assert s["all"] == pytest.approx({"l1": 0.3, "psnr": 20.0, "ssim": 0.5, "n": 3})
    assert s["by_occlusion"]["hand"] == pytest.approx({"l1": 0.3, "psnr": 25.0, "ssim": 0.5, "n": 2})
    assert s["by_occlusion"]["scarf"]["n"] == 1 and s["by_occlusion"]["scarf"]["l1"] == pytest.approx(0.3)


# ---------------------------------------------------------------------- occlusion --quick
@pytest.fixture(scope="module")
def quick_run(occlusion: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One `--quick` run: 12 subjects at 32 px, 2 training steps per model."""
    out = tmp_path_factory.mktemp("occlusion")
    committed = ROOT / "benchmarks" / "results" / "occlusion.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    assert occlusion.main(["--quick", "--out", str(out)]) == 0
    after = committed.stat().st_mtime_ns if committed.exists() else None
    assert before == after, "--quick must not write the committed results"
    return out, json.loads((out / "occlusion.json").read_text())


def test_occlusion_quick_results(occlusion: ModuleType, quick_run: tuple[Path, dict]) -> None:
    out, result = quick_run
    assert list(result["results"]) == list(occlusion.METHODS)
    test = Manifest.read(result["data"]["manifest"]).filter(lambda r: r.split == "test")
    occluded = [r for r in test if r.get("occlusion") not in ("", "none")]
    kinds = sorted({r.get("occlusion") for r in occluded})
    data = result["data"]
    assert data["rendered_now"] and data["subjects"] == 12 and data["size"] == 32
    assert data["gallery"] == data["test_subjects"] == 5 and data["probes"] == len(occluded) == 5 * 32
    assert data["occlusion_kinds"] == kinds
    for name, r in result["results"].items():
        assert r["gallery"] == 5 and r["probes"] == len(occluded), name
        assert list(r["rank1_by_occlusion"]) == kinds
        assert list(r["rank1_by_abs_yaw"]) == ["15", "30", "45", "60"]  # probes are non-frontal only
        assert sum(r["probes_by_occlusion"].values()) == len(occluded)
        assert all(0.0 <= v <= 1.0 for v in [r["rank1_all"], *r["rank1_by_occlusion"].values()])
        # the overall rate is the probe-weighted mean of the per-kind rates
        weighted = sum(r["rank1_by_occlusion"][k] * r["probes_by_occlusion"][k] for k in kinds) / len(occluded)
        assert r["rank1_all"] == pytest.approx(weighted)
    assert list(result["restoration"]) == list(occlusion.COMPARISONS)
    for name, s in result["restoration"].items():
        assert set(s["all"]) == {"l1", "psnr", "ssim", "n"} and s["all"]["n"] == len(occluded), name
        assert list(s["by_occlusion"]) == kinds
        assert all(math.isfinite(v) for v in s["all"].values())
    # the floor: occluded input against its own clean render differs only under the occluder
    floor = result["restoration"]["input vs clean (floor)"]["all"]
    assert floor["ssim"] > result["restoration"]["input vs frontal (floor)"]["all"]["ssim"]
    models = result["models"]
    assert [models[m]["steps"] for m in ("lightcnn", "drgan", "tsgan")] == [2, 2, 2]
    assert f"data.recognizer={models['lightcnn']['file']}" in models["tsgan"]["sets"]  # F = the benchmark's LightCNN
    assert "batch_size=8" in models["tsgan"]["sets"] and result["tsgan_batch_size"] == 8
    assert [g["occlusion"] for g in result["grid"]] == kinds
    assert result["machine"]["torch_threads"] == 1
    for png in ("occlusion.png", "occlusion_grid.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC, png
    table = (out / "occlusion.md").read_text()
    assert all(f"| {name} |" in table for name in [*occlusion.METHODS, *occlusion.COMPARISONS])


def test_occlusion_reuse_skips_training(occlusion: ModuleType, quick_run: tuple[Path, dict]) -> None:
    out, first = quick_run
    runs = sorted(p.name for p in (out / "runs").glob("*/*"))
    assert occlusion.main(["--quick", "--reuse", "--out", str(out)]) == 0
    again = json.loads((out / "occlusion.json").read_text())
    assert sorted(p.name for p in (out / "runs").glob("*/*")) == runs  # nothing trained
    assert all(again["models"][m]["reused"] for m in ("lightcnn", "drgan", "tsgan"))
    assert not again["data"]["rendered_now"]
    assert again["results"] == first["results"] and again["restoration"] == first["restoration"]


def test_occlusion_quick_needs_out(occlusion: ModuleType) -> None:
    with pytest.raises(SystemExit, match="--out"):
        occlusion.main(["--quick"])


# ---------------------------------------------------------------------- train_speed --methods tsgan
def test_train_speed_tsgan_quick(tmp_path: Path) -> None:
    train_speed = load_script("train_speed")
    assert (
        train_speed.main(["--quick", "--methods", "tsgan", "--widths", "0.25", "--multi", "0", "--out", str(tmp_path)])
        == 0
    )
    (row,) = json.loads((tmp_path / "train_speed.json").read_text())["results"]
    assert row["method"] == "tsgan" and row["batch"] == 8 and row["images_per_step"] == 8
    assert row["images_per_s"] == pytest.approx(8 * 1000 / row["ms_per_step"], rel=0.01)
    assert row["params_g"] > 0 and row["params_d"] > 0
    assert "net.width=0.25" in row["sets"] and "data.split=" in row["sets"]
    assert (tmp_path / "train_speed.png").read_bytes()[:8] == PNG_MAGIC
    assert train_speed.bench_tsgan(32, 8, "cpu", 1, train_speed.Variant(multi_image=4)) is None  # no multi-image
