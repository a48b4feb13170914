"""Thread policies on a quiet and on a busy CPU: training images/s of a small LightCNN step.

Users run hfr on laptops and shared servers, where another process often holds a core. This
script measures one LightCNN-9 training step (32 px, batch 64, AdamW: the quickstart's
recognizer) under each policy, each in a fresh process (OpenMP reads its wait policy once, at
start-up), in three conditions:

- quiet: nothing else runs;
- spin: another process keeps one core busy (a Python busy loop);
- torch: another process trains the same step with torch's defaults (a second hfr-like job).

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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
POLICIES = ("default", "1-thread", "passive", "hfr")
CONDITIONS = ("quiet", "spin", "torch")
SPIN = "while True:\n    pass\n"


def worker(policy: str, seconds: float, batch: int, size: int) -> dict[str, Any]:
    """Train the step for `seconds` under `policy` (set before torch loads); images/s and threads."""
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
        memory_format=torch.channels_last)
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
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    elapsed = time.perf_counter() - start
    return {"policy": policy, "images_per_s": steps * batch / elapsed, "steps": steps, "seconds": elapsed,
            "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            "reason": reason}


def _spawn_competitor(condition: str, batch: int, size: int) -> subprocess.Popen | None:
    """Start the competing process of `condition` (None for quiet)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "HFR_THREADS")}
    if condition == "quiet":
        return None
    if condition == "spin":
        cmd = [sys.executable, "-c", SPIN]
    else:
        cmd = [sys.executable, __file__, "--worker", "default", "--seconds", "100000", "--batch", str(batch),
               "--size", str(size)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3.0 if condition == "torch" else 1.0)  # let it reach its steady state (torch: import + warm-up)
    return proc


def measure(policy: str, condition: str, seconds: float, batch: int, size: int) -> dict[str, Any]:
    """One fresh worker process under `policy` while `condition`'s competitor runs."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "HFR_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    competitor = _spawn_competitor(condition, batch, size)
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", policy, "--seconds", str(seconds),
                              "--batch", str(batch), "--size", str(size)], env=env, capture_output=True, text=True,
                             timeout=seconds * 10 + 300, check=True)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "condition": condition}


def plot(rows: list[dict[str, Any]], policies: list[str], conditions: list[str], path: Path) -> None:
    """Grouped bars: images/s per policy, one group per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(policies)
    for i, policy in enumerate(policies):
        values = [max((r["images_per_s"] for r in rows if r["policy"] == policy and r["condition"] == c),
                      default=0.0) for c in conditions]
        ax.bar([j + i * width for j in range(len(conditions))], values, width, label=policy)
    ax.set_xticks([j + width * (len(policies) - 1) / 2 for j in range(len(conditions))],
                  ["quiet", "1 core busy (spin)", "another torch job"][: len(conditions)] if
                  conditions == list(CONDITIONS) else conditions)
    ax.set_ylabel("training images/s (LightCNN-9, 32 px)")
    ax.legend(title="policy", fontsize=8)
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
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds, args.batch, args.size)), flush=True)
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
                print(f"{condition:6s} {policy:9s} run {r}: {row['images_per_s']:7.1f} img/s "
                      f"({row['threads']} thread(s), wait {row['omp_wait_policy']}) {row['reason']}", flush=True)
    best = {c: {p: max(r["images_per_s"] for r in rows if r["policy"] == p and r["condition"] == c)
                for p in policies} for c in conditions}
    print("\nbest images/s of each cell")
    print("condition " + "".join(f"{p:>10s}" for p in policies))
    for c in conditions:
        print(f"{c:9s} " + "".join(f"{best[c][p]:10.1f}" for p in policies))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "thread_policy", "workload": f"LightCNN-9 training step, {args.size} px, batch {args.batch}, "
              "AdamW, channels_last", "seconds_per_run": args.seconds, "repeats": args.repeats,
              "command": " ".join(["python", "benchmarks/thread_policy.py", *sys.argv[1:]]),
              "machine": machine_info(), "minutes": round((time.time() - started) / 60, 1),
              "best_images_per_s": best, "runs": rows}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    plot(rows, policies, conditions, args.out.with_suffix(".png"))
    print(f"\n{args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
