"""A run's records: `metrics.jsonl` (one JSON object per logged step) and `log.txt`.

Only rank 0 writes them. A resumed run first drops the metric lines logged after the step it
resumes from (they belong to the lost part of the interrupted run), so `metrics.jsonl` reads
as one uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from hfr.fileio import atomic_write_text

METRICS_NAME = "metrics.jsonl"
LOG_NAME = "log.txt"


def _json_value(v: Any) -> Any:
    """Floats that JSON cannot hold (nan, inf) as strings; everything else unchanged."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class MetricsWriter:
    """Appends JSON lines to `run_dir/metrics.jsonl` (flushed per line)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / METRICS_NAME

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line."""
        line = json.dumps({k: _json_value(v) for k, v in record.items()}, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def truncate_after(self, step: int) -> int:
        """Drop lines whose `step` is greater than `step` (atomically); returns how many were dropped."""
        if not self.path.is_file():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1  # a line cut short by the interruption
                continue
            if isinstance(record, dict) and int(record.get("step", 0)) > step:
                dropped += 1
                continue
            kept.append(line)
        if dropped:
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        return dropped


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a run's `metrics.jsonl`, in order."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def learning_curve(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's evaluations in order: {"step", "images", "train_seconds", <metric>: value, ...}.

    Each in-training evaluation (`train.eval_every`) is one point: the figure of interest against
    the training images seen and the seconds spent in training steps, the way to tell "does not
    work" from "has not finished training". Metric names lose the `eval/` prefix.
    """
    points = []
    for rec in read_metrics(run_dir):
        metrics = {k[len("eval/") :]: v for k, v in rec.items() if k.startswith("eval/")}
        if metrics:
            point: dict[str, Any] = {k: rec[k] for k in ("step", "images", "train_seconds") if k in rec}
            points.append({**point, **metrics})
    return points


class RunLogFile:
    """Copies INFO+ records of the `hfr` loggers (and of `extra` logger names) into `run_dir/log.txt`.

    A context manager. The engine passes the top-level package of the task's module as `extra`
    (e.g. `drgan`), so a method's own module loggers reach log.txt as well as `ctx.logger`.
    """

    def __init__(self, run_dir: str | os.PathLike, logger_name: str = "hfr", extra: tuple[str, ...] = ()) -> None:
        self.path = Path(run_dir) / LOG_NAME
        names = [logger_name, *(n for n in extra if n and n != logger_name and not n.startswith(f"{logger_name}."))]
        self.loggers = [logging.getLogger(n) for n in dict.fromkeys(names)]
        self.handler: logging.Handler | None = None
        self._old_levels: list[int] = []

    def __enter__(self) -> RunLogFile:
        self.handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._old_levels = []
        for logger in self.loggers:
            logger.addHandler(self.handler)
            self._old_levels.append(logger.level)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handler is not None:
            for logger, level in zip(self.loggers, self._old_levels):
                logger.removeHandler(self.handler)
                logger.setLevel(level)
            self.handler.close()
            self.handler = None
