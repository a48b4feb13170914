"""The training loop: run folder, logs, hooks, exact resume, NaN guard, checkpoint rotation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from engine_toy import ToyConfig, ToyTask, weights_hash, write_toy_dataset
from PIL import Image

from hfr.config import read_yaml
from hfr.engine import TrainConfig, TrainingDiverged, load_checkpoint, train
from hfr.engine.checkpoint import CheckpointError
from hfr.engine.rundir import latest_run_dir
from hfr.engine.runlog import read_metrics
from hfr.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A 3-subject x 4-image toy dataset (3 batches of 2x2 per epoch)."""
    return write_toy_dataset(tmp_path_factory.mktemp("toy") / "data")


def make_cfg(data: Path, steps: int, **train_kw) -> ToyConfig:
    train_kw = {
        "log_every": 1,
        "checkpoint_every": 2,
        "device": "cpu",
        "num_workers": 0,
        "progress": False,
        "eval_every": -1,
        "sample_every": -1,
        **train_kw,
    }
    return ToyConfig(data=str(data), train=TrainConfig(steps=steps, **train_kw))


def run(cfg: ToyConfig, root: Path, **kw) -> tuple[ToyTask, dict]:
    task = ToyTask()
    result = train(task, cfg, runs_root=root, **kw)
    return task, result


def final_state(task: ToyTask) -> dict:
    return task.state_dict()


def assert_same_state(a: dict, b: dict, where: str = "") -> None:
    """Bit-identical nested states (tensors compared with torch.equal)."""
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), where
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> dict:
    """An uninterrupted 8-step run (crosses two epoch boundaries)."""
    root = tmp_path_factory.mktemp("ref")
    task, result = run(make_cfg(data, 8), root)
    return {
        "state": final_state(task),
        "hash": weights_hash(task),
        "result": result,
        "metrics": read_metrics(result["run_dir"]),
    }


