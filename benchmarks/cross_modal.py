"""DVG-Face where NIR-VIS pairs are scarce: do its generated pairs carry one identity in two modalities,
and does fine-tuning with them beat fine-tuning with the few real pairs alone?

Data: the shared SynthFace sets (`hfr.recognizer.shared.render_shared_data`): `webface` (VIS), `multipie`
and `nirvis` (180 training and 180 test subjects, NIR and VIS). A pair budget P keeps the NIR images of the
first P training subjects of `nirvis` (the `paired_subjects` rule of the SynthFace renderer: the others keep
their VIS images only); the test subjects are never touched.

Instruments (the stages `benchmarks/judge.py` trains under `--instruments`, else trained there now):
`F-vis`, the shared recognizer's recipe and seed on VIS images only (the large VIS-only set of DVG-Face's
setting): the recognizer every method starts from, the F that G learns identity from and whose `webface`
features F_s models; the judge (another seed, NIR and VIS), which only measures generated pairs.

Per seed and pair budget P (`Budget`):
- G_P: `configs/dvg/synth-nirvis.yaml` at 32 px on budget P's pairs, F = F-vis, F_s on F-vis's webface
  features (one F_s for all); at the variant budget also the generator variants of `GENERATORS` (without
  L_ort, without L_ip, with the unpaired-VIS mode on webface);
- the pair quality (`hfr.eval.generator.evaluate_pairs`, by the judge, never F): TAR@FAR=1% of generated
  NIR-VIS pairs (same pair genuine, other pairs impostor) against the same figure on real test pairs, the
  median distance of a generated identity to its nearest training identity against the median distance
  between two real images of one subject, the FD of generated NIR and VIS to real NIR and VIS;
- `hfr generate-pairs` (attribute codes of real training pairs, the file's default) and the recognizers:
  `vis-only` (F-vis as it is), `real pairs` (F-vis fine-tuned on budget P's training images with
  configs/recognizer/synth-finetune.yaml), `real + DVG pairs` (the same with `data.generated` = G_P's pairs,
  contrastive weight 0.001 as released); at the variant budget also the contrastive-weight sweep and the
  generator variants' pairs.

Measured: NIR -> VIS rank-1 and VR@FAR 1% / 0.1% / 0.01% (`hfr.eval.protocols.cross_modal`) on `--folds`
random halves of the test subjects; per seed the mean over folds, then over seeds the mean and the 95%
Student-t interval, and each method minus `real pairs` paired by seed (`hfr.eval.intervals`). Learning
curves: the judge's pair TAR of G at every checkpoint of one long run (seed 0, the largest budget), and
rank-1 of the fine-tunings at every checkpoint (seed 0).

Writes into `--out` (default benchmarks/results): `cross_modal.json` (every figure, stages, commands,
machine), `cross_modal.md` (tables), `cross_modal.png` (rank-1 by pair budget; the curves) and
`cross_modal_pairs.png` (generated pairs of each budget beside real test pairs).

    python benchmarks/cross_modal.py --threads 2                 # default budget, <= 30 min on 2 quiet cores
    python benchmarks/cross_modal.py --budget long --threads 1 --seeds 0   # and --seeds 1,2 in a second
    python benchmarks/cross_modal.py --budget long --reuse       #   process, then aggregate: the README table
    python benchmarks/cross_modal.py --quick --out /tmp/cm       # smoke: tiny sets and instruments, 2 steps
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import (  # noqa: E402
    QUICK_SUBJECTS,
    add_budget_run_options,
    cached_measurement,
    checkpoint_at,
    command_line,
    finished_stage_file,
    quick_folders,
    quiet_sets,
    script_main,
    shared_instruments,
    start,
)
from hfr.config import recipe_file  # noqa: E402
from hfr.data.manifest import PATH_COLUMNS, Manifest  # noqa: E402
from hfr.engine.stages import Stages  # noqa: E402
from hfr.errors import DataError  # noqa: E402
from hfr.eval.intervals import paired, t_interval  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.recognizer.shared import render_shared_data, train_shared_recognizer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RECIPES = {
    "sampler": "dvg/synth-identity-sampler.yaml",
    "dvg": "dvg/synth-nirvis.yaml",
    "finetune": "recognizer/synth-finetune.yaml",
}
SIZE = 32  #: generator and recognizer input (the shared recognizer's size)
#: Generator variants: name -> (`--set`s on the recipe, where it comes from). `unpaired` adds webface.
GENERATORS: dict[str, tuple[list[str], str]] = {
    "dvg": ([], "configs/dvg/synth-nirvis.yaml as it is"),
    "no-ort": (["loss.ort=0"], "the paper's ablation without the angular orthogonal loss L_ort"),
    "no-ip": (["loss.ip=0"], "the paper's ablation without the pairwise identity preserving loss L_ip"),
    "unpaired": ([], "data.unpaired = webface: the identities of the large VIS set join G's training"),
}
RELEASED_CONTRASTIVE = 0.001  #: the released train_lightcnn.py's weight of L_ct
METRICS = ("rank1", "vr@far=0.01", "vr@far=0.001", "vr@far=0.0001")
PAIR_FIGURES = ("tar", "real_tar", "tar_ratio", "auc", "fd_nir", "fd_vis", "fd_real", "novel", "within", "farther")


@dataclass(frozen=True)
class Budget:
    """What one run of the benchmark trains and measures."""

    seeds: tuple[int, ...]
    pair_budgets: tuple[int, ...]  #: paired training subjects P
    variant_budget: int  #: the P of the generator variants and the contrastive sweep (0: none)
    variants: tuple[str, ...]  #: generator variants beside `dvg` at the variant budget
    contrastive: tuple[float, ...]  #: contrastive weights beside the released one at the variant budget
    generator_steps: int
    curve_steps: int  #: the generator of seed 0 at the largest budget trains on to here
    checkpoint_every: int  #: the generator curve's spacing
    finetune_steps: int  #: each fine-tuning (a quarter of them classifier-only, as the recipe's warm-up)
    finetune_points: int  #: checkpoints of the fine-tune curve (seed 0)
    pairs: int  #: generated pairs per generator
    measure_pairs: int  #: generated pairs the pair-quality figures use


BUDGETS = {
    # about 25 min on 2 quiet cores once F-vis exists: P = 20 and 180, seed 0
    "default": Budget((0,), (20, 180), 0, (), (), 800, 800, 400, 300, 3, 3000, 400),
    # the README's table: 3 seeds, P = 20, 50, 180, variants and the contrastive sweep at P = 50, the
    # generator curve to 1,600 steps
    "long": Budget(
        (0, 1, 2), (20, 50, 180), 50, ("no-ort", "no-ip", "unpaired"), (0.01, 0.1), 800, 1600, 400, 300, 3, 3000, 400
    ),
    "quick": Budget((0,), (4, 8), 4, ("no-ip",), (0.1,), 2, 4, 2, 4, 2, 16, 12),
}


# ---------------------------------------------------------------------- data
def pair_budget_manifest(nirvis: Manifest, paired_subjects: int) -> Manifest:
    """`nirvis` with the NIR images of training subjects beyond the first `paired_subjects` (sorted by name,
    the renderer's order) left out, every path made absolute: the `paired_subjects` regime of the SynthFace
    renderer as a subset of the full set. Test rows are kept as they are."""
    train = sorted({r.subject for r in nirvis if r.split == "train"})
    if not 1 <= paired_subjects <= len(train):
        raise DataError(
            f"{nirvis.source}: a pair budget of {paired_subjects} subjects needs 1 to {len(train)} training subjects"
        )
    keep = set(train[:paired_subjects])
    rows = []
    for r in nirvis:
        if r.split == "train" and r.modality == "nir" and r.subject not in keep:
            continue
        extra = {k: (os.path.abspath(nirvis.resolve(v)) if k in PATH_COLUMNS and v else v) for k, v in r.extra.items()}
        rows.append(dataclasses.replace(r, path=os.path.abspath(nirvis.resolve(r.path)), extra=extra))
    return Manifest(rows, Path("/"), nirvis.columns, nirvis.source)


# ---------------------------------------------------------------------- figures
def pair_figures(report: dict[str, Any]) -> dict[str, float]:
    """The pair-quality figures of one `evaluate_pairs` report."""
    key = next(k for k in report["generated"] if k.startswith("tar@"))
    nov = report["novelty"]
    return {
        "tar": report["generated"][key],
        "real_tar": report["real"][key],
        "tar_ratio": report["tar_ratio"],
        "auc": report["generated"]["auc"],
        "fd_nir": report["fd"]["nir_generated_vs_real"],
        "fd_vis": report["fd"]["vis_generated_vs_real"],
        "fd_real": report["fd"]["real_nir_vs_real_vis"],
        "novel": nov["nearest_training_identity_distance_median"],
        "within": nov["within_subject_distance_median"],
        "farther": nov["fraction_farther_than_within"],
    }


def fold_figures(result: dict[str, Any]) -> dict[str, float]:
    """The mean over folds of each metric of a `cross_modal` result."""
    return {m: float(np.mean([f[m] for f in result["folds"]])) for m in METRICS}


def aggregate(per_seed: dict[str, dict[int, dict[str, float]]], reference: str) -> dict[str, Any]:
    """Per method and metric: the t interval over seeds, and the difference to `reference` paired by seed."""
    out: dict[str, Any] = {}
    for method, by_seed in per_seed.items():
        stats: dict[str, Any] = {m: t_interval([v[m] for v in by_seed.values()]) for m in by_seed[next(iter(by_seed))]}
        if method != reference and reference in per_seed:
            ref = per_seed[reference]
            stats["minus_" + reference] = {
                m: paired({s: v[m] for s, v in by_seed.items()}, {s: v[m] for s, v in ref.items()}) for m in METRICS
            }
        out[method] = stats
    return out


def _cell(stat: dict[str, Any] | None, scale: float = 100.0, sign: bool = False, digits: int = 1) -> str:
    """mean [low, high] (or mean ± std, or the mean alone) of a `t_interval`, times `scale`."""
    if not stat or stat.get("mean") is None:
        return "–"
    fmt = ("{:+." if sign else "{:.") + f"{digits}f}}"
    text = fmt.format(scale * stat["mean"])
    if stat.get("low") is not None:
        text += f" [{fmt.format(scale * stat['low'])}, {fmt.format(scale * stat['high'])}]"
    elif stat.get("std") is not None:
        text += f" ± {scale * stat['std']:.{digits}f}"
    return text


def markdown(result: dict[str, Any]) -> str:
    """The tables: recognition by pair budget, paired differences, pair quality, curves."""
    lines = [
        "NIR -> VIS on the test subjects: mean over seeds of the fold mean [95% t interval over seeds] (%)",
        "",
        "| P | method | rank-1 | VR@FAR=1% | VR@FAR=0.1% | VR@FAR=0.01% |",
        "|---|---|---|---|---|---|",
    ]
    for p, agg in result["recognition"].items():
        for method, stats in agg.items():
            lines.append(f"| {p} | {method} | " + " | ".join(_cell(stats[m]) for m in METRICS) + " |")
    lines += ["", "| P | method minus `real pairs`, paired by seed | rank-1 | VR@FAR=1% | VR@FAR=0.1% | VR@FAR=0.01% |"]
    lines.append("|---|---|---|---|---|---|")
    for p, agg in result["recognition"].items():
        for method, stats in agg.items():
            diff = stats.get("minus_real pairs")
            if diff:
                lines.append(f"| {p} | {method} | " + " | ".join(_cell(diff[m], sign=True) for m in METRICS) + " |")
    lines += [
        "",
        "Generated pairs by the judge (never F): mean over seeds [95% t interval]",
        "",
        "| generator | TAR@FAR=1% % | real % | ratio | AUC | FD NIR / VIS (real NIR-VIS) "
        "| nearest training identity / within-subject distance | farther |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["pair_quality"].items():
        fd = f"{s['fd_nir']['mean']:.2f} / {s['fd_vis']['mean']:.2f} ({s['fd_real']['mean']:.2f})"
        lines.append(
            f"| {name} | {_cell(s['tar'])} | {100 * s['real_tar']['mean']:.1f} | {_cell(s['tar_ratio'], 1.0, digits=2)}"
            f" | {s['auc']['mean']:.3f} | {fd} | {s['novel']['mean']:.3f} / {s['within']['mean']:.3f}"
            f" | {100 * s['farther']['mean']:.0f}% |"
        )
    if result["generator_curve"]:
        lines += [
            "",
            "| generator steps (seed 0, largest P) | TAR@FAR=1% % | ratio to real | FD NIR / VIS |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c['step']} | {100 * c['tar']:.1f} | {c['tar_ratio']:.2f} | {c['fd_nir']:.2f} / {c['fd_vis']:.2f} |"
            for c in result["generator_curve"]
        ]
    if result["finetune_curve"]:
        lines += ["", "| fine-tune steps (seed 0) | " + " | ".join(result["finetune_curve"]) + " |"]
        lines.append("|---" * (1 + len(result["finetune_curve"])) + "|")
        steps = sorted({c["step"] for cs in result["finetune_curve"].values() for c in cs})
        for step in steps:
            cells = []
            for cs in result["finetune_curve"].values():
                hit = [c for c in cs if c["step"] == step]
                cells.append(f"{100 * hit[0]['rank1']:.1f}" if hit else "–")
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    """Rank-1 by pair budget (with intervals), the generator's TAR curve, the fine-tune curves."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.0), dpi=100)
    budgets = [int(p) for p in result["recognition"]]
    methods = [m for m in ("vis-only", "real pairs", "real + DVG pairs") if m in result["recognition"][str(budgets[0])]]
    for k, method in enumerate(methods):
        stats = [result["recognition"][str(p)][method]["rank1"] for p in budgets]
        mean = [100 * s["mean"] for s in stats]
        err = [
            [100 * (s["mean"] - s["low"]) if s.get("low") is not None else 0 for s in stats],
            [100 * (s["high"] - s["mean"]) if s.get("high") is not None else 0 for s in stats],
        ]
        xs = [x + 0.04 * (k - 1) * x for x in budgets]
        axes[0].errorbar(xs, mean, yerr=err, marker="o", capsize=3, label=method)
    axes[0].set_xscale("log")
    axes[0].set_xticks(budgets, [str(p) for p in budgets])
    axes[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].set_xlabel("paired training subjects P")
    axes[0].set_ylabel("NIR -> VIS rank-1 (%)")
    axes[0].legend(fontsize=8)
    curve = result["generator_curve"]
    if curve:
        axes[1].plot([c["step"] for c in curve], [100 * c["tar"] for c in curve], marker="o", label="generated pairs")
        axes[1].axhline(100 * curve[0]["real_tar"], color="k", ls="--", lw=0.8, label="real test pairs")
        axes[1].axhline(80 * curve[0]["real_tar"], color="grey", ls=":", lw=0.8, label="0.8 x real")
        axes[1].set_xlabel("generator steps (seed 0, largest P)")
        axes[1].set_ylabel("judge TAR@FAR=1% (%)")
        axes[1].legend(fontsize=8)
    for name, points in result["finetune_curve"].items():
        axes[2].plot([c["step"] for c in points], [100 * c["rank1"] for c in points], marker="o", label=name)
    axes[2].set_xlabel("fine-tune steps (seed 0)")
    axes[2].set_ylabel("NIR -> VIS rank-1 (%)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def pair_grid(examples: dict[str, tuple[torch.Tensor, torch.Tensor]], path: Path, count: int = 8) -> None:
    """Rows of NIR then VIS images: each generator's first `count` pairs (and real test pairs)."""
    from hfr.viz import labelled_grid, save_image, tensor_to_images

    images: list[Any] = []
    labels: list[str] = []
    for name, (nir, vis) in examples.items():
        for modality, batch in (("NIR", nir), ("VIS", vis)):
            up = torch.nn.functional.interpolate(batch[:count].float(), size=64, mode="bilinear", align_corners=False)
            images += tensor_to_images(up.clamp(0, 1))
            labels.append(f"{name} {modality}")
    save_image(path, labelled_grid(images, count, row_labels=labels))


# ---------------------------------------------------------------------- training
def finetune_sets(
    train: Path, f_vis: Path, generated: Path | None, steps: int, seed: int, weight: float, every: int, quick: bool
) -> list[str]:
    """The NIR-VIS fine-tuning recipe from F-vis at 32 px (its architecture and CosFace head)."""
    warmup = max(1, steps // 4)
    sets = [
        f"data.train={train}",
        "data.eval=none",
        f"data.size={SIZE}",
        "net.arch=lightcnn9bn-w0.5",
        "net.head=cosface",
        "net.head_scale=16",
        "net.head_margin=0.2",
        f"net.pretrained={f_vis}",
        f"data.generated={generated or ''}",
        f"finetune.contrastive_weight={weight}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        f"finetune.warmup_steps={warmup}",
        f"optim.step_size={max(1, (steps - warmup) // 2)}",
        "train.sample_every=-1",
        *(s for s in quiet_sets(quick, 16) if not s.startswith("train.checkpoint_every")),
        f"train.checkpoint_every={every}",
        f"train.keep_checkpoints={max(1, steps // every) if every else 1}",
    ]
    return sets


def generator_sets(
    variant: str, train: Path, f_vis: Path, sampler: Path, webface: Path, seed: int, steps: int, every: int, quick: bool
) -> list[str]:
    """The `--set`s of one DVG-Face run."""
    sets = [
        f"data.train={train}",
        f"data.size={SIZE}",
        f"data.recognizer={f_vis}",
        f"data.identity_sampler={sampler}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        "train.sample_every=-1",
        *GENERATORS[variant][0],
        *(s for s in quiet_sets(quick, 4) if not s.startswith("train.checkpoint_every")),
        f"train.checkpoint_every={every}",
        f"train.keep_checkpoints={max(1, steps // every) if every else 1}",
    ]
    if variant == "unpaired":
        sets.append(f"data.unpaired={webface}")
    return sets


def recognizer_from_checkpoint(path: Path) -> Any:
    """A Recognizer of a fine-tuning checkpoint's LightCNN (classifier dropped)."""
    from benchmarks.judge import _recognizer_from_state
    from hfr.engine.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    net = state["config"]["net"]
    return _recognizer_from_state(state["task"]["net"], net["arch"], int(state["config"]["data"]["size"]))


# ---------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", choices=[b for b in BUDGETS if b != "quick"], default="default")
    p.add_argument("--data", type=Path, default=ROOT / "data", help="SynthFace sets (rendered when absent)")
    p.add_argument("--instruments", type=Path, default=ROOT / "runs" / "judge" / "runs", help="judge/F-vis stages")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "cross_modal" / "runs", help="training runs")
    p.add_argument("--judge", type=Path, default=None, help="given judge recognizer.pt (not trained)")
    p.add_argument("--f-vis", type=Path, default=None, help="given VIS-only recognizer.pt (not trained)")
    p.add_argument("--folds", type=int, default=5, help="random halves of the test subjects")
    add_budget_run_options(p, RESULTS)
    args = p.parse_args(argv)
    quick_folders(args, p, ["data", "instruments", "runs"])
    return args


def main(argv: list[str] | None = None) -> int:
    """Render, train or reuse, generate, fine-tune, measure, aggregate; write JSON, Markdown and PNGs."""
    from dvg.export import export_checkpoint
    from dvg.generate import generate_pairs, load_dvg
    from hfr.embed import embed_manifest
    from hfr.eval.folds import random_subject_folds
    from hfr.eval.generator import Judges, evaluate_pairs
    from hfr.eval.protocols import cross_modal
    from hfr.recognizer.export import load_recognizer

    args = parse_args(argv)
    start(args.threads or (1 if args.quick else None))
    q = args.quick
    budget = BUDGETS["quick" if q else args.budget]
    curve_seed, curve_budget = budget.seeds[0], max(budget.pair_budgets)
    if args.seeds is not None:
        budget = replace(budget, seeds=tuple(s for s in budget.seeds if s in args.seeds) or args.seeds)
    t0 = time.perf_counter()
    shared = render_shared_data(args.data, size=32 if q else 64, subjects=QUICK_SUBJECTS if q else None)
    inst = shared_instruments(args.instruments, shared, q, args.reuse, {"judge": args.judge})
    f_vis = args.f_vis or finished_stage_file(args.instruments, "recognizer-F-vis")
    if f_vis is None:
        tiny = ["train.steps=4", "batch_size=8", "train.num_workers=0", "train.progress=false", "train.eval_every=-1"]
        f_stages = Stages(args.instruments, reuse=args.reuse or q, meta={"benchmark": "judge"})
        f_vis = train_shared_recognizer(f_stages, "F-vis", shared, tiny if q else []).file
    stages = Stages(args.runs, reuse=args.reuse, meta={"benchmark": "cross_modal"})
    nirvis = Manifest.read(shared.nirvis)
    data_dir = args.runs.parent / "data"
    subsets: dict[int, Path] = {}
    for p in budget.pair_budgets:
        folder = data_dir / f"pairs-{p}"
        pair_budget_manifest(nirvis, p).write(folder / "manifest.csv")
        subsets[p] = folder
    sampler = stages.train(
        "identity-sampler",
        recipe_file(RECIPES["sampler"]),
        [
            f"data.train={shared.webface}",
            f"data.recognizer={f_vis}",
            f"train.steps={4 if q else 2000}",
            *quiet_sets(q, 16),
        ],
        "identity_sampler",
    )

    # generators: name -> file; the curve run keeps its checkpoints
    generators: dict[tuple[str, int, int], Path] = {}
    for seed in budget.seeds:
        for p in budget.pair_budgets:
            names = ["dvg", *(budget.variants if p == budget.variant_budget else ())]
            for v in names:
                curve = v == "dvg" and seed == curve_seed and p == curve_budget
                steps = budget.curve_steps if curve else budget.generator_steps
                every = budget.checkpoint_every if curve else 0
                sets = generator_sets(v, subsets[p], f_vis, sampler, shared.webface, seed, steps, every, q)
                generators[(v, p, seed)] = stages.train(f"{v}-p{p}-s{seed}", recipe_file(RECIPES["dvg"]), sets)
    t_gen = time.perf_counter() - t0

    judge = Judges(load_recognizer(inst["judge"]), None)
    work = args.out / "cross_modal_work"
    measured = args.runs / "measurements"

    def quality(file: Path, label: str) -> dict[str, float]:
        loaded = load_dvg(file)
        key = {"generator": loaded.fingerprint, "judge": str(inst["judge"]), "n": budget.measure_pairs}
        cache = measured / f"pairs-{label}.json"
        found = cached_measurement(cache, key) if args.reuse else None
        if found is not None:
            return dict(found["figures"])
        logging.info("measuring the pairs of %s", label)
        figs = pair_figures(evaluate_pairs(loaded, nirvis, judge, count=budget.measure_pairs, seed=0))
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps({"key": key, "figures": figs}) + "\n")
        return figs

    curve_run = generators.get(("dvg", curve_budget, curve_seed))
    gen_curve: list[dict[str, Any]] = []
    pair_q: dict[tuple[str, int, int], dict[str, float]] = {}
    examples: dict[str, Any] = {}
    for (v, p, seed), file in generators.items():
        use = file
        if (v, p, seed) == ("dvg", curve_budget, curve_seed) and budget.curve_steps != budget.generator_steps:
            use = work / f"curve-{budget.generator_steps}.pt"
            export_checkpoint(checkpoint_at(file, budget.generator_steps), use)
        pair_q[(v, p, seed)] = quality(use, f"{v}-p{p}-s{seed}")
        if seed == curve_seed and v == "dvg":
            examples[f"DVG P={p}"] = load_dvg(use).sample_pairs(8, 0)
    if curve_run is not None:
        for step in range(budget.checkpoint_every, budget.curve_steps + 1, budget.checkpoint_every):
            if step == budget.generator_steps:
                gen_curve.append({"step": step, **pair_q[("dvg", curve_budget, curve_seed)]})
                continue
            file = work / f"curve-{step}.pt"
            export_checkpoint(checkpoint_at(curve_run, step), file)
            gen_curve.append({"step": step, **quality(file, f"curve-{step}")})

    # pairs and fine-tunings
    folds_test = random_subject_folds(
        nirvis.filter(lambda r: r.split == "test" and r.modality in ("nir", "vis")), args.folds, 0
    )

    def recognition(file: Path | Any) -> dict[str, float]:
        rec = load_recognizer(file) if isinstance(file, Path) else file
        return fold_figures(cross_modal(folds_test, embed_manifest(rec, folds_test, batch_size=256)))

    vis_only = recognition(Path(f_vis))
    per_seed: dict[int, dict[str, dict[int, dict[str, float]]]] = {p: {} for p in budget.pair_budgets}
    ft_curve: dict[str, list[dict[str, Any]]] = {}
    ft_steps = budget.finetune_steps
    ft_every = max(1, ft_steps // budget.finetune_points)
    for seed in budget.seeds:
        for p in budget.pair_budgets:
            runs: dict[str, tuple[Path | None, float]] = {"real pairs": (None, RELEASED_CONTRASTIVE)}
            variants = ["dvg", *(budget.variants if p == budget.variant_budget else ())]
            for v in variants:
                folder = args.runs / "pairs" / f"{v}-p{p}-s{seed}"
                if not args.reuse and folder.exists():
                    shutil.rmtree(folder)  # a new generator: its pairs start afresh
                generate_pairs(load_dvg(generators[(v, p, seed)]), folder, budget.pairs, seed=seed)
                name = "real + DVG pairs" if v == "dvg" else f"real + DVG pairs, {v}"
                runs[name] = (folder, RELEASED_CONTRASTIVE)
            if p == budget.variant_budget:
                for w in budget.contrastive:
                    runs[f"real + DVG pairs, L_ct weight {w:g}"] = (runs["real + DVG pairs"][0], w)
            per_seed[p].setdefault("vis-only", {})[seed] = vis_only
            for method, (pairs, weight) in runs.items():
                tag = method.replace("real + DVG pairs", "dvg").replace(", ", "-").replace(" ", "")
                stage = f"ft-{tag}-p{p}-s{seed}"
                curve = seed == curve_seed and method in ("real pairs", "real + DVG pairs")
                sets = finetune_sets(subsets[p], f_vis, pairs, ft_steps, seed, weight, ft_every if curve else 0, q)
                rec = stages.train(stage, recipe_file(RECIPES["finetune"]), sets)
                per_seed[p].setdefault(method, {})[seed] = recognition(rec)
                if curve:
                    points = [{"step": 0, **vis_only}]
                    for ck in sorted((rec.parent / "checkpoints").glob("step-*.pt")):
                        step = int(ck.stem.split("-")[1])
                        fig = (
                            per_seed[p][method][seed]
                            if step == ft_steps
                            else recognition(recognizer_from_checkpoint(ck))
                        )
                        points.append({"step": step, **fig})
                    ft_curve[f"{method}, P={p}"] = points

    pair_quality: dict[str, dict[str, Any]] = {}
    for (v, p, seed), figs in pair_q.items():
        pair_quality.setdefault(f"{v}, P={p}", {}).setdefault("_seeds", {})[seed] = figs
    for entry in pair_quality.values():
        by_seed = entry.pop("_seeds")
        entry.update({k: t_interval([f[k] for f in by_seed.values()]) for k in PAIR_FIGURES})
        entry["per_seed"] = by_seed
    result: dict[str, Any] = {
        "benchmark": "cross_modal: DVG-Face pairs and NIR-VIS recognition where pairs are scarce",
        "command": command_line(argv),
        "budget": {"name": "quick" if q else args.budget, **asdict(budget)},
        "generators": {v: {"sets": GENERATORS[v][0], "what": GENERATORS[v][1]} for v in ("dvg", *budget.variants)},
        "recipes": {k: f"configs/{v}" for k, v in RECIPES.items()},
        "instruments": {"judge": str(inst["judge"]), "F-vis": str(f_vis)},
        "data": {"nirvis": str(shared.nirvis), "webface": str(shared.webface), "folds": args.folds},
        "recognition": {str(p): aggregate(per_seed[p], "real pairs") for p in budget.pair_budgets},
        "per_seed": {str(p): per_seed[p] for p in budget.pair_budgets},
        "pair_quality": pair_quality,
        "generator_curve": gen_curve,
        "finetune_curve": ft_curve,
        "stages": stages.records,
        "seconds": {"generators": round(t_gen, 1), "total": round(time.perf_counter() - t0, 1)},
        "machine": machine_info(),
    }
    table = markdown(result)
    result["table"] = table
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    title = f"DVG-Face on SynthFace nirvis, {SIZE} px, budget {result['budget']['name']}, seeds {list(budget.seeds)}"
    plot(result, args.out / "cross_modal.png", title)
    if examples:
        test = nirvis.filter(lambda r: r.split == "test")
        from hfr.eval.generator import real_pairs

        real = real_pairs(test, SIZE, 3, "test")
        first = {s: k for k, s in reversed(list(enumerate(real["vis_subjects"])))}
        firstn = {s: k for k, s in reversed(list(enumerate(real["nir_subjects"])))}
        order = sorted(firstn)[:8]
        examples["real test"] = (real["nir"][[firstn[s] for s in order]], real["vis"][[first[s] for s in order]])
        pair_grid(examples, args.out / "cross_modal_pairs.png")
    atomic_write_text(args.out / "cross_modal.json", json.dumps(result, indent=2, default=str) + "\n")
    atomic_write_text(args.out / "cross_modal.md", table)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out / 'cross_modal.json'}, cross_modal.md, cross_modal.png, cross_modal_pairs.png")
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
