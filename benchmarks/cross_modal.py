"""Cross-modal (NIR probe -> VIS gallery) recognition on SynthFace `nirvis` (or CASIA NIR-VIS 2.0): does
fine-tuning with DVG-Face's generated pairs help over real pairs alone?

Methods (each a LightCNN-9 recognizer, evaluated with `hfr.eval.protocols.cross_modal`):

1. `vis-only`: LightCNN-9 trained on VIS faces only (SynthFace `webface`; 32 px, AdamW as in
   `benchmarks/cross_pose.py`, `LIGHTCNN_STEPS` steps);
2. `real pairs`: 1 fine-tuned on the real NIR-VIS training subjects
   (configs/recognizer/synth-finetune.yaml at 32 px, `FINETUNE_STEPS` steps);
3. `real + DVG pairs`: as 2 with `data.generated` = pairs from `hfr generate-pairs` of a DVG-Face
   generator (configs/dvg/synth-nirvis.yaml at 32 px, `DVG_STEPS` steps; F = 1, F_s trained on
   1's `webface` features by configs/dvg/synth-identity-sampler.yaml; attribute codes encoded from
   real training pairs, `--attributes real`, the released sampling);
4. ablations, as 3 with the generator trained without the angular orthogonal loss (`loss.ort=0`)
   and without the pairwise identity preserving loss (`loss.ip=0`).

Folds: a manifest with `fold_k` columns (a CASIA NIR-VIS 2.0 index) is evaluated on its own
folds. SynthFace has none: `--folds` (5) random halves of the test subjects (drawn from `--seed`,
`hfr.eval.folds.random_subject_folds`) play their part, each with its subjects' gallery VIS image
and every NIR image as probes. The figures are mean +- std over folds; `--seeds 0 1 2` repeats
every fine-tuning (and generation) with other seeds, and the mean +- std is then taken over
every (seed, fold).

Writes into `--out` (default benchmarks/results): `cross_modal.json` (per method: rank-1 and
VR@FAR 1%, 0.1%, 0.01% mean +- std, per-fold values; pair statistics of each generator; recipes,
`--set`s, steps, seconds per stage; machine), `cross_modal.md` (the table), `cross_modal_roc.png`
(ROC of every method on all test subjects, seed 0) and `cross_modal_pairs.png` (generated pairs of
each generator).

    python benchmarks/cross_modal.py                    # about 25 min on a quiet 2-core CPU
    python benchmarks/cross_modal.py --reuse            # skip the stages finished by an earlier run
    python benchmarks/cross_modal.py --quick --out /tmp/cm   # tiny sizes, a smoke test (< 2 min)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, lightcnn_sets, quiet_sets, script_main, show_progress  # noqa: E402
from hfr.data.manifest import Manifest  # noqa: E402
from hfr.embed import embed_manifest  # noqa: E402
from hfr.engine.stages import Stages, render_synth  # noqa: E402
from hfr.eval.folds import random_subject_folds  # noqa: E402
from hfr.eval.protocols import FAR_LEVELS, cross_modal, fold_names  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.perf import configure_process  # noqa: E402
from hfr.recognizer.export import load_recognizer  # noqa: E402
from hfr.viz import labelled_grid, plot_roc, save_image, tensor_to_images  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RECIPES = {
    "lightcnn": ROOT / "configs" / "recognizer" / "synth-pretrain.yaml",
    "sampler": ROOT / "configs" / "dvg" / "synth-identity-sampler.yaml",
    "dvg": ROOT / "configs" / "dvg" / "synth-nirvis.yaml",
    "finetune": ROOT / "configs" / "recognizer" / "synth-finetune.yaml",
}
DATA_RECIPES = {p: ROOT / "configs" / "data" / f"synth-{p}.yaml" for p in ("webface", "nirvis")}
#: The generators: name -> extra `--set`s of configs/dvg/synth-nirvis.yaml.
GENERATORS: dict[str, list[str]] = {"dvg": [], "dvg-no-ort": ["loss.ort=0"], "dvg-no-ip": ["loss.ip=0"]}
#: The recognizers in the table: name -> the generator whose pairs its fine-tuning adds (None: none).
METHODS: dict[str, str | None] = {
    "real pairs": None,
    "real + DVG pairs": "dvg",
    "real + DVG pairs, no L_ort": "dvg-no-ort",
    "real + DVG pairs, no L_ip": "dvg-no-ip",
}
#: Sizes of the default run, chosen so that it takes about 25 min on a quiet 2-core CPU.
WEBFACE_SUBJECTS, NIRVIS_SUBJECTS, RENDER_SIZE = 300, 360, 64
SIZE = 32  #: recognizer and generator input (faces are resized)
LIGHTCNN_STEPS = 1000  #: VIS pretraining (AdamW 1e-3, lr / 10 at 70%)
SAMPLER_STEPS = 2000  #: identity sampler F_s
DVG_STEPS = 600  #: each DVG-Face generator (~3 min at 32 px)
PAIRS = 3000  #: generated pairs per generator
FINETUNE_STEPS = 300  #: each fine-tuning (a quarter of them classifier-only, as the recipe's warm-up)
QUICK = {
    "webface": 10,
    "nirvis": 10,
    "render_size": 32,
    "lightcnn": 4,
    "sampler": 4,
    "dvg": 2,
    "pairs": 16,
    "finetune": 3,
    "folds": 2,
}


# ---------------------------------------------------------------------- training
def finetune_sets(
    nirvis: Path, pretrained: Path, generated: Path | None, steps: int, seed: int, quick: bool
) -> list[str]:
    """The NIR-VIS fine-tuning recipe at 32 px with `steps` steps (a quarter of them classifier-only)."""
    warmup = max(1, steps // 4)
    return [
        f"data.train={nirvis}",
        "data.eval=none",
        f"data.size={SIZE}",
        f"net.pretrained={pretrained}",
        f"data.generated={generated or ''}",
        f"train.seed={seed}",
        f"train.steps={steps}",
        f"finetune.warmup_steps={warmup}",
        f"optim.step_size={max(1, (steps - warmup) // 2)}",
        "train.sample_every=-1",
        *quiet_sets(quick, 16),
    ]


# ---------------------------------------------------------------------- evaluation
def evaluate(recognizer_file: Path, test: Manifest, plain: Manifest | None) -> dict[str, Any]:
    """cross_modal() of one recognizer on the fold-marked test manifest, and the ROC of the plain
    (fold-free, same rows) one: every test subject at once (None: the first fold's ROC)."""
    recognizer = load_recognizer(recognizer_file)
    feats = embed_manifest(recognizer, test)
    folded = cross_modal(test, feats)
    roc = cross_modal(plain, feats)["folds"][0]["roc"] if plain is not None else folded["folds"][0]["roc"]
    return {"folds": folded["folds"], "roc": roc}


METRICS = ("rank1", *(f"vr@far={far:g}" for far in FAR_LEVELS))


def summarise(fold_results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and std (population) over every fold result of a method, per metric."""
    out: dict[str, dict[str, float]] = {}
    for m in METRICS:
        values = np.array([r[m] for r in fold_results], dtype=float)
        out[m] = {"mean": float(values.mean()), "std": float(values.std()), "n": int(len(values))}
    return out


def paired_difference(method: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per metric, the mean and std over (seed, fold) of method - reference on the same seed and fold:
    the fold-to-fold spread cancels, so this is the figure to read a method's gain by."""
    ref = {(f["seed"], f["fold"]): f for f in reference}
    out: dict[str, dict[str, float]] = {}
    for m in METRICS:
        diff = np.array([f[m] - ref[(f["seed"], f["fold"])][m] for f in method if (f["seed"], f["fold"]) in ref])
        out[m] = {"mean": float(diff.mean()), "std": float(diff.std()), "n": int(len(diff))}
    return out


def pair_figure(pairs: dict[str, Path], path: Path, count: int = 8) -> None:
    """Rows of generated NIR and VIS images (the first `count` pairs) of each generator."""
    from hfr.data.datasets import ManifestDataset

    images: list[np.ndarray | None] = []
    labels: list[str] = []
    for name, folder in pairs.items():
        m = Manifest.read(folder)
        for modality in ("nir", "vis"):
            rows = m.with_records([r for r in m.records if r.modality == modality and int(r.get("pair")) < count])
            rows = rows.with_records(sorted(rows, key=lambda r: int(r.get("pair"))))
            ds = ManifestDataset(rows, size=64, channels=3)
            images += tensor_to_images(torch.stack([ds[i]["image"] for i in range(len(ds))]))
            images += [None] * (count - len(ds))
            labels.append(f"{name} {modality.upper()}")
    save_image(path, labelled_grid(images, count, row_labels=labels))


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Render, train, generate, fine-tune, evaluate; print the table; write JSON, Markdown and PNGs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--nirvis",
        type=Path,
        help="NIR-VIS manifest or folder (a CASIA NIR-VIS 2.0 index with "
        "fold_k columns, or SynthFace nirvis); rendered when absent",
    )
    ap.add_argument("--webface", type=Path, help="VIS pretraining set; rendered (SynthFace webface) when absent")
    ap.add_argument("--seed", type=int, default=0, help="render seed, fold draw and the first training seed")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="fine-tuning (and pair generation) seeds (default: --seed only)",
    )
    ap.add_argument("--folds", type=int, default=5, help="random halves of the test subjects (SynthFace)")
    ap.add_argument("--runs", type=Path, help="training runs (default runs/cross_modal)")
    ap.add_argument("--reuse", action="store_true", help="reuse stages an earlier run finished with the same sets")
    ap.add_argument("--threads", type=int, help="torch threads (default torch's)")
    ap.add_argument("--quick", action="store_true", help="smoke mode at tiny sizes; needs --out")
    ap.add_argument("--out", type=Path, help="output folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_progress()
    configure_process()
    if args.quick and args.out is None:
        raise SystemExit("--quick writes into --out DIR only (never over benchmarks/results)")
    q = args.quick
    if q:
        args.threads = args.threads or 1
        args.folds = QUICK["folds"]
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = args.seeds or [args.seed]
    out = args.out or RESULTS
    base = out if q else ROOT / "runs" / "cross_modal"
    runs = args.runs or base / "runs"
    steps = {
        k: QUICK[k] if q else v
        for k, v in (
            ("lightcnn", LIGHTCNN_STEPS),
            ("sampler", SAMPLER_STEPS),
            ("dvg", DVG_STEPS),
            ("finetune", FINETUNE_STEPS),
        )
    }
    n_pairs = QUICK["pairs"] if q else PAIRS
    render_size = QUICK["render_size"] if q else RENDER_SIZE
    t_all = time.perf_counter()
    stages = Stages(runs, reuse=args.reuse, meta={"benchmark": "cross_modal"})

    t = time.perf_counter()
    webface_n, nirvis_n = (QUICK["webface"], QUICK["nirvis"]) if q else (WEBFACE_SUBJECTS, NIRVIS_SUBJECTS)
    webface, rendered_w, _ = render_synth(
        DATA_RECIPES["webface"],
        args.webface or base / f"data-webface-{webface_n}x{render_size}-seed{args.seed}",
        webface_n,
        render_size,
        args.seed,
        workers=1 if q else 2,
    )
    nirvis, rendered_n, _ = render_synth(
        DATA_RECIPES["nirvis"],
        args.nirvis or base / f"data-nirvis-{nirvis_n}x{render_size}-seed{args.seed}",
        nirvis_n,
        render_size,
        args.seed,
        workers=1 if q else 2,
    )
    stages.seconds["render"] = round(time.perf_counter() - t, 1)
    full = Manifest.read(nirvis)
    test = full.filter(lambda r: r.split == "test" and r.modality in ("nir", "vis"))
    if len(test) == 0:
        raise SystemExit(f"{nirvis}: no NIR/VIS rows of split 'test'; the protocol evaluates the test subjects")
    plain = None
    if not fold_names(test):
        plain, test = test, random_subject_folds(test, args.folds, args.seed)

    vis_only = stages.train(
        "lightcnn-vis",
        RECIPES["lightcnn"],
        [*lightcnn_sets(webface, SIZE, steps["lightcnn"], args.seed), *quiet_sets(q, 16)],
    )
    sampler = stages.train(
        "identity-sampler",
        RECIPES["sampler"],
        [f"data.train={webface}", f"data.recognizer={vis_only}", f"train.steps={steps['sampler']}", *quiet_sets(q, 16)],
        "identity_sampler",
    )
    generators: dict[str, Path] = {}
    for name, extra in GENERATORS.items():
        sets = [
            f"data.train={nirvis}",
            f"data.size={SIZE}",
            f"data.recognizer={vis_only}",
            f"data.identity_sampler={sampler}",
            f"train.seed={args.seed}",
            f"train.steps={steps['dvg']}",
            f"train.sample_every={steps['dvg'] if not q else -1}",
            *extra,
            *quiet_sets(q, 4),
        ]
        generators[name] = stages.train(name, RECIPES["dvg"], sets)

    from dvg.generate import generate_pairs, load_dvg, pair_statistics

    t = time.perf_counter()
    pairs: dict[tuple[str, int], Path] = {}
    pair_stats: dict[str, dict[str, float]] = {}
    vis_rec = load_recognizer(vis_only)
    for name, gen_file in generators.items():
        loaded = load_dvg(gen_file)
        for seed in seeds:
            folder = runs / "pairs" / f"{name}-seed{seed}"
            if not args.reuse and (folder / "generated.json").is_file():
                import shutil

                shutil.rmtree(folder)  # a new generator: its pairs start afresh
            generate_pairs(loaded, folder, n_pairs, seed=seed, attributes="real", data=nirvis)
            pairs[(name, seed)] = folder
        pair_stats[name] = pair_statistics(vis_rec, Manifest.read(pairs[(name, seeds[0])]), max_pairs=1000)
    stages.seconds["generate pairs"] = round(time.perf_counter() - t, 1)

    results: dict[str, dict[str, Any]] = {}
    t = time.perf_counter()
    ev = evaluate(vis_only, test, plain)
    results["vis-only"] = {"folds": [{"seed": None, **f} for f in ev["folds"]], "roc": ev["roc"]}
    stages.seconds["evaluate"] = round(time.perf_counter() - t, 1)
    for method, gen_name in METHODS.items():
        results[method] = {"folds": [], "roc": None}
        for seed in seeds:
            generated = pairs[(gen_name, seed)] if gen_name else None
            stage = f"finetune-{gen_name or 'real'}-seed{seed}"
            rec = stages.train(
                stage, RECIPES["finetune"], finetune_sets(nirvis, vis_only, generated, steps["finetune"], seed, q)
            )
            t = time.perf_counter()
            ev = evaluate(rec, test, plain)
            stages.seconds["evaluate"] += round(time.perf_counter() - t, 1)
            results[method]["folds"] += [{"seed": seed, **f} for f in ev["folds"]]
            if results[method]["roc"] is None:
                results[method]["roc"] = ev["roc"]
    for r in results.values():
        r["summary"] = summarise(r["folds"])
    for name, r in results.items():
        if METHODS.get(name):
            r["minus_real_pairs"] = paired_difference(r["folds"], results["real pairs"]["folds"])
    for r in results.values():
        for f in r["folds"]:
            f.pop("roc", None)
            f.pop("cmc", None)

    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    plot_roc(
        {name: r["roc"] for name, r in results.items() if r["roc"]},
        out / "cross_modal_roc.png",
        title=f"NIR->VIS ROC, all {len(test.subjects())} test subjects ({'quick, ' if q else ''}seed {seeds[0]})",
    )
    pair_figure({name: pairs[(name, seeds[0])] for name in generators}, out / "cross_modal_pairs.png")
    stages.seconds["figures"] = round(time.perf_counter() - t, 1)
    stages.seconds["total"] = round(time.perf_counter() - t_all, 1)

    header = "| method | rank-1 % | VR@FAR=1% | VR@FAR=0.1% | VR@FAR=0.01% |"
    lines = [header, "|---|---|---|---|---|"]
    for name, r in results.items():
        cells = [f"{100 * r['summary'][m]['mean']:.1f} ± {100 * r['summary'][m]['std']:.1f}" for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| minus `real pairs` on the same seed and fold | rank-1 | VR@FAR=1% | VR@FAR=0.1% | VR@FAR=0.01% |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "minus_real_pairs" in r:
            d = r["minus_real_pairs"]
            lines.append(
                f"| {name} | "
                + " | ".join(f"{100 * d[m]['mean']:+.1f} ± {100 * d[m]['std']:.1f}" for m in METRICS)
                + " |"
            )
    lines += [
        "",
        "| generator | NIR-VIS cosine of a pair (consistency) | cosine between pairs (diversity) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {s['consistency']:.3f} | {s['diversity']:.3f} |" for name, s in pair_stats.items()]
    table = "\n".join(lines)
    print(table)
    info = machine_info(device="cuda" if torch.cuda.is_available() else "cpu")
    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    n_folds = len(fold_names(test))
    result = {
        "benchmark": "cross-modal NIR->VIS identification and verification: LightCNN-9 VIS-only, fine-tuned on "
        "real pairs, and with DVG-Face generated pairs (and two generator ablations)",
        "command": command_line(argv),
        "quick": q,
        "seed": args.seed,
        "seeds": seeds,
        "data": {
            "nirvis": str(nirvis),
            "webface": str(webface),
            "rendered_now": rendered_w or rendered_n,
            "nirvis_subjects": len(full.subjects()),
            "test_subjects": len(test.subjects()),
            "test_images": len(test),
            "folds": n_folds,
            "fold_kind": "manifest fold_k columns"
            if args.nirvis and n_folds and not q and fold_names(Manifest.read(nirvis))
            else f"{n_folds} random halves of the test subjects (seed {args.seed})",
        },
        "sizes": {"input": SIZE, "render": render_size, "pairs_per_generator": n_pairs, "steps": steps},
        "stages": stages.records,
        "pair_statistics": {"recognizer": "vis-only", **pair_stats},
        "results": {
            name: {k: r[k] for k in ("summary", "minus_real_pairs", "folds") if k in r} for name, r in results.items()
        },
        "table": table,
        "seconds": stages.seconds,
        "machine": info,
    }
    atomic_write_text(out / "cross_modal.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "cross_modal.md", table + "\n")
    print(
        f"wrote {out / 'cross_modal.json'}, cross_modal.md, cross_modal_roc.png, cross_modal_pairs.png "
        f"({stages.seconds['total']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
