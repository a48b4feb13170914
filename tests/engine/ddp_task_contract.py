"""Run under torchrun by test_task_contract.py: every contract variant for 3 steps on 2 gloo ranks.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_task_contract.py DATA RUNS OUT NAME...
Each rank writes OUT/rank<r>.json: for each variant name, the digest of the task's state after
training (models and optimizers, without BatchNorm running statistics: DDP gives every rank
rank 0's at the start of each forward, so after the last step each rank holds its own), or the
error if it failed.
"""

from __future__ import annotations

import datetime
import json
import sys
import traceback
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from task_contract_recipes import VARIANTS, state_digest, without_running_stats  # noqa: E402

from hfr.engine import get_task, train  # noqa: E402

STEPS = 3


def main() -> None:
    data, runs, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    names = sys.argv[4:]
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank = dist.get_rank()
    results: dict[str, dict[str, object]] = {}
    for variant in (v for v in VARIANTS if v.name in names):
        task = get_task(variant.task)()
        try:
            cfg = variant.config(data, STEPS, ("train.checkpoint_every=0",))
            result = train(task, cfg, recipe=variant.name, runs_root=runs)
            state = task.state_dict()
            results[variant.name] = {
                "state": state_digest(without_running_stats(state)),
                "running_stats": state_digest(state),
                "step": result["step"],
                "world_size": dist.get_world_size(),
                "distributed": task.ctx.distributed,
            }
        except Exception as exc:  # report it to the test, go on with the other variants
            results[variant.name] = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"}
        dist.barrier()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps(results))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
