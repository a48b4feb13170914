"""Generator training speed: images/s, ms/step and peak memory of one full training step.

Each method in `METHODS` measures its own task's real `train_step` (exactly what
`hfr train-generator` runs each step) on a fixed in-memory batch, so the figure excludes data
loading and includes everything else (augmentation, every phase's forward, backward and
optimizer step). The warm-up steps are excluded from the timing.

- `drgan`: `DRGANTask` built from `configs/drgan/synth-multipie.yaml` (via
  `hfr.config.load_config`) with `data.size`, `batch_size`, `net.width` and
  `net.multi_image` overridden (at width 1 with the paper's shared D head, `net.d_heads`),
  on a tiny SynthFace `multipie` set rendered at that size, with an untrained LightCNN-9 with
  BatchNorm at half width (the shared recognizer's architecture, 32 px) as the F of the recipe's
  identity loss; one step = D phase then G phase (L1 to the target-pose ground truth and the
  identity loss through F included, as the recipe trains). Multi-image (n = 4): the batch is runs of 4 images of a
  subject (the task's own SubjectGroupSampler), G also decodes one fused feature per run.

Variants: sizes (64, 96 px), channel widths (0.25 = the synth recipe, 1.0 = the paper),
single- and multi-image; on CUDA also bf16 autocast (`train.amp`) and channels_last on/off.
Memory: on CPU the growth of the peak resident set (VmHWM, reset through
/proc/self/clear_refs after `malloc_trim` before each case) over the resident set before the
case's first step (models and batch built: so activations, gradients, optimizer state); on CUDA
`torch.cuda.max_memory_allocated` (everything the case holds). The process runs with the
malloc policy of the `hfr` command (`hfr.perf.configure_process`).

- `drgan-pose`: the same with `configs/drgan/synth-multipie-pose.yaml` (the G phase adds the pose
  loss: P's forward on the synthesis and its mirror, and the backward through P), with an untrained
  yaw estimator of the P role's widths as P.
- `dvg`: `DVGTask` built from `configs/dvg/synth-nirvis.yaml` on a tiny SynthFace `nirvis` set,
  with an untrained LightCNN-9 as F and an untrained F_s (the cost does not depend on the weights);
  `--batch` counts NIR-VIS pairs (2 images each); no multi-image variant.
- `tsgan`: `TSGANTask` built from `configs/tsgan/synth-occluded.yaml` on a tiny SynthFace `occluded`
  set, with an untrained LightCNN-9 as F (identity and dual triplet terms on); one step = the G_d + G_f
  step with every term, then the D_d + D_f step; `--batch` occluded images (2 per subject); no
  multi-image variant.
- `dvg-generate`: pair generation, `dvg.generate.generate_batch` (what `hfr generate-pairs` runs
  per batch, PNG writes excluded) with `--batch` pairs per call: images/s = 2 * pairs/s.

A run keeps the rows of other methods and batch sizes from the existing JSON, so they can be
measured in separate runs (`--methods dvg --batch 8`, then `--batch 32`).

To add a generator, write `bench_<name>(size, batch, device, steps, variant) -> dict | None`
(None: the variant does not apply to it) and add it to `METHODS`.

Writes `benchmarks/results/train_speed.json` and `train_speed.png`. A benchmark, never a
test: the figures depend on the machine and its load.

    python benchmarks/train_speed.py                       # CPU (+ CUDA when present)
    python benchmarks/train_speed.py --device cpu --sizes 64 --widths 0.25
    python benchmarks/train_speed.py --quick --out /tmp/ts  # 32 px, batch 8, 2 steps (~15 s)

On a machine other jobs share, `--threads 1` gives steadier figures: two threads on two busy
cores were measured 5 to 25 times slower per step than one.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info as hfr_machine_info  # noqa: E402
from hfr.perf import Allocator, configure_process  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DRGAN_RECIPE = ROOT / "configs" / "drgan" / "synth-multipie.yaml"
DRGAN_POSE_RECIPE = ROOT / "configs" / "drgan" / "synth-multipie-pose.yaml"
DVG_RECIPE = ROOT / "configs" / "dvg" / "synth-nirvis.yaml"
TSGAN_RECIPE = ROOT / "configs" / "tsgan" / "synth-occluded.yaml"
SEED = 0
WARMUP = 2


@dataclass(frozen=True)
class Variant:
    """One configuration of a method: network width, multi-image n (0 = single), precision, layout."""

    width: float = 0.25
    multi_image: int = 0
    amp: bool = False
    channels_last: bool = True
    warmup: int = WARMUP


BenchFn = Callable[[int, int, str, int, Variant], "dict[str, Any] | None"]


# ---------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    """A `/proc/self/status` field in kB (None where there is no procfs)."""
    with contextlib.suppress(OSError):
        m = re.search(rf"^{field}:\s+(\d+)\s+kB", Path("/proc/self/status").read_text(), re.MULTILINE)
        if m:
            return int(m.group(1))
    return None


def release_free_memory() -> None:
    """Collect garbage and hand glibc's free heap pages back to the OS (`malloc_trim`), so the
    resident set holds live memory only (the heap policy of `hfr.perf` otherwise keeps every
    freed block resident, and a case would reuse the previous case's pages unseen)."""
    gc.collect()
    alloc = Allocator()
    if alloc.libc is not None:
        with contextlib.suppress(AttributeError):
            alloc.libc.malloc_trim(0)


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM) to the current RSS; False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class MemoryMeter:
    """Peak memory of a code region: CUDA allocator peak, or the growth of the CPU peak RSS."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.base_kb: int | None = None
        self.peak_reset = False

    def start(self) -> None:
        """Begin the region (after the models and the batch exist)."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return
        release_free_memory()
        self.peak_reset = reset_peak_rss()
        self.base_kb = _status_kb("VmRSS")

    def result(self) -> dict[str, Any]:
        """{"peak_mem_mb", "mem_kind"} of the region so far."""
        if self.cuda:
            torch.cuda.synchronize()
            return {
                "peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "mem_kind": "cuda max_memory_allocated",
            }
        hwm = _status_kb("VmHWM")
        if hwm is None or self.base_kb is None:
            return {"peak_mem_mb": None, "mem_kind": "unavailable (no /proc)"}
        kind = (
            "peak RSS growth (VmHWM - VmRSS at start)"
            if self.peak_reset
            else "peak RSS growth, upper bound (VmHWM could not be reset)"
        )
        return {
            "peak_mem_mb": round(max(0, hwm - self.base_kb) / 1024, 1),
            "peak_rss_mb": round(hwm / 1024, 1),
            "mem_kind": kind,
        }


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(step: Callable[[int], Any], steps: int, warmup: int, device: str, meter: MemoryMeter) -> list[float]:
    """Run `warmup` untimed then `steps` timed calls of `step(i)`; seconds of each timed call."""
    for i in range(warmup):
        step(i)
    sync(device)
    times = []
    for i in range(warmup, warmup + steps):
        t = time.perf_counter()
        step(i)
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def timing_row(times: list[float], images_per_step: int) -> dict[str, Any]:
    """images/s (total images over total time), mean and median ms/step."""
    total = sum(times)
    return {
        "images_per_s": round(images_per_step * len(times) / total, 2),
        "ms_per_step": round(1000 * total / len(times), 1),
        "ms_per_step_median": round(1000 * statistics.median(times), 1),
        "timed_steps": len(times),
    }


