"""Smoke tests of `benchmarks/occlusion.py --quick` and `benchmarks/train_speed.py --methods tsgan --quick`
(the occlusion script's unit tests are in test_occlusion.py).

The benchmarks are scripts, not package modules: they are loaded from their files and their
`main(argv)` is called in-process.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_scripts import (
    PNG_MAGIC,
    ROOT,
    keep_threads,  # noqa: F401  (autouse: restores torch's threads)
    load_script,
)

from hfr.data.manifest import Manifest

pytestmark = pytest.mark.slow  # the benchmark scripts' smoke runs train small models


@pytest.fixture(scope="module")
def occlusion() -> ModuleType:
    """The occlusion script as a module."""
    return load_script("occlusion")


# ---------------------------------------------------------------------- occlusion --quick
@pytest.fixture(scope="module")
def quick_run(occlusion: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One `--quick` run: tiny sets and instruments, main (curve to 4 steps) and no-mam at 2 steps."""
    out = tmp_path_factory.mktemp("occlusion")
    committed = ROOT / "benchmarks" / "results" / "occlusion.json"
    before = committed.stat().st_mtime_ns if committed.exists() else None
    assert occlusion.main(["--quick", "--out", str(out)]) == 0
    after = committed.stat().st_mtime_ns if committed.exists() else None
    assert before == after, "--quick must not write the committed results"
    return out, json.loads((out / "occlusion.json").read_text())


def test_occlusion_quick_results(occlusion: ModuleType, quick_run: tuple[Path, dict]) -> None:
    out, result = quick_run
    assert set(result["per_run"]) == {"main-s0", "no-mam-s0"}
    kinds = sorted(
        {r.get("occlusion") for r in Manifest.read(result["data"]) if r.get("occlusion") not in ("", "none")}
    )
    for name, f in result["per_run"].items():
        assert occlusion.occluders_of({name: f}) == kinds, name
        for key in ("rank1_x_d", "rank1_raw", "rank1_45_60_x_f", "rank1_45_60_raw", "frontal_bin_x_f"):
            assert 0.0 <= f[key] <= 1.0, (name, key)
        assert f["psnr_out_mask_x_d"] == pytest.approx(100.0)  # composite: the visible pixels are the input's
        assert f["psnr_in_mask_x_d"] < 100.0
    # the raw probes do not depend on the generator
    assert result["per_run"]["main-s0"]["rank1_raw"] == result["per_run"]["no-mam-s0"]["rank1_raw"]
    stages = result["stages"]
    assert stages["tsgan-main-s0"]["steps"] == 4 and stages["tsgan-no-mam-s0"]["steps"] == 2
    assert "net.mam=false" in stages["tsgan-no-mam-s0"]["sets"]
    assert f"data.recognizer={result['instruments']['F']}" in stages["tsgan-main-s0"]["sets"]
    assert [p["step"] for p in result["curve"]] == [2, 4]
    # main at the comparison's budget is the curve's checkpoint at that step
    assert result["curve"][0]["rank1_x_d"] == result["per_run"]["main-s0"]["rank1_x_d"]
    assert [g["occlusion"] for g in result["grid"]] == kinds
    assert "no-mam" in result["aggregate"]["vs_main"]
    for png in ("occlusion.png", "occlusion_grid.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC, png
    table = (out / "occlusion.md").read_text()
    assert "| main |" in table and "| no-mam |" in table and "Learning curve" in table
    assert not (out / "occlusion_work").exists()


def test_occlusion_reuse_skips_training(occlusion: ModuleType, quick_run: tuple[Path, dict]) -> None:
    out, first = quick_run
    runs = sorted(p.name for p in (out / "work" / "runs").glob("*/*"))
    assert occlusion.main(["--quick", "--reuse", "--out", str(out)]) == 0
    again = json.loads((out / "occlusion.json").read_text())
    assert sorted(p.name for p in (out / "work" / "runs").glob("*/*")) == runs  # nothing trained
    assert all(r["reused"] for r in again["stages"].values())
    assert again["per_run"] == first["per_run"]


def test_occlusion_quick_needs_out(occlusion: ModuleType) -> None:
    with pytest.raises(SystemExit):
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
