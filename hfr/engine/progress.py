"""The training progress bar (rich, on stderr): step / total, images/s, ETA and the latest logs.

It is shown only when asked for, on rank 0, and when stderr is a terminal; otherwise every
method does nothing, so the loop calls it unconditionally.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_enabled(requested: bool, is_main: bool, stream: IO | None = None) -> bool:
    """True when a bar was requested, this is rank 0 and the stream (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(requested and is_main and hasattr(stream, "isatty") and stream.isatty())


def format_logs(logs: Mapping[str, float], limit: int = 4) -> str:
    """The first `limit` logs as `name value` pairs for the bar."""
    return "  ".join(f"{k} {v:.4g}" for k, v in list(logs.items())[:limit])


class TrainProgress:
    """A context manager around a rich Progress; `update(step, images_per_s, logs)` after each step."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, description: str = "train") -> None:
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task_id = None
        if enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[logs]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self.task_id = self.progress.add_task(description, total=total, completed=start, rate="", logs="")

    def __enter__(self) -> TrainProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, step: int, images_per_s: float | None = None, logs: Mapping[str, float] | None = None) -> None:
        """Move the bar to `step`; show the throughput and logs when given."""
        if self.progress is None or self.task_id is None:
            return
        fields: dict[str, Any] = {}
        if images_per_s is not None:
            fields["rate"] = f"{images_per_s:,.0f} img/s"
        if logs:
            fields["logs"] = format_logs(logs)
        self.progress.update(self.task_id, completed=step, **fields)