# ---------------------------------------------------------------------- DR-GAN
_DATA_CACHE: dict[int, Path] = {}
_NIRVIS_CACHE: dict[int, Path] = {}
_OCCLUDED_CACHE: dict[tuple[int, int], Path] = {}
_TMP = tempfile.TemporaryDirectory(prefix="hfr-train-speed-")


def tiny_multipie(size: int) -> Path:
    """A 12-subject SynthFace `multipie` set at `size` px (rendered once per process, temp folder), with
    `rec.pt`: an untrained LightCNN-9 with BatchNorm at half width, 32 px gray (the shared F's shape)."""
    if size not in _DATA_CACHE:
        from hfr.data.synth import SynthConfig, write_preset
        from hfr.models.lightcnn import build_lightcnn
        from hfr.recognizer.export import export_recognizer

        out = Path(_TMP.name) / f"multipie-{size}"
        write_preset(SynthConfig(preset="multipie", subjects=12, size=size, seed=SEED), out)
        from hfr.pose.export import export_yaw_estimator
        from hfr.pose.model import YawNet

        f = build_lightcnn("lightcnn9bn-w0.5", num_classes=0, input_size=32, in_channels=1)
        export_recognizer(f, out / "rec.pt")
        # P of the pose recipe: an untrained yaw estimator of the P role's widths (the cost is the same)
        export_yaw_estimator(YawNet(channels=1, widths=(24, 48, 96, 192)), out / "p.pt", size=32, mirror=True)
        _DATA_CACHE[size] = out
    return _DATA_CACHE[size]


