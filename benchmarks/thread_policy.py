"""Thread policies on a quiet and on a busy CPU: training images/s of a small LightCNN step.

Users run hfr on laptops and shared servers, where another process often holds a core. This
script measures one LightCNN-9 training step (32 px, batch 64, AdamW: the quickstart's
recognizer) under each policy, each in a fresh process (OpenMP reads its wait policy once, at
start-up), in three conditions:

- quiet: nothing else runs;
- spin: another process keeps one core busy (a Python busy loop);
- torch: another process trains the same step with torch's defaults (a second job, as hfr ran
  before the thread policy);
- hfr: another process trains the same step under the hfr policy (a second `hfr` job).

With a training competitor, its own images/s over the same window is measured too, so the
table shows what each policy takes from the other job (`competitor_images_per_s`, `total`).

Policies:
- default: what torch does by itself (one thread per core, OpenMP threads spin while waiting);
  the `hfr` command's behaviour before the thread policy;
- 1-thread: `torch.set_num_threads(1)`, spinning;
- passive: one thread per core, `OMP_WAIT_POLICY=PASSIVE`;
- hfr: `hfr.perf.configure_process()`, what every `hfr` command now does (passive waiting and
  one thread per core left free by other processes when it starts).

The competitor starts first and runs through the whole measurement. Writes
`benchmarks/results/thread_policy.json` and `thread_policy.png`. A benchmark, never a test.

    python benchmarks/thread_policy.py [--seconds 20] [--policies default,1-thread,passive,hfr]
        [--conditions quiet,spin,torch] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
POLICIES = ("default", "1-thread", "passive", "hfr")
CONDITIONS = ("quiet", "spin", "torch", "hfr")
SPIN = "while True:\n    pass\n"
LABELS = {"quiet": "quiet", "spin": "1 core busy (spin)", "torch": "torch-default job", "hfr": "another hfr job"}


def worker(policy: str, seconds: float, batch: int, size: int, progress: Path | None = None) -> dict[str, Any]:
    """Train the step for `seconds` under `policy` (set before torch loads); images/s and threads.

    With `progress`, a line "<wall time> <images so far>" is appended after every step (so a
    competitor's rate over another worker's window can be read back).
    """
    if policy == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    reason = ""
    if policy == "hfr":
        from hfr.perf import configure_process

        reason = configure_process().reason
    import torch

    from hfr.models.lightcnn import build_lightcnn

    if policy == "1-thread":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    net = build_lightcnn("lightcnn9", num_classes=100, input_size=size, in_channels=1).to(
        memory_format=torch.channels_last
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,))

    def step() -> None:
        logits, _ = net.forward_with_logits(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up: thread pool, allocator, kernel choice
        step()
    log = open(progress, "a", buffering=1, encoding="ascii") if progress is not None else None  # noqa: SIM115
    steps, start, wall_start = 0, time.perf_counter(), time.time()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
        if log is not None:
            log.write(f"{time.time():.4f} {steps * batch}\n")
    elapsed = time.perf_counter() - start
    return {
        "policy": policy,
        "images_per_s": steps * batch / elapsed,
        "steps": steps,
        "seconds": elapsed,
        "wall_start": wall_start,
        "wall_end": time.time(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "reason": reason,
    }


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "HFR_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _spawn_competitor(condition: str, batch: int, size: int, progress: Path) -> subprocess.Popen | None:
    """Start the competing process of `condition` (None for quiet); a training one logs to `progress`."""
    if condition == "quiet":
        return None
    if condition == "spin":
        cmd = [sys.executable, "-c", SPIN]
    else:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            "default" if condition == "torch" else "hfr",
            "--seconds",
            "100000",
            "--batch",
            str(batch),
            "--size",
            str(size),
            "--progress",
            str(progress),
        ]
    proc = subprocess.Popen(cmd, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if condition == "spin":
        time.sleep(1.0)
        return proc
    deadline = time.time() + 120
    while time.time() < deadline and not (progress.is_file() and progress.stat().st_size > 0):
        time.sleep(0.2)  # import, model, warm-up: until its first measured step
    time.sleep(2.0)
    return proc


def _rate_between(progress: Path, t0: float, t1: float) -> float | None:
    """Images/s of a competitor's progress log over the wall-clock window [t0, t1]."""
    points = [tuple(map(float, line.split())) for line in progress.read_text().splitlines() if line.strip()]
    inside = [(t, n) for t, n in points if t0 <= t <= t1]
    if len(inside) < 2:
        return None
    (ta, na), (tb, nb) = inside[0], inside[-1]
    return (nb - na) / (tb - ta) if tb > ta else None


