"""DR-GAN's quality-protocol figures against training images: every checkpoint of one or more runs.

Each checkpoint of each `--run NAME=RUN_FOLDER` is exported as a generator.pt
(`drgan.export.export_checkpoint`) and measured with the generated-face quality protocol
(`hfr.eval.generator_report.run_generator_protocol`, tasks rotate and frontalize on the test
subjects of `--data`) by the judge and the yaw estimator `benchmarks/judge.py` trains (never the F a
recipe's identity loss uses). Per checkpoint: the share of syntheses the yaw estimator puts in the
target bin and its MAE (the estimator's own on real images beside it), the judge's AUC and TAR@FAR=1%
of syntheses against the subject's real image at the target pose, and the judge's rank-1 of
frontalized probes at |yaw| 45 and 60 beside the raw probes'. The issue's bars are drawn in.

Writes `drgan_quality_curve.json` and `drgan_quality_curve.png` into `--out` (default benchmarks/results).

    python benchmarks/drgan_quality_curve.py --run fixed=runs/drgan-fixed/latest --max-inputs 480
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, script_main, start  # noqa: E402
from drgan.export import export_checkpoint  # noqa: E402
from hfr.config import read_yaml  # noqa: E402
from hfr.eval.generator_report import run_generator_protocol  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
INSTRUMENTS = ROOT / "runs" / "judge" / "runs"
#: The issue's bars: pose in bin, judge AUC.
POSE_BAR, AUC_BAR = 0.90, 0.95


def _mean_of(groups: dict[str, Any], keys: tuple[str, ...], kind: str, metric: str) -> float | None:
    """The `n`-weighted mean of `metric` over the groups `keys` of one face set (`generated`/`input`)."""
    rows = [groups[k][kind] for k in keys if k in groups and metric in groups[k][kind]]
    n = sum(r["n"] for r in rows)
    return sum(r[metric] * r["n"] for r in rows) / n if n else None


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The curve's figures from one protocol report."""
    rot = report["tasks"]["rotate"]["groups"]
    out = {
        "pose_in_bin": rot["all"]["all"]["generated"]["yaw_bin_acc"],
        "yaw_mae": rot["all"]["all"]["generated"]["yaw_mae"],
        "yaw_mae_real": rot["all"]["all"]["truth"]["yaw_mae"],
        "judge_auc": rot["all"]["all"]["generated"]["auc"],
        "judge_tar@far=0.01": rot["all"]["all"]["generated"]["tar@far=0.01"],
        "judge_rank1_rotated": rot["all"]["all"]["generated"]["rank1"],
    }
    front = report["tasks"].get("frontalize", {}).get("groups", {}).get("source_abs_yaw", {})
    for kind in ("generated", "input"):
        out[f"frontalized_rank1_45_60_{kind}"] = _mean_of(front, ("45", "60"), kind, "rank1")
    return out


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, file) of a run folder's checkpoints, by step."""
    found = []
    for p in (run / "checkpoints").glob("step-*.pt"):
        m = re.search(r"step-(\d+)\.pt$", p.name)
        if m:
            found.append((int(m.group(1)), p))
    if not found:
        raise SystemExit(f"{run}: no checkpoints/step-*.pt; train with train.checkpoint_every > 0")
    return sorted(found)


def plot(curves: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Three panels against training images: pose in bin, judge AUC, frontalized rank-1 at 45-60."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (
        ("pose_in_bin", "syntheses in the target yaw bin", POSE_BAR),
        ("judge_auc", "judge AUC: synthesis vs real at target pose", AUC_BAR),
        ("frontalized_rank1_45_60_generated", "judge rank-1, probes |yaw| 45-60", None),
    )
    for ax, (key, title, bar) in zip(axes, panels, strict=True):
        for name, points in curves.items():
            xs = [p["images"] / 1000 for p in points]
            (line,) = ax.plot(xs, [p[key] for p in points], marker="o", label=name)
            if key.startswith("frontalized"):
                ax.plot(xs, [p["frontalized_rank1_45_60_input"] for p in points], ls=":", color=line.get_color())
        if bar is not None:
            ax.axhline(bar, color="grey", ls="--", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training images (thousands)")
        ax.grid(alpha=0.3)
    axes[2].text(0.02, 0.02, "dotted: raw probes", transform=axes[2].transAxes, fontsize=8)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """--data, --judge, --yaw-estimator, --max-inputs, --threads, --out: what the DR-GAN quality scripts share."""
    p.add_argument("--data", type=Path, default=ROOT / "data" / "multipie")
    p.add_argument("--judge", type=Path, default=INSTRUMENTS / "recognizer-judge" / "latest" / "recognizer.pt")
    p.add_argument("--yaw-estimator", type=Path, default=INSTRUMENTS / "yaw-estimator" / "latest")
    p.add_argument("--max-inputs", type=int, default=480, help="test faces per task")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="NAME=run folder with checkpoints (repeat)")
    add_protocol_args(p)
    args = p.parse_args(argv)
    start(args.threads)
    curves: dict[str, list[dict[str, Any]]] = {}
    recipes: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="drgan-curve-"))
    try:
        for spec in args.run:
            name, _, where = spec.partition("=")
            run = Path(where)
            config = read_yaml(run / "config.yaml")
            recipes[name] = {"run": str(run), "config": config}
            batch = int(config.get("batch_size", 64))
            curves[name] = []
            for step, ck in checkpoints(run):
                gen = work / f"{name}-{step}.pt"
                export_checkpoint(ck, gen)
                report = run_generator_protocol(
                    gen,
                    args.data,
                    work / f"{name}-{step}",
                    judge=args.judge,
                    yaw_estimator=args.yaw_estimator,
                    tasks=["rotate", "frontalize"],
                    max_inputs=args.max_inputs,
                )
                point = {"step": step, "images": step * batch, **figures(report)}
                curves[name].append(point)
                print(name, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in point.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "drgan_quality_curve",
        "command": command_line(argv),
        "judge": str(args.judge),
        "yaw_estimator": str(args.yaw_estimator),
        "max_inputs": args.max_inputs,
        "bars": {"pose_in_bin": POSE_BAR, "judge_auc": AUC_BAR},
        "runs": recipes,
        "curves": curves,
        "machine": machine_info(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "drgan_quality_curve.json", json.dumps(result, indent=2, default=float) + "\n")
    plot(curves, args.out / "drgan_quality_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
