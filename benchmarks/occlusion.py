"""Occluded, non-frontal face recognition on SynthFace `occluded`: LightCNN on raw, DR-GAN-frontalized and
TSGAN-restored probes, and how well each generator restores the face.

Protocol (`rank1_breakdown`): the test subjects of the occluded set; gallery = each subject's clean
frontal image (the rows marked `gallery=1`: yaw 0, occlusion none), never altered; probes = every
occluded (hence non-frontal) test image. Rank-1 overall, per `occlusion` kind, per |yaw| bin (15
degrees) and per kind x |yaw|, for four ways of presenting the probes to one LightCNN-9:

1. `lightcnn`: the raw occluded probes;
2. `lightcnn + drgan frontal`: probes frontalized by DR-GAN (decoded at the 0-degree pose bin with one
   fixed z drawn from `--seed`);
3. `lightcnn + tsgan x_d`: TSGAN's de-occluded probes x_d = G_d(x, M) (M: the stored occlusion mask);
4. `lightcnn + tsgan x_f`: TSGAN's frontalized probes x_f = G_f(x_d, M).

TSGAN's mask attention mixes the samples of a batch, so the probes run in batches of its training
batch size (`tsgan.deocclude.run_generators`, manifest order, the last batch filled up by cycling).
Every image is fed to LightCNN the same way (read at the generators' size in RGB; the recognizer
converts to its own size and channels), gallery included.

Restoration (`image_metrics`: L1, PSNR and SSIM from kornia.metrics, images in [0, 1], SSIM with an
11 x 11 Gaussian window, PSNR capped at `PSNR_CAP` dB for identical images), mean over probes and per
occlusion kind: TSGAN x_d against the clean same-pose image (`clean_path`), TSGAN x_f and the DR-GAN
frontal against the clean frontal (`frontal_path`); the raw occluded input against both (the floor).

Models, each trained through the library (`hfr.engine.loop.train` and the tasks) from its recipe
with the `--set`s recorded in the JSON, on the occluded set's training split:

- LightCNN-9: configs/recognizer/synth-pretrain.yaml in benchmarks/cross_pose.py's setting (32 px,
  AdamW 1e-3, `LIGHTCNN_STEPS` steps, lr / 10 at 70%), every training image (occluded and frontal);
- DR-GAN: configs/drgan/synth-multipie.yaml (its 700 steps; occluded images as inputs, frontal and
  profile clean or occluded as they come: can G frontalize through occluders?);
- TSGAN: configs/tsgan/synth-occluded.yaml (its 600 steps) with `data.recognizer` = the LightCNN above.

`--reuse` skips the stages an earlier run finished with the same `--set`s (runs/<stage>/done.json);
`--lightcnn/--drgan/--tsgan FILE` (recognizer.pt / generator.pt or a run folder) use a given model.
In-training evaluation and best-checkpoint selection are off (the benchmark evaluates at the end).

Writes into `--out` (default benchmarks/results): `occlusion.json` (per method the breakdown; the
restoration metrics; data, recipes, sets, steps, seconds per stage, machine), `occlusion.md` (the
tables), `occlusion_grid.png` (per occlusion kind one test probe: input, mask, TSGAN x_d, TSGAN x_f,
DR-GAN frontal, clean frontal target) and `occlusion.png` (rank-1 per occlusion kind, grouped bars per
method; rank-1 against |yaw|).

    python benchmarks/occlusion.py --threads 1        # about 25 min on a quiet 2-core CPU
    python benchmarks/occlusion.py --reuse            # skip the stages an earlier run finished
    python benchmarks/occlusion.py --quick --out /tmp/occ   # 12 subjects at 32 px, 2 steps each (~15 s)
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
import torch.nn.functional as F
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, lightcnn_sets, quiet_sets, script_main, show_progress  # noqa: E402
from drgan.export import load_generator  # noqa: E402
from drgan.frontalize import frontalize  # noqa: E402
from hfr.config import read_recipe  # noqa: E402
from hfr.data.datasets import ManifestDataset  # noqa: E402
from hfr.data.manifest import MANIFEST_NAME, Manifest, Record  # noqa: E402
from hfr.data.stats import yaw_bin  # noqa: E402
from hfr.engine.stages import Stages, render_synth  # noqa: E402
from hfr.errors import DataError  # noqa: E402
from hfr.eval.protocols import cross_pose_split, rank1_hits  # noqa: E402
from hfr.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.nn.ranges import to_channels, to_signed, to_unit  # noqa: E402
from hfr.perf import configure_process  # noqa: E402
from hfr.recognizer.export import Recognizer, load_recognizer  # noqa: E402
from hfr.viz import labelled_grid, save_image, tensor_to_images  # noqa: E402
from tsgan.data import TSGANDataset, is_occluded  # noqa: E402
from tsgan.deocclude import run_generators  # noqa: E402
from tsgan.export import LoadedTSGAN, load_tsgan  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DATA_RECIPE = ROOT / "configs" / "data" / "synth-occluded.yaml"
RECIPES = {
    "lightcnn": ROOT / "configs" / "recognizer" / "synth-pretrain.yaml",
    "drgan": ROOT / "configs" / "drgan" / "synth-multipie.yaml",
    "tsgan": ROOT / "configs" / "tsgan" / "synth-occluded.yaml",
}
FILES = {"lightcnn": "recognizer.pt", "drgan": "generator.pt", "tsgan": "generator.pt"}
#: LightCNN-9 as benchmarks/cross_pose.py trains it (32 px input, AdamW 1e-3, about 3 min on 2 cores).
LIGHTCNN_SIZE, LIGHTCNN_STEPS = 32, 600
#: Expected seconds per training step on a quiet 2-core CPU with 1 torch thread, at the sizes named in
#: `STEP_SIZE` and the recipes' batches (LightCNN 64, DR-GAN 64, TSGAN 16): LightCNN and DR-GAN from
#: benchmarks/cross_pose.py; TSGAN from `benchmarks/train_speed.py --methods tsgan --sizes 64 --batch 16
#: --threads 1` (1.08 s/step with other jobs on the machine, load ~1.5-2) scaled as cross_pose scales its
#: busy figures (x0.8). Only for the printed estimate.
SECONDS_PER_STEP = {"lightcnn": 0.50, "drgan": 0.80, "tsgan": 0.87}
STEP_SIZE = {"lightcnn": LIGHTCNN_SIZE, "drgan": 64, "tsgan": 64}
RECIPE_BATCH = {"lightcnn": 64, "drgan": 64, "tsgan": 16}
#: Rendering (the occluded preset writes image, clean and mask per face) and evaluation rates at 64 px
#: on 2 quiet cores (images/s; evaluation: read + DR-GAN + TSGAN + 4 LightCNN passes + metrics per probe).
RENDER_IMAGES_PER_S, EVAL_PROBES_PER_S = 300.0, 60.0
IMAGES_PER_SUBJECT = 36  # the multipie layout: 9 yaws x 4 lights
QUICK = {"subjects": 12, "size": 32, "steps": 2, "batch": 16, "tsgan_batch": 8}
PSNR_CAP = 100.0  #: dB given to a pair of identical images (PSNR is infinite there)
SSIM_WINDOW = 11
METHODS = ("lightcnn", "lightcnn + drgan frontal", "lightcnn + tsgan x_d", "lightcnn + tsgan x_f")
#: Restoration comparisons: name -> (output, target) keys of `restorations`.
COMPARISONS = {
    "input vs clean (floor)": ("input", "clean"),
    "tsgan x_d vs clean": ("tsgan_d", "clean"),
    "input vs frontal (floor)": ("input", "frontal"),
    "drgan frontal vs frontal": ("drgan", "frontal"),
    "tsgan x_f vs frontal": ("tsgan_f", "frontal"),
}


# ---------------------------------------------------------------------- data
def evaluation_rows(test: Manifest) -> Manifest:
    """The protocol's rows of the test split: the `gallery=1` clean frontal images and the occluded probes."""
    rows = test.filter(lambda r: str(r.get("gallery", "0")) in ("1", "true", "yes") or is_occluded(r))
    gallery = [r for r in rows if not is_occluded(r)]
    if not gallery or len(gallery) == len(rows):
        raise DataError(
            f"{test.source}: the test split has {len(gallery)} gallery (gallery=1) and "
            f"{len(rows) - len(gallery)} occluded rows; the benchmark needs a SynthFace `occluded` "
            f"set (`hfr data synth --preset occluded`) or a manifest with both"
        )
    return rows


