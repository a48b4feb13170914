"""Checkpoints: atomic writes, weights_only loads, rotation, best tracking, resume lookup.

A checkpoint is one `.pt` file holding a plain dict (see `make_payload`): the task's state,
the step / epoch / batch position, the RNG states of every rank, the resolved config and
the best eval value so far. It is written to a temporary file in the same folder, fsynced
and moved into place with `os.replace`, so a crash never leaves a half-written file; it is
always read with `torch.load(..., weights_only=True)`, so only tensors and plain Python
containers and numbers can be in it (a file that needs pickle is refused).

A run keeps `checkpoints/step-NNNNNNN.pt` (the newest `keep` of them) and `best.pt`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hfr.errors import ConfigError, HFRError
from hfr.fileio import atomic_open
from hfr.safeload import load_weights_only

log = logging.getLogger(__name__)

FORMAT = "hfr-checkpoint"
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.pt"
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(HFRError):
    """A checkpoint is missing, unreadable, needs pickle, or does not fit the task being resumed."""


def step_name(step: int) -> str:
    """The file name of the checkpoint taken after `step` steps."""
    return f"step-{step:07d}.pt"


def make_payload(
    *,
    task_state: dict,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    rng: list[dict],
    config: dict,
    world_size: int,
    best: dict | None,
) -> dict[str, Any]:
    """The checkpoint dict; every value must be a tensor, number, string, None or a container of them."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "epoch": int(epoch),
        "batch_in_epoch": int(batch_in_epoch),
        "world_size": int(world_size),
        "rng": rng,
        "config": config,
        "best": best,
        "task": task_state,
    }


def save_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write `payload` to `path` atomically (temp file in the same folder, fsync, os.replace)."""
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        torch.save(dict(payload), fh)
    return target


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; CheckpointError when missing, corrupt or needing pickle."""
    p = Path(path)
    data = load_weights_only(
        p,
        "checkpoint",
        CheckpointError,
        map_location,
        missing_hint="give a checkpoints/step-*.pt file, a run folder, or --resume auto",
    )
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{p}: not an hfr training checkpoint (no format={FORMAT!r} entry); it may be an "
            f"exported model; resume only from checkpoints/step-*.pt of a run"
        )
    if int(data.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{p}: checkpoint version {data.get('version')} is newer than this hfr understands ({VERSION}); upgrade hfr"
        )
    return data


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every `step-N.pt` in `folder`, oldest first."""
    d = Path(folder)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _STEP_FILE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest step checkpoint of a run folder, or None."""
    found = list_checkpoints(Path(run_dir) / CHECKPOINT_DIR)
    return found[-1][1] if found else None


def readable(path: Path) -> str | None:
    """None when the checkpoint at `path` loads (weights only, on the CPU), else why it does not."""
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        return str(exc)
    return None


def find_resume_point(runs: list[Path]) -> tuple[Path | None, Path | None, list[tuple[Path, str]]]:
    """(run folder, checkpoint, skipped) for `--resume auto`: the newest checkpoint that loads.

    `runs` are the recipe's run folders, newest first. Folders without a checkpoint yet (a run
    stopped before its first one) and checkpoints that do not load (a write cut short, a
    corrupted file) are passed over; `skipped` lists the unreadable ones with the reason.
    (None, None, skipped) when nothing loads.
    """
    skipped: list[tuple[Path, str]] = []
    for run in runs:
        for _, ckpt in reversed(list_checkpoints(run / CHECKPOINT_DIR)):
            why = readable(ckpt)
            if why is None:
                return run, ckpt, skipped
            skipped.append((ckpt, why))
    return None, None, skipped


