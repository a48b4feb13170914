"""DR-GAN's quality-protocol figures over training seeds: the final single-image G of each seed.

Each `--generator NAME=FILE` (a generator.pt or a run folder, e.g. the `drgan-s<seed>` stages of
`benchmarks/cross_pose.py`) is measured with the generated-face quality protocol
(`hfr.eval.generator_report.run_generator_protocol`, tasks rotate and frontalize on the test subjects
of `--data`) by the judge and the yaw estimator, never by the F or the pose estimator P the recipe
trains against; `--report NAME=result.json` takes a report `hfr evaluate --protocol generator`
already wrote instead of measuring again. Per generator: the figures of
`benchmarks/drgan_quality_curve.py` (pose in the target bin and its MAE, the estimator's own on the
real image at the target pose beside it, judge AUC and TAR@FAR=1%, frontalized rank-1 at |yaw| 45-60
beside the raw probes') and the share in the target bin per target bin; then mean and std over the
generators. Writes `drgan_seed_quality.json` and `.md` into `--out` (default benchmarks/results).

    python benchmarks/drgan_seed_quality.py --generator s0=runs/cross_pose/runs/drgan-s0/latest \\
        --generator s1=runs/cross_pose/runs/drgan-s1/latest --generator s2=runs/cross_pose/runs/drgan-s2/latest
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.drgan_quality_curve import AUC_BAR, POSE_BAR, add_protocol_args, figures  # noqa: E402
from benchmarks.stages import command_line, script_main, start  # noqa: E402
from hfr.errors import ArgumentError  # noqa: E402
from hfr.eval.generator_report import run_generator_protocol  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402

#: The figures the table shows, with their labels and scale (x100 for shares).
COLUMNS = [
    ("pose_in_bin", "in target bin %", 100),
    ("truth_in_bin", "real image in bin %", 100),
    ("yaw_mae", "yaw MAE", 1),
    ("yaw_mae_real", "real yaw MAE", 1),
    ("judge_auc", "judge AUC", 1),
    ("judge_tar@far=0.01", "TAR@1% %", 100),
    ("frontalized_rank1_45_60_generated", "frontalized rank-1 45-60 %", 100),
    ("frontalized_rank1_45_60_input", "raw rank-1 45-60 %", 100),
]


def seed_figures(report: dict[str, Any]) -> dict[str, Any]:
    """`drgan_quality_curve.figures` plus the real images' in-bin share and the in-bin share per target bin."""
    rot = report["tasks"]["rotate"]["groups"]
    out = figures(report)
    out["truth_in_bin"] = rot["all"]["all"]["truth"]["yaw_bin_acc"]
    out["in_bin_by_target"] = {k: g["generated"]["yaw_bin_acc"] for k, g in rot.get("target_yaw", {}).items()}
    return out


def _spec(text: str, flag: str) -> tuple[str, Path]:
    name, sep, where = text.partition("=")
    if not sep or not name or not where:
        raise ArgumentError(f"{flag} {text!r}: give NAME=PATH")
    return name, Path(where)


def summary(per: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and sample std (None for one generator) of every scalar figure over the generators."""
    out: dict[str, dict[str, float | None]] = {}
    for key, _, _ in COLUMNS:
        values = [float(f[key]) for f in per.values() if f.get(key) is not None]
        if values:
            out[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}
    return out


def table(per: dict[str, dict[str, Any]], agg: dict[str, dict[str, float | None]]) -> str:
    """Markdown: one row per generator, then mean ± std."""
    keys = [k for k, _, _ in COLUMNS if k in agg]
    head = "| generator | " + " | ".join(lbl for k, lbl, _ in COLUMNS if k in agg) + " |"
    lines = [head, "| --- |" + " --- |" * len(keys)]
    scale = {k: s for k, _, s in COLUMNS}
    digits = {k: (3 if scale[k] == 1 and "auc" in k else 1) for k in keys}
    for name, f in per.items():
        cells = [f"{f[k] * scale[k]:.{digits[k]}f}" if f.get(k) is not None else "" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for k in keys:
        m, s = agg[k]["mean"], agg[k]["std"]
        assert m is not None
        cells.append(f"{m * scale[k]:.{digits[k]}f}" + (f" ± {s * scale[k]:.{digits[k]}f}" if s is not None else ""))
    lines.append("| mean ± std | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", action="append", default=[], help="NAME=generator.pt or run folder (repeat)")
    p.add_argument("--report", action="append", default=[], help="NAME=result.json of `hfr evaluate` (repeat)")
    add_protocol_args(p)
    args = p.parse_args(argv)
    if not args.generator and not args.report:
        raise ArgumentError("give at least one --generator NAME=FILE or --report NAME=result.json")
    start(args.threads)
    per: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for spec in args.report:
        name, path = _spec(spec, "--report")
        try:
            per[name] = seed_figures(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise ArgumentError(f"--report {path}: not a generator-protocol result.json ({exc})") from None
        sources[name] = str(path)
    with tempfile.TemporaryDirectory(prefix="drgan-seeds-") as work:
        for spec in args.generator:
            name, path = _spec(spec, "--generator")
            report = run_generator_protocol(
                path,
                args.data,
                Path(work) / name,
                judge=args.judge,
                yaw_estimator=args.yaw_estimator,
                tasks=["rotate", "frontalize"],
                max_inputs=args.max_inputs,
            )
            per[name], sources[name] = seed_figures(report), str(path)
    agg = summary(per)
    result = {
        "benchmark": "drgan_seed_quality",
        "command": command_line(argv),
        "judge": str(args.judge),
        "yaw_estimator": str(args.yaw_estimator),
        "max_inputs": args.max_inputs,
        "bars": {"pose_in_bin": POSE_BAR, "judge_auc": AUC_BAR},
        "sources": sources,
        "per_generator": per,
        "aggregate": agg,
        "machine": machine_info(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "drgan_seed_quality.json", json.dumps(result, indent=2, default=float) + "\n")
    atomic_write_text(args.out / "drgan_seed_quality.md", table(per, agg))
    print(table(per, agg))
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
