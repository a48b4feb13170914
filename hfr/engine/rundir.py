"""Run directories: `runs/<recipe>/<timestamp>/` holding the resolved config and outputs.

Each new run also updates the symbolic link `runs/<recipe>/latest`, so a recipe can name
the newest output of another (for example the fine-tune recipe's `net.pretrained:
runs/recognizer-synth-pretrain/latest/recognizer.pt`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path

DEFAULT_RUNS_ROOT = Path("runs")
LATEST = "latest"


def _order(name: str) -> tuple[str, int]:
    stamp, _, suffix = name.partition("-")[2].partition("-")
    return (name.split("-")[0] + "-" + stamp, int(suffix) if suffix.isdigit() else 1)


def _point_latest(base: Path, run: Path) -> None:
    """Make `base/latest` a relative link to `run`, replacing any old link atomically."""
    link = base / LATEST
    if link.exists() and not link.is_symlink():
        return  # a real folder named "latest": leave it alone
    tmp = base / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(run.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # file systems without symlinks: `latest_run_dir` still works
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def new_run_dir(recipe: str, root: str | os.PathLike = DEFAULT_RUNS_ROOT) -> Path:
    """Create and return a fresh `root/recipe/<YYYYmmdd-HHMMSS>` folder (suffix -2, -3... on clash)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / recipe
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = base / stamp, 1
    while True:
        try:
            candidate.mkdir()
            break
        except FileExistsError:
            n += 1
            candidate = base / f"{stamp}-{n}"
    _point_latest(base, candidate)
    return candidate


def run_dirs(recipe: str, root: str | os.PathLike = DEFAULT_RUNS_ROOT) -> list[Path]:
    """The run folders of `recipe`, newest (by timestamp name) first."""
    base = Path(root) / recipe
    if not base.is_dir():
        return []
    return sorted(
        (p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
        key=lambda p: _order(p.name),
        reverse=True,
    )


def latest_run_dir(recipe: str, root: str | os.PathLike = DEFAULT_RUNS_ROOT) -> Path | None:
    """The newest run folder of `recipe` (by its timestamp name), or None when there is none."""
    runs = run_dirs(recipe, root)
    return runs[0] if runs else None
