"""The training engine: run folders, the loop, checkpoints, exact resume, distributed, logging.

A method plugs in as a Task (`hfr.engine.task`): it builds its models, optimizers and data
and performs one update per `train_step`; the engine (`hfr.engine.loop.train`) owns the
rest: the run folder `runs/<recipe>/<timestamp>/` (config.yaml, metrics.jsonl, log.txt,
checkpoints/, samples/), seeding, device and bf16 autocast, DDP under torchrun, the progress
bar, periodic evaluation and sample grids, atomic checkpoints and bit-exact resume, and the
NaN/Inf guard.

    from hfr.engine import TrainConfig, get_task, train
    result = train(get_task(cfg.model)(), cfg, resume="auto")

Modules: `task` (protocol, TrainContext, registry), `trainconfig` (the `train:` section),
`loop` (train, TrainingDiverged), `checkpoint` (atomic save, weights_only load, rotation,
resume look-up), `seeding` (seeds, RNG state capture), `distributed` (torchrun setup and
collectives), `progress` (rich bar), `runlog` (metrics.jsonl, log.txt), `rundir` (run folders).
"""

from __future__ import annotations

import importlib
from typing import Any

# names exported lazily, so `import hfr.engine.rundir` does not load torch
_EXPORTS = {
    "CheckpointError": "hfr.engine.checkpoint",
    "load_checkpoint": "hfr.engine.checkpoint",
    "TrainingDiverged": "hfr.engine.loop",
    "train": "hfr.engine.loop",
    "seed_everything": "hfr.engine.seeding",
    "Task": "hfr.engine.task",
    "TrainContext": "hfr.engine.task",
    "get_task": "hfr.engine.task",
    "register_task": "hfr.engine.task",
    "task_names": "hfr.engine.task",
    "unwrap_model": "hfr.engine.task",
    "TrainConfig": "hfr.engine.trainconfig",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfr.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
