"""Distributed data parallel: two gloo processes under torchrun end with identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.distributed as dist
from engine_toy import write_toy_dataset
from torchrun import run_two_ranks

from hfr.engine import load_checkpoint
from hfr.engine.runlog import read_metrics

pytestmark = pytest.mark.slow  # two torchrun processes; every task's DDP run is in test_task_contract

SCRIPT = Path(__file__).with_name("ddp_train.py")


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_gloo_ranks_train_identically_and_resume_exactly(tmp_path):
    data = write_toy_dataset(tmp_path / "data")
    runs, out = tmp_path / "runs", tmp_path / "out"
    ranks = run_two_ranks(SCRIPT, data, runs, out, out=out, timeout=240)
    assert ranks[0]["world_size"] == 2
    assert ranks[0]["full"] == ranks[1]["full"]  # DDP keeps the replicas identical
    assert ranks[0]["resumed"] == ranks[1]["resumed"] == ranks[0]["full"]  # exact resume under DDP
    assert ranks[0]["run_dir"] == ranks[1]["run_dir"]  # rank 0 chose the folder for everyone
    run_dir = Path(ranks[0]["run_dir"])
    metrics = read_metrics(run_dir)
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]  # only rank 0 logs
    assert [m["step"] for m in metrics if "eval/confidence" in m] == [4]  # the final evaluation
    assert metrics[0]["images/s"] > 0
    ck = load_checkpoint(run_dir / "checkpoints" / "step-0000004.pt")
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2  # every rank's random streams
    assert not torch_equal_states(ck["rng"][0]["torch"], ck["rng"][1]["torch"])  # ranks draw differently
    assert ranks[0]["resumed_from"].endswith("step-0000002.pt")


def torch_equal_states(a, b) -> bool:
    return bool((a == b).all()) if a.shape == b.shape else False
