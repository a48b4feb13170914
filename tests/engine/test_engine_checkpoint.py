"""Checkpoint files: weights_only loading, refusal of pickled objects, rotation, diffs, RNG state."""

from __future__ import annotations

import random
from collections import OrderedDict
from fractions import Fraction

import numpy as np
import pytest
import torch

from hfr.engine.checkpoint import (
    CheckpointError,
    CheckpointSaver,
    config_diff,
    latest_checkpoint,
    load_checkpoint,
    make_payload,
    resolve_resume_path,
    save_checkpoint,
    structure_diff,
)
from hfr.engine.seeding import derive_seed, get_rng_state, preserved_rng, seed_everything, set_rng_state
from hfr.errors import ConfigError, HFRError


def payload(step: int, weight: torch.Tensor | None = None) -> dict:
    weight = torch.full((2, 3), float(step)) if weight is None else weight
    return make_payload(
        task_state={"model": OrderedDict(w=weight)},
        step=step,
        epoch=0,
        batch_in_epoch=step,
        rng=[get_rng_state()],
        config={"model": "toy", "betas": [0.5, 0.9]},
        world_size=1,
        best=None,
    )


def test_roundtrip_with_weights_only(tmp_path):
    path = save_checkpoint(payload(3), tmp_path / "a" / "step-0000003.pt")
    data = load_checkpoint(path)
    assert data["step"] == 3 and torch.equal(data["task"]["model"]["w"], torch.full((2, 3), 3.0))
    assert data["config"] == {"model": "toy", "betas": [0.5, 0.9]}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_a_checkpoint_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    body = payload(1)
    body["extra"] = Fraction(1, 3)  # an arbitrary Python object: only loadable with pickle
    torch.save(body, path)
    with pytest.raises(CheckpointError, match="needs pickle to load") as info:
        load_checkpoint(path)
    assert isinstance(info.value, HFRError) and str(path) in str(info.value)


def test_unreadable_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    good = save_checkpoint(payload(1), tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(cut)
    plain = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(CheckpointError, match="not an hfr training checkpoint"):
        load_checkpoint(plain)


def test_saver_keeps_the_newest_and_the_best(tmp_path):
    saver = CheckpointSaver(tmp_path / "checkpoints", keep=2, metric="acc", mode="max")
    for step in (1, 2, 3, 4):
        saver.save(payload(step))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000003.pt", "step-0000004.pt"]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step-0000004.pt"
    assert saver.last is not None and saver.last.name == "step-0000004.pt"
    assert saver.improved({"acc": 0.5})
    saver.save_best(payload(4), 0.5)
    assert not saver.improved({"acc": 0.4}) and not saver.improved({"acc": float("nan")})
    assert saver.improved({"acc": 0.6})
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["best"] == {"metric": "acc", "value": 0.5, "step": 4}
    low = CheckpointSaver(tmp_path / "other", metric="loss", mode="min", best={"metric": "loss", "value": 1.0})
    assert low.improved({"loss": 0.9}) and not low.improved({"loss": 1.1})
    with pytest.raises(ConfigError, match="'loss' is not among the evaluation results"):
        low.improved({"acc": 1.0})


def test_resolve_resume_path(tmp_path):
    run = tmp_path / "run"
    saver = CheckpointSaver(run / "checkpoints")
    saver.save(payload(2))
    saver.save(payload(5))
    assert resolve_resume_path(run) == (run / "checkpoints" / "step-0000005.pt", run)
    assert resolve_resume_path(run / "checkpoints") == (run / "checkpoints" / "step-0000005.pt", run)
    assert resolve_resume_path(run / "checkpoints" / "step-0000002.pt") == (
        run / "checkpoints" / "step-0000002.pt",
        run,
    )


def test_structure_diff_ignores_values_and_fresh_optimizer_state():
    model = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    fresh = {"model": model, "opt": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    trained = {
        "model": {"w": torch.ones(2, 3), "b": torch.ones(2)},
        "opt": {"state": {0: {"exp_avg": torch.ones(2, 3)}}, "param_groups": [{"lr": 0.05, "params": [0, 1]}]},
    }
    assert structure_diff(fresh, trained) == []
    other = {"model": {"w": torch.ones(4, 3), "extra": torch.ones(1)}, "opt": trained["opt"]}
    diffs = structure_diff(fresh, other)
    assert "model.b: missing from the checkpoint (tensor(2,))" in diffs
    assert "model.extra: in the checkpoint but not in the task (tensor(1,))" in diffs
    assert "model.w: shape (4, 3) in the checkpoint, (2, 3) in the task" in diffs


def test_config_diff_skips_the_train_section():
    now = {"model": "toy", "lr": 0.1, "train": {"steps": 10}, "net": {"width": 8}}
    then = {"model": "toy", "lr": 0.1, "train": {"steps": 5}, "net": {"width": 16}, "old": 1}
    assert config_diff(now, then) == [
        "net.width: 16 in the checkpoint, 8 now",
        "old: only in the checkpoint's config (1)",
    ]


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    gen = torch.Generator().manual_seed(7)
    seed_everything(11)
    random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=gen)
    body = payload(1)
    body["rng"] = [get_rng_state(gen)]
    path = save_checkpoint(body, tmp_path / "r.pt")
    expected = (random.random(), float(np.random.rand()), torch.rand(3), torch.randn(2, generator=gen))
    seed_everything(99)
    gen.manual_seed(0)
    set_rng_state(load_checkpoint(path)["rng"][0], gen)
    got = (random.random(), float(np.random.rand()), torch.rand(3), torch.randn(2, generator=gen))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])


def test_preserved_rng_and_seeds():
    gen = torch.Generator().manual_seed(1)
    seed_everything(3)
    with preserved_rng(gen):
        random.random(), np.random.rand(), torch.rand(5), torch.rand(5, generator=gen)
    after = (random.random(), torch.rand(1))
    seed_everything(3)
    assert after == (random.random(), torch.rand(1))
    assert seed_everything(3, rank=0) == 3 and seed_everything(3, rank=1) == derive_seed(3, 1) != 3
    assert derive_seed(3, 1) != derive_seed(3, 2) and 0 <= derive_seed(3, 1) < 2**63
