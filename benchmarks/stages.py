"""What the accuracy benchmarks share beyond the library: their training settings and how a script runs.

The stage runner (`hfr.engine.stages.Stages`: train a recipe as a named, reusable stage), SynthFace
rendering (`hfr.engine.stages.render_synth`), DR-GAN frontalization (`drgan.frontalize`) and the
random subject folds (`hfr.eval.folds`) live in the package; this module keeps the benchmarks'
own settings (`quiet_sets`, `lightcnn_sets`), where the shared instruments come from
(`shared_instruments`: the judge, F and the yaw estimator `benchmarks/judge.py` trained),
`command_line` (what a result JSON records as its command) and `script_main`, which shows the stage
runner's progress and turns a library error into a one-line exit message.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hfr.errors import HFRError


def command_line(argv: Sequence[str] | None) -> str:
    """The command that ran a benchmark script (its arguments: `argv`, else the process's), shell-quoted."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join(shlex.quote(a) for a in [sys.executable, sys.argv[0], *args])


def quiet_sets(quick: bool, batch: int) -> list[str]:
    """No in-training evaluation, best-checkpoint selection or checkpoints (the benchmark evaluates at the
    end); in the smoke mode also small batches, no samples, a log line per step, no progress bar."""
    sets = ["train.eval_every=-1", "train.best_metric=null", "train.checkpoint_every=0"]
    if quick:
        sets += [
            f"batch_size={batch}",
            "train.num_workers=0",
            "train.sample_every=-1",
            "train.log_every=1",
            "train.progress=false",
        ]
    return sets


def lightcnn_sets(data: Path, size: int, steps: int, seed: int) -> list[str]:
    """LightCNN-9 from scratch as the benchmarks train it (configs/recognizer/synth-pretrain.yaml with
    these sets): AdamW 1e-3, the lr / 10 at 70% of `steps`, no dropout, `size` px input. SGD from
    scratch stays at ln(N) far beyond the few hundred steps a CPU run affords."""
    return [
        f"data.train={data}",
        "data.eval=none",
        f"data.size={size}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        "optim.name=adamw",
        "optim.lr=0.001",
        "optim.official_lr_groups=false",
        "net.dropout=0",
        "optim.gamma=0.1",
        f"optim.step_size={max(1, round(0.7 * steps))}",
        "train.channels_last=true",
        "train.sample_every=-1",
    ]


#: SynthFace subjects of the shared sets in a benchmark's smoke mode (`--quick`).
QUICK_SUBJECTS = {"webface": 40, "multipie": 12, "nirvis": 16}


def start(threads: int | None) -> None:
    """What a benchmark's `main` does first: INFO log lines, the stage runner's progress, torch's threads."""
    import torch

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    show_progress()
    if threads:
        torch.set_num_threads(threads)


def quick_folders(args: Any, parser: Any, names: Sequence[str]) -> None:
    """In smoke mode, the work folders left at their defaults move under `--out`/work (so tiny sets and runs
    stay beside the smoke test's figures); a smoke run into benchmarks/results is refused."""
    if not args.quick:
        return
    if args.out == parser.get_default("out"):
        parser.error("--quick writes smoke-test figures: give --out (not benchmarks/results)")
    for name in names:
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, args.out / "work" / name)


def finished_stage_file(runs: Path, stage: str) -> Path | None:
    """The main file of a stage an earlier run finished under `runs` (its done.json's `file`), when that
    file exists; else None. How a benchmark takes the instruments `benchmarks/judge.py` trained."""
    done = Path(runs) / stage / "done.json"
    if not done.is_file():
        return None
    path = Path(json.loads(done.read_text(encoding="utf-8"))["file"])
    return path if path.is_file() else None


