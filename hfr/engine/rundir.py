"""Run directories: `runs/<recipe>/<timestamp>/` holding the resolved config and outputs."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

DEFAULT_RUNS_ROOT = Path("runs")


def new_run_dir(recipe: str, root: str | os.PathLike = DEFAULT_RUNS_ROOT) -> Path:
    """Create and return a fresh `root/recipe/<YYYYmmdd-HHMMSS>` folder (suffix -2, -3... on clash)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / recipe
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = base / stamp, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base / f"{stamp}-{n}"


def latest_run_dir(recipe: str, root: str | os.PathLike = DEFAULT_RUNS_ROOT) -> Path | None:
    """The newest run folder of `recipe`, or None when there is none."""
    base = Path(root) / recipe
    if not base.is_dir():
        return None
    runs = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: (p.stat().st_mtime, p.name))
    return runs[-1] if runs else None
