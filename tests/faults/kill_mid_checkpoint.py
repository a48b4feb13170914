"""Run by test_write_faults.py in a subprocess: train the toy task and die (SIGKILL) in the middle of
writing the step-4 checkpoint, half of its bytes on disk, as a power cut or an OOM killer would.

Usage: python kill_mid_checkpoint.py DATA RUNS
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "engine")]

from engine_toy import ToyConfig, ToyTask  # noqa: E402

import hfr.engine.checkpoint as checkpoint  # noqa: E402
from hfr.engine import TrainConfig, train  # noqa: E402

real_save = torch.save


def dying_save(obj: object, handle: object) -> None:
    """torch.save, except that the step-4 checkpoint is cut off half-way by SIGKILL."""
    if isinstance(obj, dict) and obj.get("step") == 4:
        import io

        buf = io.BytesIO()
        real_save(obj, buf)
        data = buf.getvalue()
        handle.write(data[: len(data) // 2])  # type: ignore[attr-defined]
        handle.flush()  # type: ignore[attr-defined]
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, handle)  # type: ignore[arg-type]


checkpoint.torch.save = dying_save  # type: ignore[assignment]
cfg = ToyConfig(
    data=sys.argv[1],
    batches_per_epoch=6,
    train=TrainConfig(steps=6, log_every=1, checkpoint_every=2, device="cpu", progress=False),
)
train(ToyTask(), cfg, recipe="toy", runs_root=sys.argv[2])