# ---------------------------------------------------------------------- training
def steps_of(method: str, args: argparse.Namespace) -> int:
    """Training steps of a method: `--steps`, else its benchmark setting times `--steps-scale`."""
    if args.steps:
        return args.steps
    base = LIGHTCNN_STEPS if method == "lightcnn" else int(read_recipe(RECIPES[method])["train"]["steps"])
    return max(1, round(base * args.steps_scale))


def occluded_lightcnn_sets(data: Path, args: argparse.Namespace) -> list[str]:
    """LightCNN-9 in the benchmarks' setting (`benchmarks.stages.lightcnn_sets`) on the occluded training split."""
    return [
        *lightcnn_sets(data, LIGHTCNN_SIZE, steps_of("lightcnn", args), args.seed),
        *quiet_sets(args.quick, QUICK["batch"]),
    ]


def drgan_sets(data: Path, recognizer: Path, args: argparse.Namespace) -> list[str]:
    """Single-image DR-GAN (the synth recipe) on the occluded training split, F (its identity loss) =
    the benchmark's LightCNN."""
    return [
        f"data.train={data}",
        "data.eval=null",
        f"data.recognizer={recognizer}",
        f"data.size={args.size}",
        f"train.seed={args.seed}",
        f"train.steps={steps_of('drgan', args)}",
        *quiet_sets(args.quick, QUICK["batch"]),
    ]


