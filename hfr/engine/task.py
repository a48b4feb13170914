"""The plug-in contract of a training method: the Task protocol, the TrainContext, the task registry.

The engine owns the loop (steps, epochs, checkpoints, logging, distributed); a task owns its
models, losses, optimizers, data and the order of updates. `hfr train-recognizer` and
`hfr train-generator` find a task by the recipe's `model:` name, load the recipe into the
task's `config_class`, train it with `hfr.engine.loop.train` and call its `export`.

A method plugs in with an entry point in its `pyproject.toml`, nothing else:

    [project.entry-points."hfr.tasks"]
    drgan = "drgan.task:DRGANTask"

    task_cls = get_task(cfg.model)    # a ConfigError suggests the closest name when unknown

`register_task(name)` (a decorator) and `registered(name, cls)` (a `with` block) register
tasks built at run time, in tests and scripts; the registry (`hfr.registry.Registry`) refuses a
second class under a taken name either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import torch

from hfr.engine.trainconfig import TrainConfig
from hfr.errors import ConfigError
from hfr.registry import Registry

ENTRY_POINT_GROUP = "hfr.tasks"


@dataclass
class TrainContext:
    """What the engine gives `Task.build`: where and how to train.

    Attributes:
        device: the torch device of this process (`cuda:<local_rank>` under torchrun on GPUs).
        rank, world_size, local_rank: the distributed position (0, 1, 0 when not distributed).
        is_main: True on rank 0, the only rank that logs and writes files.
        amp: True when `autocast()` turns on bf16 autocast (CUDA only).
        channels_last: True when image models and batches should use channels_last.
        generator: a seeded `torch.Generator` on `device` for the task's own randomness
            (latent codes, noise); saved in checkpoints, different on every rank.
        seed: the run's seed; give it to the samplers (they derive each epoch's order from
            it, identically on every rank, and shard by rank).
        num_workers: DataLoader worker processes to use.
        run_dir: the run folder (config.yaml, metrics.jsonl, checkpoints/, samples/, log.txt).
        logger: the task's logger (`hfr.task.<model>`): what a task logs through it reaches the
            console and, on rank 0, the run's log.txt.
        train_cfg: the run's TrainConfig.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp: bool = False
    channels_last: bool = False
    generator: torch.Generator = field(default_factory=torch.Generator)
    seed: int = 0
    num_workers: int = 0
    run_dir: Path = Path(".")
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("hfr.task"))
    train_cfg: TrainConfig = field(default_factory=TrainConfig)

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when amp is on; a no-op context otherwise (CPU trains in fp32)."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap_model(self, model: torch.nn.Module, **ddp_kwargs: Any) -> torch.nn.Module:
        """Move `model` to the device (channels_last when on) and wrap it in DDP when distributed.

        Wrap only modules that receive gradients. DDP copies rank 0's parameters to every rank
        here. Save `unwrap_model(m).state_dict()` so checkpoints carry no `module.` prefix.
        Extra keyword arguments go to DistributedDataParallel (e.g. find_unused_parameters).
        """
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            ddp_kwargs.setdefault("device_ids", [self.device.index])
        return DistributedDataParallel(model, **ddp_kwargs)

    def mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """`value` averaged over every rank (one all-reduce when distributed; `value` itself otherwise).

        For decisions every replica must take alike, such as skipping an optimizer step when a
        discriminator's accuracy is high: a decision taken on one rank's batch alone would let the
        replicas drift apart.
        """
        if not self.distributed:
            return value
        import torch.distributed as dist

        out = value.detach().clone().float()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def to_device(self, batch: Any) -> Any:
        """Every tensor in a nested dict/list/tuple batch moved to the device (others unchanged)."""
        return move_to(batch, self.device)


def parameter_summary(**modules: torch.nn.Module) -> str:
    """ "G 1.23M, D 0.45M": each named module's parameter count, for a task's build log line."""
    from hfr.nn.sizing import count_parameters

    return ", ".join(f"{name} {count_parameters(m) / 1e6:.2f}M" for name, m in modules.items())