def resolve_resume_path(target: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint file, run folder) for `--resume PATH`: a checkpoint file, a run folder or its checkpoints/."""
    p = Path(target)
    if p.is_file():
        run = p.parent.parent if p.parent.name == CHECKPOINT_DIR else p.parent
        return p, run
    if p.is_dir():
        run = p.parent if p.name == CHECKPOINT_DIR else p
        latest = latest_checkpoint(run)
        if latest is None:
            raise CheckpointError(
                f"{p}: no checkpoints/step-*.pt in this run folder; the run stopped before its "
                f"first checkpoint, so start a new run instead"
            )
        return latest, run
    raise CheckpointError(
        f"--resume {target}: no such checkpoint file or run folder; give a "
        f"checkpoints/step-*.pt file, a run folder, or 'auto'"
    )


class CheckpointSaver:
    """Writes step checkpoints into `folder`, keeps the newest `keep`, and `best.pt` by a metric."""

    def __init__(
        self,
        folder: str | os.PathLike,
        keep: int = 3,
        metric: str | None = None,
        mode: str = "max",
        best: dict | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ConfigError(f"train.best_mode: {mode!r} is not 'max' or 'min'")
        self.folder = Path(folder)
        self.keep = max(1, int(keep))
        self.metric = metric
        self.mode = mode
        self.best: dict | None = best if best and best.get("metric") == metric else None
        existing = list_checkpoints(self.folder)
        self.last: Path | None = existing[-1][1] if existing else None

    def save(self, payload: Mapping[str, Any]) -> Path:
        """Write `step-N.pt` for the payload's step, delete the oldest beyond `keep`; returns the path."""
        path = save_checkpoint(payload, self.folder / step_name(int(payload["step"])))
        self.last = path
        for _, old in list_checkpoints(self.folder)[: -self.keep]:
            old.unlink(missing_ok=True)
        log.info("checkpoint %s", path)
        return path

    def improved(self, evals: Mapping[str, float]) -> bool:
        """True when `evals` holds the metric and beats the best so far (NaN never does)."""
        if self.metric is None:
            return False
        if self.metric not in evals:
            raise ConfigError(
                f"train.best_metric: {self.metric!r} is not among the evaluation results "
                f"({', '.join(sorted(evals)) or 'none'}); pick one of those or null"
            )
        value = float(evals[self.metric])
        if value != value:
            return False
        if self.best is None:
            return True
        old = float(self.best["value"])
        return value > old if self.mode == "max" else value < old

    def save_best(self, payload: Mapping[str, Any], value: float) -> Path:
        """Record `value` as the best and write `best.pt` (the payload carries the new best)."""
        self.best = {"metric": self.metric, "value": float(value), "step": int(payload["step"])}
        body = dict(payload)
        body["best"] = dict(self.best)
        path = save_checkpoint(body, self.folder / BEST_NAME)
        log.info("best %s = %.6g at step %d -> %s", self.metric, value, payload["step"], path)
        return path


def _describe(value: Any) -> str:
    if torch.is_tensor(value):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"dict of {len(value)}"
    if isinstance(value, (list, tuple)):
        return f"list of {len(value)}"
    return type(value).__name__


def structure_diff(expected: Any, found: Any, where: str = "", limit: int = 20) -> list[str]:
    """Where `found` (a checkpoint's task state) does not fit `expected` (the fresh task's state).

    Compares dict keys, tensor shapes and list lengths; values and scalars may differ (learning
    rates, counters). A dict or list that is empty on the fresh side (optimizer state before
    the first step) accepts anything.
    """
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if len(out) >= limit:
            return
        name = path or "<root>"
        if isinstance(a, Mapping):
            if not isinstance(b, Mapping):
                out.append(f"{name}: expected {_describe(a)}, checkpoint has {_describe(b)}")
                return
            if not a:
                return
            missing = [k for k in a if k not in b]
            extra = [k for k in b if k not in a]
            for k in missing:
                out.append(f"{path}.{k}".lstrip(".") + f": missing from the checkpoint ({_describe(a[k])})")
            for k in extra:
                out.append(f"{path}.{k}".lstrip(".") + f": in the checkpoint but not in the task ({_describe(b[k])})")
            for k in a:
                if k in b:
                    walk(a[k], b[k], f"{path}.{k}".lstrip("."))
        elif torch.is_tensor(a):
            if not torch.is_tensor(b):
                out.append(f"{name}: expected {_describe(a)}, checkpoint has {_describe(b)}")
            elif tuple(a.shape) != tuple(b.shape):
                out.append(f"{name}: shape {tuple(b.shape)} in the checkpoint, {tuple(a.shape)} in the task")
        elif isinstance(a, (list, tuple)):
            if not isinstance(b, (list, tuple)):
                out.append(f"{name}: expected {_describe(a)}, checkpoint has {_describe(b)}")
                return
            if not a:
                return
            if len(a) != len(b):
                out.append(f"{name}: {len(b)} items in the checkpoint, {len(a)} in the task")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")

    walk(expected, found, where)
    return out[:limit]


def config_diff(current: Any, saved: Any, path: str = "", ignore: tuple[str, ...] = ("train",)) -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (top-level `ignore` keys skipped)."""
    out: list[str] = []
    if isinstance(current, Mapping) and isinstance(saved, Mapping):
        for k in sorted(set(current) | set(saved), key=str):
            if not path and k in ignore:
                continue
            key = f"{path}.{k}" if path else str(k)
            if k not in saved:
                out.append(f"{key}: not in the checkpoint's config (now {current[k]!r})")
            elif k not in current:
                out.append(f"{key}: only in the checkpoint's config ({saved[k]!r})")
            else:
                out.extend(config_diff(current[k], saved[k], key, ignore))
        return out
    same = (
        (list(current) == list(saved))
        if isinstance(current, (list, tuple)) and isinstance(saved, (list, tuple))
        else current == saved
    )
    if not same:
        out.append(f"{path}: {saved!r} in the checkpoint, {current!r} now")
    return out
