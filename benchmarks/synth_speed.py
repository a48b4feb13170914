"""SynthFace rendering speed: images per second at 64x64 and 128x128.

Measures `render_batch` alone and render + PNG encoding (`hfr.data.imageio.encode_png`),
on webface-like nuisances (yaw mostly near-frontal, 30% expressions, random light, blur
on half the images) with 20 images per identity, as the `webface` preset renders them.
Writes `benchmarks/results/synth_speed.json` with the machine's CPU count, torch version
and device. A benchmark, never a test: the figures depend on the machine and its load.

    python benchmarks/synth_speed.py [--threads 2] [--images 1024] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfr.data.imageio import encode_png  # noqa: E402
from hfr.data.synth import SynthConfig, _layout, preset_identity  # noqa: E402
from hfr.data.synth_render import render_batch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def measure(size: int, n_images: int, device: str, batch: int = 256) -> dict[str, float]:
    """Render `n_images` webface images at `size` in batches; returns images/s with and without PNG."""
    subjects = n_images // 20 + 1
    cfg = SynthConfig(preset="webface", size=size, subjects=subjects, images_per_subject=20)
    per_batch = batch // 20
    batches = []
    for first in range(0, subjects, per_batch):
        subj = list(range(first, min(subjects, first + per_batch)))
        ids = [preset_identity(cfg, i) for i in subj]
        specs = []
        for j, i in enumerate(subj):
            for it in _layout(cfg, i, subjects):
                it.spec.identity = j
                specs.append(it.spec)
        batches.append((ids, specs))
    render_batch(batches[0][0], batches[0][1][:8], size, device)  # warm-up
    done, t_render, t_png = 0, 0.0, 0.0
    for ids, specs in batches:
        specs = specs[: n_images - done]
        if not specs:
            break
        t0 = time.perf_counter()
        out = render_batch(ids, specs, size, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        for k in range(len(specs)):
            encode_png(out.image(k))
        t2 = time.perf_counter()
        t_render += t1 - t0
        t_png += t2 - t1
        done += len(specs)
    return {
        "images": done,
        "render_images_per_s": done / t_render,
        "render_png_images_per_s": done / (t_render + t_png),
    }


def main() -> None:
    """Run the measurements and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--images", type=int, default=1024, help="images per size (default 1024)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=RESULTS / "synth_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for size in (64, 128):
        r = measure(size, args.images if size == 64 else max(64, args.images // 4), args.device)
        results[str(size)] = r
        print(
            f"{size}x{size}: render {r['render_images_per_s']:.0f} images/s, "
            f"render + PNG {r['render_png_images_per_s']:.0f} images/s ({r['images']} images)",
            flush=True,
        )
    info = {
        "results": results,
        "goal": {"64": 1000, "128": 200},
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "device": args.device,
            "load_average_1min": os.getloadavg()[0],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
