"""LightCNN forward speed: images/s of LightCNN-9 and -29v2 at 64 and 128 px, batch 64.

For each model and size it reports the forward images/s (inference, features only) and the
fraction of the machine's matrix-multiply throughput that this reaches:

    fraction = 2 * MACs/image * images/s / (fp32 matmul FLOP/s)

MACs are counted with forward hooks on every Conv2d and Linear layer; the matmul FLOP/s is
measured here with square fp32 matmuls (2048^3 by default). Other processes may share the
CPU, so for each model the matmul is timed in windows as long as one forward (back-to-back
matmuls), interleaved with the forwards round by round, and the best of each is kept: both
figures then see the same kind of moments, and their ratio is comparable.

Modes (all compute the same function; the script checks the outputs against eager):
- eager: NCHW tensors under `torch.no_grad()`, the straightforward way.
- channels_last: model and input in channels_last (NHWC) memory format, `torch.inference_mode()`.
- compile: `torch.compile` (inductor, weights frozen) of the channels_last model; needs a C++
  compiler, compiles for a minute or more on 2 cores; only with `--compile`.
- cuda: on a GPU, bf16 autocast + channels_last (the fraction is then relative to the fp32
  matmul, as the eager CPU figures; the bf16 matmul FLOP/s is recorded too).
- a "+heap" suffix (channels_last+heap, compile+heap, eager+heap): the same with glibc malloc
  told to keep big blocks in its heap instead of mmap/munmap per tensor (see `Allocator`);
  the other modes run with glibc's default policy. Default CPU modes: eager, channels_last,
  channels_last+heap (+ compile+heap with --compile).

Writes `benchmarks/results/recognizer_speed.json` with the machine's description. A benchmark,
never a test: the figures depend on the machine and its load.

    python benchmarks/recognizer_speed.py [--device cpu|cuda] [--modes eager,channels_last+heap]
        [--compile] [--rounds 5] [--batch 64] [--threads N] [--archs ...] [--sizes 64 128]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.machine import machine_info as hfr_machine_info  # noqa: E402
from hfr.models import build_lightcnn  # noqa: E402
from hfr.perf import Allocator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CPU_MODES = ("eager", "channels_last", "compile")


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class MatmulMeter:
    """Times back-to-back square n x n matmuls over a window; keeps the best FLOP/s seen.

    The window lasts about as long as one model forward, so that both see the same share of
    a CPU that other processes also use (a single short matmul would catch quiet moments a
    several-second forward cannot, and bias the fraction down).
    """

    def __init__(self, n: int, device: str, dtype: torch.dtype = torch.float32) -> None:
        self.n, self.device = n, device
        self.a = torch.randn(n, n, device=device, dtype=dtype)
        self.b = torch.randn(n, n, device=device, dtype=dtype)
        self.best = 0.0
        self.measure(0.0)  # warm-up (thread pool, kernel selection)
        self.best = 0.0

    def measure(self, window_s: float, min_calls: int = 2) -> float:
        """Run matmuls for at least `window_s` seconds (and `min_calls`); update and return the best FLOP/s."""
        sync(self.device)
        calls, t = 0, time.perf_counter()
        while True:
            torch.mm(self.a, self.b)
            calls += 1
            if calls >= min_calls:
                sync(self.device)
                elapsed = time.perf_counter() - t
                if elapsed >= window_s:
                    break
        self.best = max(self.best, 2.0 * self.n**3 * calls / elapsed)
        return self.best

    def reset(self) -> None:
        """Forget the best so far (each model gets its own, adjacent measurements)."""
        self.best = 0.0


def count_macs(model: nn.Module, size: int, in_channels: int = 1) -> int:
    """Multiply-accumulates of one image's forward pass through Conv2d and Linear layers."""
    total = 0

    def hook(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            per_output = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
            total += out[0].numel() * per_output
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, in_channels, size, size))
    for h in handles:
        h.remove()
    return total


