"""TSGAN on occluded profiles, measured by the generated-face quality protocol: does restoring the face help a
recognizer that never trained against TSGAN, and what does each part of TSGAN add?

Data: SynthFace `occluded` (configs/data/synth-occluded.yaml: 200 subjects x 9 yaws x 4 lights; every
non-frontal image wears one of six occluders and has its mask and its unoccluded render; 120 training and 80
test subjects), rendered into `--data` when absent.

Instruments (`benchmarks.stages.shared_instruments`: the files `benchmarks/judge.py` trained under
`--instruments`, else trained there now): F, the strong shared recognizer TSGAN's identity and dual triplet
terms learn through; the judge (another seed), the only one that measures identity here; the judging yaw
estimator. None of them ever saw an occluder or a test subject.

Generators: `configs/tsgan/synth-occluded.yaml` (`main`) and the variants of `VARIANTS` (each a list of
`--set`s: the paper's ablations without the mask-attention module, without the dual triplet loss and
without the identity loss; G_d without compositing; the lambda assignment with TP-GAN's 0.3 on the symmetry
term), each trained for every seed of the budget through the stage runner (`--reuse` skips finished stages).
Seed 0 of `main` trains on to `curve_steps` and keeps a checkpoint every `checkpoint_every` steps; its
checkpoint at `steps` stands for the main generator of seed 0 (Adam at a constant rate with the same data
order: the same weights a run stopped there would have), the others make the learning curve.

Measured (`hfr.eval.generator_report.run_generator_protocol`, `--max-inputs` test probes per task, judge
cosines, gallery = each test subject's clean frontal image): the deocclude task (x_d = G_d(x, M) against the
clean image at the input's pose) and the frontalize task (x_f = G_f(x_d, M) against the clean frontal); the raw
occluded probes are measured the same way beside. Per generator, `figures`: judge rank-1 of x_d and of the
raw probes overall and per occluder, of x_f and raw at |yaw| 45-60, x_f in the frontal yaw bin, PSNR inside
the occluder's mask (x_d vs the input) and outside it. Over seeds: mean, std and paired differences with their
95% Student-t intervals (`hfr.eval.intervals`): x_d - raw, x_f - raw, and each variant - main.

Writes into `--out` (default benchmarks/results): `occlusion.json` (every figure, report paths, stages,
commands, machine), `occlusion.md` (tables), `occlusion.png` (rank-1 per occluder; the learning curve) and
`occlusion_grid.png` (per occluder one test probe: input, mask, x_d, x_f, clean at its pose, clean frontal).

    python benchmarks/occlusion.py --threads 2                 # default budget, <= 30 min on 2 quiet cores
    python benchmarks/occlusion.py --budget long --threads 2   # 3 seeds, every variant, the README table
    python benchmarks/occlusion.py --quick --out /tmp/occ      # smoke: tiny sets and instruments, 2 steps
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import (  # noqa: E402
    QUICK_SUBJECTS,
    add_budget_run_options,
    cached_measurement,
    checkpoint_at,
    command_line,
    quick_folders,
    quiet_sets,
    script_main,
    shared_instruments,
    start,
)
from hfr.config import recipe_file  # noqa: E402
from hfr.data.manifest import Manifest  # noqa: E402
from hfr.engine.stages import Stages, render_synth  # noqa: E402
from hfr.eval.generator_report import run_generator_protocol  # noqa: E402
from hfr.eval.intervals import paired, t_interval  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.nn.ranges import to_unit  # noqa: E402
from hfr.recognizer.shared import render_shared_data  # noqa: E402
from hfr.viz import labelled_grid, save_figure, save_image, tensor_to_images  # noqa: E402
from tsgan.data import TSGANDataset, is_occluded  # noqa: E402
from tsgan.deocclude import run_generators  # noqa: E402
from tsgan.export import export_checkpoint, load_tsgan  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RECIPE = "tsgan/synth-occluded.yaml"
DATA_RECIPE = "data/synth-occluded.yaml"

#: Each variant: its `--set`s on the recipe and where it comes from.
VARIANTS: dict[str, tuple[list[str], str]] = {
    "main": ([], "configs/tsgan/synth-occluded.yaml as it is"),
    "no-mam": (["net.mam=false"], "paper's ablation: plain U-Net skips, no mask-attention module"),
    "no-triplet": (["loss.triplet=0"], "paper's ablation: without the dual triplet loss (lambda5 = 0)"),
    "no-identity": (["loss.identity=0"], "paper's ablation: without the identity loss (lambda4 = 0)"),
    "no-composite": (
        ["net.composite=false"],
        "G_d's whole output, the visible pixels not composited back (the paper's G_d as relayed)",
    ),
    "tpgan-lambdas": (
        ["loss.symmetry=0.3", "loss.triplet=4"],
        "lambda2 and lambda5 swapped: TP-GAN's 0.3 on the symmetry term (tsgan/losses.py)",
    ),
}
ABLATIONS = ("no-mam", "no-triplet", "no-identity")


@dataclass(frozen=True)
class Budget:
    """What one run of the benchmark trains and measures."""

    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    steps: int  #: every generator's training steps (the comparison's budget)
    curve_steps: int  #: seed 0 of main trains on to here
    checkpoint_every: int  #: the learning curve's spacing
    max_inputs: int  #: test probes per protocol task


BUDGETS = {
    # about 25 min on 2 quiet cores: main to 1,200 steps (curve every 300), three ablations at 600, seed 0
    "default": Budget((0,), ("main", *ABLATIONS), 600, 1200, 300, 960),
    # 111 one-thread process-minutes (measured): 3 seeds of every variant at 600 steps, main seed 0 to 2,400;
    # 61 min wall on 2 cores as two processes (`--seeds 0`, `--seeds 1,2`) and one `--reuse` aggregation
    "long": Budget((0, 1, 2), tuple(VARIANTS), 600, 2400, 300, 960),
    # smoke test: tiny sets and instruments
    "quick": Budget((0,), ("main", "no-mam"), 2, 4, 2, 24),
}
#: The issue's occluders that must not lose to the raw probes (besides the overall figure).
LARGE_OCCLUDERS = ("scarf", "sunglasses", "hand")
FRONTAL_BAR = 0.90  #: x_f in the frontal yaw bin


# ---------------------------------------------------------------------- figures of one report
def _entry(report: dict[str, Any], task: str, group: str, value: str) -> dict[str, Any] | None:
    return report["tasks"].get(task, {}).get("groups", {}).get(group, {}).get(value)


def _weighted(report: dict[str, Any], task: str, values: tuple[str, ...], kind: str, metric: str) -> float | None:
    entries = [_entry(report, task, "source_abs_yaw", v) for v in values]
    rows = [e[kind] for e in entries if e is not None and metric in e[kind]]
    n = sum(r["n"] for r in rows)
    return sum(r[metric] * r["n"] for r in rows) / n if n else None


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    """The benchmark's figures from one protocol report (tasks deocclude and frontalize)."""
    out: dict[str, float | None] = {}
    d_all = _entry(report, "deocclude", "all", "all")
    if d_all is not None:
        for kind, tag in (("generated", "x_d"), ("input", "raw")):
            out[f"rank1_{tag}"] = d_all[kind].get("rank1")
            out[f"psnr_in_mask_{tag}"] = d_all[kind].get("psnr_in_mask")
            out[f"psnr_out_mask_{tag}"] = d_all[kind].get("psnr_out_mask")
            out[f"ssim_out_mask_{tag}"] = d_all[kind].get("ssim_out_mask")
        out["auc_x_d"] = d_all["generated"].get("auc")
        occluders = report["tasks"]["deocclude"]["groups"].get("occlusion", {})
        for name, e in occluders.items():
            out[f"rank1_x_d_{name}"] = e["generated"].get("rank1")
            out[f"rank1_raw_{name}"] = e["input"].get("rank1")
            out[f"psnr_in_mask_x_d_{name}"] = e["generated"].get("psnr_in_mask")
            out[f"psnr_in_mask_raw_{name}"] = e["input"].get("psnr_in_mask")
    f_all = _entry(report, "frontalize", "all", "all")
    if f_all is not None:
        out["rank1_x_f"] = f_all["generated"].get("rank1")
        out["frontal_bin_x_f"] = f_all["generated"].get("yaw_bin_acc")
        out["yaw_mae_x_f"] = f_all["generated"].get("yaw_mae")
        for kind, tag in (("generated", "x_f"), ("input", "raw")):
            out[f"rank1_45_60_{tag}"] = _weighted(report, "frontalize", ("45", "60"), kind, "rank1")
        d_yaw = _weighted(report, "deocclude", ("45", "60"), "generated", "rank1")
        out["rank1_45_60_x_d"] = d_yaw
    for task, tag in (("deocclude", "x_d"), ("frontalize", "x_f")):
        by_yaw = report["tasks"].get(task, {}).get("groups", {}).get("source_abs_yaw", {})
        for yaw, e in by_yaw.items():
            out[f"rank1_{tag}_yaw{yaw}"] = e["generated"].get("rank1")
            if task == "deocclude":
                out[f"rank1_raw_yaw{yaw}"] = e["input"].get("rank1")
    return out


