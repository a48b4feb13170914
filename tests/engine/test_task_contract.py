"""The plug-in contract (`hfr.engine.task.Task`), checked for every registered task.

For each variant of each task (tests/task_contract_recipes.py): a few steps learn (the variant's
loss falls, every log finite), the task's own log lines reach log.txt, `export` writes the trained
weights and the method's loader reads them back, a stopped run resumes bit-exactly, and two gloo
ranks under torchrun end with identical models and optimizers (DDP synchronised every gradient).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from task_contract_recipes import VARIANTS, state_digest, tensor_digest, tensors_of, variants_of, write_contract_data
from torchrun import run_two_ranks

from hfr.engine import Task, get_task, task_names, train
from hfr.engine.checkpoint import load_checkpoint
from hfr.engine.runlog import read_metrics
from hfr.safeload import load_weights_only

ALL = [pytest.param(v, id=v.name) for v in VARIANTS]
DDP_SCRIPT = Path(__file__).with_name("ddp_task_contract.py")


@pytest.fixture(scope="module")
def contract_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_contract_data(tmp_path_factory.mktemp("contract-data"))


def test_every_registered_task_has_a_tiny_recipe_and_the_whole_contract():
    names = task_names()
    assert {"recognizer", "drgan", "dvg", "dvg-sampler", "tsgan"} <= set(names)
    assert [n for n in names if not variants_of(n)] == []
    for name in names:
        cls = get_task(name)
        assert isinstance(cls(), Task), name  # the protocol's required methods, export included
        assert dataclasses.is_dataclass(cls.config_class), name
        assert isinstance(cls.artifact_description, str) and cls.artifact_description, name


def _loaded_tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor of the networks inside a loader's result (dataclass fields, tuples, modules)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in _loaded_tensors(getattr(obj, f.name))]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _loaded_tensors(item)]
    if isinstance(obj, torch.nn.Module):
        return [t for _, t in tensors_of(obj)]
    if isinstance(obj, torch.Tensor):
        return [obj]
    return []


def _reload(path: Path) -> tuple[dict[str, Any], Any]:
    """(the file's payload, the object its loader builds) for a recognizer, generator or yaw-estimator file."""
    from hfr.artifacts import load_generator
    from hfr.pose.export import load_yaw_estimator
    from hfr.recognizer.export import load_recognizer

    payload = load_weights_only(path, "exported file")
    if payload["format"].startswith("hfr-recognizer/"):
        return payload, load_recognizer(path)
    if payload["format"].startswith("hfr-yaw-estimator/"):
        return payload, load_yaw_estimator(path)
    return payload, load_generator(path)


@pytest.mark.parametrize("variant", ALL)
def test_learns_logs_exports_and_reloads(variant, contract_data, tmp_path):
    task = get_task(variant.task)()
    result = train(
        task,
        variant.config(contract_data, variant.steps, variant.extra),
        recipe=variant.name,
        runs_root=tmp_path / "runs",
    )
    run = Path(result["run_dir"])
    logs = [m for m in read_metrics(run) if variant.falling in m]
    assert len(logs) == variant.steps
    assert all(math.isfinite(v) for m in logs for k, v in m.items() if k.startswith(("loss", "acc")))
    k = max(3, variant.steps // 4)
    first = sum(m[variant.falling] for m in logs[:k]) / k
    last = sum(m[variant.falling] for m in logs[-k:]) / k
    assert last < first - variant.margin, (variant.falling, first, last)

    # the task logs through ctx.logger, and its lines reach the run's log.txt
    assert f"hfr.task.{variant.task}:" in (run / "log.txt").read_text(encoding="utf-8")

    # export writes the trained weights; the method's registered loader reads exactly them back
    files = task.export(run, meta={"steps": result["step"]})
    assert files and all(isinstance(p, Path) and p.is_file() and p.parent == run for p in files.values())
    trained = {tensor_digest(t): t.numel() for _, t in tensors_of(task.state_dict())}
    for name, path in files.items():
        payload, loaded = _reload(path)
        assert payload["meta"]["steps"] == variant.steps, name
        saved = [t for key in ("state_dict", "modules") for _, t in tensors_of(payload.get(key, {}))]
        assert saved, name
        # modules a loader declares derived (computed from the trained weights at export, e.g. DVG-Face's
        # attribute codes of training pairs) are not training state, but must be loaded back like the rest
        derived = {
            tensor_digest(t)
            for m in getattr(loaded, "derived_modules", ())
            for _, t in tensors_of(payload["modules"][m])
        }
        weights = [t for t in saved if tensor_digest(t) not in derived]
        in_training = sum(t.numel() for t in weights if tensor_digest(t) in trained)
        assert in_training >= 0.5 * sum(t.numel() for t in weights), (
            f"{name}: the file does not hold the trained weights"
        )
        back = {tensor_digest(t) for t in _loaded_tensors(loaded)}
        assert {tensor_digest(t) for t in saved} <= back, f"{name}: the loader did not load every saved tensor"
        _check_protocol_adapter(loaded)


def _check_protocol_adapter(loaded: Any) -> None:
    """A generator that takes part in the quality protocol (hfr.eval.generator.Synthesizer) gives one face
    in [0, 1] per input, at its own size and channels, for each of its tasks."""
    from hfr.eval.generator import TASKS, Synthesizer

    if not isinstance(loaded, Synthesizer):
        return
    assert loaded.protocol_tasks and set(loaded.protocol_tasks) <= set(TASKS)
    shape = (3, loaded.channels, loaded.size, loaded.size)
    for task in loaded.protocol_tasks:
        out: tuple[torch.Tensor, ...]
        if task == "pairs":
            out = loaded.sample_pairs(3, seed=0)
            again = loaded.sample_pairs(3, seed=0)
            assert all(torch.equal(a, b) for a, b in zip(out, again)), "sample_pairs is not deterministic in its seed"
        else:
            images, masks = torch.rand(shape), (torch.rand(3, 1, loaded.size, loaded.size) > 0.7).float()
            out = (loaded.synthesize(task, images, masks, torch.tensor([-30.0, 0.0, 45.0]), seed=0),)
        for x in out:
            assert x.shape == shape and float(x.min()) >= 0.0 and float(x.max()) <= 1.0, task


@pytest.mark.parametrize("variant", ALL)
def test_a_stopped_run_resumes_bit_exactly(variant, contract_data, tmp_path):
    def run(root: Path, steps: int, resume: str | None = None) -> Path:
        cfg = variant.config(contract_data, steps, ("train.checkpoint_every=2",))
        return Path(train(get_task(variant.task)(), cfg, recipe=variant.name, runs_root=root, resume=resume)["run_dir"])

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4, resume="auto")
    a = load_checkpoint(straight / "checkpoints" / "step-0000004.pt")["task"]
    b = load_checkpoint(resumed / "checkpoints" / "step-0000004.pt")["task"]
    half = load_checkpoint(resumed / "checkpoints" / "step-0000002.pt")["task"]
    pairs = dict(tensors_of(b))
    for path, t in tensors_of(a):
        assert torch.equal(t, pairs[path]), path
    assert state_digest(a) != state_digest(half)  # the resumed steps trained


@pytest.fixture(scope="module")
def ddp_results(contract_data, tmp_path_factory) -> list[dict[str, Any]]:
    """Every variant trained 3 steps by 2 gloo ranks under torchrun (one launch for all)."""
    out = tmp_path_factory.mktemp("ddp-out")
    names = [v.name for v in VARIANTS]
    return run_two_ranks(DDP_SCRIPT, contract_data, out / "runs", out, *names, out=out)


@pytest.mark.slow  # two gloo processes train every task: ~25 s of start-up (CI runs the slow tier)
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("variant", ALL)
def test_two_gloo_ranks_hold_identical_replicas(variant, ddp_results):
    r0, r1 = (r[variant.name] for r in ddp_results)
    assert "error" not in r0, r0.get("error")
    assert "error" not in r1, r1.get("error")
    assert r0["distributed"] and r0["world_size"] == 2 and r0["step"] == 3
    assert r0["state"] == r1["state"], "the replicas drifted apart: a gradient did not go through DDP"