def make_runner(model: nn.Module, mode: str, x: torch.Tensor, device: str) -> tuple[Callable[[], torch.Tensor], float]:
    """Return (a no-argument forward of batch `x` in `mode`, seconds spent preparing/compiling).

    `mode` is one of eager, channels_last, compile, cuda; a "+heap" suffix is handled by the caller.
    """
    t0 = time.perf_counter()
    mode = mode.split("+")[0]
    if mode == "eager":

        def run() -> torch.Tensor:
            with torch.no_grad():
                return model(x)

        return run, 0.0
    m = model.to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    if mode == "channels_last":

        def run_cl() -> torch.Tensor:
            with torch.inference_mode():
                return m(xc)

        return run_cl, 0.0
    if mode == "cuda":

        def run_cuda() -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                return m(xc)

        return run_cuda, 0.0
    if mode == "compile":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(m)

        def run_compiled() -> torch.Tensor:
            with torch.no_grad():
                return compiled(xc)

        run_compiled()
        sync(device)
        return run_compiled, time.perf_counter() - t0
    raise SystemExit(f"unknown mode {mode!r}; use one of {', '.join(CPU_MODES + ('cuda',))}")


def bench_model(
    arch: str, size: int, modes: list[str], batch: int, rounds: int, device: str, meter: MatmulMeter, alloc: Allocator
) -> list[dict[str, Any]]:
    """Measure every mode of one model and size, interleaving matmul and model timings.

    A mode ending in "+heap" runs with the heap allocator policy, the others with glibc's default.
    """
    use_alloc = any(m.endswith("+heap") for m in modes)

    def select(mode: str) -> None:
        if use_alloc:
            alloc.set(mode.endswith("+heap"))

    torch.manual_seed(0)
    model = build_lightcnn(arch, input_size=size).eval()
    macs = count_macs(model, size)
    model = model.to(device)
    x = torch.rand(batch, 1, size, size, device=device)
    with torch.no_grad():
        reference = model(x).float()
    runners = {}
    for mode in modes:
        select(mode)
        fresh = build_lightcnn(arch, input_size=size).eval().to(device)
        fresh.load_state_dict(model.state_dict())
        runners[mode] = make_runner(fresh, mode, x, device)
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    diffs: dict[str, float] = {}
    window = 0.0
    for mode, (run, _) in runners.items():
        select(mode)
        sync(device)
        t = time.perf_counter()
        out = run()  # warm-up, and the check that every mode computes the same features
        sync(device)
        window = max(window, time.perf_counter() - t)
        diffs[mode] = float((out.float() - reference).abs().max() / reference.abs().max())
    meter.reset()
    for _ in range(rounds):
        meter.measure(window)
        for mode, (run, _) in runners.items():
            select(mode)
            sync(device)
            t = time.perf_counter()
            run()
            sync(device)
            times[mode].append(time.perf_counter() - t)
        window = statistics.median(min(v) for v in times.values())
        meter.measure(window)
    flops = meter.best
    rows = []
    for mode in modes:
        best = batch / min(times[mode])
        rows.append(
            {
                "arch": arch,
                "size": size,
                "mode": mode,
                "batch": batch,
                "macs_per_image": macs,
                "images_per_s": round(best, 2),
                "images_per_s_median": round(batch / statistics.median(times[mode]), 2),
                "setup_s": round(runners[mode][1], 1),
                "max_rel_diff_vs_eager": diffs[mode],
                "matmul_gflops": round(flops / 1e9, 2),
                "fraction_of_matmul": round(2 * macs * best / flops, 4),
            }
        )
    return rows


def machine_info(device: str, threads: int) -> dict[str, Any]:
    """CPU/GPU model, core count, library versions and load (`hfr.machine.machine_info`)."""
    return hfr_machine_info(device=device, torch_threads=threads)


