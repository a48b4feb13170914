"""The Task protocol, the TrainContext the engine hands a task, and the registry of tasks.

The engine owns the loop (steps, epochs, checkpoints, logging, distributed); a task owns its
models, losses, optimizers, data and the order of updates. A task is registered under the
config's `model:` name:

    @register_task("toy")
    class ToyTask:
        def build(self, cfg, ctx): ...
        def train_loader(self): ...
        def train_step(self, batch, step): ...
        def state_dict(self): ...
        def load_state_dict(self, state): ...

    task = get_task(cfg.model)()      # a ConfigError suggests the closest name when unknown

Tasks that live outside `hfr` (drgan, dvg, tsgan) register on import; `get_task` also imports
the modules named by the `hfr.tasks` entry-point group before giving up, so a package can
declare `[project.entry-points."hfr.tasks"] drgan = "drgan.task"`.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from hfr.engine.trainconfig import TrainConfig
from hfr.errors import ConfigError

log = logging.getLogger(__name__)

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
        logger: the task's logger (written to log.txt on rank 0).
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

    def to_device(self, batch: Any) -> Any:
        """Every tensor in a nested dict/list/tuple batch moved to the device (others unchanged)."""
        return move_to(batch, self.device)


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
    """A training method: the engine calls these; the optional hooks are looked up with hasattr.

    Required:
        build(cfg, ctx): create models (through `ctx.wrap_model`), optimizers, schedulers and
            data from the recipe's whole config `cfg`. Called once per process, with every RNG
            seeded identically on all ranks.
        train_loader(): the DataLoader to train on. Exact resume needs a batch sampler (or
            sampler) with `set_epoch(epoch, start=0)` (the project's samplers) or at least a
            deterministic `set_epoch(epoch)` (DistributedSampler); randomness belongs in
            `train_step` (augment the batch there), not in the Dataset.
        train_step(batch, step): one update on `batch` (already on `ctx.device`); `step` counts
            from 0. Returns scalar logs (floats or 0-d tensors): losses, accuracies. Every
            rank must return the same keys at the same step.
        state_dict(): everything to continue exactly: models (unwrapped), optimizers,
            schedulers, scalers, counters. Plain containers, tensors and numbers only.
        load_state_dict(state): restore from `state_dict()`'s output.

    Optional:
        evaluate() -> dict[str, float]: called on every rank (it may run collectives); rank 0's
            result is logged with the `eval/` prefix. Leave models in train mode afterwards.
        sample_grid() -> Tensor (N, C, H, W) in [0, 1] or [-1, 1]: called on rank 0 only (no
            collectives) and written to samples/step-NNNNNNN.png; `sample_columns` (int
            attribute) sets the grid width.
        images_per_step() -> int: images one rank consumes per step, for the images/s figure
            (otherwise the engine counts the first dimension of the batch's first tensor).
    """

    def build(self, cfg: Any, ctx: TrainContext) -> None:
        """Create models, optimizers, schedulers and data."""

    def train_loader(self) -> Iterable:
        """The training DataLoader."""

    def train_step(self, batch: Any, step: int) -> dict[str, float]:
        """One update; scalar logs."""

    def state_dict(self) -> dict:
        """The task's full training state."""

    def load_state_dict(self, state: dict) -> None:
        """Restore the state returned by `state_dict`."""


TaskFactory = Callable[[], Task]
F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[[], Any]] = {}


def register_task(name: str) -> Callable[[F], F]:
    """Class (or factory) decorator registering a task under the config's `model:` name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register_task needs a non-empty name, got {name!r}")

    def decorate(factory: F) -> F:
        previous = _REGISTRY.get(name)
        if previous is not None and _qualname(previous) != _qualname(factory):
            raise ValueError(f"task name {name!r} is already registered to {_qualname(previous)}; "
                             f"choose another name for {_qualname(factory)}")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _load_entry_points() -> None:
    """Import the modules of the `hfr.tasks` entry points (they register their tasks)."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            importlib.import_module(ep.value.split(":")[0])
        except ImportError as exc:
            log.warning("task entry point %s = %s could not be imported: %s", ep.name, ep.value, exc)


def task_names() -> list[str]:
    """The registered task names (after loading entry points), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_task(name: str) -> Callable[[], Any]:
    """The factory registered as `name`; ConfigError naming the closest registered name."""
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        names = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(repr(n) for n in names) or "none"
        raise ConfigError(f"model: unknown task {name!r}{hint} (registered tasks: {listing})")
    return _REGISTRY[name]


@contextlib.contextmanager
def registered(name: str, factory: Callable[[], Any]) -> Iterator[None]:
    """Register `factory` as `name` for the duration of a `with` block (for tests and scripts)."""
    previous = _REGISTRY.get(name)
    _REGISTRY[name] = factory
    try:
        yield
    finally:
        if previous is None:
            _REGISTRY.pop(name, None)
        else:
            _REGISTRY[name] = previous