def move_to(obj: Any, device: torch.device) -> Any:
    """Tensors inside nested dicts, lists and tuples moved to `device` (non_blocking)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(move_to(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel (or DataParallel) wrapper, else `model`."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, torch.nn.Module) else model


@runtime_checkable
class Task(Protocol):
    """A training method: what the engine and the training commands call.

    Class attributes:
        config_class: the dataclass a recipe YAML is loaded into (`hfr.config.load_config`); it
            has a `model: str` field naming the task and a `train: TrainConfig` section.
        artifact_description: what the files `export` writes are, for messages (e.g. "a DR-GAN
            pose-rotation generator"); `hfr.artifacts` names a generator file's method with it.

    Required methods:
        build(cfg, ctx): create models, optimizers, schedulers and data from the recipe's whole
            config `cfg`. Called once per process, with every RNG seeded identically on all ranks.
            Every module whose gradients must be synchronised across ranks is wrapped with
            `ctx.wrap_model`, and every forward that produces those gradients goes through the
            returned module (calling the unwrapped module's methods bypasses DDP: the replicas
            then drift apart). Methods other than `forward` (e.g. encode/decode) do not go
            through DDP: put what a training step computes with a module into one `forward`.
        train_loader(): the DataLoader to train on. Exact resume needs a batch sampler (or
            sampler) with `set_epoch(epoch, start=0)` (the project's samplers) or at least a
            deterministic `set_epoch(epoch)` (DistributedSampler); randomness belongs in
            `train_step` (augment the batch there, drawing from `ctx.generator`), not in the Dataset.
        train_step(batch, step): one update on `batch` (already on `ctx.device`); `step` counts
            from 0. Returns scalar logs (floats or 0-d tensors): losses, accuracies. Every
            rank must return the same keys at the same step and take the same decisions
            (`ctx.mean_over_ranks` for decisions that depend on the batch).
        state_dict(): everything to continue exactly: models (unwrapped), optimizers,
            schedulers, scalers, counters. Plain containers, tensors and numbers only.
        load_state_dict(state): restore from `state_dict()`'s output.
        export(run_dir, meta) -> dict[str, Path]: write the trained artifacts (recognizer.pt,
            generator.pt, ...) into `run_dir` atomically, with `meta` (JSON types: steps,
            provenance) in each file; return {artifact name: file written}. Called on rank 0
            after training.

    Optional (looked up with hasattr):
        evaluate() -> dict[str, float]: called on every rank (it may run collectives); rank 0's
            result is logged with the `eval/` prefix. Leave models in train mode afterwards.
        eval_metrics() -> set[str]: the names `evaluate` returns under this config, known after
            `build` without running a network; the engine refuses a `train.best_metric` outside
            them before step 1 (instead of after the last one).
        sample_grid() -> Tensor (N, C, H, W) in [0, 1] (a [-1, 1] generator's output converted
            with `hfr.nn.ranges.to_unit`): called on rank 0 only (no collectives) and written to
            samples/step-NNNNNNN.png; `sample_columns` (int attribute) sets the grid width.
        images_per_step() -> int: images one rank consumes per step, for the images/s figure
            (otherwise the engine counts the first dimension of the batch's first tensor).

    Logging: through `ctx.logger`, which reaches log.txt; the engine also copies records of the
    task's own package loggers (e.g. `drgan.*`) into log.txt.
    """

    config_class: ClassVar[type]
    artifact_description: ClassVar[str]

    def build(self, cfg: Any, ctx: TrainContext) -> None:
        """Create models, optimizers, schedulers and data."""

    def train_loader(self) -> Iterable:
        """The training DataLoader."""

    def train_step(self, batch: Any, step: int) -> dict[str, Any]:
        """One update; scalar logs."""

    def state_dict(self) -> dict:
        """The task's full training state."""

    def load_state_dict(self, state: dict) -> None:
        """Restore the state returned by `state_dict`."""

    def export(self, run_dir: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write the trained artifacts into `run_dir`; {artifact name: path}."""


TaskFactory = Callable[[], Task]
F = TypeVar("F", bound=Callable[..., Any])

#: Every task, by the `model:` name recipes use; filled from the `hfr.tasks` entry points.
TASKS: Registry[Any] = Registry("task", ENTRY_POINT_GROUP, ConfigError, key="model")


def register_task(name: str) -> Callable[[F], F]:
    """Class (or factory) decorator registering a task under the config's `model:` name at run time.

    Packages declare their tasks as `hfr.tasks` entry points instead (module docstring).
    """
    return TASKS.register_as(name)


def task_names() -> list[str]:
    """The registered task names (entry points loaded), sorted."""
    return TASKS.names()


def get_task(name: str) -> Any:
    """The task class registered as `name`; ConfigError naming the closest registered name."""
    return TASKS.get(name)


def registered(name: str, factory: Callable[[], Any]) -> contextlib.AbstractContextManager[None]:
    """Register `factory` as `name` for the duration of a `with` block (for tests and scripts)."""
    return TASKS.temporarily(name, factory)