def run_task(task: Any, cfg: Any, device: str, variant: Variant, steps: int) -> tuple[list[float], dict[str, Any]]:
    """Build `task` as the engine would (amp only on CUDA) and time `steps` train_steps on one fixed
    batch after the warm-up; returns (seconds per timed step, memory figures)."""
    from hfr.engine.task import TrainContext

    cfg.validate()
    torch.manual_seed(SEED)
    dev = torch.device(device)
    ctx = TrainContext(
        device=dev,
        amp=variant.amp and device.startswith("cuda"),
        channels_last=variant.channels_last,
        generator=torch.Generator(device=dev).manual_seed(SEED),
        seed=SEED,
        num_workers=0,
        run_dir=Path(_TMP.name),
        train_cfg=cfg.train,
    )
    task.build(cfg, ctx)
    fixed = ctx.to_device(next(iter(task.train_loader())))
    meter = MemoryMeter(device)
    meter.start()
    times = time_steps(lambda i: task.train_step(fixed, i), steps, variant.warmup, device, meter)
    return times, meter.result()


def engine_sets(variant: Variant, cuda: bool) -> list[str]:
    """The `train:` overrides every timed case shares: seed, bf16 autocast and channels_last as the case
    says, no loader workers, the device."""
    return [
        f"train.seed={SEED}",
        f"train.amp={'bf16' if variant.amp else 'off'}",
        f"train.channels_last={str(variant.channels_last).lower()}",
        "train.num_workers=0",
        f"train.device={'cuda' if cuda else 'cpu'}",
    ]


def bench_drgan_pose(size: int, batch: int, device: str, steps: int, variant: Variant) -> dict[str, Any] | None:
    """`bench_drgan` with `configs/drgan/synth-multipie-pose.yaml`: the G phase adds the pose loss through P."""
    return bench_drgan(size, batch, device, steps, variant, recipe=DRGAN_POSE_RECIPE)


def bench_drgan(
    size: int, batch: int, device: str, steps: int, variant: Variant, recipe: Path = DRGAN_RECIPE
) -> dict[str, Any] | None:
    """One DR-GAN `train_step` (D phase + G phase) of `DRGANTask` on a fixed batch (`recipe`'s objective)."""
    from drgan.config import DRGANConfig
    from drgan.task import DRGANTask
    from hfr.config import load_config

    cuda = device.startswith("cuda")
    if variant.amp and not cuda:
        return None  # autocast is CUDA-only in the engine; CPU trains in fp32
    data = tiny_multipie(size)
    sets = [
        f"data.train={data}",
        "data.eval=null",
        f"data.recognizer={data / 'rec.pt'}",
        f"data.pose_estimator={data / 'p.pt'}",
        f"data.size={size}",
        f"batch_size={batch}",
        f"net.width={variant.width}",
        f"net.multi_image={variant.multi_image}",
        *engine_sets(variant, cuda),
        # the paper's single D head at the paper's width; the synth recipe's separate heads otherwise
        f"net.d_heads={'shared' if variant.width >= 1 else 'separate'}",
    ]
    cfg = load_config(DRGANConfig, recipe, sets)
    task = DRGANTask()
    times, memory = run_task(task, cfg, device, variant, steps)
    params_g = sum(p.numel() for p in task.G.parameters())
    params_d = sum(p.numel() for p in task.D.parameters())
    row = {
        "recipe": str(recipe.relative_to(ROOT)),
        "sets": sets[2:],
        "images_per_step": task.images_per_step(),
        "synthesized_per_step": batch + (batch // variant.multi_image if variant.multi_image else 0),
        "params_g": params_g,
        "params_d": params_d,
        **timing_row(times, task.images_per_step()),
        **memory,
    }
    del task
    if cuda:
        torch.cuda.empty_cache()
    return row


def bench_dvg(size: int, batch: int, device: str, steps: int, variant: Variant) -> dict[str, Any] | None:
    """One DVG-Face `train_step` of `DVGTask` (generator step with every term, then D_N/D_V) on a fixed
    batch of `batch` NIR-VIS pairs (2 * batch images). F is an untrained LightCNN-9 at the generator's
    size and F_s an untrained identity sampler (width 1), so every term of the objective is timed."""
    from dvg.config import DVGConfig
    from dvg.models import IdentitySampler
    from dvg.task import DVGTask
    from hfr.artifacts import save_generator_file
    from hfr.config import load_config
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    cuda = device.startswith("cuda")
    if variant.multi_image or (variant.amp and not cuda):
        return None  # no multi-image variant; autocast is CUDA-only in the engine
    if size not in _NIRVIS_CACHE:
        from hfr.data.synth import SynthConfig, write_preset

        out = Path(_TMP.name) / f"nirvis-{size}"
        write_preset(SynthConfig(preset="nirvis", subjects=12, size=size, seed=SEED), out)
        torch.manual_seed(SEED)
        export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=size, in_channels=1), out / "rec.pt")
        save_generator_file(
            out / "fs.pt",
            "dvg-sampler",
            {"feature_dim": 256, "latent_dim": 256, "width": 1.0},
            {"sampler": IdentitySampler(256, 256, 1.0).state_dict()},
        )
        _NIRVIS_CACHE[size] = out
    data = _NIRVIS_CACHE[size]
    sets = [
        f"data.train={data}",
        "data.split=",
        f"data.size={size}",
        f"data.recognizer={data / 'rec.pt'}",
        f"data.identity_sampler={data / 'fs.pt'}",
        f"batch_size={batch}",
        f"net.width={variant.width}",
        *engine_sets(variant, cuda),
    ]
    cfg = load_config(DVGConfig, DVG_RECIPE, sets)
    task = DVGTask()
    times, memory = run_task(task, cfg, device, variant, steps)
    row = {
        "recipe": str(DVG_RECIPE.relative_to(ROOT)),
        "sets": sets[2:],
        "images_per_step": 2 * batch,
        "params_g": sum(p.numel() for p in task.G.parameters()),
        "params_d": sum(p.numel() for p in [*task.D_nir.parameters(), *task.D_vis.parameters()]),
        **timing_row(times, 2 * batch),
        **memory,
    }
    del task
    if cuda:
        torch.cuda.empty_cache()
    return row