def occluders_of(per_run: Mapping[Any, dict[str, Any]]) -> list[str]:
    """The occluder kinds the figures name, sorted."""
    names = {k[len("rank1_x_d_") :] for f in per_run.values() for k in f if k.startswith("rank1_x_d_")}
    return sorted(n for n in names if not n.startswith("yaw"))


def yaws_of(per_run: Mapping[Any, dict[str, Any]]) -> list[str]:
    """The source |yaw| values the figures name, in increasing order."""
    names = {k[len("rank1_x_d_yaw") :] for f in per_run.values() for k in f if k.startswith("rank1_x_d_yaw")}
    return sorted(names, key=float)


# ---------------------------------------------------------------------- over seeds
def aggregate(per_run: dict[str, dict[str, Any]], budget: Budget) -> dict[str, Any]:
    """Mean/std/interval per variant and figure over seeds; the paired differences x_d - raw, x_f - raw,
    PSNR in the mask x_d - raw (per variant), and variant - main (per figure)."""
    out: dict[str, Any] = {"variants": {}, "vs_main": {}}
    for v in budget.variants:
        runs = {s: per_run[f"{v}-s{s}"] for s in budget.seeds if f"{v}-s{s}" in per_run}
        keys = sorted({k for f in runs.values() for k in f})
        stats = {k: t_interval([f[k] for f in runs.values() if f.get(k) is not None]) for k in keys}
        gains = {}
        for name, a, b in gain_pairs(occluders_of(runs)):
            gains[name] = paired(
                {s: f[a] for s, f in runs.items() if f.get(a) is not None},
                {s: f[b] for s, f in runs.items() if f.get(b) is not None},
            )
        out["variants"][v] = {"seeds": sorted(runs), "figures": stats, "gains": gains}
        if v != "main" and "main" in budget.variants:
            main = {s: per_run[f"main-s{s}"] for s in budget.seeds if f"main-s{s}" in per_run}
            out["vs_main"][v] = {
                k: paired(
                    {s: f[k] for s, f in runs.items() if f.get(k) is not None},
                    {s: f[k] for s, f in main.items() if f.get(k) is not None},
                )
                for k in keys
            }
    return out


