"""Why a DR-GAN rotates faces or not: `drgan.diagnose` on the checkpoints of several runs, side by side.

For each `--run NAME=CHECKPOINT_OR_RUN_FOLDER` (a run folder means its last checkpoint) the figures of
`drgan.diagnose.diagnose` (D on real images and on syntheses, an independent yaw estimator on the
syntheses, what G's output depends on, gradient magnitudes of each G loss term at G_dec's pose code
and identity feature), measured with batch statistics (as in a training step) and, with
`--eval-mode`, also with BatchNorm's running statistics. The yaw estimator and F default to the
instruments `benchmarks/judge.py` trains (`runs/judge/runs`).

Writes `drgan_diagnosis.json` and `drgan_diagnosis.md` into `--out` (default benchmarks/results).

    python benchmarks/drgan_diagnosis.py --run paper=runs/a/latest --run l1=runs/b/latest
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, script_main, start  # noqa: E402
from drgan.diagnose import diagnose  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
INSTRUMENTS = ROOT / "runs" / "judge" / "runs"
#: Rows of the markdown table: (figure key, label).
SHOWN = (
    ("d_real_pose_acc_test", "D pose acc., real test faces"),
    ("d_real_id_acc_among_real_train", "D identity acc. (real classes), real train faces"),
    ("d_real_called_fake_train", "D calls real train faces synthesized"),
    ("d_fake_called_fake", "D calls syntheses synthesized"),
    ("d_fake_pose_says_target", "D pose head says the target bin"),
    ("yaw_estimator_in_target_bin", "yaw estimator: synthesis in the target bin"),
    ("d_fake_id_says_input", "D identity head says the input's identity"),
    ("g_pose_change", "G output change: pose code"),
    ("g_identity_change", "G output change: identity feature"),
    ("g_noise_change", "G output change: z"),
    ("real_pose_change", "real change: same face, two poses"),
    ("real_identity_change", "real change: two faces, one pose"),
    ("grad_c_adv_id", "gradient at c: adversarial identity"),
    ("grad_c_adv_pose", "gradient at c: adversarial pose"),
    ("grad_c_l1_input", "gradient at c: L1 to the input"),
    ("grad_c_f_id", "gradient at c: identity loss through F"),
    ("grad_f_adv_id", "gradient at f: adversarial identity"),
    ("grad_f_f_id", "gradient at f: identity loss through F"),
)


def checkpoint_of(path: Path) -> Path:
    """The checkpoint a --run names: the file itself, or a run folder's last checkpoint."""
    if path.is_file():
        return path
    found = sorted((path / "checkpoints").glob("*.pt"))
    if not found:
        raise SystemExit(f"{path}: no checkpoints/*.pt; train with train.checkpoint_every > 0")
    return found[-1]


def table(runs: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per figure, one column per run."""
    names = list(runs)
    lines = ["| figure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for key, label in SHOWN:
        cells = [runs[n]["batch_statistics"].get(key) for n in names]
        lines.append(f"| {label} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="NAME=checkpoint or run folder (repeat)")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "multipie")
    p.add_argument("--recognizer", type=Path, default=INSTRUMENTS / "recognizer-F" / "latest" / "recognizer.pt")
    p.add_argument("--yaw-estimator", type=Path, default=INSTRUMENTS / "yaw-estimator" / "latest")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--eval-mode", action="store_true", help="also measure with BatchNorm's running statistics")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    start(args.threads)
    runs: dict[str, dict[str, Any]] = {}
    for spec in args.run:
        name, _, where = spec.partition("=")
        if not where:
            raise SystemExit(f"--run {spec!r}: expected NAME=PATH")
        ck = checkpoint_of(Path(where))
        entry: dict[str, Any] = {"checkpoint": str(ck)}
        modes = (True, False) if args.eval_mode else (True,)
        for batch_stats in modes:
            figures = diagnose(
                ck,
                args.data,
                recognizer=args.recognizer if args.recognizer.is_file() else None,
                yaw_estimator=args.yaw_estimator if args.yaw_estimator.exists() else None,
                batches=args.batches,
                batch_statistics=batch_stats,
            )
            entry["batch_statistics" if batch_stats else "running_statistics"] = figures
        runs[name] = entry
        print(name, json.dumps({k: round(v, 3) for k, v in entry["batch_statistics"].items()}), flush=True)
    result = {"benchmark": "drgan_diagnosis", "command": command_line(argv), "runs": runs, "machine": machine_info()}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "drgan_diagnosis.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "drgan_diagnosis.md", table(runs))
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