def bench_tsgan(size: int, batch: int, device: str, steps: int, variant: Variant) -> dict[str, Any] | None:
    """One TSGAN `train_step` of `TSGANTask` (G_d + G_f step with every term, then D_d + D_f) on a fixed
    batch of `batch` occluded images (`batch / 2` subjects x 2) from a tiny SynthFace `occluded` set (every
    split: at least 12 subjects, more when the batch needs them). F is an untrained LightCNN-9 at the
    generators' size (the cost does not depend on the weights)."""
    from hfr.config import load_config
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer
    from tsgan.config import TSGANConfig
    from tsgan.task import TSGANTask

    cuda = device.startswith("cuda")
    if variant.multi_image or (variant.amp and not cuda):
        return None  # no multi-image variant; autocast is CUDA-only in the engine
    subjects = max(12, batch // 2)  # the sampler draws batch / 2 distinct subjects per batch
    key = (size, subjects)
    if key not in _OCCLUDED_CACHE:
        from hfr.data.synth import SynthConfig, write_preset

        out = Path(_TMP.name) / f"occluded-{size}-{subjects}"
        write_preset(SynthConfig(preset="occluded", subjects=subjects, size=size, seed=SEED), out)
        torch.manual_seed(SEED)
        export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=size, in_channels=1), out / "rec.pt")
        _OCCLUDED_CACHE[key] = out
    data = _OCCLUDED_CACHE[key]
    sets = [
        f"data.train={data}",
        f"data.recognizer={data / 'rec.pt'}",
        "data.split=",
        f"data.size={size}",
        f"batch_size={batch}",
        f"net.width={variant.width}",
        *engine_sets(variant, cuda),
    ]
    cfg = load_config(TSGANConfig, TSGAN_RECIPE, sets)
    task = TSGANTask()
    times, memory = run_task(task, cfg, device, variant, steps)
    row = {
        "recipe": str(TSGAN_RECIPE.relative_to(ROOT)),
        "sets": sets[2:],
        "subjects": subjects,
        "images_per_step": task.images_per_step(),
        "params_g": sum(p.numel() for p in [*task.G_d.parameters(), *task.G_f.parameters()]),
        "params_d": sum(p.numel() for p in [*task.D_d.parameters(), *task.D_f.parameters()]),
        **timing_row(times, task.images_per_step()),
        **memory,
    }
    del task
    if cuda:
        torch.cuda.empty_cache()
    return row


