"""The instruments that measure generators: the strong shared recognizer (F and the judge) and the yaw
estimator, with their learning curves.

Trains `configs/recognizer/synth-judge.yaml` (LightCNN-9, CosFace head, SynthFace `webface` +
`multipie` + `nirvis` training subjects) as the stage the other benchmarks share
(`hfr.recognizer.shared`), once per role: `F` (seed 0, what a generator learns identity from) and
`judge` (seed 1, used only to measure); `--roles F-vis` trains the VIS-only role (F's recipe and seed on the
VIS images only, where `benchmarks/cross_modal.py` starts from). Every `--eval-every` steps a role's
checkpoint is evaluated:

- frontal VIS rank-1 (and every |yaw|) on unseen `multipie` test subjects (gallery: frontal neutral
  image; frontal probes differ by light or expression);
- NIR -> VIS rank-1 on unseen `nirvis` test subjects (one VIS gallery image per subject);

against training images and the seconds spent in training steps: the learning curve. The judge's
final figures come beside F's. Then the yaw estimator (`configs/judge/synth-yaw.yaml`) is trained on
`multipie` training subjects; its error on real test faces (multipie and nirvis) is the floor of the
generated-face quality protocol's pose figures.

Writes `judge.json`, `judge.md` and `judge_curve.png` into `--out` (default benchmarks/results).

    python benchmarks/judge.py                      # F and the judge, 13.5 min each on a quiet 2-core CPU, + yaw
    python benchmarks/judge.py --budget long        # 3x the steps, for the headline curve
    python benchmarks/judge.py --quick --out /tmp/j # tiny sizes, a smoke test
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import QUICK_SUBJECTS, command_line, quick_folders, script_main, start  # noqa: E402
from hfr.config import load_config, recipe_file  # noqa: E402
from hfr.data.manifest import Manifest  # noqa: E402
from hfr.engine.checkpoint import load_checkpoint  # noqa: E402
from hfr.engine.stages import Stages  # noqa: E402
from hfr.eval.protocols import cross_modal, cross_pose  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.recognizer.shared import (  # noqa: E402
    RECIPE,
    render_shared_data,
    train_shared_recognizer,
    train_yaw_estimator,
)

RESULTS = ROOT / "benchmarks" / "results"
BUDGETS = {"default": 1.0, "long": 3.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", type=Path, default=ROOT / "data", help="where the SynthFace sets are (rendered when absent)"
    )
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "judge" / "runs", help="training runs")
    p.add_argument("--budget", choices=sorted(BUDGETS), default="default", help="default or long (3x the steps)")
    p.add_argument("--points", type=int, default=6, help="evaluations along the learning curve")
    p.add_argument(
        "--roles", nargs="+", default=["F", "judge"], choices=["F", "judge", "F-vis"], help="which roles to train"
    )
    p.add_argument("--no-yaw", action="store_true", help="skip the yaw estimator")
    p.add_argument("--reuse", action="store_true", help="reuse stages an earlier run finished with the same sets")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--quick", action="store_true", help="smoke mode: tiny sets and a few steps; needs --out")
    p.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    args = p.parse_args(argv)
    quick_folders(args, p, ["data", "runs"])
    return args


def _recognizer_from_state(net_state: dict[str, torch.Tensor], arch: str, size: int) -> Any:
    """A Recognizer of a checkpoint's LightCNN weights (classifier dropped)."""
    from hfr.artifacts import fingerprint
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import Recognizer

    body = {k: v for k, v in net_state.items() if not k.startswith("fc2")}
    net = build_lightcnn(arch, 0, size, 1)
    net.load_state_dict(body)
    fp = fingerprint("lightcnn", arch, size, 1, body)
    return Recognizer(net.eval(), "lightcnn", arch, size, 1, fp, {})


def figures(recognizer: Any, multipie: Manifest, nirvis: Manifest) -> dict[str, Any]:
    """Rank-1 by |yaw| on multipie test subjects and NIR -> VIS rank-1 on nirvis test subjects."""
    from hfr.embed import embed_manifest

    cp = cross_pose(multipie, embed_manifest(recognizer, multipie, batch_size=256))
    cm = cross_modal(nirvis, embed_manifest(recognizer, nirvis, batch_size=256))
    by_abs = cp["rank1_by_abs_yaw"]
    return {
        "rank1_by_abs_yaw": by_abs,
        "frontal_rank1": by_abs.get("0"),
        "rank1_at_60": by_abs.get("60"),
        "rank1_mean_nonfrontal": cp["mean"],
        "nir_vis_rank1": cm["mean"]["rank1"],
        "nir_vis_vr@far=0.01": cm["mean"]["vr@far=0.01"],
    }


def curve_of(run_dir: Path, arch: str, size: int, multipie: Manifest, nirvis: Manifest) -> list[dict[str, Any]]:
    """Every checkpoint of a run evaluated, with its images and training seconds from metrics.jsonl."""
    from hfr.engine.runlog import learning_curve

    at = {int(p["step"]): p for p in learning_curve(run_dir)}
    points = []
    for ck in sorted((run_dir / "checkpoints").glob("step-*.pt")):
        state = load_checkpoint(ck)
        step = int(state["step"])
        rec = _recognizer_from_state(state["task"]["net"], arch, size)
        point = {"step": step, **{k: at.get(step, {}).get(k) for k in ("images", "train_seconds")}}
        point.update(figures(rec, multipie, nirvis))
        points.append(point)
        logging.info("  step %d: %s", step, {k: point[k] for k in ("frontal_rank1", "rank1_at_60", "nir_vis_rank1")})
    return points


