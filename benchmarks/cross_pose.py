"""Cross-pose recognition on SynthFace `multipie`: DR-GAN's claim against its own baseline and a strong recognizer.

The claim (Tran, Yin, Liu, CVPR 2017 / TPAMI 2018): DR-GAN's identity feature f(x) = G_enc(x)
recognizes faces across pose better than a plain CNN of the same architecture trained on the same
images, and fusing several images of a subject by the learnt confidence omega helps further. This
script tests it on the shared SynthFace `multipie` set (`--data`, `hfr.recognizer.shared`): models
train on its training subjects; rank-1 is measured on its test subjects (unseen) by
`hfr.eval.protocols.cross_pose` (gallery: one frontal image per subject; probes: every other image),
at |yaw| 0, 15, 30, 45, 60, as the mean over the non-frontal bins ("mean 15-60") and as the
paper's "drop from |yaw| 15 to 60" (rank-1 at 15 minus rank-1 at 60), for:

- `drgan-cnn`: the paper's baseline, a CASIA-Net with G_enc's architecture trained by softmax on
  the same images with the same recipe and steps (configs/drgan/synth-multipie-cnn.yaml);
- `drgan`: single-image DR-GAN's G_enc features (configs/drgan/synth-multipie.yaml, with the
  shared recognizer F as `data.recognizer`);
- `drgan-multi n=1/2/4`: the multi-image DR-GAN (configs/drgan/synth-multipie-multi.yaml); each
  probe template fuses n images of one test subject at one yaw bin (other lights and expressions)
  as f_bar = sum omega_i f_i / sum omega_i (`drgan.models.fuse_features`); a subject/yaw with
  k >= n probe images gives k // n templates of n (the remainder is left out), one with k < n one
  template of all k; the gallery stays the single frontal image; n=1 is the reference;
- `F` and `judge`: the strong shared recognizer (configs/recognizer/synth-judge.yaml, LightCNN-9 on
  the training subjects of webface + multipie + nirvis) in its two roles: the ceiling a
  recognizer that saw more data reaches (they do not depend on the seed: evaluated once);
- `judge-frontalized`: the frontalization claim: the judge on probes frontalized by the
  single-image G (every probe decoded at the 0-degree bin with one fixed z; gallery as it is),
  beside `judge` on the raw probes. The yaw estimator measures how frontal those faces are.

Each DR-GAN and CNN model is a stage (`hfr.engine.stages.Stages`, `<method>-s<seed>` under `--runs`)
trained once per seed (`train.seed`), for its recipe's `train.steps` (times `--steps-scale`, or
`--steps`), evaluating cross-pose rank-1 on the test subjects `--points` times during training
(`data.eval`: multipie's test rows, written to `--runs`/eval-multipie-test): the learning curve
against training images. Results are the mean and std (ddof 1) over the seeds.
The instruments (judge, F, yaw estimator) are the stages `benchmarks/judge.py` finished under
`--instruments` (their done.json), trained there when absent.

Budgets (estimates for a quiet 2-core CPU; the script prints its own before it starts):

- default: seed 0, the recipes' 700 steps of 64: about 30 min;
- `--budget long`: seeds 0, 1 and 2 at the same steps (about 1.5 h; with `--reuse` seed 0's stages
  of a default run are taken as they are), for the README's headline table. Three seeds at twice
  the steps (`--steps-scale 2`, ~2.8 h) would pass 2 h on 2 cores; `--steps-scale` and `--seeds`
  override a budget.

Writes into `--out` (default benchmarks/results): `cross_pose.json` (per-seed results, aggregates,
learning curves, stage records, command, machine, budget), `cross_pose.md` (the table),
`cross_pose.png` (rank-1 against |yaw|, std bars), `cross_pose_curve.png` (rank-1 mean 15-60
against training images), `cross_pose_sweep.png` (test faces rotated to every pose bin by the first
seed's single-image G) and `cross_pose_frontalized.png` (probes at each |yaw| and their
frontalized versions).

    python benchmarks/cross_pose.py                    # about 30 min on a quiet 2-core CPU
    python benchmarks/cross_pose.py --budget long      # 3 seeds, about 1.5 h
    python benchmarks/cross_pose.py --reuse            # evaluate again with the finished stages
    python benchmarks/cross_pose.py --quick --out /tmp/cp   # tiny sets at 32 px, 3 steps: < 2 min
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import (  # noqa: E402
    QUICK_SUBJECTS,
    command_line,
    quick_folders,
    script_main,
    shared_instruments,
    start,
)
from drgan.export import LoadedGenerator, load_generator  # noqa: E402
from drgan.frontalize import frontalize  # noqa: E402
from drgan.models import fuse_features  # noqa: E402
from drgan.recognizer import as_recognizer, encoder_module  # noqa: E402
from hfr.config import read_recipe  # noqa: E402
from hfr.data.datasets import ManifestDataset  # noqa: E402
from hfr.data.manifest import PATH_COLUMNS, Manifest, Record, make_record  # noqa: E402
from hfr.data.stats import yaw_bin  # noqa: E402
from hfr.embed import embed_manifest  # noqa: E402
from hfr.engine.stages import Stages  # noqa: E402
from hfr.eval.protocols import cross_pose, cross_pose_split  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.nn.ranges import to_signed, to_unit  # noqa: E402
from hfr.perf import configure_process  # noqa: E402
from hfr.pose.export import YawEstimator, load_yaw_estimator  # noqa: E402
from hfr.recognizer.export import Recognizer, load_recognizer  # noqa: E402
from hfr.recognizer.shared import render_shared_data  # noqa: E402
from hfr.viz import labelled_grid, save_image, tensor_to_images  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: The trained methods: recipe and the stage's main exported file.
RECIPES = {
    "drgan": ROOT / "configs" / "drgan" / "synth-multipie.yaml",
    "drgan-multi": ROOT / "configs" / "drgan" / "synth-multipie-multi.yaml",
    "drgan-cnn": ROOT / "configs" / "drgan" / "synth-multipie-cnn.yaml",
}
EXPORT_KEYS = {"drgan": "generator", "drgan-multi": "generator", "drgan-cnn": "recognizer"}
#: Budgets: the seeds and the factor on every recipe's train.steps (`--seeds`, `--steps-scale` override).
BUDGETS: dict[str, dict[str, Any]] = {
    "default": {"seeds": [0], "steps_scale": 1.0},
    "long": {"seeds": [0, 1, 2], "steps_scale": 1.0},
}
MULTI_NS = (1, 2, 4)
#: The rows of the table, in order; `F` and `judge` do not depend on the seed.
FIXED = ("F", "judge")
PER_SEED = ("drgan-cnn", "drgan", *(f"drgan-multi n={n}" for n in MULTI_NS), "judge-frontalized")
METHODS = (*FIXED, *PER_SEED)
LABELS = {
    "F": "shared recognizer F (LightCNN-9, synth-judge.yaml; webface + multipie + nirvis training subjects)",
    "judge": "shared recognizer, judge role (another seed of F's recipe)",
    "drgan-cnn": "the paper's baseline: CASIA-Net with G_enc's architecture, softmax, same images and steps",
    "drgan": "single-image DR-GAN, G_enc features",
    "drgan-multi n=1": "multi-image DR-GAN, G_enc features of single probes",
    "drgan-multi n=2": "multi-image DR-GAN, omega-fused templates of 2 probes",
    "drgan-multi n=4": "multi-image DR-GAN, omega-fused templates of 4 probes",
    "judge-frontalized": "the judge on probes frontalized by the single-image G (gallery as is)",
}
#: One colour per method in both plots (a trained method's curve has its G_enc row's colour).
COLORS = {name: f"C{k}" for k, name in enumerate(METHODS)} | {"drgan-multi": "C4"}
#: Which learning curves are drawn (the multi-image model's in-training evaluation is single-image).
CURVE_LABELS = {"drgan": "drgan", "drgan-multi": "drgan-multi (single images)", "drgan-cnn": "drgan-cnn"}
SHOWN_YAWS = (0, 15, 30, 45, 60)
SWEEP_SUBJECTS = 6
QUICK = {"size": 32, "steps": 3, "batch": 16}
#: Expected seconds per training step at batch 64, 64 px, on a quiet 2-core CPU (2 torch threads):
#: DR-GAN from its recipe's ~80 img/s plus ~18% for the identity loss through F, the others by the
#: ratios measured here with 1 thread on a busy machine (drgan + F 1.45 s, drgan 1.2 s, CNN 0.5 s;
#: multi-image 1.12x drgan). Only for the printed estimate.
SECONDS_PER_STEP = {"drgan": 0.95, "drgan-multi": 1.05, "drgan-cnn": 0.35}
#: Reading and embedding (64 px, G_enc) and frontalizing (G_enc + G_dec) rates on 2 quiet cores.
EMBED_IMAGES_PER_S, FRONTALIZE_IMAGES_PER_S = 700.0, 300.0
#: The shared `multipie` preset: subjects, of which 40% test, 9 yaws x 4 lights each.
MULTIPIE_SUBJECTS, TEST_FRACTION, IMAGES_PER_SUBJECT = 200, 0.4, 36


# ---------------------------------------------------------------------- options
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data", help="the shared SynthFace sets (rendered when absent)")
    p.add_argument(
        "--instruments",
        type=Path,
        default=ROOT / "runs" / "judge" / "runs",
        help="stages of the judge, F and the yaw estimator (benchmarks/judge.py; trained there when absent)",
    )
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "cross_pose" / "runs", help="training runs")
    p.add_argument("--F", type=Path, default=None, help="given recognizer.pt of F (not looked up or trained)")
    p.add_argument("--judge", type=Path, default=None, help="given recognizer.pt of the judge")
    p.add_argument("--yaw-estimator", type=Path, default=None, help="given yaw_estimator.pt")
    p.add_argument(
        "--pose-estimator", type=Path, default=None, help="given yaw_estimator.pt of P, the one G trains against"
    )
    p.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="default",
        help="default: seed 0 (~30 min); long: seeds 0 1 2 (~1.5 h), the README's headline table",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default: the budget's)")
    p.add_argument(
        "--steps-scale", type=float, default=None, help="multiply every recipe's train.steps (default: the budget's)"
    )
    p.add_argument("--steps", type=int, default=None, help="train every model this many steps (overrides the scale)")
    p.add_argument("--points", type=int, default=4, help="in-training evaluations: points of the learning curve")
    p.add_argument("--reuse", action="store_true", help="reuse stages an earlier run finished with the same sets")
    p.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="an earlier cross_pose.json whose stage files are gone (a fresh machine): its seeds not trained here "
        "join the aggregate, provided its F and judge figures equal this run's (same data, same instruments)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's; 1 on a busy machine)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK_SUBJECTS['multipie']} multipie subjects at {QUICK['size']} px, {QUICK['steps']} "
        f"steps of {QUICK['batch']} per model, instruments of 4 steps; needs --out (its work goes under --out/work)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="output folder (default benchmarks/results)")
    args = p.parse_args(argv)
    quick_folders(args, p, ["data", "instruments", "runs"])
    budget = BUDGETS[args.budget]
    args.seeds = list(dict.fromkeys(args.seeds if args.seeds is not None else budget["seeds"]))
    args.steps_scale = args.steps_scale if args.steps_scale is not None else float(budget["steps_scale"])
    if args.quick:
        args.steps = args.steps or QUICK["steps"]
        args.threads = args.threads or 1
    if args.points < 1:
        p.error("--points must be at least 1")
    return args


def method_steps(method: str, args: argparse.Namespace) -> int:
    """Training steps of `method`: `--steps`, else its recipe's train.steps times the scale."""
    if args.steps:
        return int(args.steps)
    return max(1, round(int(read_recipe(RECIPES[method])["train"]["steps"]) * args.steps_scale))