@torch.no_grad()
def bench_dvg_generate(size: int, batch: int, device: str, steps: int, variant: Variant) -> dict[str, Any] | None:
    """Pair generation as `hfr generate-pairs` runs it (`dvg.generate.generate_batch`: per pair an
    identity from F_s and prior attribute codes from its own seeded generator, then one G forward per
    domain) for `batch` pairs per call: 2 * batch images per step. PNG encoding and writing are not
    timed (they cost the same whatever the generator). Untrained networks, deterministic codes (the
    synth recipe); the cost does not depend on the weights."""
    from dvg.generate import LoadedDVG, generate_batch
    from dvg.models import DualGenerator, IdentitySampler

    cuda = device.startswith("cuda")
    if variant.multi_image or variant.amp:
        return None  # generation runs in fp32, one image per pair and domain
    torch.manual_seed(SEED)
    g = DualGenerator(size, variant.width, deterministic=True).eval().to(device)
    s = IdentitySampler(256, 256, 1.0).eval().to(device)
    if variant.channels_last:
        g = g.to(memory_format=torch.channels_last)
    loaded = LoadedDVG(g, s, "bench", size)
    meter = MemoryMeter(device)
    meter.start()
    times = time_steps(lambda i: generate_batch(loaded, i * batch, batch, SEED), steps, variant.warmup, device, meter)
    row = {
        "what": "F_s + G forward for NIR and VIS (PNG writes excluded)",
        "images_per_step": 2 * batch,
        "params_g": sum(p.numel() for p in g.parameters()),
        **timing_row(times, 2 * batch),
        **meter.result(),
    }
    if cuda:
        torch.cuda.empty_cache()
    return row


#: name -> function(size, batch, device, steps, variant) -> row dict (None: variant not applicable).
METHODS: dict[str, BenchFn] = {
    "drgan": bench_drgan,
    "drgan-pose": bench_drgan_pose,
    "dvg": bench_dvg,
    "dvg-generate": bench_dvg_generate,
    "tsgan": bench_tsgan,
}


# ---------------------------------------------------------------------- reporting
def machine_info(devices: list[str]) -> dict[str, Any]:
    """CPU/GPU model, core count, threads, library versions and load (`hfr.machine.machine_info`)."""
    return hfr_machine_info(devices=devices)


def label(row: dict[str, Any]) -> str:
    """Short name of a row's configuration."""
    multi = f"multi{row['multi_image']}" if row["multi_image"] else "single"
    extra = (
        ""
        if not row["device"].startswith("cuda")
        else f" {'bf16' if row['amp'] else 'fp32'}{' cl' if row['channels_last'] else ''}"
    )
    if row["method"] in ("dvg", "dvg-generate"):
        multi = f"{row['batch']} pairs"
    elif row["method"] == "tsgan":
        multi = f"batch {row['batch']}"
    return f"{row['method']} {row['size']}px w{row['width']:g} {multi} {row['device']}{extra}"


def plot(result: dict[str, Any], path: Path) -> None:
    """Horizontal bar chart of images/s per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    names = [label(r) for r in rows]
    values = [r["images_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2))
    colors = ["C1" if r["device"].startswith("cuda") else "C0" for r in rows]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log" if values and max(values) / max(min(values), 1e-9) > 50 else "linear")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.0f}", va="center", fontsize=7)
    ax.set_xlabel("images/s (training: one full step, all phases; dvg-generate: F_s + G forward)")
    batches = sorted({f"{r['method']} {r['batch']}" for r in rows})
    ax.set_title(f"generator training speed (batch: {', '.join(batches)})", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _switch(text: str) -> list[bool]:
    values = {"on": True, "off": False, "true": True, "false": False, "bf16": True, "fp32": False}
    try:
        return [values[v.strip().lower()] for v in text.split(",") if v.strip()]
    except KeyError as exc:
        raise SystemExit(f"expected a comma list of on/off, got {text!r} ({exc.args[0]!r})") from None


def kept_rows(json_path: Path, methods: list[str], batch: int, devices: list[str]) -> list[dict[str, Any]]:
    """Rows already in `json_path` of other methods, batch sizes or devices (a run of `--methods dvg --batch 8`
    keeps drgan's figures and dvg's at other batch sizes; a `--device cuda` run keeps the CPU rows)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        old = json.loads(json_path.read_text(encoding="utf-8"))["results"]
        return [
            r
            for r in old
            if r.get("method") not in methods or r.get("batch") != batch or r.get("device") not in devices
        ]
    return []