def test_run_folder_contents(reference):
    run_dir = Path(reference["result"]["run_dir"])
    assert run_dir.parent.name == "toy"  # runs/<recipe>/<timestamp>
    saved = read_yaml(run_dir / "config.yaml")
    assert saved["model"] == "toy" and saved["train"]["steps"] == 8 and saved["width"] == 8
    records = reference["metrics"]
    assert [r["step"] for r in records] == list(range(1, 9))
    assert [r["epoch"] for r in records] == [0, 0, 0, 1, 1, 1, 2, 2]  # 3 batches per epoch
    for r in records:
        assert {"step", "epoch", "images/s", "loss", "acc", "lr"} <= set(r) and r["images/s"] > 0
    assert records[0]["lr"] == 0.05 and records[3]["lr"] == 0.025  # StepLR(3, 0.5) ran per step
    log_text = (run_dir / "log.txt").read_text()
    assert "step 8/8" in log_text and "checkpoint" in log_text
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["step-0000004.pt", "step-0000006.pt", "step-0000008.pt"]  # keep_checkpoints=3
    ck = load_checkpoint(run_dir / "checkpoints" / "step-0000008.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (8, 2, 2)
    assert ck["config"]["train"]["steps"] == 8 and len(ck["rng"]) == 1
    assert reference["result"]["step"] == 8 and reference["result"]["checkpoint"].endswith("step-0000008.pt")


@pytest.mark.parametrize("stop,workers", [(4, 0), (3, 0), (5, 2)], ids=["mid-epoch", "epoch-end", "workers"])
def test_stop_and_resume_is_bit_identical(data, tmp_path, reference, stop, workers):
    first, r1 = run(make_cfg(data, stop, num_workers=workers), tmp_path)
    assert r1["step"] == stop and weights_hash(first) != reference["hash"]
    second, r2 = run(make_cfg(data, 8, num_workers=workers), tmp_path, resume=r1["run_dir"])
    assert r2["run_dir"] == r1["run_dir"] and r2["resumed_from"].endswith(f"step-{stop:07d}.pt")
    assert weights_hash(second) == reference["hash"]
    assert_same_state(final_state(second), reference["state"])  # optimizer and scheduler too
    losses = [(m["step"], m["loss"]) for m in read_metrics(r2["run_dir"])]
    assert losses == [(m["step"], m["loss"]) for m in reference["metrics"]]


def test_crash_then_resume_auto_from_last_checkpoint(data, tmp_path, reference):
    class Crashing(ToyTask):
        def train_step(self, batch, step):
            if step == 5:
                raise RuntimeError("injected crash")
            return super().train_step(batch, step)

    cfg = make_cfg(data, 8)
    with pytest.raises(RuntimeError, match="injected crash"):
        train(Crashing(), cfg, runs_root=tmp_path)  # steps 1-5 done, checkpoint at 4
    run_dir = latest_run_dir("toy", tmp_path)
    assert run_dir is not None
    assert [m["step"] for m in read_metrics(run_dir)] == [1, 2, 3, 4, 5]
    task, result = run(cfg, tmp_path, resume="auto")
    assert result["run_dir"] == str(run_dir) and result["resumed_from"].endswith("step-0000004.pt")
    assert weights_hash(task) == reference["hash"]
    assert [m["step"] for m in read_metrics(run_dir)] == list(range(1, 9))  # line 5 logged once


def test_evaluation_and_samples_do_not_change_training(data, tmp_path, reference):
    cfg = make_cfg(data, 8, eval_every=2, sample_every=3, best_metric="confidence")
    task, result = run(cfg, tmp_path)
    assert weights_hash(task) == reference["hash"]  # hooks draw random numbers but RNG is preserved
    run_dir = Path(result["run_dir"])
    evals = [m for m in read_metrics(run_dir) if "eval/confidence" in m]
    assert [m["step"] for m in evals] == [2, 4, 6, 8]
    best = max(evals, key=lambda m: m["eval/confidence"])
    assert result["best"]["step"] == best["step"] and result["best"]["value"] == best["eval/confidence"]
    best_ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best_ckpt["step"] == best["step"] and best_ckpt["best"]["value"] == best["eval/confidence"]
    samples = sorted(p.name for p in (run_dir / "samples").iterdir())
    assert samples == ["step-0000003.png", "step-0000006.png", "step-0000008.png"]
    assert Image.open(run_dir / "samples" / samples[0]).size == (2 + 2 * 10, 2 + 2 * 10)  # 2x2 grid of 8px


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    cfg = replace(make_cfg(data, 8), nan_at=4)  # step index 4 = the 5th step
    with pytest.raises(TrainingDiverged) as info:
        run(cfg, tmp_path)
    message = str(info.value)
    run_dir = latest_run_dir("toy", tmp_path)
    assert run_dir is not None
    good = run_dir / "checkpoints" / "step-0000004.pt"
    assert "loss 'loss' became nan at step 5" in message and str(good) in message
    assert "learning rate" in message
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-0000002.pt", "step-0000004.pt"]
    ck = load_checkpoint(good)
    assert ck["step"] == 4 and all(torch.isfinite(t).all() for t in ck["task"]["model"].values())
    assert "became nan" in (run_dir / "log.txt").read_text()


def test_nan_before_any_checkpoint_says_so(data, tmp_path):
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        run(replace(make_cfg(data, 8), nan_at=0), tmp_path)


def test_resume_with_another_architecture_lists_mismatches(data, tmp_path):
    _, r1 = run(make_cfg(data, 2), tmp_path)
    wider = replace(make_cfg(data, 4), width=16)
    with pytest.raises(CheckpointError) as info:
        run(wider, tmp_path, resume=r1["run_dir"])
    message = str(info.value)
    assert "model.1.weight: shape (8, 64) in the checkpoint, (16, 64) in the task" in message
    assert "model.4.weight" in message
    with pytest.raises(ConfigError, match=r"lr: 0\.05 in the checkpoint, 0\.1 now"):
        run(replace(make_cfg(data, 4), lr=0.1), tmp_path, resume=r1["run_dir"])


def test_resume_auto_without_a_run_starts_fresh_and_nothing_left_to_do(data, tmp_path):
    task, result = run(make_cfg(data, 2), tmp_path, resume="auto")
    assert result["resumed_from"] is None and result["step"] == 2
    again, result2 = run(make_cfg(data, 2), tmp_path, resume="auto")
    assert result2["step"] == 2 and result2["resumed_from"].endswith("step-0000002.pt")
    assert weights_hash(again) == weights_hash(task)


def test_resume_errors(data, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file or run folder"):
        run(make_cfg(data, 2), tmp_path, resume=str(tmp_path / "nope"))
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints/step-"):
        run(make_cfg(data, 2), tmp_path, resume=str(empty))


def test_empty_loader_is_a_data_error(data, tmp_path):
    class Empty(ToyTask):
        def train_loader(self):
            return []

    with pytest.raises(DataError, match="yielded no batch"):
        train(Empty(), make_cfg(data, 2), runs_root=tmp_path)


def test_metrics_average_the_window(data, tmp_path, reference):
    _, result = run(make_cfg(data, 8, log_every=4), tmp_path)
    records = read_metrics(result["run_dir"])
    assert [r["step"] for r in records] == [4, 8]
    per_step = [m["loss"] for m in reference["metrics"]]
    assert records[0]["loss"] == pytest.approx(sum(per_step[:4]) / 4, rel=1e-6)
    assert records[1]["loss"] == pytest.approx(sum(per_step[4:]) / 4, rel=1e-6)
    assert json.loads(json.dumps(records[0])) == records[0]