def measure(policy: str, condition: str, seconds: float, batch: int, size: int) -> dict[str, Any]:
    """One fresh worker process under `policy` while `condition`'s competitor runs."""
    with tempfile.TemporaryDirectory() as tmp:
        progress = Path(tmp) / "competitor.log"
        competitor = _spawn_competitor(condition, batch, size, progress)
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    policy,
                    "--seconds",
                    str(seconds),
                    "--batch",
                    str(batch),
                    "--size",
                    str(size),
                ],
                env=_clean_env(),
                capture_output=True,
                text=True,
                timeout=seconds * 10 + 300,
                check=True,
            )
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        row = {**json.loads(out.stdout.strip().splitlines()[-1]), "condition": condition}
        if progress.is_file():
            row["competitor_images_per_s"] = _rate_between(progress, row["wall_start"], row["wall_end"])
    return row


def _mean(values: list[Any]) -> float | None:
    """Mean of the numbers among `values` (None when there is none)."""
    nums = [float(v) for v in values if v is not None]
    return sum(nums) / len(nums) if nums else None


def plot(rows: list[dict[str, Any]], policies: list[str], conditions: list[str], path: Path) -> None:
    """Grouped bars: images/s per policy, one group per condition; with a training competitor, its
    mean images/s over the same windows stacked on top (hatched), so the bar's top is both jobs'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(policies)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, policy in enumerate(policies):
        cells = [[r for r in rows if r["policy"] == policy and r["condition"] == c] for c in conditions]
        ours = [max((r["images_per_s"] for r in cell), default=0.0) for cell in cells]
        other = [_mean([r.get("competitor_images_per_s") for r in cell]) or 0.0 for cell in cells]
        xs = [j + i * width for j in range(len(conditions))]
        ax.bar(xs, ours, width, label=policy, color=colours[i % len(colours)])
        ax.bar(
            xs,
            other,
            width,
            bottom=ours,
            color=colours[i % len(colours)],
            alpha=0.35,
            hatch="//",
            label="the other job" if i == 0 and any(other) else None,
        )
    ax.set_xticks(
        [j + width * (len(policies) - 1) / 2 for j in range(len(conditions))], [LABELS.get(c, c) for c in conditions]
    )
    ax.set_ylabel("training images/s (LightCNN-9, 32 px)")
    ax.legend(title="policy of this job", fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    """Parse arguments; run a worker, or the whole matrix of policies and conditions."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=POLICIES, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per (policy, condition)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each cell; the best is kept")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--out", type=Path, default=RESULTS / "thread_policy.json")
    ap.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from an existing --out JSON")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads(args.out.read_text())
        runs = saved["runs"]
        plot(
            runs,
            list(dict.fromkeys(r["policy"] for r in runs)),
            list(dict.fromkeys(r["condition"] for r in runs)),
            args.out.with_suffix(".png"),
        )
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds, args.batch, args.size, args.progress)), flush=True)
        return
    sys.path.insert(0, str(ROOT))
    from hfr.fileio import atomic_write_text
    from hfr.machine import machine_info

    policies = [p for p in args.policies.split(",") if p]
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = sorted(set(policies) - set(POLICIES)) + sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise SystemExit(f"unknown policy or condition: {', '.join(unknown)}")
    rows: list[dict[str, Any]] = []
    started = time.time()
    for condition in conditions:
        for policy in policies:
            for r in range(args.repeats):
                row = measure(policy, condition, args.seconds, args.batch, args.size)
                row["repeat"] = r
                rows.append(row)
                other = row.get("competitor_images_per_s")
                print(
                    f"{condition:6s} {policy:9s} run {r}: {row['images_per_s']:7.1f} img/s "
                    f"({row['threads']} thread(s), wait {row['omp_wait_policy']}) {row['reason']}"
                    + (f"; competitor {other:.1f} img/s" if other else ""),
                    flush=True,
                )
    best = {
        c: {p: max(r["images_per_s"] for r in rows if r["policy"] == p and r["condition"] == c) for p in policies}
        for c in conditions
    }
    competitor = {
        c: {
            p: _mean([r.get("competitor_images_per_s") for r in rows if r["policy"] == p and r["condition"] == c])
            for p in policies
        }
        for c in conditions
        if c in ("torch", "hfr")
    }
    print("\nbest images/s of each cell (competitor's mean images/s over the same windows)")
    print("condition " + "".join(f"{p:>16s}" for p in policies))
    for c in conditions:
        cells = [
            f"{best[c][p]:.1f}" + (f" ({competitor[c][p]:.1f})" if c in competitor and competitor[c][p] else "")
            for p in policies
        ]
        print(f"{c:9s} " + "".join(f"{cell:>16s}" for cell in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    workload = f"LightCNN-9 training step, {args.size} px, batch {args.batch}, AdamW, channels_last"
    result = {
        "benchmark": "thread_policy",
        "workload": workload,
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "command": " ".join(["python", "benchmarks/thread_policy.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "minutes": round((time.time() - started) / 60, 1),
        "best_images_per_s": best,
        "competitor_mean_images_per_s": competitor,
        "runs": rows,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    plot(rows, policies, conditions, args.out.with_suffix(".png"))
    print(f"\n{args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