def plan(args: argparse.Namespace) -> list[tuple[str, int, str, Variant]]:
    """(method, size, device, variant) of every case, in run order."""
    cases = []
    for device in args.devices:
        cuda = device.startswith("cuda")
        amps = _switch(args.amp) if args.amp else ([False, True] if cuda else [False])
        layouts = _switch(args.channels_last) if args.channels_last else ([True, False] if cuda else [True])
        for method in args.methods:
            for size in args.sizes:
                for width in args.widths:
                    for multi in args.multi:
                        for amp in amps:
                            for cl in layouts:
                                cases.append((method, size, device, Variant(width, multi, amp, cl, args.warmup)))
    return cases


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the cases, print a table, write the JSON and the PNG; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="drgan", help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--sizes", default="64,96", help="image sizes (px), comma list")
    ap.add_argument("--widths", default="0.25,1.0", help="channel widths (0.25 synth recipe, 1.0 the paper)")
    ap.add_argument("--multi", default="0,4", help="multi-image n per case (0 = single-image), comma list")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=WARMUP, help="untimed steps before timing")
    ap.add_argument("--device", default="all", help="cpu, cuda, or all (cpu, and cuda when present)")
    ap.add_argument("--amp", default=None, help="on,off: bf16 autocast (CUDA only; default off,on on CUDA)")
    ap.add_argument("--channels-last", default=None, help="on,off (default: on for CPU as the recipes, on,off on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default torch's)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: 32 px, batch 8, 2 steps, 2 warm-up, 1 thread; writes into --out or a temp folder",
    )
    ap.add_argument("--out", type=Path, default=None, help="JSON path or folder (default benchmarks/results)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    configure_process()  # the malloc policy `hfr train-generator` runs with
    if args.quick:
        args.threads = args.threads or 1  # 2 threads on a busy 2-core machine run many times slower
    if args.threads:
        torch.set_num_threads(args.threads)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    args.sizes, args.widths, args.multi = _ints(args.sizes), _floats(args.widths), _ints(args.multi)
    if args.quick:
        args.sizes, args.batch, args.steps, args.warmup = [32], 8, 2, 2
    if args.device == "all":
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        args.devices = [args.device]
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit("--device cuda but torch sees no CUDA GPU")
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="train-speed-quick-")) if args.quick else RESULTS
    json_path = out if out.suffix == ".json" else out / "train_speed.json"

    cases = plan(args)
    info = machine_info(args.devices)
    print(
        f"{len(cases)} cases; {args.warmup} warm-up + {args.steps} timed steps each; batch {args.batch}; "
        f"{info['torch_threads']} torch threads on {info['cpu_count']} cores"
    )
    rows: list[dict[str, Any]] = []
    header = (
        f"{'method':<13}{'dev':<6}{'size':>5}{'width':>7}{'multi':>6}{'amp':>6}{'cl':>4}"
        f"{'img/s':>9}{'ms/step':>10}{'median':>9}{'peak MB':>9}"
    )
    print(header)
    t_all = time.perf_counter()
    for method, size, device, variant in cases:
        row = METHODS[method](size, args.batch, device, args.steps, variant)
        if row is None:
            continue
        row = {"method": method, "device": device, "size": size, "batch": args.batch, **asdict(variant), **row}
        rows.append(row)
        peak = row.get("peak_mem_mb")
        print(
            f"{method:<13}{device:<6}{size:>5}{variant.width:>7g}{variant.multi_image:>6}"
            f"{'bf16' if variant.amp else 'off':>6}{'on' if variant.channels_last else 'off':>4}"
            f"{row['images_per_s']:>9.1f}{row['ms_per_step']:>10.1f}{row['ms_per_step_median']:>9.1f}"
            f"{peak if peak is not None else float('nan'):>9.1f}",
            flush=True,
        )
    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    result = {
        "benchmark": "generator training speed: one full train_step (all phases) on a fixed batch, "
        "warm-up excluded; fp32 on CPU",
        "command": command_line(argv),
        "quick": args.quick,
        "seed": SEED,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "seconds_total": round(time.perf_counter() - t_all, 1),
        "machine": info,
        "note": "timings on a shared machine are pessimistic; images/s counts real input images per step",
        "results": kept_rows(json_path, args.methods, args.batch, args.devices) + rows,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    if rows:
        plot(result, json_path.with_suffix(".png"))
    print(f"wrote {json_path} and {json_path.with_suffix('.png')} ({result['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
