"""`hfr quickstart`: the whole pipeline at tiny sizes, the method stages' contract, and the render-only mode."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from hfr.cli import main
from hfr.data.manifest import Manifest

TINY = [
    "--size",
    "32",
    "--set",
    "webface_subjects=6",
    "--set",
    "webface_images=3",
    "--set",
    "multipie_subjects=5",
    "--set",
    "nirvis_subjects=6",
    "--set",
    "occluded_subjects=2",
    "--set",
    "steps=2",
    "--set",
    "batch_size=8",
    "--set",
    "train_size=32",
    "--set",
    "probes=2",
    "--set",
    "drgan_steps=2",
    "--set",
    "drgan_batch_size=8",
    "--set",
    "sampler_steps=2",
    "--set",
    "dvg_steps=2",
    "--set",
    "dvg_batch_size=2",
    "--set",
    "dvg_pairs=5",
]


class SpyStage:
    """A fourth method's stage: between DR-GAN (50) and DVG-Face (60); records what it was given."""

    order = 55
    seen: ClassVar[list] = []

    def enabled(self, cfg) -> bool:
        return True

    def run(self, inputs):
        from hfr.quickstart import StageOutput, TextTable

        SpyStage.seen.append(inputs)
        assert (inputs.run / "drgan" / "generator.pt").is_file()  # DR-GAN ran before it
        assert not (inputs.run / "dvg").exists()  # DVG-Face after it
        return StageOutput(
            {"sets": sorted(inputs.sets), "recognizer": str(inputs.recognizer)},
            ["spy line [not markup]", TextTable("spy table", ["a", "b"], [["1", "2"]])],
            ["", "## Spy stage", "", "spy markdown"],
        )


def test_quickstart_end_to_end(tmp_path, capsys, monkeypatch):
    from hfr.quickstart import STAGES

    out = tmp_path / "qs"
    monkeypatch.chdir(tmp_path)  # the recipes are found from any working directory
    SpyStage.seen.clear()
    with STAGES.temporarily("spy", SpyStage):
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
    assert list(summary["timings"]) == ["render", "pretrain", "evaluate", "search", "drgan", "spy", "dvg"]
    assert len(Manifest.read(out / "dvg" / "pairs")) == 10 and (out / "dvg" / "pairs.png").exists()
    assert all(-1 - 1e-6 <= summary["dvg"][k] <= 1 + 1e-6 for k in ("consistency", "diversity"))  # cosines
    assert "DVG-Face generated pairs" in (out / "summary.md").read_text()
    assert (out / "drgan" / "generator.pt").exists() and (out / "drgan" / "pose_sweep.png").exists()
    assert set(summary["drgan"]["rank1_by_abs_yaw"]) == set(summary["evaluation"]["cross-pose"]["rank1_by_abs_yaw"])
    assert "DR-GAN pose sweep" in (out / "summary.md").read_text()
    # every model came through the stage runner from a configs/quickstart recipe
    for folder, recipe, steps in (
        ("train", "recognizer", 2),
        ("drgan", "drgan", 2),
        ("dvg/sampler", "dvg-sampler", 2),
        ("dvg/generator", "dvg", 2),
    ):
        done = json.loads((out / folder / "done.json").read_text())
        assert done["recipe"] == f"configs/quickstart/{recipe}.yaml" and done["steps"] == steps, folder
    assert json.loads((out / "train" / "done.json").read_text())["file"] == str(out / "recognizer.pt")
    # the spy stage got the run's inputs; its summary, lines and markdown landed in order
    (inputs,) = SpyStage.seen
    assert inputs.run == out and inputs.recognizer == out / "recognizer.pt" and inputs.cfg.drgan_steps == 2
    assert inputs.sets["nirvis"] == out / "data" / "nirvis"
    assert summary["spy"] == {
        "sets": ["multipie", "nirvis", "occluded", "webface"],
        "recognizer": str(out / "recognizer.pt"),
    }
    md = (out / "summary.md").read_text()
    assert md.index("## DR-GAN") < md.index("## Spy stage") < md.index("## DVG-Face")
    printed = capsys.readouterr().out
    assert "cross-pose" in printed and "cross-modal" in printed and "gallery search" in printed
    assert "DVG-Face" in printed and "identity consistency" in printed
    assert printed.index("DR-GAN pose sweep") < printed.index("spy line [not markup]") < printed.index("DVG-Face:")
    assert "spy table" in printed
    assert "| rank-1 (%) |" in md


def test_method_stages_come_in_order():
    from hfr.quickstart import STAGES, QuickstartConfig, method_stages

    class Early(SpyStage):
        order = 5

    class Late(SpyStage):
        order = 60  # ties DVG-Face: the name decides

    with STAGES.temporarily("early", Early), STAGES.temporarily("a-late", Late):
        names = [name for name, _ in method_stages()]
    assert names == ["early", "drgan", "a-late", "dvg"]
    stages = dict(method_stages())
    assert not stages["drgan"].enabled(QuickstartConfig(drgan_steps=0))
    assert stages["dvg"].enabled(QuickstartConfig()) and not stages["dvg"].enabled(QuickstartConfig(dvg_steps=0))


def test_a_broken_stage_entry_point_is_left_out_with_a_warning(monkeypatch, caplog):
    from importlib import metadata

    from hfr import quickstart
    from hfr.registry import Registry

    registry: Registry[Any] = Registry("quickstart stage", quickstart.ENTRY_POINT_GROUP)
    real = registry._entry_points
    broken = metadata.EntryPoint(name="broken", value="no_such_module_hfr_test:Stage", group="hfr.quickstart")
    monkeypatch.setattr(registry, "_entry_points", lambda: [*real(), broken])
    monkeypatch.setattr(quickstart, "STAGES", registry)
    with caplog.at_level("WARNING"):
        assert [name for name, _ in quickstart.method_stages()] == ["drgan", "dvg"]
    assert any("broken" in r.getMessage() for r in caplog.records)


def test_quickstart_render_only_and_errors(tmp_path, capsys):
    out = tmp_path / "render"
    assert (
        main(
            [
                "quickstart",
                "--out",
                str(out),
                "--subjects",
                "2",
                "--size",
                "32",
                "--set",
                "pipeline=false",
                "--set",
                "presets=[nirvis]",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert [r["preset"] for r in summary["presets"]] == ["nirvis"] and "evaluation" not in summary
    assert main(["quickstart", "--set", "presets=[nirvis]"]) == 2
    assert "needs the webface" in capsys.readouterr().err
    assert main(["quickstart", "--set", "presets=[faces]", "--set", "pipeline=false"]) == 2
    assert main(["quickstart", "--size", "20", "--out", str(tmp_path / "x"), "--set", "pipeline=false"]) == 2
    assert "'size'" in capsys.readouterr().err
    assert main(["quickstart", "--set", "drgan_stepz=0", "--dry-run"]) == 2
    assert "did you mean 'drgan_steps'" in capsys.readouterr().err
    assert main(["quickstart", "--set", "drgan_steps=0", "--dry-run"]) == 0
    assert "drgan_steps: 0" in capsys.readouterr().out


def test_quickstart_names_the_missing_recipes_folder(tmp_path, monkeypatch, capsys):
    from hfr import config

    monkeypatch.setattr(config, "CONFIGS_DIR", tmp_path / "nowhere" / "configs")
    assert (
        main(
            [
                "quickstart",
                "--out",
                str(tmp_path / "qs"),
                "--subjects",
                "2",
                "--size",
                "32",
                "--set",
                "webface_images=2",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "nowhere/configs" in err and "recipes folder is missing" in err
