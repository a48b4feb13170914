"""Cross-pose recognition on SynthFace `multipie` (or a Multi-PIE index): LightCNN against DR-GAN.

Rank-1 at |yaw| 0, 15, 30, 45, 60 and the mean over the non-frontal bins
(`hfr.eval.protocols.cross_pose`: gallery = one frontal image per test subject, probes = every
other test image) for:

1. `lightcnn`: LightCNN-9 trained on the training subjects (configs/recognizer/synth-pretrain.yaml
   with `LIGHTCNN_SIZE` / `LIGHTCNN_STEPS`: 32 px input, 600 steps of AdamW, about 3 min on 2 cores);
2. `drgan`: single-image DR-GAN's identity feature f(x) = G_enc(x)
   (configs/drgan/synth-multipie.yaml);
3. `drgan-multi n=1/2/4`: the multi-image DR-GAN (configs/drgan/synth-multipie-multi.yaml);
   each probe template fuses n images of one test subject at one yaw (other lights and
   expressions) as f_bar = sum omega_i f_i / sum omega_i (`drgan.models.fuse_features` of the
   raw G_enc features and confidences); templates are drawn from `--seed`: a subject/yaw
   with k >= n probe images gives k // n templates of n images (the remainder is left out),
   one with k < n gives one template of all k. The gallery is the same single frontal image;
   n=1 is the multi-image model on single images (the reference for the fusion gain);
4. `lightcnn-frontalized`: the LightCNN above on probes frontalized by the single-image DR-GAN
   (every probe decoded at the 0-degree pose bin with one fixed z; gallery images as they are).

Models are trained through the library's stage runner (`hfr.engine.stages.Stages`: the task a
recipe's `model:` names, as `hfr train-recognizer` / `hfr train-generator` run it) into `--runs`, each
for its recipe's
`train.steps` (times `--steps-scale`); `--reuse RUN_DIR ...` or `--lightcnn/--drgan/--drgan-multi`
(recognizer.pt / generator.pt or their run folders) skip training, so results can be re-evaluated.

The data: `--data DIR` with a manifest (a real Multi-PIE index: split train/test, gallery rows),
or SynthFace `multipie` rendered there when absent (configs/data/synth-multipie.yaml: 200
subjects at 64 px; `--seed` is the render seed too).

Writes into `--out` (default benchmarks/results): `cross_pose.json` (rank-1 per method and
yaw, recipes, steps, seeds, seconds per stage, machine), `cross_pose.png` (rank-1 against
|yaw|), `cross_pose_sweep.png` (6 test faces rotated to every pose bin by the single-image
G) and `cross_pose_frontalized.png` (probes at each |yaw| and their frontalized versions).

    python benchmarks/cross_pose.py                   # about 25 min on a quiet 2-core CPU
    python benchmarks/cross_pose.py --reuse runs/cross_pose/lightcnn/<stamp> ...
    python benchmarks/cross_pose.py --quick --out /tmp/cp   # 12 subjects at 32 px, < 60 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, lightcnn_sets, quiet_sets, script_main, show_progress  # noqa: E402
from drgan.export import LoadedGenerator, load_generator  # noqa: E402
from drgan.frontalize import frontalize  # noqa: E402
from drgan.models import fuse_features  # noqa: E402
from drgan.recognizer import as_recognizer, encoder_module  # noqa: E402
from hfr.config import read_recipe, read_yaml  # noqa: E402
from hfr.data.datasets import ManifestDataset  # noqa: E402
from hfr.data.manifest import MANIFEST_NAME, Manifest, Record, make_record  # noqa: E402
from hfr.data.stats import yaw_bin  # noqa: E402
from hfr.embed import embed_manifest  # noqa: E402
from hfr.engine.stages import Stages, render_synth  # noqa: E402
from hfr.eval.protocols import cross_pose, cross_pose_split  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info as hfr_machine_info  # noqa: E402
from hfr.nn.ranges import to_signed, to_unit  # noqa: E402
from hfr.perf import configure_process  # noqa: E402
from hfr.recognizer.export import Recognizer, load_recognizer  # noqa: E402
from hfr.viz import labelled_grid, plot_rank1_vs_yaw, save_image, tensor_to_images  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DATA_RECIPE = ROOT / "configs" / "data" / "synth-multipie.yaml"
RECIPES = {
    "lightcnn": ROOT / "configs" / "recognizer" / "synth-pretrain.yaml",
    "drgan": ROOT / "configs" / "drgan" / "synth-multipie.yaml",
    "drgan-multi": ROOT / "configs" / "drgan" / "synth-multipie-multi.yaml",
}
#: LightCNN-9 sized to train in about 3 min on 2 cores (synth-pretrain.yaml is 1500 steps at
#: 64 px with SGD, about 35 min): 32 px input (4x cheaper per step), 600 steps of 64 (about 9
#: epochs of the 120 training subjects' 4,320 images) with the quickstart's AdamW 1e-3, the lr
#: divided by 10 at 70% of training.
LIGHTCNN_SIZE, LIGHTCNN_STEPS = 32, 600
#: Expected seconds per training step at batch 64 on a quiet 2-core CPU: DR-GAN from its recipes'
#: ~80 img/s; the others by the ratios measured here (1 torch thread while other jobs ran, load
#: ~5: drgan 1.12 s, drgan-multi 1.25 s, lightcnn at 32 px 0.70 s). Only for the printed estimate.
SECONDS_PER_STEP = {"lightcnn": 0.50, "drgan": 0.80, "drgan-multi": 0.89}
#: Embedding (read, resize, forward) and SynthFace rendering rates at 64 px on 2 quiet cores,
#: about twice what a busy shared machine gave (350 and 310 img/s with 1 thread).
EMBED_IMAGES_PER_S, RENDER_IMAGES_PER_S = 700.0, 600.0
SECONDS_PER_STEP_SIZE = {"lightcnn": LIGHTCNN_SIZE, "drgan": 64, "drgan-multi": 64}
QUICK = {"subjects": 12, "size": 32, "steps": 3, "batch": 16}
MULTI_NS = (1, 2, 4)
SWEEP_SUBJECTS = 6
FILES = {"lightcnn": "recognizer.pt", "drgan": "generator.pt", "drgan-multi": "generator.pt"}
SHOWN_YAWS = (0, 15, 30, 45, 60)


# ---------------------------------------------------------------------- training
def training_sets(method: str, args: argparse.Namespace, data: Path) -> list[str]:
    """The `--set` overrides of one method's recipe for this run."""
    folder = str(data)  # the manifest itself (data.train takes a manifest or its folder)
    recipe_steps = int(read_recipe(RECIPES[method]).get("train", {}).get("steps", 1000))
    steps = LIGHTCNN_STEPS if method == "lightcnn" else recipe_steps
    steps = args.steps if args.steps else max(1, round(steps * args.steps_scale))
    if method == "lightcnn":  # the benchmarks' AdamW setting (SGD from scratch stalls at ln(N) this short)
        sets = lightcnn_sets(data, LIGHTCNN_SIZE if not args.quick else args.size, steps, args.seed)
    else:
        sets = [f"data.train={folder}", f"train.seed={args.seed}", f"train.steps={steps}", f"data.size={args.size}"]
    sets.append(f"data.eval={folder}")  # rank-1 during training, on the whole set
    if args.quick:
        sets += quiet_sets(True, QUICK["batch"])
    return sets


