"""Task registry, TrainContext, TrainConfig in recipe YAML, progress-bar switching."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from engine_toy import ToyTask

from hfr.config import load_config, to_dict
from hfr.engine import Task, TrainConfig, TrainContext, get_task, register_task, task_names
from hfr.engine.distributed import resolve_device
from hfr.engine.progress import TrainProgress, progress_enabled
from hfr.engine.task import TASKS, move_to, registered, unwrap_model
from hfr.errors import ConfigError


def test_registry_and_closest_name_suggestion():
    with registered("toy-classifier", ToyTask):
        assert get_task("toy-classifier") is ToyTask and "toy-classifier" in task_names()
        assert isinstance(get_task("toy-classifier")(), Task)  # the protocol's required methods
        with pytest.raises(ConfigError, match=r"unknown task 'toy-clasifier'; did you mean 'toy-classifier'\?"):
            get_task("toy-clasifier")
    with pytest.raises(ConfigError, match="unknown task 'toy-classifier'"):
        get_task("toy-classifier")


def test_register_task_decorator_refuses_a_second_owner():
    try:

        @register_task("engine-test-once")
        class First(ToyTask):
            pass

        assert get_task("engine-test-once") is First
        register_task("engine-test-once")(First)  # the same class again: a no-op
        with pytest.raises(ValueError, match="already registered"):

            @register_task("engine-test-once")
            class Second(ToyTask):
                pass
    finally:
        TASKS.unregister("engine-test-once")
    assert "engine-test-once" not in task_names()


@dataclass
class Recipe:
    model: str = "toy"
    lr: float = 0.1
    train: TrainConfig = field(default_factory=TrainConfig)


def test_train_section_in_a_recipe_yaml(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: toy\ntrain:\n  steps: 50\n  amp: off\n  channels_last: true\n  best_metric: rank1\n")
    cfg = load_config(Recipe, path, ["train.log_every=5", "train.device=cpu"])
    assert (cfg.train.steps, cfg.train.log_every, cfg.train.amp, cfg.train.channels_last) == (50, 5, "off", True)
    assert to_dict(cfg)["train"]["best_metric"] == "rank1"
    assert load_config(Recipe).train.channels_last == "auto"
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(Recipe, None, ["train.steps=0"])
    with pytest.raises(ConfigError, match="'gpu' is not one of"):
        load_config(Recipe, None, ["train.device=gpu"])
    with pytest.raises(ConfigError, match="did you mean 'train.log_every'"):
        load_config(Recipe, None, ["train.log_evry=3"])
    with pytest.raises(ConfigError, match="eval_every is -1"):
        load_config(Recipe, None, ["train.best_metric=acc", "train.eval_every=-1"])


def test_context_on_cpu():
    ctx = TrainContext(device=torch.device("cpu"), amp=True)
    with ctx.autocast():  # a no-op on CPU: fp32 stays fp32
        y = torch.nn.Linear(3, 2)(torch.ones(1, 3))
    assert y.dtype == torch.float32
    model = torch.nn.Linear(3, 2)
    assert ctx.wrap_model(model) is model and unwrap_model(model) is model and ctx.is_main
    batch: dict[str, Any] = {"x": torch.ones(2), "pair": (torch.zeros(1), "name"), "n": 3}
    moved = move_to(batch, torch.device("cpu"))
    assert moved["pair"][1] == "name" and moved["n"] == 3 and torch.equal(moved["x"], batch["x"])
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_on_rank_0():
    assert progress_enabled(True, True, _Tty())
    assert not progress_enabled(True, True, io.StringIO())  # not a terminal
    assert not progress_enabled(False, True, _Tty())
    assert not progress_enabled(True, False, _Tty())  # not rank 0
    with TrainProgress(10, 0, enabled=False) as bar:
        bar.update(5, 100.0, {"loss": 1.0})  # disabled: does nothing, raises nothing
    assert bar.progress is None