def shared_instruments(
    runs: Path, data: Any, quick: bool, reuse: bool, given: dict[str, Path | None] | None = None
) -> dict[str, Path]:
    """{"judge", "F", "yaw_estimator", "pose_estimator": file} of the shared instruments
    (`hfr.recognizer.shared`; `pose_estimator` is the yaw estimator P a generator trains against): each
    given file, else the one `benchmarks/judge.py` finished under `runs` (its done.json), else trained
    there now (a few steps in the smoke mode `quick`). `data` is a `hfr.recognizer.shared.SharedData`."""
    from hfr.engine.stages import Stages
    from hfr.recognizer.shared import train_shared_recognizer, train_yaw_estimator

    given = given or {}
    stages = Stages(runs, reuse=reuse or quick, meta={"benchmark": "judge"})
    tiny = ["train.steps=4", "batch_size=8", "train.num_workers=0", "train.progress=false", "train.eval_every=-1"]
    extra = tiny if quick else []
    out: dict[str, Path] = {}
    for role in ("judge", "F"):
        found = given.get(role) or finished_stage_file(runs, f"recognizer-{role}")
        out[role] = found or train_shared_recognizer(stages, role, data, extra).file
    found = given.get("yaw_estimator") or finished_stage_file(runs, "yaw-estimator")
    out["yaw_estimator"] = found or train_yaw_estimator(stages, data, extra).file
    found = given.get("pose_estimator") or finished_stage_file(runs, "yaw-estimator-P")
    out["pose_estimator"] = found or train_yaw_estimator(stages, data, extra, role="P").file
    return out


def show_progress() -> None:
    """Let the stage runner's and the renderer's progress lines (INFO of `hfr.engine.stages`) through to the
    handler `logging.basicConfig` set up, whatever the root logger's level."""
    logging.getLogger("hfr.engine.stages").setLevel(logging.INFO)


def script_main(main: Callable[[], int]) -> int:
    """Run a benchmark's `main()` as a script: a library error (a missing model file, a bad recipe) ends
    it with the error's one-line message and status 2 instead of a traceback."""
    try:
        return main()
    except HFRError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def add_budget_run_options(parser: Any, results: Path) -> None:
    """The options every budgeted benchmark shares: --reuse, --seeds, --threads, --quick and --out."""
    parser.add_argument("--reuse", action="store_true", help="reuse stages and measurements of an earlier run")
    parser.add_argument(
        "--seeds",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        default=None,
        help="only these of the budget's seeds (comma-separated): to split a budget over processes, then "
        "aggregate with one --reuse run of the whole budget",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 on a busy machine)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny sets and instruments; needs --out")
    parser.add_argument("--out", type=Path, default=results)


def checkpoint_at(run_file: Path, step: int) -> Path:
    """The checkpoint of `step` in the run folder of a stage's file; DataError naming it when missing."""
    from hfr.errors import DataError

    found = run_file.parent / "checkpoints" / f"step-{step:07d}.pt"
    if not found.is_file():
        raise DataError(
            f"{found}: missing; the learning curve needs this run's checkpoint of step {step}: "
            "train that run again (run without --reuse)"
        )
    return found


def cached_measurement(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored measurement at `path` when it was made with `key`, else None (an unreadable file is
    logged and measured again)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        logging.warning("%s: unreadable measurement cache, measuring again", path)
        return None
    return found if isinstance(found, dict) and found.get("key") == key else None


def write_result_json(
    out: Path,
    name: str,
    benchmark: str,
    argv: Sequence[str] | None,
    settings: dict[str, Any],
    results: Any,
    started: float,
) -> dict[str, Any]:
    """Write `out/name.json` atomically (the benchmark, its command, settings, results, seconds since
    `started` (a `time.perf_counter()`), the machine), print where it went, and return what it wrote."""
    import json
    import time

    from hfr.fileio import atomic_write_text
    from hfr.machine import machine_info

    record = {
        "benchmark": benchmark,
        "command": command_line(argv),
        "settings": settings,
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(),
    }
    atomic_write_text(out / f"{name}.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {out / (name + '.json')} and {name}.png ({record['seconds']:.0f} s)")
    return record
