"""The stage runner (`hfr.engine.stages`): train a recipe as a named stage, export, done.json, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_toy import ToyConfig, ToyTask, write_toy_dataset

from hfr.engine.stages import Stages, render_synth
from hfr.engine.task import registered
from hfr.errors import ConfigError, DataError


class StageToy(ToyTask):
    """The toy task with the plug-in contract's recipe class and export."""

    config_class = ToyConfig

    def export(self, run_dir, meta=None):
        """Write toy.json (the meta it was given) and weights.json into `run_dir`."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "toy.json").write_text(json.dumps(meta))
        (run_dir / "weights.json").write_text("{}")
        return {"generator": run_dir / "toy.json", "weights": run_dir / "weights.json"}


@pytest.fixture
def recipe(tmp_path):
    """A toy recipe inheriting a base recipe (the data and the quiet train section)."""
    data = write_toy_dataset(tmp_path / "data")
    (tmp_path / "base.yaml").write_text(
        f"model: toy-stage\ndata: {data}\ntrain:\n  steps: 2\n  log_every: 1\n  checkpoint_every: 0\n"
        f"  eval_every: -1\n  sample_every: 0\n  device: cpu\n  progress: false\n"
    )
    path = tmp_path / "toy.yaml"
    path.write_text("base: base.yaml\nwidth: 4\n")
    with registered("toy-stage", StageToy):
        yield path


def test_train_exports_records_and_reuses(recipe, tmp_path, caplog):
    runs = tmp_path / "runs"
    stages = Stages(runs, reuse=True, meta={"benchmark": "unit"})
    with caplog.at_level("INFO", logger="hfr.engine.stages"):
        first = stages.train("toy", recipe, ["train.steps=3"])
    assert "training toy" in caplog.text
    assert first.name == "toy.json" and json.loads(first.read_text()) == {"steps": 3, "benchmark": "unit"}
    done = json.loads((runs / "toy" / "done.json").read_text())
    assert done["sets"] == ["train.steps=3"] and done["steps"] == 3 and done["file"] == str(first)
    assert set(done["files"]) == {"generator", "weights"} and Path(done["run_dir"]).parent == runs / "toy"
    assert stages.records["toy"]["reused"] is False and "train toy" in stages.seconds
    runs_before = sorted(p.name for p in (runs / "toy").iterdir())

    again = Stages(runs, reuse=True)
    run = again.run("toy", recipe, ["train.steps=3"])
    assert run.reused and run.task is None and run.file == first and run.files["weights"].is_file()
    assert again.records["toy"]["reused"] is True and not again.seconds
    assert sorted(p.name for p in (runs / "toy").iterdir()) == runs_before  # nothing trained

    other = Stages(runs, reuse=True).run("toy", recipe, ["train.steps=2"])  # other sets: trained again
    assert not other.reused and other.steps == 2 and other.file != first
    fresh = Stages(runs, reuse=False).run("toy", recipe, ["train.steps=2"])  # no reuse: trained again
    assert not fresh.reused and fresh.run_dir != other.run_dir and fresh.task is not None


def test_run_into_given_folders(recipe, tmp_path):
    stages = Stages(tmp_path / "runs")
    run = stages.run("toy", recipe, [], export_key="weights", run_dir=tmp_path / "here", export_dir=tmp_path / "out")
    assert run.run_dir == tmp_path / "here" and run.file == tmp_path / "out" / "weights.json"
    assert (tmp_path / "here" / "done.json").is_file() and (tmp_path / "here" / "config.yaml").is_file()
    assert not (tmp_path / "runs" / "toy").exists()
    assert run.logs and all(isinstance(v, float) for v in run.logs.values())
    with pytest.raises(ConfigError, match="exported generator, weights, not 'recognizer'"):
        stages.run("toy2", recipe, [], export_key="recognizer")


def test_given_files(tmp_path):
    stages = Stages(tmp_path / "runs")
    with pytest.raises(DataError, match="no such file; give a generator.pt or the run folder"):
        stages.given("drgan", tmp_path / "nowhere", "generator.pt")
    run = tmp_path / "run"
    run.mkdir()
    (run / "generator.pt").write_bytes(b"x")
    (run / "config.yaml").write_text("batch_size: 8\ntrain:\n  steps: 5\n  seed: 3\n")
    assert stages.given("drgan", run, "generator.pt") == run / "generator.pt"
    record = stages.records["drgan"]
    assert record["given"] and record["reused"] and (record["steps"], record["batch_size"], record["seed"]) == (5, 8, 3)


def test_render_synth_renders_once(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "configs" / "data" / "synth-nirvis.yaml"
    manifest, rendered, seconds = render_synth(recipe, tmp_path / "nv", subjects=2, size=32, seed=0, workers=1)
    assert rendered and seconds >= 0 and manifest == tmp_path / "nv" / "manifest.csv" and manifest.is_file()
    again = render_synth(recipe, tmp_path / "nv", subjects=2, size=32, seed=0, workers=1)
    assert again == (manifest, False, 0.0)
    assert render_synth(recipe, manifest, subjects=9, size=64, seed=1)[:2] == (manifest, False)  # a .csv as given
    with pytest.raises(DataError, match="manifest not found"):
        render_synth(recipe, tmp_path / "absent.csv", subjects=2, size=32, seed=0)


def test_a_stage_records_its_learning_curve(recipe, tmp_path):
    run = Stages(tmp_path / "runs").run("toy", recipe, ["train.steps=6", "train.eval_every=2"])
    curve = json.loads((tmp_path / "runs" / "toy" / "done.json").read_text())["curve"]
    per_step = run.task.images_per_step()
    assert [p["step"] for p in curve] == [2, 4, 6]
    assert [p["images"] for p in curve] == [2 * per_step, 4 * per_step, 6 * per_step]
    seconds = [p["train_seconds"] for p in curve]
    assert seconds == sorted(seconds) and seconds[0] > 0
    assert all(set(run.task.evaluate()) <= set(p) for p in curve)  # the metrics, without the eval/ prefix