def plot(result: dict[str, Any], path: Path) -> None:
    """Bar chart of the fraction of matmul throughput per model, input size and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    groups = list(dict.fromkeys(f"{r['arch']} {r['size']}px" for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for j, mode in enumerate(modes):
        values = [
            next(
                (r["fraction_of_matmul"] for r in rows if f"{r['arch']} {r['size']}px" == g and r["mode"] == mode), 0.0
            )
            for g in groups
        ]
        ax.bar([i + j * width for i in range(len(groups))], values, width, label=mode)
    ax.axhline(0.75, ls="--", lw=1, color="grey")
    ax.set_xticks([i + width * (len(modes) - 1) / 2 for i in range(len(groups))], groups, fontsize=8)
    ax.set_ylabel("fraction of fp32 matmul FLOP/s")
    ax.set_title(f"LightCNN forward, batch {rows[0]['batch']}, {result['machine'].get('device', 'cpu')}")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    """Parse options, run the measurements, print a table and write the JSON and a PNG."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--archs", nargs="+", default=["lightcnn9", "lightcnn29v2"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="timed forwards per mode (best kept)")
    ap.add_argument(
        "--modes", default=None, help="comma-separated; default eager,channels_last on CPU, eager,cuda on CUDA"
    )
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    ap.add_argument("--matmul", type=int, default=2048, help="side of the square fp32 matmul")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    ap.add_argument("--out", type=Path, default=RESULTS / "recognizer_speed.json")
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from an existing --out JSON")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(args.out.read_text()), args.out.with_suffix(".png"))
        print(f"wrote {args.out.with_suffix('.png')}")
        return

    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    alloc = Allocator()
    if args.modes:
        modes = args.modes.split(",")
    elif cuda:
        modes = ["eager", "cuda"]
    else:
        modes = ["eager", "channels_last"] + (["channels_last+heap"] if alloc.available else [])
    if args.compile and not any(m.startswith("compile") for m in modes):
        modes.append("compile+heap" if alloc.available and not cuda else "compile")
    if not alloc.available and any(m.endswith("+heap") for m in modes):
        raise SystemExit("the +heap modes need glibc (Linux); leave them out with --modes")
    info = machine_info(args.device, args.threads)
    meter = MatmulMeter(args.matmul, args.device)
    bf16_flops = None
    if cuda:
        bf16_flops = MatmulMeter(args.matmul, args.device, torch.bfloat16).measure(1.0)

    rows: list[dict[str, Any]] = []
    for arch in args.archs:
        for size in args.sizes:
            rows.extend(bench_model(arch, size, modes, args.batch, args.rounds, args.device, meter, alloc))
    flops = max(r["matmul_gflops"] for r in rows) * 1e9

    with contextlib.suppress(OSError):
        info["load_average_end"] = list(os.getloadavg())
    result = {
        "benchmark": "LightCNN forward (features), fp32 on CPU, bf16 autocast on CUDA",
        "machine": info,
        "matmul": {
            "n": args.matmul,
            "dtype": "float32",
            "best_gflops": round(flops / 1e9, 2),
            "window": "back-to-back matmuls for about one model forward, best window kept",
            "bf16_best_gflops": round(bf16_flops / 1e9, 2) if bf16_flops else None,
        },
        "rounds": args.rounds,
        "results": rows,
    }
    print(
        f"fp32 matmul {args.matmul}^3: best {flops / 1e9:.1f} GFLOP/s over the run; each row's fraction "
        "uses the matmul windows measured beside it (column 'matmul')"
    )
    print(f"{'arch':<14}{'size':>5}  {'mode':<20}{'GMAC/img':>9}{'img/s':>9}{'median':>9}{'matmul':>8}{'fraction':>10}")
    for r in rows:
        print(
            f"{r['arch']:<14}{r['size']:>5}  {r['mode']:<20}{r['macs_per_image'] / 1e9:>9.3f}"
            f"{r['images_per_s']:>9.1f}{r['images_per_s_median']:>9.1f}{r['matmul_gflops']:>8.1f}"
            f"{r['fraction_of_matmul']:>10.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
