"""Launch a script under torchrun with 2 gloo ranks (CPU) for the DDP tests; read what each rank wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_two_ranks(script: Path, *args: str | os.PathLike, out: Path, timeout: int = 600) -> list[dict[str, Any]]:
    """Run `script ARGS` on 2 gloo ranks (one torch thread each); the `out/rank<r>.json` each rank wrote.

    Fails the test with the ranks' stderr when torchrun exits non-zero.
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        *(str(a) for a in args),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
