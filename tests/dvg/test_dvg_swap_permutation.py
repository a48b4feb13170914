"""`loss.swap_permutation`: the swapped-identity derangement once per epoch (the released code) or per step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dvg.losses import DVGLossWeights
from dvg.task import DVGTask
from hfr.errors import ConfigError


def _task(mode: str, batches_per_epoch: int = 5, seed: int = 0) -> SimpleNamespace:
    """What `DVGTask.swap_permutation` reads of a built task."""
    ctx = SimpleNamespace(seed=seed, device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed))
    cfg = SimpleNamespace(loss=SimpleNamespace(swap_permutation=mode))
    return SimpleNamespace(ctx=ctx, cfg=cfg, loader=range(batches_per_epoch), _swap=None)


def _perm(task: SimpleNamespace, b: int, step: int) -> list[int]:
    perm = DVGTask.swap_permutation(task, b, step)  # type: ignore[arg-type]
    assert sorted(perm.tolist()) == list(range(b)) and not (perm == torch.arange(b)).any()  # a derangement
    return perm.tolist()


def test_epoch_mode_keeps_one_derangement_per_epoch_and_a_resumed_task_draws_it_again() -> None:
    task = _task("epoch")
    epoch0 = [_perm(task, 8, s) for s in range(5)]
    epoch1 = [_perm(task, 8, s) for s in range(5, 10)]
    assert all(p == epoch0[0] for p in epoch0) and all(p == epoch1[0] for p in epoch1)
    epochs = [_perm(task, 8, 5 * e) for e in range(6)]
    assert len({tuple(p) for p in epochs}) > 1  # a new one each epoch (6 of 14,833 derangements of 8)
    assert _perm(_task("epoch"), 8, 7) == epoch1[0]  # a fresh task at step 7 (a resume) gets epoch 1's
    assert _perm(_task("epoch", seed=1), 8, 0) != epoch0[0] or _perm(_task("epoch", seed=1), 8, 5) != epoch1[0]


def test_step_mode_draws_a_new_derangement_each_step() -> None:
    task = _task("step")
    perms = [_perm(task, 8, 0) for _ in range(6)]  # even at the same step number
    assert len({tuple(p) for p in perms}) > 1


def test_an_unknown_swap_permutation_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="loss.swap_permutation"):
        DVGLossWeights(swap_permutation="batch").validate()
    DVGLossWeights().validate()
    assert DVGLossWeights().swap_permutation == "epoch"  # the released code's schedule is the default