def plot_curve(curve: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    minutes = [(p.get("train_seconds") or 0) / 60 for p in curve]
    for key, label in (
        ("frontal_rank1", "frontal VIS (multipie)"),
        ("rank1_mean_nonfrontal", "mean |yaw| 15-60"),
        ("rank1_at_60", "|yaw| 60"),
        ("nir_vis_rank1", "NIR -> VIS (nirvis)"),
    ):
        ax.plot(minutes, [100 * p[key] for p in curve], marker="o", label=label)
    ax.axhline(95, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("training minutes (steps only)")
    ax.set_ylabel("rank-1 on unseen test subjects (%)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start(args.threads)
    t_start = time.perf_counter()
    subjects = QUICK_SUBJECTS if args.quick else None
    data = render_shared_data(args.data, size=32 if args.quick else 64, subjects=subjects)
    multipie, nirvis = Manifest.read(data.multipie), Manifest.read(data.nirvis)
    from hfr.recognizer.config import RecognizerConfig

    base = load_config(RecognizerConfig, recipe_file(RECIPE), [])
    steps = 4 if args.quick else round(base.train.steps * BUDGETS[args.budget])
    every = max(1, steps // max(1, args.points))
    sets = [
        f"train.steps={steps}",
        f"train.eval_every={every}",
        f"train.checkpoint_every={every}",
        "train.keep_checkpoints=1000",
    ]
    if args.quick:
        sets += ["batch_size=8", "train.num_workers=0", "train.progress=false", "train.log_every=1"]
    stages = Stages(args.runs, reuse=args.reuse, meta={"benchmark": "judge"})
    result: dict[str, Any] = {
        "benchmark": "judge",
        "command": command_line(argv),
        "recipe": f"configs/{RECIPE}",
        "budget": args.budget,
        "steps": steps,
        "batch_size": base.batch_size,
        "input_size": base.data.size,
        "data": {k: str(v) for k, v in vars(data).items() if k != "seconds"},
        "roles": {},
        "seconds": {"render": data.seconds},
        "machine": machine_info(),
    }
    for role in args.roles:
        run = train_shared_recognizer(stages, role, data, sets)
        record = stages.records[f"recognizer-{role}"]
        curve = curve_of(run.run_dir, base.net.arch, base.data.size, multipie, nirvis)
        final = curve[-1] if curve else {}
        result["roles"][role] = {
            "file": str(run.file),
            "train_seconds": record.get("train_seconds"),
            "sets": record.get("sets"),
            "final": {k: v for k, v in final.items() if k not in ("step",)},
            "curve": curve,
        }
        result["seconds"][f"train {role}"] = record.get("train_seconds")
    if not args.no_yaw:
        result["yaw_estimator"] = train_yaw(stages, data, args.quick, multipie, nirvis)
    result["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "judge.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "judge.md", table(result))
    if "F" in result["roles"] and result["roles"]["F"]["curve"]:
        plot_curve(
            result["roles"]["F"]["curve"],
            args.out / "judge_curve.png",
            f"shared recognizer F ({RECIPE}, {args.budget} budget): rank-1 vs training time",
        )
    print(table(result))
    return 0


def train_yaw(stages: Stages, data: Any, quick: bool, multipie: Manifest, nirvis: Manifest) -> dict[str, Any]:
    """Train the yaw estimator on multipie training subjects; its error on real test faces."""
    from hfr.eval.generator import load_images
    from hfr.eval.quality import yaw_errors
    from hfr.pose.export import load_yaw_estimator

    sets = []
    if quick:
        sets += ["train.steps=4", "batch_size=8", "train.num_workers=0", "train.progress=false", "train.eval_every=-1"]
    run = train_yaw_estimator(stages, data, sets)
    est = load_yaw_estimator(run.file)
    out: dict[str, Any] = {"file": str(run.file), "train_seconds": stages.records["yaw-estimator"].get("train_seconds")}
    bins = sorted({float(r.yaw) for r in multipie if r.yaw is not None})
    for name, m in (("multipie", multipie), ("nirvis", nirvis)):
        rows = [i for i, r in enumerate(m) if r.split == "test" and r.yaw is not None]
        imgs = load_images([m.image_path(i) for i in rows], 64, 1)
        pred = est.estimate(imgs).numpy()
        target = np.asarray([float(m[i].yaw or 0.0) for i in rows])
        out[name] = {k: float(v) for k, v in yaw_errors(pred, target, bins).items()}
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Shared recognizer ({result['recipe']}, {result['budget']} budget, {result['steps']} steps): "
        "rank-1 on unseen test subjects (%)",
        "",
        "| role | train min | frontal VIS | mean 15-60 | 60 | NIR->VIS | NIR->VIS VR@1% |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for role, r in result["roles"].items():
        f = r["final"]
        if not f:
            continue
        lines.append(
            f"| {role} | {(r['train_seconds'] or 0) / 60:.1f} | {100 * f['frontal_rank1']:.1f} | "
            f"{100 * f['rank1_mean_nonfrontal']:.1f} | {100 * f['rank1_at_60']:.1f} | {100 * f['nir_vis_rank1']:.1f} | "
            f"{100 * f['nir_vis_vr@far=0.01']:.1f} |"
        )
    if "yaw_estimator" in result:
        y = result["yaw_estimator"]
        lines += [
            "",
            "Yaw estimator on real test faces: "
            + "; ".join(
                f"{k}: MAE {y[k]['mae']:.2f} deg, in nearest bin {100 * y[k]['bin_accuracy']:.1f}%"
                for k in ("multipie", "nirvis")
            ),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(script_main(main))
