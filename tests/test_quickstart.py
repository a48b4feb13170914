"""`hfr quickstart`: the whole pipeline at tiny sizes, and the render-only mode."""

from __future__ import annotations

import json

from hfr.cli import main
from hfr.data.manifest import Manifest

TINY = ["--size", "32", "--set", "webface_subjects=6", "--set", "webface_images=3", "--set", "multipie_subjects=5",
        "--set", "nirvis_subjects=6", "--set", "occluded_subjects=2", "--set", "steps=2", "--set", "batch_size=8", "--set", "train_size=32",
        "--set", "probes=2", "--set", "drgan_steps=2", "--set", "drgan_batch_size=8",
        "--set", "sampler_steps=2", "--set", "dvg_steps=2", "--set", "dvg_batch_size=2", "--set", "dvg_pairs=5"]


def test_quickstart_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["preset"] for r in summary["presets"]] == ["webface", "multipie", "nirvis", "occluded"]
    for row in summary["presets"]:
        assert len(Manifest.read(row["manifest"]).subjects()) == row["subjects"]
        assert (out / "sheets" / f"{row['preset']}.png").exists()
    assert (out / "recognizer.pt").exists() and (out / "gallery" / "index.faiss").exists()
    assert (out / "eval" / "cross-pose" / "rank1_vs_yaw.png").exists()
    assert (out / "eval" / "cross-modal" / "roc.png").exists()
    rows = summary["search"]["rows"]
    assert {r["rank"] for r in rows} == {1, 2, 3} and len({r["probe"] for r in rows}) == 2
    assert set(summary["timings"]) == {"render", "pretrain", "evaluate", "search", "drgan", "dvg"}
    assert len(Manifest.read(out / "dvg" / "pairs")) == 10 and (out / "dvg" / "pairs.png").exists()
    assert all(-1 - 1e-6 <= summary["dvg"][k] <= 1 + 1e-6 for k in ("consistency", "diversity"))  # cosines
    assert "DVG-Face generated pairs" in (out / "summary.md").read_text()
    assert (out / "drgan" / "generator.pt").exists() and (out / "drgan" / "pose_sweep.png").exists()
    assert set(summary["drgan"]["rank1_by_abs_yaw"]) == set(summary["evaluation"]["cross-pose"]["rank1_by_abs_yaw"])
    assert "DR-GAN pose sweep" in (out / "summary.md").read_text()
    printed = capsys.readouterr().out
    assert "cross-pose" in printed and "cross-modal" in printed and "gallery search" in printed
    assert "DVG-Face" in printed and "identity consistency" in printed
    assert "| rank-1 (%) |" in (out / "summary.md").read_text()


def test_quickstart_render_only_and_errors(tmp_path, capsys):
    out = tmp_path / "render"
    assert main(["quickstart", "--out", str(out), "--subjects", "2", "--size", "32", "--set", "pipeline=false",
                 "--set", "presets=[nirvis]"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["preset"] for r in summary["presets"]] == ["nirvis"] and "evaluation" not in summary
    assert main(["quickstart", "--set", "presets=[nirvis]"]) == 2
    assert "needs the webface" in capsys.readouterr().err
    assert main(["quickstart", "--set", "presets=[faces]", "--set", "pipeline=false"]) == 2
    assert main(["quickstart", "--size", "20", "--out", str(tmp_path / "x"), "--set", "pipeline=false"]) == 2
    assert "'size'" in capsys.readouterr().err