def eval_every(steps: int, points: int) -> int:
    """An evaluation interval that gives `points` evaluations over `steps` (the last at the end)."""
    return max(1, math.ceil(steps / points))


def training_sets(
    method: str, seed: int, args: argparse.Namespace, train: Path, eval_manifest: Path, instruments: dict[str, Path]
) -> list[str]:
    """The `--set`s of one stage: the shared data, F and the pose estimator P a recipe's losses may use (the
    CNN ignores them), the seed, the budget, the curve."""
    steps = method_steps(method, args)
    sets = [
        f"data.train={train}",
        f"data.eval={eval_manifest}",
        f"data.recognizer={instruments['F']}",
        f"data.pose_estimator={instruments['pose_estimator']}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        f"train.eval_every={eval_every(steps, args.points)}",
        "train.best_metric=null",
        "train.checkpoint_every=0",
        f"train.sample_every={-1 if args.quick else 0}",
    ]
    if args.quick:
        sets += [
            f"data.size={QUICK['size']}",
            f"batch_size={QUICK['batch']}",
            "train.num_workers=0",
            "train.log_every=1",
            "train.progress=false",
        ]
    return sets


def test_split_manifest(manifest_path: Path, folder: Path) -> Path:
    """The test rows of a manifest with absolute paths, written to `folder`/manifest.csv: what the
    stages evaluate on during training (the protocol uses the test split only; this skips embedding
    the training images at every evaluation)."""
    full = Manifest.read(manifest_path)
    rows = []
    for r in full:
        if r.split != "test":
            continue
        extra = {k: (os.path.abspath(full.resolve(v)) if k in PATH_COLUMNS and v else v) for k, v in r.extra.items()}
        rows.append(replace(r, path=os.path.abspath(full.resolve(r.path)), extra=extra))
    target = folder / "manifest.csv"
    text = Manifest(rows, Path("/"), full.columns, full.source).to_csv()
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        atomic_write_text(target, text)
    return target