def tsgan_sets(data: Path, recognizer: Path, args: argparse.Namespace) -> list[str]:
    """TSGAN (the synth recipe) on the occluded training split, F = the benchmark's LightCNN."""
    return [
        f"data.train={data}",
        f"data.size={args.size}",
        f"data.recognizer={recognizer}",
        f"train.seed={args.seed}",
        f"train.steps={steps_of('tsgan', args)}",
        *quiet_sets(args.quick, QUICK["tsgan_batch"]),
    ]


# ---------------------------------------------------------------------- protocol and metrics
def _yaw(rec: Record) -> float:
    """The yaw of a probe row (cross_pose_split keeps rows with a yaw only)."""
    assert rec.yaw is not None
    return float(rec.yaw)


def rank1_breakdown(manifest: Manifest, features: np.ndarray, bin_width: float = 15.0) -> dict[str, Any]:
    """Rank-1 of every probe against the frontal gallery (`hfr.eval.protocols.cross_pose_split`: the
    `gallery=1` rows, probes every other row with a yaw), overall, per `occlusion` kind, per |yaw| bin
    and per kind x |yaw| bin. Features: row i for manifest row i (normalised here; cosine scores)."""
    if len(features) != len(manifest):
        raise DataError(f"{len(features)} feature rows for {len(manifest)} manifest rows; embed the evaluated rows")
    f = np.asarray(features, np.float32)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    gallery, probes = cross_pose_split(manifest)
    if not gallery or not probes:
        raise DataError(
            f"occlusion protocol: {len(gallery)} gallery and {len(probes)} probe rows; the data needs "
            f"a gallery=1 frontal image per subject and occluded probes"
        )
    sim = f[probes] @ f[gallery].T
    hit = rank1_hits(sim, [manifest[i].subject for i in probes], [manifest[i].subject for i in gallery])
    by_kind: dict[str, list[bool]] = defaultdict(list)
    by_yaw: dict[float, list[bool]] = defaultdict(list)
    by_both: dict[str, dict[float, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for j, i in enumerate(probes):
        kind = manifest[i].get("occlusion") or "none"
        b = abs(yaw_bin(_yaw(manifest[i]), bin_width))
        by_kind[kind].append(bool(hit[j]))
        by_yaw[b].append(bool(hit[j]))
        by_both[kind][b].append(bool(hit[j]))

    def rates(groups: dict[Any, list[bool]]) -> dict[str, float]:
        return {(f"{k:g}" if isinstance(k, float) else k): float(np.mean(v)) for k, v in sorted(groups.items())}

    return {
        "gallery": len(gallery),
        "probes": len(probes),
        "rank1_all": float(hit.mean()),
        "rank1_by_occlusion": rates(by_kind),
        "rank1_by_abs_yaw": rates(by_yaw),
        "rank1_by_occlusion_and_abs_yaw": {k: rates(v) for k, v in sorted(by_both.items())},
        "probes_by_occlusion": {k: len(v) for k, v in sorted(by_kind.items())},
        "probes_by_abs_yaw": {f"{k:g}": len(v) for k, v in sorted(by_yaw.items())},
    }


def image_metrics(output: torch.Tensor, target: torch.Tensor, chunk: int = 256) -> dict[str, np.ndarray]:
    """Per-image L1 (mean absolute difference), PSNR (dB, capped at `PSNR_CAP`) and SSIM
    (`kornia.metrics`, 11 x 11 window, or the image size when smaller and odd) of (N, C, H, W) images
    in [0, 1]."""
    import kornia.metrics

    if output.shape != target.shape:
        raise ValueError(f"image_metrics: output {tuple(output.shape)} and target {tuple(target.shape)} differ")
    out, tgt = output.float().clamp(0, 1), target.float().clamp(0, 1)
    window = min(SSIM_WINDOW, out.shape[-1] - (1 - out.shape[-1] % 2))
    l1 = (out - tgt).abs().flatten(1).mean(1)
    psnr = (
        torch.stack([kornia.metrics.psnr(out[i : i + 1], tgt[i : i + 1], 1.0) for i in range(len(out))])
        if len(out)
        else torch.zeros(0)
    )
    ssim = (
        torch.cat(
            [
                kornia.metrics.ssim(out[k : k + chunk], tgt[k : k + chunk], window, max_val=1.0).flatten(1).mean(1)
                for k in range(0, len(out), chunk)
            ]
        )
        if len(out)
        else torch.zeros(0)
    )
    return {
        "l1": l1.numpy().astype(np.float64),
        "psnr": psnr.clamp(max=PSNR_CAP).nan_to_num(PSNR_CAP).numpy(),
        "ssim": ssim.numpy().astype(np.float64),
    }


def metric_summary(values: dict[str, np.ndarray], kinds: list[str]) -> dict[str, Any]:
    """Means of `image_metrics` values overall and per occlusion kind (`kinds[i]` of image i)."""

    def mean(idx: np.ndarray) -> dict[str, float]:
        return {**{k: float(v[idx].mean()) for k, v in values.items()}, "n": int(len(idx))}

    k = np.asarray(kinds)
    return {
        "all": mean(np.arange(len(k))),
        "by_occlusion": {kind: mean(np.flatnonzero(k == kind)) for kind in sorted(set(kinds))},
    }


# ---------------------------------------------------------------------- running the models
def probe_tensors(manifest: Manifest, rows: list[int], size: int) -> dict[str, torch.Tensor]:
    """Occluded probes with mask, clean and frontal targets at `size` (images in [0, 1], masks 1 = occluded)."""
    ds = TSGANDataset(manifest.with_records([manifest[i] for i in rows]), size, 3, check_sizes=False)
    items = [ds[j] for j in range(len(ds))]
    out = {k: torch.stack([it[k] for it in items]) for k in ("image", "clean", "frontal")}
    out = {k: to_unit(v) for k, v in out.items()}
    out["mask"] = torch.stack([it["mask"] for it in items])
    return out


def gallery_tensors(manifest: Manifest, rows: list[int], size: int) -> torch.Tensor:
    """Gallery images (N, 3, size, size) in [0, 1], as they are."""
    ds = ManifestDataset(manifest.with_records([manifest[i] for i in rows]), size=size, channels=3)
    return torch.cat([b["image"] for b in DataLoader(ds, batch_size=128, shuffle=False)])


def tsgan_outputs(gen: LoadedTSGAN, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_d, x_f) in [0, 1] of probes in [0, 1], in batches of TSGAN's training batch size."""
    x = to_channels(images, gen.channels, "the generator's")
    x_d, x_f = run_generators(gen, to_signed(x), masks, frontalize=True)
    assert x_f is not None
    return to_channels(to_unit(x_d.float()), 3), to_channels(to_unit(x_f.float()), 3)


def resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, size, size): bilinear, antialiased (unchanged when already that size)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def features(recognizer: Recognizer, gallery: torch.Tensor, probes: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """LightCNN features of the gallery rows then the probe rows (the evaluation manifest's order)."""
    x = torch.cat([gallery, resized(probes, gallery.shape[-1])])
    return np.concatenate([recognizer.embed(x[k : k + chunk]).cpu().numpy() for k in range(0, len(x), chunk)])


# ---------------------------------------------------------------------- figures and table
def grid_rows(manifest: Manifest, probes: list[int]) -> list[int]:
    """One probe per occlusion kind present (kinds in name order), each of another subject where possible,
    preferring |yaw| 30-45 and the neutral light."""
    chosen, used = [], set()
    kinds = sorted({manifest[i].get("occlusion") for i in probes})
    for kind in kinds:
        cands = [i for i in probes if manifest[i].get("occlusion") == kind]
        cands.sort(
            key=lambda i: (
                manifest[i].subject in used,
                abs(_yaw(manifest[i])) not in (30.0, 45.0),
                manifest[i].get("illumination") not in ("", "neutral"),
            )
        )
        chosen.append(cands[0])
        used.add(manifest[cands[0]].subject)
    return chosen


def grid_figure(
    manifest: Manifest, probes: list[int], rows: dict[str, torch.Tensor], path: Path
) -> list[dict[str, Any]]:
    """Columns: one probe per occlusion kind; rows: input, mask, TSGAN x_d, TSGAN x_f, DR-GAN frontal, target.
    Returns the probes shown (path, subject, occlusion, yaw), left to right."""
    picks = grid_rows(manifest, probes)
    where = [probes.index(i) for i in picks]
    size = max(64, max(t.shape[-1] for t in rows.values()))
    labels = list(rows)
    cells = []
    for name in labels:
        t = rows[name][where]
        t = t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t
        cells.append(F.interpolate(t, size=(size, size), mode="nearest") if t.shape[-1] != size else t)
    images = tensor_to_images(torch.cat(cells))
    cols = [manifest[i].get("occlusion") for i in picks]  # short: a label must fit above a 64-px cell
    save_image(path, labelled_grid(images, len(picks), cols, labels))
    return [
        {
            "path": manifest[i].path,
            "subject": manifest[i].subject,
            "occlusion": manifest[i].get("occlusion"),
            "yaw": _yaw(manifest[i]),
        }
        for i in picks
    ]


def plot_figure(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Left: rank-1 per occlusion kind (and all), grouped bars per method; right: rank-1 against |yaw|."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kinds = sorted({k for r in results.values() for k in r["rank1_by_occlusion"]}) + ["all"]
    fig, (ax, ay) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(1, len(results))
    for m, (name, r) in enumerate(results.items()):
        values = [100 * (r["rank1_all"] if k == "all" else r["rank1_by_occlusion"].get(k, float("nan"))) for k in kinds]
        ax.bar(np.arange(len(kinds)) + (m - (len(results) - 1) / 2) * width, values, width, label=name)
        yaws = sorted(r["rank1_by_abs_yaw"], key=float)
        ay.plot([float(y) for y in yaws], [100 * r["rank1_by_abs_yaw"][y] for y in yaws], marker="o", label=name)
    ax.set_xticks(np.arange(len(kinds)), kinds)
    ax.set_ylabel("rank-1 (%)")
    ax.set_ylim(0, 101)
    ax.set_title("rank-1 per occlusion kind", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ay.legend(fontsize=7, loc="lower left")
    ay.set_xlabel("|yaw| (degrees)")
    ay.set_ylabel("rank-1 (%)")
    ay.set_ylim(0, 101)
    ay.set_title("rank-1 against |yaw|", fontsize=10)
    ay.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def markdown(results: dict[str, dict[str, Any]], restoration: dict[str, dict[str, Any]]) -> str:
    """The rank-1 table (overall, per kind, per |yaw|) and the restoration table."""
    kinds = sorted({k for r in results.values() for k in r["rank1_by_occlusion"]})
    yaws = sorted({y for r in results.values() for y in r["rank1_by_abs_yaw"]}, key=float)
    head = ["method", "all", *kinds, *(f"\\|{y}\\|" for y in yaws)]
    lines = [
        "rank-1 % (gallery: clean frontal; probes: occluded, non-frontal)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, r in results.items():
        cells = [
            r["rank1_all"],
            *(r["rank1_by_occlusion"].get(k, float("nan")) for k in kinds),
            *(r["rank1_by_abs_yaw"].get(y, float("nan")) for y in yaws),
        ]
        lines.append(f"| {name} | " + " | ".join(f"{100 * c:.1f}" for c in cells) + " |")
    lines += [
        "",
        "restoration (images in [0, 1]; mean over probes)",
        "",
        "| output vs target | L1 | PSNR dB | SSIM |",
        "|---|---|---|---|",
    ]
    for name, s in restoration.items():
        a = s["all"]
        lines.append(f"| {name} | {a['l1']:.4f} | {a['psnr']:.2f} | {a['ssim']:.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- estimate
def expected_seconds(args: argparse.Namespace, to_train: list[str], render: bool) -> float:
    """A wall-time estimate on a quiet 2-core CPU (1 thread): steps x seconds per step scaled by image
    area and batch, rendering, and the evaluation of the test probes (40% of the subjects)."""
    total = 0.0
    for m in to_train:
        size = LIGHTCNN_SIZE if m == "lightcnn" and not args.quick else args.size
        batch = (QUICK["tsgan_batch"] if m == "tsgan" else QUICK["batch"]) if args.quick else RECIPE_BATCH[m]
        total += steps_of(m, args) * SECONDS_PER_STEP[m] * (size / STEP_SIZE[m]) ** 2 * batch / RECIPE_BATCH[m]
    images = args.subjects * IMAGES_PER_SUBJECT
    area = (args.size / 64) ** 2
    if render:
        total += images / RENDER_IMAGES_PER_S * area
    return total + 0.4 * images * area / EVAL_PROBES_PER_S


def default_expected_seconds() -> float:
    """The estimate of the whole default run (render, three trainings, evaluation)."""
    ns = argparse.Namespace(steps=None, steps_scale=1.0, size=64, subjects=200, quick=False)
    return expected_seconds(ns, list(RECIPES), True)


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Render, train (or reuse), run the generators on the probes, evaluate, write JSON, Markdown and PNGs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        help="occluded set folder or manifest; rendered (SynthFace occluded) when "
        "absent (default runs/occlusion/data-occluded-<subjects>x<size>-"
        "seed<seed>)",
    )
    ap.add_argument("--subjects", type=int, help="SynthFace subjects when rendering (default 200)")
    ap.add_argument("--size", type=int, help="render size and DR-GAN / TSGAN input (default 64; a power of two)")
    ap.add_argument("--seed", type=int, default=0, help="render seed, train.seed and DR-GAN's z")
    ap.add_argument("--runs", type=Path, help="training runs (default runs/occlusion/runs)")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every model's training steps")
    ap.add_argument("--steps", type=int, help="train every model this many steps (overrides)")
    ap.add_argument("--reuse", action="store_true", help="reuse stages an earlier run finished with the same sets")
    ap.add_argument("--lightcnn", type=Path, help="recognizer.pt (or run folder) of the LightCNN: not trained")
    ap.add_argument("--drgan", type=Path, help="generator.pt (or run folder) of DR-GAN: not trained")
    ap.add_argument("--tsgan", type=Path, help="generator.pt (or run folder) of TSGAN: not trained")
    ap.add_argument("--threads", type=int, help="torch threads (default torch's; 1 on a busy machine)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke mode: {QUICK['subjects']} subjects at {QUICK['size']} px, {QUICK['steps']} steps per "
        f"model, batch {QUICK['batch']} (TSGAN {QUICK['tsgan_batch']}), 1 thread; needs --out",
    )
    ap.add_argument("--out", type=Path, help="output folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_progress()
    configure_process()
    if args.quick:
        if args.out is None:
            raise SystemExit("--quick writes into --out DIR only (never over benchmarks/results)")
        args.subjects = args.subjects or QUICK["subjects"]
        args.size = args.size or QUICK["size"]
        args.steps = args.steps or QUICK["steps"]
        args.threads = args.threads or 1
    recipe = read_recipe(DATA_RECIPE)
    args.subjects = args.subjects or int(recipe.get("subjects", 200))
    args.size = args.size or int(recipe.get("size", 64))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or RESULTS
    base = out if args.quick else ROOT / "runs" / "occlusion"
    args.data = args.data or base / f"data-occluded-{args.subjects}x{args.size}-seed{args.seed}"
    runs = args.runs or base / "runs"
    given = {m: p for m, p in (("lightcnn", args.lightcnn), ("drgan", args.drgan), ("tsgan", args.tsgan)) if p}
    data_manifest = Path(args.data) if Path(args.data).suffix == ".csv" else Path(args.data) / MANIFEST_NAME
    expected = expected_seconds(args, [m for m in RECIPES if m not in given], not data_manifest.is_file())
    print(
        f"expected wall time of this run: ~{expected / 60:.1f} min; "
        f"of the whole default run: ~{default_expected_seconds() / 60:.0f} min (quiet 2-core CPU, 1 thread; "
        "a shared one is slower)",
        flush=True,
    )
    t_all = time.perf_counter()
    stages = Stages(runs, reuse=args.reuse, meta={"benchmark": "occlusion"})
    manifest_path, rendered, stages.seconds["render"] = render_synth(
        DATA_RECIPE, Path(args.data), args.subjects, args.size, args.seed, workers=1 if args.quick else 2
    )

    files: dict[str, Path] = {}
    for method in RECIPES:
        if method in given:
            files[method] = stages.given(method, given[method], FILES[method])
        elif method == "lightcnn":
            files[method] = stages.train(method, RECIPES[method], occluded_lightcnn_sets(manifest_path, args))
        elif method == "drgan":
            files[method] = stages.train(method, RECIPES[method], drgan_sets(manifest_path, files["lightcnn"], args))
        else:
            files[method] = stages.train(method, RECIPES[method], tsgan_sets(manifest_path, files["lightcnn"], args))

    t = time.perf_counter()
    full = Manifest.read(manifest_path)
    test = full.filter(lambda r: r.split == "test")
    if len(test) == 0:
        raise SystemExit(f"{manifest_path}: no rows of split 'test'; the protocol evaluates the test subjects")
    ev = evaluation_rows(test)
    gallery, probes = cross_pose_split(ev)
    if gallery + probes != list(range(len(ev))):  # the features below are gallery rows then probe rows
        order = gallery + probes
        ev = ev.with_records([ev[i] for i in order])
        gallery, probes = cross_pose_split(ev)
    recognizer = load_recognizer(files["lightcnn"])
    drgan = load_generator(files["drgan"])
    tsgan = load_tsgan(files["tsgan"])
    kinds = [ev[i].get("occlusion") for i in probes]
    gal = gallery_tensors(ev, gallery, tsgan.size)
    ts_in = probe_tensors(ev, probes, tsgan.size)
    dr_in = ts_in if drgan.size == tsgan.size else probe_tensors(ev, probes, drgan.size)
    x_d, x_f = tsgan_outputs(tsgan, ts_in["image"], ts_in["mask"])
    x_dr = frontalize(drgan, dr_in["image"], args.seed)
    stages.seconds["generators"] = round(time.perf_counter() - t, 1)
    results = {
        "lightcnn": rank1_breakdown(ev, features(recognizer, gal, ts_in["image"])),
        "lightcnn + drgan frontal": rank1_breakdown(ev, features(recognizer, gal, x_dr)),
        "lightcnn + tsgan x_d": rank1_breakdown(ev, features(recognizer, gal, x_d)),
        "lightcnn + tsgan x_f": rank1_breakdown(ev, features(recognizer, gal, x_f)),
    }
    outputs = {"input": ts_in["image"], "tsgan_d": x_d, "tsgan_f": x_f, "drgan": x_dr}
    targets = {("drgan", k): dr_in[k] for k in ("clean", "frontal")}
    restoration = {}
    for name, (o, tgt) in COMPARISONS.items():
        target = targets.get((o, tgt), ts_in[tgt])
        restoration[name] = metric_summary(image_metrics(outputs[o], target), kinds)
    stages.seconds["evaluate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    shown = grid_figure(
        ev,
        probes,
        {
            "input": ts_in["image"],
            "mask": ts_in["mask"],
            "TSGAN x_d": x_d,
            "TSGAN x_f": x_f,
            "DR-GAN": resized(x_dr, tsgan.size),
            "target": ts_in["frontal"],
        },
        out / "occlusion_grid.png",
    )
    plot_figure(
        results,
        out / "occlusion.png",
        f"occluded probes, {len(test.subjects())} test subjects, {args.size} px{' (quick)' if args.quick else ''}",
    )
    stages.seconds["figures"] = round(time.perf_counter() - t, 1)
    stages.seconds["total"] = round(time.perf_counter() - t_all, 1)

    table = markdown(results, restoration)
    print(table)
    info = machine_info(device="cuda" if torch.cuda.is_available() else "cpu")
    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    result = {
        "benchmark": "occluded non-frontal face recognition: LightCNN on raw, DR-GAN-frontalized and TSGAN-restored "
        "(de-occluded x_d, frontalized x_f) probes; restoration L1 / PSNR / SSIM",
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
            "gallery": len(gallery),
            "probes": len(probes),
            "occlusion_kinds": sorted(set(kinds)),
            "render": {
                "recipe": str(DATA_RECIPE.relative_to(ROOT)),
                "subjects": args.subjects,
                "size": args.size,
                "seed": args.seed,
            }
            if rendered
            else None,
        },
        "protocol": "test subjects; gallery: the gallery=1 clean frontal image of each, unaltered; probes: every "
        "occluded test image; rank-1 by cosine of LightCNN features, overall, per occlusion kind, per "
        "|yaw| bin (15 degrees) and per kind x |yaw|. DR-GAN: every probe decoded at the 0-degree bin "
        "with one z (seed); TSGAN: G_d(x, M), G_f(x_d, M) in batches of its training batch size",
        "models": stages.records,
        "lightcnn_setting": {"size": LIGHTCNN_SIZE, "steps": LIGHTCNN_STEPS, "as": "benchmarks/cross_pose.py"},
        "tsgan_batch_size": tsgan.batch_size,
        "results": results,
        "restoration": restoration,
        "restoration_metrics": f"images in [0, 1] at {tsgan.size} px RGB; L1 mean |output - target|; PSNR "
        f"(kornia.metrics.psnr, max 1, capped at {PSNR_CAP:g} dB); SSIM (kornia.metrics.ssim, "
        f"Gaussian window {min(SSIM_WINDOW, tsgan.size - 1)}); mean over probes",
        "grid": shown,
        "table": table,
        "seconds": stages.seconds,
        "expected_default_seconds": round(default_expected_seconds()),
        "machine": info,
        "note": "timings on a shared 2-core machine are pessimistic",
    }
    atomic_write_text(out / "occlusion.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "occlusion.md", table + "\n")
    print(
        f"wrote {out / 'occlusion.json'}, occlusion.md, occlusion.png, occlusion_grid.png "
        f"({stages.seconds['total']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