def run_kind(run_dir: Path) -> str:
    """Which method a run folder holds, from its config.yaml (lightcnn, drgan or drgan-multi)."""
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise SystemExit(f"--reuse {run_dir}: no config.yaml; give a run folder written by training")
    data = read_yaml(config)
    if data.get("model") == "recognizer":
        return "lightcnn"
    if data.get("model") == "drgan":
        return "drgan-multi" if int(data.get("net", {}).get("multi_image", 0) or 0) >= 2 else "drgan"
    raise SystemExit(f"--reuse {run_dir}: model {data.get('model')!r} is none of recognizer, drgan")


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
def frontalized_features(recognizer: Recognizer, gen: LoadedGenerator, manifest: Manifest, seed: int) -> np.ndarray:
    """LightCNN features of every row: gallery images as they are, probes after frontalization."""
    gallery, _ = cross_pose_split(manifest)
    is_gallery = np.zeros(len(manifest), bool)
    is_gallery[gallery] = True
    out = []
    for batch in _loader(manifest, gen.size, gen.channels):
        x = batch["image"]
        keep = torch.from_numpy(is_gallery[batch["index"].numpy()])
        x = torch.where(keep.view(-1, 1, 1, 1), x, frontalize(gen, x, seed))
        out.append(recognizer.embed(x).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


# ---------------------------------------------------------------------- figures
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
def machine_info() -> dict[str, Any]:
    """CPU model, cores, torch threads and version, device, load (`hfr.machine.machine_info`)."""
    return hfr_machine_info(device="cuda" if torch.cuda.is_available() else "cpu")


def expected_seconds(args: argparse.Namespace, methods: list[str], render: bool) -> float:
    """A wall-time estimate on a quiet 2-core CPU: training steps x seconds per step, the recipes'
    in-training evaluations, rendering and the final evaluation (rates measured here, halved load)."""
    total = 0.0
    images = args.subjects * 36  # the multipie preset: 9 yaws x 4 lights per subject
    per_image = (args.size / 64) ** 2 / EMBED_IMAGES_PER_S
    for m in methods:
        train = read_recipe(RECIPES[m])["train"]
        recipe_steps = LIGHTCNN_STEPS if m == "lightcnn" else int(train["steps"])
        steps = args.steps or max(1, round(recipe_steps * args.steps_scale))
        size = (args.size if args.quick else LIGHTCNN_SIZE) if m == "lightcnn" else args.size
        batch = QUICK["batch"] if args.quick else 64
        total += steps * SECONDS_PER_STEP[m] * (size / SECONDS_PER_STEP_SIZE[m]) ** 2 * batch / 64
        every = int(train.get("eval_every", 0))
        if not args.quick and every >= 0:
            evals = 1 if every == 0 else steps // every + (1 if steps % every else 0)
            total += evals * images * per_image
    if render:
        total += images / RENDER_IMAGES_PER_S * (args.size / 64) ** 2
    return total + 4 * 0.4 * images * per_image  # final: 4 passes over the test split (40% of subjects)


def default_expected_seconds() -> float:
    """The estimate of the whole default run (render + three trainings + evaluation)."""
    ns = argparse.Namespace(steps=None, steps_scale=1.0, size=64, subjects=200, quick=False)
    return expected_seconds(ns, list(RECIPES), True)


def main(argv: list[str] | None = None) -> int:
    """Parse options, prepare data, train or load the models, evaluate, print, write JSON and PNGs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset folder or manifest; rendered (SynthFace multipie) when absent "
        "(default runs/cross_pose/data-multipie-<subjects>x<size>-seed<seed>)",
    )
    ap.add_argument("--subjects", type=int, default=None, help="SynthFace subjects when rendering (default 200)")
    ap.add_argument("--size", type=int, default=None, help="image size: render and DR-GAN input (default 64)")
    ap.add_argument("--seed", type=int, default=0, help="render seed, train.seed, template and z seed")
    ap.add_argument("--runs", type=Path, default=None, help="folder of the training runs (default runs/cross_pose)")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every recipe's train.steps")
    ap.add_argument("--steps", type=int, default=None, help="train every model this many steps (overrides)")
    ap.add_argument(
        "--reuse",
        type=Path,
        nargs="+",
        default=[],
        help="run folders of earlier trainings (kind read from their config.yaml): not retrained",
    )
    ap.add_argument("--lightcnn", type=Path, help="recognizer.pt (or run folder) of the LightCNN baseline")
    ap.add_argument("--drgan", type=Path, help="generator.pt (or run folder) of the single-image DR-GAN")
    ap.add_argument("--drgan-multi", type=Path, help="generator.pt (or run folder) of the multi-image DR-GAN")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default torch's; 1 on a busy machine)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK['subjects']} subjects at {QUICK['size']} px, {QUICK['steps']} steps "
        f"per model, batch {QUICK['batch']}; needs --out (never the committed results)",
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_progress()
    configure_process()  # the malloc policy of the `hfr` command
    if args.quick:
        if args.out is None:
            raise SystemExit("--quick writes into --out DIR only (never over benchmarks/results)")
        args.subjects = args.subjects or QUICK["subjects"]
        args.size = args.size or QUICK["size"]
        args.steps = args.steps or QUICK["steps"]
        args.threads = args.threads or 1
    args.subjects = args.subjects or int(read_recipe(DATA_RECIPE).get("subjects", 200))
    args.size = args.size or int(read_recipe(DATA_RECIPE).get("size", 64))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or RESULTS
    base = out if args.quick else ROOT / "runs" / "cross_pose"
    args.data = args.data or base / f"data-multipie-{args.subjects}x{args.size}-seed{args.seed}"
    args.runs = args.runs or base / "runs"

    given: dict[str, Path] = {}
    for run in args.reuse:
        given[run_kind(run)] = run
    for method, path in (("lightcnn", args.lightcnn), ("drgan", args.drgan), ("drgan-multi", args.drgan_multi)):
        if path is not None:
            given[method] = path
    to_train = [m for m in RECIPES if m not in given]
    t_all = time.perf_counter()
    seconds: dict[str, float] = {}
    data_manifest = Path(args.data) if Path(args.data).suffix == ".csv" else Path(args.data) / MANIFEST_NAME
    will_render = not data_manifest.is_file()
    print(
        f"expected wall time of this run: ~{expected_seconds(args, to_train, will_render) / 60:.1f} min; "
        f"of the whole default run: ~{default_expected_seconds() / 60:.0f} min "
        "(quiet 2-core CPU; a shared one is slower)",
        flush=True,
    )

    manifest_path, rendered, seconds["render"] = render_synth(
        DATA_RECIPE, Path(args.data), args.subjects, args.size, args.seed, workers=1 if args.quick else 2
    )
    stages = Stages(args.runs, meta={"benchmark": "cross_pose"})
    files: dict[str, Path] = {}
    for method in RECIPES:
        if method in given:
            files[method] = stages.given(method, given[method], FILES[method])
        else:
            files[method] = stages.train(method, RECIPES[method], training_sets(method, args, manifest_path))
            seconds[f"train_{method}"] = stages.records[method]["train_seconds"]
    records = stages.records

    t = time.perf_counter()
    full = Manifest.read(manifest_path)
    test = full.filter(lambda r: r.split == "test")
    if len(test) == 0:
        raise SystemExit(f"{manifest_path}: no rows of split 'test'; the protocol evaluates the test subjects")
    lightcnn = load_recognizer(files["lightcnn"])
    single = load_generator(files["drgan"])
    multi = load_generator(files["drgan-multi"])
    results: dict[str, dict[str, Any]] = {}
    results["lightcnn"] = cross_pose(test, embed_manifest(lightcnn, test))
    results["drgan"] = cross_pose(test, embed_manifest(as_recognizer(single.generator, single.width), test))
    feats, omega = encoder_features(multi, test)
    for n in MULTI_NS:
        results[f"drgan-multi n={n}"] = fused_cross_pose(test, feats, omega, n, args.seed)
    results["lightcnn-frontalized"] = cross_pose(test, frontalized_features(lightcnn, single, test, args.seed))
    seconds["evaluate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    series = {name: r["rank1_by_abs_yaw"] for name, r in results.items()}
    title = (
        f"cross-pose rank-1 against |yaw| ({'quick, ' if args.quick else ''}{len(test.subjects())} test "
        f"subjects, {args.size} px)"
    )
    plot_rank1_vs_yaw(series, out / "cross_pose.png", title=title)
    sweep_figure(single, test, args.seed, out / "cross_pose_sweep.png")
    frontalized_figure(single, test, args.seed, out / "cross_pose_frontalized.png")
    seconds["figures"] = round(time.perf_counter() - t, 1)
    seconds["total"] = round(time.perf_counter() - t_all, 1)

    yaws = sorted({k for r in results.values() for k in r["rank1_by_abs_yaw"]}, key=float)
    print(f"{'method':<24}" + "".join(f"{'|' + y + '|':>8}" for y in yaws) + f"{'mean':>8}")
    for name, r in results.items():
        print(
            f"{name:<24}"
            + "".join(f"{100 * r['rank1_by_abs_yaw'].get(y, float('nan')):>8.1f}" for y in yaws)
            + f"{100 * r['mean']:>8.1f}"
        )
    info = machine_info()
    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    result = {
        "benchmark": "cross-pose rank-1 (frontal gallery) of LightCNN, DR-GAN G_enc (single, multi-image fused) "
        "and LightCNN on DR-GAN-frontalized probes",
        "command": command_line(argv),
        "quick": args.quick,
        "seed": args.seed,
        "data": {
            "manifest": str(manifest_path),
            "rendered_now": rendered,
            "subjects": len(full.subjects()),
            "size": args.size,
            "images": len(full),
            "test_subjects": len(test.subjects()),
            "test_images": len(test),
            "render": None
            if not rendered
            else {
                "recipe": str(DATA_RECIPE.relative_to(ROOT)),
                "subjects": args.subjects,
                "size": args.size,
                "seed": args.seed,
            },
        },
        "models": records,
        "lightcnn_setting": {
            "size": LIGHTCNN_SIZE,
            "steps": LIGHTCNN_STEPS,
            "why": "synth-pretrain.yaml (1500 steps at 64 px) takes ~35 min on 2 cores; this trains in ~3 min",
        },
        "multi_image_templates": "per test subject and yaw bin, k probes shuffled by the seed: k // n templates "
        "of n (remainder left out), or one of all k when k < n; omega-weighted mean of "
        "raw G_enc features; gallery: the single frontal image",
        "frontalization": "single-image G, every probe decoded at the 0-degree bin with one fixed z (seed); "
        "gallery not frontalized",
        "results": results,
        "seconds": seconds,
        "expected_default_seconds": round(default_expected_seconds()),
        "machine": info,
        "note": "timings on a shared 2-core machine are pessimistic",
    }
    atomic_write_text(out / "cross_pose.json", json.dumps(result, indent=2) + "\n")
    print(
        f"wrote {out / 'cross_pose.json'}, cross_pose.png, cross_pose_sweep.png, cross_pose_frontalized.png "
        f"({seconds['total']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