# ---------------------------------------------------------------------- features
def _loader(manifest: Manifest, size: int, channels: int, batch: int = 128) -> DataLoader:
    return DataLoader(ManifestDataset(manifest, size=size, channels=channels), batch_size=batch, shuffle=False)


@torch.no_grad()
def encoder_features(gen: LoadedGenerator, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """Raw G_enc features f(x) (N, N_f) and confidences omega (N,) of every manifest row."""
    net = encoder_module(gen.generator, gen.width).eval()
    fs, ws = [], []
    for batch in _loader(manifest, gen.size, gen.channels):
        f, w = net.features_and_confidence(batch["image"])
        fs.append(f.float().numpy())
        ws.append(w.float().reshape(-1).numpy())
    return np.concatenate(fs), np.concatenate(ws)


def _yaw(rec: Record) -> float:
    """The yaw of a probe row (cross_pose_split keeps rows with a yaw only)."""
    assert rec.yaw is not None
    return float(rec.yaw)


def build_templates(manifest: Manifest, probes: list[int], n: int, seed: int) -> list[list[int]]:
    """Probe templates of n images of one subject at one yaw bin (see the module docstring)."""
    groups: dict[tuple[str, float], list[int]] = defaultdict(list)
    for i in probes:
        groups[(manifest[i].subject, yaw_bin(_yaw(manifest[i])))].append(i)
    rng = np.random.default_rng(seed)
    templates = []
    for key in sorted(groups):
        rows = [groups[key][j] for j in rng.permutation(len(groups[key]))]
        if len(rows) < n:
            templates.append(rows)
        else:
            templates.extend(rows[k : k + n] for k in range(0, len(rows) - n + 1, n))
    return templates


def fused_cross_pose(manifest: Manifest, feats: np.ndarray, omega: np.ndarray, n: int, seed: int) -> dict[str, Any]:
    """Cross-pose rank-1 of omega-fused probe templates of n images against the single frontal gallery."""
    gallery, probes = cross_pose_split(manifest)
    templates = build_templates(manifest, probes, n, seed)
    f = torch.from_numpy(feats)
    w = torch.from_numpy(omega)
    rows = [
        make_record(manifest[i].path, manifest[i].subject, manifest[i].modality, manifest[i].yaw, "test", gallery=1)
        for i in gallery
    ]
    vectors = [feats[gallery]]
    for k, t in enumerate(templates):
        first = manifest[t[0]]
        rows.append(
            make_record(f"template/{k:06d}", first.subject, first.modality, yaw_bin(_yaw(first)), "test", gallery=0)
        )
        vectors.append(fuse_features(f[t], w[t], len(t)).numpy())
    result = cross_pose(Manifest(rows, manifest.root), np.concatenate(vectors))
    sizes = [len(t) for t in templates]
    result.update(
        templates=len(templates),
        template_sizes={str(s): sizes.count(s) for s in sorted(set(sizes))},
        n=n,
        template_seed=seed,
    )
    return result


@torch.no_grad()
def frontalized_features(
    recognizer: Recognizer,
    gen: LoadedGenerator,
    manifest: Manifest,
    seed: int,
    yaw_estimator: YawEstimator | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The recognizer's features of every row (gallery images as they are, probes after frontalization)
    and, with a yaw estimator, the estimated yaw of every row's frontalized image (NaN for the gallery)."""
    gallery, _ = cross_pose_split(manifest)
    is_gallery = np.zeros(len(manifest), bool)
    is_gallery[gallery] = True
    out, yaws = [], []
    for batch in _loader(manifest, gen.size, gen.channels):
        x = batch["image"]
        keep = torch.from_numpy(is_gallery[batch["index"].numpy()])
        fx = frontalize(gen, x, seed)
        if yaw_estimator is not None:
            yaws.append(np.where(keep.numpy(), np.nan, yaw_estimator.estimate(fx).numpy()))
        x = torch.where(keep.view(-1, 1, 1, 1), to_three(x), fx)
        out.append(recognizer.embed(x).cpu().numpy())
    return np.concatenate(out).astype(np.float32), (np.concatenate(yaws) if yaws else None)


def to_three(x: torch.Tensor) -> torch.Tensor:
    """Images with 3 channels (frontalize's output has 3; a grayscale gallery is repeated)."""
    return x if x.shape[1] == 3 else x.expand(-1, 3, -1, -1)


def frontal_yaw_by_bin(manifest: Manifest, estimated: np.ndarray) -> dict[str, float]:
    """Mean |estimated yaw| of the frontalized probes per |yaw| bin of their inputs (0 is ideal)."""
    _, probes = cross_pose_split(manifest)
    by: dict[float, list[float]] = defaultdict(list)
    for i in probes:
        by[abs(yaw_bin(_yaw(manifest[i])))].append(abs(float(estimated[i])))
    return {f"{b:g}": float(np.mean(v)) for b, v in sorted(by.items())}


# ---------------------------------------------------------------------- aggregation
def _mean_std(values: list[float]) -> dict[str, Any]:
    """{"mean", "std" (ddof 1; None for one value), "values"}."""
    a = np.asarray(values, float)
    return {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if len(a) > 1 else None,
        "values": [float(v) for v in a],
    }


def drop_15_60(result: dict[str, Any]) -> float | None:
    """The paper's pose robustness figure: rank-1 at |yaw| 15 minus rank-1 at |yaw| 60."""
    by = result["rank1_by_abs_yaw"]
    return float(by["15"] - by["60"]) if "15" in by and "60" in by else None


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of rank-1 per |yaw|, of the mean over the non-frontal bins and of the drop."""
    yaws = sorted({y for r in results for y in r["rank1_by_abs_yaw"]}, key=float)
    drops = [d for d in (drop_15_60(r) for r in results) if d is not None]
    return {
        "seeds": len(results),
        "rank1_by_abs_yaw": {
            y: _mean_std([r["rank1_by_abs_yaw"][y] for r in results if y in r["rank1_by_abs_yaw"]]) for y in yaws
        },
        "mean": _mean_std([r["mean"] for r in results]),
        "drop_15_60": _mean_std(drops) if drops else None,
    }


def mean_curve(curves: list[list[dict[str, Any]]], key: str = "rank1_mean") -> list[dict[str, Any]]:
    """The learning curves of one method's seeds averaged point by point (by step)."""
    by_step: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            if point.get(key) is not None:
                by_step[int(point["step"])].append(point)
    out = []
    for step, points in sorted(by_step.items()):
        values = _mean_std([float(p[key]) for p in points])
        images = [p["images"] for p in points if p.get("images") is not None]
        seconds = [p["train_seconds"] for p in points if p.get("train_seconds") is not None]
        out.append(
            {
                "step": step,
                "images": int(images[0]) if images else None,
                "train_seconds": float(np.mean(seconds)) if seconds else None,
                key: values["mean"],
                f"{key}_std": values["std"],
                "seeds": len(points),
            }
        )
    return out


# ---------------------------------------------------------------------- figures
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_rank1(agg: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Rank-1 (%) against |yaw| per method, the seeds' std as error bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.4, 4.4), dpi=110)
    names = list(agg)
    for k, name in enumerate(names):
        by = agg[name]["rank1_by_abs_yaw"]
        ys = sorted(by, key=float)
        dx = (k - (len(names) - 1) / 2) * 0.5  # offset so the bars do not overlap
        ax.errorbar(
            [float(y) + dx for y in ys],
            [100 * by[y]["mean"] for y in ys],
            yerr=[100 * (by[y]["std"] or 0.0) for y in ys],
            marker="o",
            ms=4,
            capsize=3,
            ls="--" if name in FIXED or name == "judge-frontalized" else "-",
            color=COLORS.get(name),
            label=name,
        )
    ax.set_xticks([float(y) for y in SHOWN_YAWS])
    ax.set_xlabel("|yaw| of the probe (degrees)")
    ax.set_ylabel("rank-1 on unseen test subjects (%)")
    ax.set_ylim(0, 101)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(curves: dict[str, list[dict[str, Any]]], references: dict[str, float], path: Path, title: str) -> None:
    """Rank-1 mean 15-60 (%) against training images per trained method (mean over seeds, std bars);
    the shared recognizers' final figure as dashed lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, curve in curves.items():
        if not curve:
            continue
        xs = [(p["images"] if p["images"] is not None else p["step"]) / 1000 for p in curve]
        ax.errorbar(
            xs,
            [100 * p["rank1_mean"] for p in curve],
            yerr=[100 * (p["rank1_mean_std"] or 0.0) for p in curve],
            marker="o",
            capsize=3,
            color=COLORS.get(name),
            label=CURVE_LABELS.get(name, name),
        )
    for name, value in references.items():
        ax.axhline(100 * value, color=COLORS.get(name), lw=1, ls="--", label=f"{name} (trained, shared)")
    ax.set_xlabel("training images (thousands)")
    ax.set_ylabel("rank-1, mean over |yaw| 15-60 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pick(manifest: Manifest, rows: list[int], subject: str, yaw: float) -> int | None:
    """A row of `subject` at yaw bin `yaw` (the neutral light when there is one), else None."""
    found = [i for i in rows if manifest[i].subject == subject and yaw_bin(_yaw(manifest[i])) == yaw]
    neutral = [
        i
        for i in found
        if manifest[i].get("illumination") in ("", "neutral") and manifest[i].get("expression") in ("", "neutral")
    ]
    return (neutral or found)[0] if found else None


def _images(manifest: Manifest, rows: list[int], size: int, channels: int) -> torch.Tensor:
    ds = ManifestDataset(manifest, size=size, channels=channels)
    return torch.stack([ds[i]["image"] for i in rows])


def sweep_figure(gen: LoadedGenerator, manifest: Manifest, seed: int, path: Path) -> None:
    """Rows: a test face (non-frontal when possible) then G's synthesis at every pose bin."""
    from drgan.task import pose_sweep

    _, probes = cross_pose_split(manifest)
    subjects = sorted({manifest[i].subject for i in probes})
    rng = np.random.default_rng(seed)
    chosen = [subjects[j] for j in sorted(rng.choice(len(subjects), min(SWEEP_SUBJECTS, len(subjects)), replace=False))]
    wanted = (-45.0, 30.0, -60.0, 15.0, 60.0, -30.0)
    rows, labels = [], []
    for k, s in enumerate(chosen):
        i = _pick(manifest, probes, s, wanted[k % len(wanted)])
        i = i if i is not None else next(j for j in probes if manifest[j].subject == s)
        rows.append(i)
        labels.append(f"{s} {manifest[i].yaw:+g}")
    x = to_signed(_images(manifest, rows, gen.size, gen.channels))
    grid = pose_sweep(gen.generator, x, seed=seed)
    cols = ["input"] + [f"{b:+g}" for b in gen.yaw_bins]
    save_image(path, labelled_grid(tensor_to_images(to_unit(grid)), len(cols), cols, labels))


def frontalized_figure(gen: LoadedGenerator, manifest: Manifest, seed: int, path: Path, subjects: int = 4) -> None:
    """For a few test subjects: the gallery face, probes at each |yaw| and (row below) their frontalized versions."""
    gallery, probes = cross_pose_split(manifest)
    gal_of = {manifest[i].subject: i for i in gallery}
    names = sorted(gal_of)[:subjects]
    cells: list[torch.Tensor | None] = []
    labels = []
    for k, s in enumerate(names):
        sign = 1 if k % 2 == 0 else -1
        rows = [_pick(manifest, probes, s, float(sign * y)) for y in SHOWN_YAWS]
        rows = [r if r is not None else _pick(manifest, probes, s, float(-sign * y)) for r, y in zip(rows, SHOWN_YAWS)]
        present = [r for r in rows if r is not None]
        x = _images(manifest, [gal_of[s], *present], gen.size, gen.channels)
        fx = frontalize(gen, x[1:], seed) if present else x[:0]
        it_x, it_f = iter(x[1:]), iter(fx)
        probe_row = [x[0]] + [next(it_x) if r is not None else None for r in rows]
        front_row = [None] + [next(it_f) if r is not None else None for r in rows]
        cells += probe_row + front_row
        labels += [f"{s} probe", f"{s} frontal."]
    images = [None if c is None else tensor_to_images(c[None])[0] for c in cells]
    cols = ["gallery"] + [f"|{y}|" for y in SHOWN_YAWS]
    save_image(path, labelled_grid(images, len(cols), cols, labels))


# ---------------------------------------------------------------------- reporting
def _pct(entry: dict[str, Any] | None, signed: bool = False) -> str:
    """The "mean ± std" in percent (the mean alone for one seed), blank when absent."""
    if entry is None:
        return ""
    fmt = "+.1f" if signed else ".1f"
    text = f"{100 * entry['mean']:{fmt}}"
    return text if entry.get("std") is None else f"{text} ± {100 * entry['std']:.1f}"


def table(result: dict[str, Any]) -> str:
    """The markdown table: rank-1 (%) per |yaw|, mean 15-60 and the drop from 15 to 60 per method."""
    seeds = result["seeds"]
    lines = [
        f"Cross-pose rank-1 (%) on the {result['data']['test_subjects']} unseen test subjects of SynthFace "
        f"`multipie` ({result['data']['size']} px; frontal gallery), {len(seeds)} seed(s) "
        f"({', '.join(map(str, seeds))}){', mean ± std' if len(seeds) > 1 else ''}; budget {result['budget']['name']}, "
        f"steps {', '.join(f'{m} {s}' for m, s in result['budget']['steps'].items())}.",
        "",
        "| method | 0 | 15 | 30 | 45 | 60 | mean 15-60 | drop 15->60 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, agg in result["aggregate"].items():
        by = agg["rank1_by_abs_yaw"]
        cells = [_pct(by.get(str(y))) for y in SHOWN_YAWS]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {_pct(agg['mean'])} | {_pct(agg['drop_15_60'], signed=True)} |"
        )
    lines += ["", *(f"- `{name}`: {LABELS[name]}" for name in result["aggregate"])]
    front = result.get("frontalization", {}).get("aggregate")
    if front:
        lines += [
            "",
            "Frontalized probes' |yaw| as the yaw estimator sees them (degrees; 0 is frontal), by the input's |yaw|: "
            + ", ".join(f"{y}: {e['mean']:.1f}" for y, e in front.items()),
        ]
    return "\n".join(lines) + "\n"


def expected_seconds(args: argparse.Namespace, seeds: list[int] | None = None) -> float:
    """A wall-time estimate on a quiet 2-core CPU: training steps x seconds per step, the in-training and
    final evaluations (rates measured here). Rendering and training absent instruments come on top."""
    seeds = args.seeds if seeds is None else seeds
    size = QUICK["size"] if args.quick else 64
    batch = QUICK["batch"] if args.quick else 64
    subjects = QUICK_SUBJECTS["multipie"] if args.quick else MULTIPIE_SUBJECTS
    test_images = round(subjects * TEST_FRACTION) * IMAGES_PER_SUBJECT
    per_image = (size / 64) ** 2 / EMBED_IMAGES_PER_S
    total = 0.0
    for method in RECIPES:
        steps = method_steps(method, args)
        evals = math.ceil(steps / eval_every(steps, args.points))
        total += len(seeds) * (
            steps * SECONDS_PER_STEP[method] * (size / 64) ** 2 * batch / 64 + evals * test_images * per_image
        )
    per_seed_final = test_images * (3 * per_image + (size / 64) ** 2 / FRONTALIZE_IMAGES_PER_S)
    return total + len(seeds) * per_seed_final + 2 * test_images * per_image / 4  # F and judge: 32 px


def _budget_estimate(name: str, args: argparse.Namespace) -> float:
    """The estimate of a whole run at budget `name` (its seeds and scale, no --steps)."""
    b = BUDGETS[name]
    ns = argparse.Namespace(**{**vars(args), "steps": None, "steps_scale": b["steps_scale"], "quick": False})
    return expected_seconds(ns, b["seeds"])


# ---------------------------------------------------------------------- the run
def train_stages(
    args: argparse.Namespace, train: Path, eval_manifest: Path, instruments: dict[str, Path]
) -> tuple[Stages, dict[int, dict[str, Path]]]:
    """Train (or reuse) every method for every seed: {seed: {method: file}}."""
    stages = Stages(args.runs, reuse=args.reuse, meta={"benchmark": "cross_pose"})
    files: dict[int, dict[str, Path]] = {}
    for seed in args.seeds:
        files[seed] = {}
        for method, recipe in RECIPES.items():
            sets = training_sets(method, seed, args, train, eval_manifest, instruments)
            files[seed][method] = stages.train(f"{method}-s{seed}", recipe, sets, export_key=EXPORT_KEYS[method])
    return stages, files


def evaluate_seed(
    files: dict[str, Path], test: Manifest, seed: int, judge: Recognizer, yaw_estimator: YawEstimator
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Cross-pose results of one seed's models, and the frontalized probes' estimated |yaw| by bin."""
    results: dict[str, dict[str, Any]] = {}
    cnn = load_recognizer(files["drgan-cnn"])
    results["drgan-cnn"] = cross_pose(test, embed_manifest(cnn, test))
    single = load_generator(files["drgan"])
    results["drgan"] = cross_pose(test, embed_manifest(as_recognizer(single.generator, single.width), test))
    multi = load_generator(files["drgan-multi"])
    feats, omega = encoder_features(multi, test)
    for n in MULTI_NS:
        results[f"drgan-multi n={n}"] = fused_cross_pose(test, feats, omega, n, seed)
    front, yaws = frontalized_features(judge, single, test, seed, yaw_estimator)
    results["judge-frontalized"] = cross_pose(test, front)
    assert yaws is not None
    return results, frontal_yaw_by_bin(test, yaws)


def previous_seeds(path: Path, fixed: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """The per-seed results, frontal yaws, records and curves of `path`'s seeds that are not in `seeds`.

    An earlier run is only comparable when it saw the same test images through the same instruments, so
    its F and judge cross-pose figures must equal this run's exactly (JSON floats round-trip); else an
    ArgumentError says what differs. Each record taken is marked with `from_previous`.
    """
    from hfr.errors import ArgumentError

    try:
        prev = json.loads(Path(path).read_text(encoding="utf-8"))
        prev_fixed, prev_seeds = prev["fixed"], [int(x) for x in prev["seeds"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArgumentError(f"--previous {path}: not a readable cross_pose.json ({exc})") from None
    mine = json.loads(json.dumps(fixed))
    for name in FIXED:
        if prev_fixed.get(name) != mine[name]:
            raise ArgumentError(
                f"--previous {path}: its {name} figures differ from this run's (rank-1 "
                f"{prev_fixed.get(name, {}).get('rank1_all')} vs {mine[name]['rank1_all']}): other data or "
                "instruments, so its seeds cannot join this aggregate; retrain them here instead"
            )
    taken = [x for x in prev_seeds if x not in seeds]
    records = {
        f"{m}-s{x}": {**prev["records"][f"{m}-s{x}"], "from_previous": str(path)} for x in taken for m in RECIPES
    }
    return {
        "seeds": taken,
        "per_seed": {str(x): prev["per_seed"][str(x)] for x in taken},
        "frontal_yaw": {str(x): prev["frontalization"]["per_seed"][str(x)] for x in taken},
        "records": records,
        "curves": {k: prev["curves"][k] for k in records},
    }


def main(argv: list[str] | None = None) -> int:
    """Parse options, take the data and instruments, train, evaluate per seed, aggregate, write."""
    args = parse_args(argv)
    start(args.threads)
    configure_process()  # the malloc policy of the `hfr` command
    t_all = time.perf_counter()
    seconds: dict[str, float] = {}
    steps = {m: method_steps(m, args) for m in RECIPES}
    estimate = expected_seconds(args)
    print(
        f"cross_pose: seeds {args.seeds}, steps {steps}; expected ~{estimate / 60:.1f} min ({estimate:.0f} s) "
        f"(default budget ~{_budget_estimate('default', args) / 60:.0f} min, long ~"
        f"{_budget_estimate('long', args) / 60:.0f} min; quiet 2-core CPU, a busy one is slower; "
        "rendering absent data and training absent instruments come on top)",
        flush=True,
    )
    shared = render_shared_data(
        args.data, size=QUICK["size"] if args.quick else 64, subjects=QUICK_SUBJECTS if args.quick else None
    )
    seconds["render"] = shared.seconds
    t = time.perf_counter()
    given = {
        "F": args.F,
        "judge": args.judge,
        "yaw_estimator": args.yaw_estimator,
        "pose_estimator": args.pose_estimator,
    }
    instruments = shared_instruments(args.instruments, shared, args.quick, args.reuse, given)
    seconds["instruments"] = round(time.perf_counter() - t, 1)
    print("instruments: " + ", ".join(f"{k} {v}" for k, v in instruments.items()), flush=True)

    manifest_path = shared.multipie / "manifest.csv"
    eval_manifest = test_split_manifest(manifest_path, args.runs / "eval-multipie-test")
    stages, files = train_stages(args, shared.multipie, eval_manifest, instruments)
    for name, secs in stages.seconds.items():
        seconds[name] = secs

    t = time.perf_counter()
    full = Manifest.read(manifest_path)
    test = full.filter(lambda r: r.split == "test")
    judge = load_recognizer(instruments["judge"])
    f_rec = load_recognizer(instruments["F"])
    yaw_estimator = load_yaw_estimator(instruments["yaw_estimator"])
    fixed = {"F": cross_pose(test, embed_manifest(f_rec, test)), "judge": cross_pose(test, embed_manifest(judge, test))}
    per_seed: dict[str, dict[str, dict[str, Any]]] = {}
    frontal_yaw: dict[str, dict[str, float]] = {}
    for seed in args.seeds:
        per_seed[str(seed)], frontal_yaw[str(seed)] = evaluate_seed(files[seed], test, seed, judge, yaw_estimator)
    seconds["evaluate"] = round(time.perf_counter() - t, 1)

    records = dict(stages.records)
    curves = {f"{m}-s{s}": records[f"{m}-s{s}"].get("curve") or [] for s in args.seeds for m in RECIPES}
    seeds = list(args.seeds)
    if args.previous is not None:
        prev = previous_seeds(args.previous, fixed, seeds)
        per_seed.update(prev["per_seed"])
        frontal_yaw.update(prev["frontal_yaw"])
        records.update(prev["records"])
        curves.update(prev["curves"])
        seeds = sorted(seeds + prev["seeds"])
        print(f"seeds {prev['seeds']} taken from {args.previous} (same F and judge figures)", flush=True)
    agg: dict[str, dict[str, Any]] = {name: aggregate([fixed[name]]) for name in FIXED}
    for name in PER_SEED:
        agg[name] = aggregate([per_seed[str(s)][name] for s in seeds])
    curve_mean = {m: mean_curve([curves[f"{m}-s{s}"] for s in seeds]) for m in RECIPES}
    frontal_agg = {y: _mean_std([frontal_yaw[str(s)][y] for s in seeds]) for y in frontal_yaw[str(seeds[0])]}

    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    where = f"{'quick, ' if args.quick else ''}{len(test.subjects())} test subjects, {len(seeds)} seed(s)"
    plot_rank1(agg, args.out / "cross_pose.png", f"cross-pose rank-1 against |yaw| ({where}; bars: std over seeds)")
    plot_curves(
        curve_mean,
        {name: fixed[name]["mean"] for name in FIXED},
        args.out / "cross_pose_curve.png",
        f"rank-1 mean |yaw| 15-60 during training ({where})",
    )
    first = load_generator(files[args.seeds[0]]["drgan"])
    sweep_figure(first, test, args.seeds[0], args.out / "cross_pose_sweep.png")
    frontalized_figure(first, test, args.seeds[0], args.out / "cross_pose_frontalized.png")
    seconds["figures"] = round(time.perf_counter() - t, 1)
    seconds["total"] = round(time.perf_counter() - t_all, 1)

    info = machine_info(device="cuda" if torch.cuda.is_available() else "cpu")
    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    result: dict[str, Any] = {
        "benchmark": "cross_pose",
        "claim": "DR-GAN's G_enc features (single- and multi-image, fused 1/2/4) recognize across pose better "
        "than a plain CNN of G_enc's architecture trained on the same images for the same budget; "
        "beside the strong shared recognizer F / judge, and the judge on DR-GAN-frontalized probes",
        "command": command_line(argv),
        "quick": args.quick,
        "seeds": seeds,
        "trained_here": args.seeds,
        "previous": str(args.previous) if args.previous else None,
        "budget": {
            "name": args.budget,
            "seeds": seeds,
            "steps_scale": args.steps_scale,
            "steps": steps,
            "eval_every": {m: eval_every(s, args.points) for m, s in steps.items()},
            "recipes": {m: str(r.relative_to(ROOT)) for m, r in RECIPES.items()},
            "expected_seconds": round(estimate),
            "expected_default_seconds": round(_budget_estimate("default", args)),
            "expected_long_seconds": round(_budget_estimate("long", args)),
        },
        "data": {
            "manifest": str(manifest_path),
            "eval_manifest": str(eval_manifest),
            "subjects": len(full.subjects()),
            "size": QUICK["size"] if args.quick else 64,
            "images": len(full),
            "test_subjects": len(test.subjects()),
            "test_images": len(test),
        },
        "instruments": {k: str(v) for k, v in instruments.items()},
        "methods": {name: LABELS[name] for name in METHODS},
        "fixed": fixed,
        "per_seed": per_seed,
        "aggregate": agg,
        "curves": curves,
        "curve_mean": curve_mean,
        "frontalization": {
            "how": "single-image G of each seed: every probe decoded at the 0-degree bin with one fixed z (the "
            "seed); gallery not frontalized; judge features (results: judge-frontalized against judge)",
            "what": "mean |yaw| (degrees) the yaw estimator gives the frontalized probes, by the input's |yaw| bin",
            "per_seed": frontal_yaw,
            "aggregate": frontal_agg,
        },
        "multi_image_templates": "per test subject and yaw bin, k probes shuffled by the seed: k // n templates "
        "of n (remainder left out), or one of all k when k < n; omega-weighted mean of raw G_enc features; "
        "gallery: the single frontal image",
        "records": records,
        "seconds": seconds,
        "machine": info,
    }
    atomic_write_text(args.out / "cross_pose.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "cross_pose.md", table(result))
    print(table(result))
    print(
        f"wrote {args.out / 'cross_pose.json'}, cross_pose.md, cross_pose.png, cross_pose_curve.png, "
        f"cross_pose_sweep.png, cross_pose_frontalized.png ({seconds['total']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
