"""Run under torchrun by test_engine_ddp.py: train the toy task with 2 gloo ranks, then stop-and-resume.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_train.py DATA RUNS OUT
Each rank writes OUT/rank<r>.json with the weight hashes of an uninterrupted 4-step run and of
a 2-step run resumed to 4 steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_toy import ToyConfig, ToyTask, weights_hash  # noqa: E402

from hfr.engine import TrainConfig, train  # noqa: E402


def config(data: str, steps: int) -> ToyConfig:
    return ToyConfig(
        data=data,
        batches_per_epoch=6,
        train=TrainConfig(steps=steps, log_every=1, checkpoint_every=2, device="cpu", num_workers=0, progress=False),
    )


def main() -> None:
    data, runs, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    dist.init_process_group("gloo")  # owned here, so the three runs share one group
    rank = dist.get_rank()
    full = ToyTask()
    r_full = train(full, config(data, 4), recipe="full", runs_root=runs)
    part = ToyTask()
    train(part, config(data, 2), recipe="part", runs_root=runs)
    resumed = ToyTask()
    r_res = train(resumed, config(data, 4), recipe="part", runs_root=runs, resume="auto")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "full": weights_hash(full),
                "resumed": weights_hash(resumed),
                "world_size": dist.get_world_size(),
                "run_dir": r_full["run_dir"],
                "resumed_run_dir": r_res["run_dir"],
                "resumed_from": r_res["resumed_from"],
            }
        )
    )
    dist.barrier()  # both ranks are done before the group goes away (no rank exits mid-teardown)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