def gain_pairs(occluders: list[str]) -> list[tuple[str, str, str]]:
    """(name, generated figure, raw figure) of the paired gains over the raw probes."""
    pairs = [
        ("x_d - raw rank-1", "rank1_x_d", "rank1_raw"),
        ("x_f - raw rank-1 |yaw| 45-60", "rank1_45_60_x_f", "rank1_45_60_raw"),
        ("x_d - raw PSNR in mask", "psnr_in_mask_x_d", "psnr_in_mask_raw"),
    ]
    pairs += [(f"x_d - raw rank-1 {o}", f"rank1_x_d_{o}", f"rank1_raw_{o}") for o in occluders]
    pairs += [(f"x_d - raw PSNR in mask {o}", f"psnr_in_mask_x_d_{o}", f"psnr_in_mask_raw_{o}") for o in occluders]
    return pairs


# ---------------------------------------------------------------------- tables
def _pct(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if not stat or stat.get("mean") is None:
        return ""
    text = f"{stat['mean'] * scale:.{digits}f}"
    if stat.get("std") is not None:
        text += f" ± {stat['std'] * scale:.{digits}f}"
    return text


def _interval(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if not stat or stat.get("mean") is None:
        return ""
    text = f"{stat['mean'] * scale:+.{digits}f}"
    if stat.get("low") is not None:
        text += f" [{stat['low'] * scale:+.{digits}f}, {stat['high'] * scale:+.{digits}f}]"
    return text


def markdown(agg: dict[str, Any], budget: Budget, curve: list[dict[str, Any]]) -> str:
    """The headline table per variant, the per-occluder table of main, the ablations against main and the curve."""
    v_stats = agg["variants"]
    lines = [
        f"Seeds {', '.join(map(str, budget.seeds))}; every generator {budget.steps} steps; judge rank-1 (%) "
        "against the clean frontal gallery; mean ± std over seeds; [95% t interval] of paired differences.",
        "",
        "| variant | x_d rank-1 | raw rank-1 | x_d - raw | x_f rank-1 45-60 | raw 45-60 | x_f - raw 45-60 | "
        "x_f frontal bin | PSNR in mask x_d (raw) | PSNR out of mask x_d |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v, s in v_stats.items():
        f, g = s["figures"], s["gains"]
        lines.append(
            f"| {v} | {_pct(f.get('rank1_x_d'))} | {_pct(f.get('rank1_raw'))} | "
            f"{_interval(g.get('x_d - raw rank-1'))} | {_pct(f.get('rank1_45_60_x_f'))} | "
            f"{_pct(f.get('rank1_45_60_raw'))} | {_interval(g.get('x_f - raw rank-1 |yaw| 45-60'))} | "
            f"{_pct(f.get('frontal_bin_x_f'))} | {_pct(f.get('psnr_in_mask_x_d'), 1)} "
            f"({_pct(f.get('psnr_in_mask_raw'), 1)}) | {_pct(f.get('psnr_out_mask_x_d'), 1)} |"
        )
    if "main" in v_stats:
        main = v_stats["main"]
        lines += [
            "",
            "main, per occluder:",
            "",
            "| occluder | x_d rank-1 | raw rank-1 | x_d - raw | PSNR in mask x_d | raw | gain (dB) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        f, g = main["figures"], main["gains"]
        for o in occluders_of({"m": {k: 0 for k in f}}):
            lines.append(
                f"| {o} | {_pct(f.get(f'rank1_x_d_{o}'))} | {_pct(f.get(f'rank1_raw_{o}'))} | "
                f"{_interval(g.get(f'x_d - raw rank-1 {o}'))} | {_pct(f.get(f'psnr_in_mask_x_d_{o}'), 1)} | "
                f"{_pct(f.get(f'psnr_in_mask_raw_{o}'), 1)} | {_interval(g.get(f'x_d - raw PSNR in mask {o}'), 1)} |"
            )
    lines += by_group_tables(v_stats)
    if agg["vs_main"]:
        lines += [
            "",
            "Variant - main, paired by seed:",
            "",
            "| variant | x_d rank-1 | x_f rank-1 45-60 | x_f frontal bin | PSNR in mask x_d |",
            "| --- | --- | --- | --- | --- |",
        ]
        for v, d in agg["vs_main"].items():
            lines.append(
                f"| {v} | {_interval(d.get('rank1_x_d'))} | {_interval(d.get('rank1_45_60_x_f'))} | "
                f"{_interval(d.get('frontal_bin_x_f'))} | {_interval(d.get('psnr_in_mask_x_d'), 1)} |"
            )
    if curve:
        lines += [
            "",
            "Learning curve (main, seed 0):",
            "",
            "| steps | images | x_d rank-1 | raw rank-1 | x_f rank-1 45-60 | raw 45-60 | x_f frontal bin |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for p in curve:
            cells = [p.get(k) for k in ("rank1_x_d", "rank1_raw", "rank1_45_60_x_f", "rank1_45_60_raw")]
            cells.append(p.get("frontal_bin_x_f"))
            lines.append(
                f"| {p['step']} | {p['images']} | "
                + " | ".join("" if c is None else f"{100 * c:.1f}" for c in cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def by_group_tables(v_stats: dict[str, Any]) -> list[str]:
    """Two tables, a row per variant (mean ± std over seeds) and the raw probes' row: x_d rank-1 per occluder;
    x_d and x_f rank-1 per source |yaw|."""
    first = next(iter(v_stats.values()), None)
    if first is None:
        return []
    per = {v: {k: st.get("mean") for k, st in s["figures"].items()} for v, s in v_stats.items()}
    occluders, yaws = occluders_of(per), yaws_of(per)
    raw = first["figures"]
    lines = ["", "x_d rank-1 per occluder:", "", "| | " + " | ".join(occluders) + " |"]
    lines.append("| --- " * (len(occluders) + 1) + "|")
    lines.append("| raw occluded | " + " | ".join(_pct(raw.get(f"rank1_raw_{o}")) for o in occluders) + " |")
    for v, s in v_stats.items():
        lines.append(f"| {v} | " + " | ".join(_pct(s["figures"].get(f"rank1_x_d_{o}")) for o in occluders) + " |")
    heads = [f"x_d {y}" for y in yaws] + [f"x_f {y}" for y in yaws]
    lines += ["", "rank-1 per source |yaw|:", "", "| | " + " | ".join(heads) + " |"]
    lines.append("| --- " * (len(heads) + 1) + "|")
    raw_cells = [_pct(raw.get(f"rank1_raw_yaw{y}")) for y in yaws]
    lines.append("| raw occluded | " + " | ".join(raw_cells * 2) + " |")
    for v, s in v_stats.items():
        cells = [_pct(s["figures"].get(f"rank1_{t}_yaw{y}")) for t in ("x_d", "x_f") for y in yaws]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------- figures
def plot(agg: dict[str, Any], curve: list[dict[str, Any]], path: Path, title: str) -> None:
    """Left: judge rank-1 per occluder (x_d, x_f, raw; main, mean over seeds); right: the learning curve."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, ay) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    main = agg["variants"].get("main", {}).get("figures", {})
    kinds = occluders_of({"m": {k: 0 for k in main}})
    bars = (("x_d", "rank1_x_d_{}"), ("raw occluded", "rank1_raw_{}"))
    for m, (label, key) in enumerate(bars):
        values = [100 * (main.get(key.format(k), {}).get("mean") or 0.0) for k in kinds]
        errs = [100 * (main.get(key.format(k), {}).get("std") or 0.0) for k in kinds]
        ax.bar(np.arange(len(kinds)) + (m - 0.5) * 0.38, values, 0.38, yerr=errs, label=label, capsize=2)
    ax.set_xticks(np.arange(len(kinds)), kinds)
    ax.set_ylabel("judge rank-1 (%)")
    ax.set_ylim(0, 101)
    ax.set_title("de-occluded x_d vs raw occluded probes, per occluder (main)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    xs = [p["images"] / 1000 for p in curve]
    for key, label, style in (
        ("rank1_x_d", "x_d, all", "-"),
        ("rank1_raw", "raw, all", ":"),
        ("rank1_45_60_x_f", "x_f, |yaw| 45-60", "-"),
        ("rank1_45_60_raw", "raw, |yaw| 45-60", ":"),
    ):
        ay.plot(xs, [100 * (p.get(key) or float("nan")) for p in curve], style, marker="o", label=label)
    ay.set_xlabel("training images (thousands)")
    ay.set_ylabel("judge rank-1 (%)")
    ay.set_ylim(0, 101)
    ay.set_title("learning curve (main, seed 0)", fontsize=10)
    ay.legend(fontsize=7)
    ay.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=100)


def grid_rows(test: Manifest) -> list[int]:
    """One occluded test row per occluder (name order), each of another subject where possible, preferring
    |yaw| 30-45 and the neutral light."""
    chosen: list[int] = []
    used: set[str] = set()
    probes = [i for i, r in enumerate(test) if is_occluded(r)]
    for kind in sorted({test[i].get("occlusion") for i in probes}):
        cands = [i for i in probes if test[i].get("occlusion") == kind]
        cands.sort(
            key=lambda i: (
                test[i].subject in used,
                abs(float(test[i].yaw or 0)) not in (30.0, 45.0),
                test[i].get("illumination") not in ("", "neutral"),
            )
        )
        chosen.append(cands[0])
        used.add(test[cands[0]].subject)
    return chosen


def grid_figure(generator: Path, test: Manifest, path: Path) -> list[dict[str, Any]]:
    """Columns: one probe per occluder; rows: input, mask, x_d, x_f, clean at the input's pose, clean
    frontal. The probes go through `run_generators` as `hfr deocclude` runs them."""
    gen = load_tsgan(generator)
    picks = grid_rows(test)
    ds = TSGANDataset(test.with_records([test[i] for i in picks]), gen.size, gen.channels, check_sizes=False)
    items = [ds[j] for j in range(len(ds))]
    x = torch.stack([it["image"] for it in items])  # in [-1, 1], as the generators take them
    masks = torch.stack([it["mask"] for it in items])
    with torch.no_grad():
        x_d, x_f = run_generators(gen, x, masks, frontalize=True)
    assert x_f is not None
    rows = {
        "input": to_unit(x),
        "mask": masks,
        "x_d": to_unit(x_d.float()),
        "x_f": to_unit(x_f.float()),
        "clean": to_unit(torch.stack([it["clean"] for it in items])),
        "frontal": to_unit(torch.stack([it["frontal"] for it in items])),
    }
    size = max(64, gen.size)
    cells = []
    for t in rows.values():
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
        cells.append(F.interpolate(t, size=(size, size), mode="nearest") if t.shape[-1] != size else t)
    cols = [test[i].get("occlusion") for i in picks]
    save_image(path, labelled_grid(tensor_to_images(torch.cat(cells)), len(picks), cols, list(rows)))
    return [
        {"path": test[i].path, "subject": test[i].subject, "occlusion": test[i].get("occlusion"), "yaw": test[i].yaw}
        for i in picks
    ]


# ---------------------------------------------------------------------- training and measuring
def sets_for(
    variant: str, seed: int, steps: int, checkpoint_every: int, data: Path, f_file: Path, quick: bool
) -> list[str]:
    """The `--set`s of one generator run."""
    sets = [
        f"data.train={data}",
        f"data.recognizer={f_file}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        *VARIANTS[variant][0],
        *(s for s in quiet_sets(quick, 8) if not s.startswith("train.checkpoint_every")),
        f"train.checkpoint_every={checkpoint_every}",  # 0: none; the main run's keep the learning curve
        f"train.keep_checkpoints={max(1, steps // checkpoint_every) if checkpoint_every else 1}",  # all of them
        "train.sample_every=-1",
    ]
    if quick:
        sets.append("data.size=32")
    return sets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", choices=[b for b in BUDGETS if b != "quick"], default="default")
    p.add_argument("--data", type=Path, default=ROOT / "data", help="SynthFace sets (rendered when absent)")
    p.add_argument("--instruments", type=Path, default=ROOT / "runs" / "judge" / "runs", help="judge/F/yaw stages")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "occlusion" / "runs", help="generator runs")
    for name in ("judge", "F", "yaw-estimator"):
        p.add_argument(f"--{name}", type=Path, default=None, help=f"given {name} file (not trained)")
    add_budget_run_options(p, RESULTS)
    args = p.parse_args(argv)
    quick_folders(args, p, ["data", "instruments", "runs"])
    return args


def main(argv: list[str] | None = None) -> int:
    """Render, train or reuse, measure every generator, aggregate, write JSON, Markdown and PNGs."""
    args = parse_args(argv)
    start(args.threads or (1 if args.quick else None))
    budget = BUDGETS["quick" if args.quick else args.budget]
    curve_seed = budget.seeds[0]  #: the seed whose main run trains on for the learning curve
    if args.seeds is not None:
        budget = replace(budget, seeds=tuple(s for s in budget.seeds if s in args.seeds) or args.seeds)
    t0 = time.perf_counter()
    size = 32 if args.quick else 64
    shared = render_shared_data(args.data, size=size, subjects=QUICK_SUBJECTS if args.quick else None)
    manifest, _, _ = render_synth(recipe_file(DATA_RECIPE), args.data / "occluded", 12 if args.quick else 200, size, 0)
    given = {"judge": args.judge, "F": args.F, "yaw_estimator": args.yaw_estimator}
    inst = shared_instruments(args.instruments, shared, args.quick, args.reuse, given)
    stages = Stages(args.runs, reuse=args.reuse, meta={"benchmark": "occlusion"})
    files: dict[str, Path] = {}
    for seed in budget.seeds:
        for v in budget.variants:
            long_main = v == "main" and seed == curve_seed
            steps = budget.curve_steps if long_main else budget.steps
            every = budget.checkpoint_every if long_main else 0
            sets = sets_for(v, seed, steps, every, manifest.parent, inst["F"], args.quick)
            files[f"{v}-s{seed}"] = stages.train(f"tsgan-{v}-s{seed}", recipe_file(RECIPE), sets)
    t_train = time.perf_counter() - t0

    work = args.out / "occlusion_work"
    main_run = f"main-s{curve_seed}"
    curve_files: dict[int, Path] = {}
    if main_run in files:
        for step in range(budget.checkpoint_every, budget.curve_steps + 1, budget.checkpoint_every):
            curve_files[step] = work / f"curve-{step}.pt"
            export_checkpoint(checkpoint_at(files[main_run], step), curve_files[step])

    def measure(generator: Path, label: str) -> dict[str, Any]:
        key = {
            "generator": load_tsgan(generator).fingerprint,
            "judge": str(inst["judge"]),
            "yaw_estimator": str(inst["yaw_estimator"]),
            "max_inputs": budget.max_inputs,
            "data": str(manifest),
        }
        cached = args.runs / "measurements" / f"{label}.json"
        found = cached_measurement(cached, key) if args.reuse else None
        if found is not None:
            logging.info("measured before: %s (%s)", label, cached)
            # the stored report, when there is one, so that figures added since are computed too
            return figures(found["report"]) if "report" in found else dict(found["figures"])
        logging.info("measuring %s", label)
        report = run_generator_protocol(
            generator,
            manifest.parent,
            work / label,
            judge=inst["judge"],
            yaw_estimator=inst["yaw_estimator"],
            tasks=["deocclude", "frontalize"],
            max_inputs=budget.max_inputs,
        )
        found = figures(report)
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            cached, json.dumps({"key": key, "figures": found, "report": report}, indent=2, default=float) + "\n"
        )
        return found

    per_run: dict[str, dict[str, Any]] = {}
    for name, file in files.items():
        # seed 0's main is its checkpoint at the comparison's budget (the run goes on for the curve)
        per_run[name] = measure(curve_files[budget.steps] if name == main_run else file, name)
    batch = 8 if args.quick else 16
    curve = []
    for step, file in curve_files.items():
        fig = per_run[main_run] if step == budget.steps else measure(file, f"curve-{step}")
        curve.append({"step": step, "images": step * batch, **fig})  # curve-<step>: seed 0's main run
    agg = aggregate(per_run, budget)

    test = Manifest.read(manifest).filter(lambda r: r.split == "test")
    args.out.mkdir(parents=True, exist_ok=True)
    shown = curve_files.get(budget.steps) or files[next(iter(files))]
    grid = grid_figure(shown, test, args.out / "occlusion_grid.png")
    title = f"TSGAN on SynthFace occluded, {len(test.subjects())} test subjects, {size} px, budget {args.budget}"
    plot(agg, curve, args.out / "occlusion.png", title + (" (quick)" if args.quick else ""))
    table = markdown(agg, budget, curve)
    print(table)
    result = {
        "benchmark": "occlusion: TSGAN de-occlusion and frontalization by the generated-face quality protocol",
        "command": command_line(argv),
        "budget": {"name": "quick" if args.quick else args.budget, **asdict(budget)},
        "variants": {v: {"sets": VARIANTS[v][0], "what": VARIANTS[v][1]} for v in budget.variants},
        "recipe": f"configs/{RECIPE}",
        "data": str(manifest),
        "instruments": {k: str(v) for k, v in inst.items()},
        "per_run": per_run,
        "aggregate": agg,
        "curve": curve,
        "grid": grid,
        "stages": stages.records,
        "table": table,
        "seconds": {"train": round(t_train, 1), "total": round(time.perf_counter() - t0, 1)},
        "machine": machine_info(),
    }
    atomic_write_text(args.out / "occlusion.json", json.dumps(result, indent=2, default=str) + "\n")
    atomic_write_text(args.out / "occlusion.md", table)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out / 'occlusion.json'}, occlusion.md, occlusion.png, occlusion_grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
