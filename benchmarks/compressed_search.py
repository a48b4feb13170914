"""How many bytes per face a compressed code needs for recall@1 0.95 on face-like vectors, and why.

`benchmarks/search_speed.py` found product-quantised galleries of <= 64 bytes per face far below recall@1
0.95 against exact search on face-like vectors. This benchmark measures the codes themselves, without an
inverted file in front (each code scans the whole gallery, so the only error is the code's), on the
face-like vectors of `benchmarks/face_vectors.py` (a gallery of N identities with one image each; probes:
another image of `--probes` enrolled identities):

- per code (`CODES`, FAISS `index_factory` strings: product quantisers of 16 to 128 one-byte codes, with and
  without an OPQ rotation, and 4-, 6- and 8-bit scalar quantisers): bytes per face (the code), recall@1
  against exact search, identification rank-1, the search's queries/s, and the code's *score error*: the
  standard deviation of (score the code gives - exact cosine) over each probe's exact top-10;
- the *margin analysis*: recall@1 is the share of probes whose exact top-1 stays on top when every score
  moves by the code's error. With one image per identity and N large, the top-1 and top-2 scores of a probe
  are close (the gap distribution is reported), and `recall_under_noise` measures, on the exact top-100 of
  every probe, the recall@1 that Gaussian score noise of standard deviation sigma leaves: the curve against
  sigma, with each code's measured error on it, says which error a code must reach for recall@1 0.95.

Writes `compressed_search.json` and `compressed_search.png` (recall@1 against bytes per face; recall@1
against score error, the noise curve beside) into `--out` (default benchmarks/results).

    python benchmarks/compressed_search.py --sizes 100k,1M          # about 20 min on 2 cores
    python benchmarks/compressed_search.py --quick --out /tmp/cs     # 5k faces, 100 probes (seconds)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.search_speed import FACE_MODEL, make_face_data, parse_size  # noqa: E402
from benchmarks.stages import script_main, write_result_json  # noqa: E402
from hfr.gallery import brute_force_topk  # noqa: E402
from hfr.viz import save_figure  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: (name, FAISS index_factory string, bytes per face of the code).
CODES: list[tuple[str, str, int]] = [
    ("PQ16", "PQ16", 16),
    ("PQ32", "PQ32", 32),
    ("PQ64", "PQ64", 64),
    ("OPQ64+PQ64", "OPQ64,PQ64", 64),
    ("PQ128", "PQ128", 128),
    ("SQ4", "SQ4", 128),
    ("SQ6", "SQ6", 192),
    ("SQ8", "SQ8", 256),
]
TOP = 10  #: the exact top-k the score error is measured over
NOISE_TOP = 100  #: the exact top-k the noise simulation perturbs
NOISE_DRAWS = 20
SIGMAS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064]
TRAIN_MAX = 100_000  #: training sample of the codes
RECALL_BAR, BYTES_BAR = 0.95, 64


def recall_under_noise(top_scores: np.ndarray, sigma: float, draws: int = NOISE_DRAWS, seed: int = 0) -> float:
    """Recall@1 when each of a probe's exact top scores (row i: best first) moves by N(0, sigma^2): the share
    of (probe, draw) where the first stays the largest."""
    if sigma <= 0:
        return 1.0
    rng = np.random.default_rng(seed)
    kept = 0.0
    for _ in range(draws):
        noisy = top_scores + rng.normal(0.0, sigma, size=top_scores.shape).astype(np.float32)
        kept += float((noisy.argmax(axis=1) == 0).mean())
    return kept / draws


def sigma_for(curve: list[dict[str, float]], target: float) -> float | None:
    """The largest score-noise sigma of `curve` (sorted by sigma) whose recall is still >= target,
    interpolated in log sigma between the bracketing points."""
    pts = sorted(curve, key=lambda p: p["sigma"])
    for a, b in zip(pts, pts[1:], strict=False):
        if a["recall"] >= target > b["recall"]:
            t = (a["recall"] - target) / max(a["recall"] - b["recall"], 1e-12)
            return float(np.exp(np.log(a["sigma"]) + t * (np.log(b["sigma"]) - np.log(a["sigma"]))))
    return None if not pts or pts[0]["recall"] < target else pts[-1]["sigma"]


def code_row(
    name: str, factory: str, code_bytes: int, gallery: np.ndarray, probes: np.ndarray, truth: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Train the code on a sample, encode the gallery, search exhaustively; the row's figures."""
    import faiss

    d = gallery.shape[1]
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = gallery[rng.choice(len(gallery), size=min(TRAIN_MAX, len(gallery)), replace=False)]
    t0 = time.perf_counter()
    index.train(sample)
    index.add(gallery)
    build = time.perf_counter() - t0
    index.search(probes[:8], 1)
    t0 = time.perf_counter()
    scores, ids = index.search(probes, TOP)
    search = time.perf_counter() - t0
    # the code's score of each exact top-10 candidate: reconstruct and dot (equal to what the scan scores)
    cand = truth["ids"][:, :TOP]
    recon = index.reconstruct_batch(cand.reshape(-1).astype(np.int64)).reshape(len(probes), TOP, d)
    code_scores = np.einsum("qkd,qd->qk", recon, probes)
    err = code_scores - truth["scores"][:, :TOP]
    row = {
        "code": name,
        "factory": factory,
        "bytes_per_face": code_bytes,
        "build_s": round(build, 2),
        "queries_per_s": len(probes) / search,
        "recall_at_1": float((ids[:, 0] == truth["ids"][:, 0]).mean()),
        "rank1": float((truth["labels"][ids[:, 0]] == truth["probe_labels"]).mean()),
        "score_error_std": float(err.std()),
        "score_error_bias": float(err.mean()),
        "noise_recall_at_error": recall_under_noise(truth["scores"][:, :NOISE_TOP], float(err.std())),
    }
    print(
        f"  {name:>11}: {code_bytes:4d} B, recall@1 {row['recall_at_1']:.3f}, rank-1 {row['rank1']:.3f}, score error "
        f"{row['score_error_std']:.4f} (noise model predicts recall {row['noise_recall_at_error']:.3f}), "
        f"{row['queries_per_s']:.0f} q/s, build {build:.1f} s",
        flush=True,
    )
    return row


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every code at one gallery size, with the gap statistics and the noise curve."""
    gallery, labels, probes, probe_labels = make_face_data(n, args.probes, args.face_model, args.seed)
    top = brute_force_topk(torch.from_numpy(gallery), torch.from_numpy(probes), NOISE_TOP, normalize=False)
    scores, ids = top[0].numpy(), top[1].numpy()
    truth = {"scores": scores, "ids": ids, "labels": labels, "probe_labels": probe_labels}
    gap = scores[:, 0] - scores[:, 1]
    curve = [{"sigma": s, "recall": recall_under_noise(scores, s)} for s in SIGMAS]
    print(
        f"[N={n:,}] exact rank-1 {float((labels[ids[:, 0]] == probe_labels).mean()):.3f}; top-1 - top-2 gap "
        f"median {np.median(gap):.4f}; sigma for recall {RECALL_BAR}: {sigma_for(curve, RECALL_BAR)}",
        flush=True,
    )
    codes = [code_row(name, f, b, gallery, probes, truth) for name, f, b in CODES if b <= args.max_bytes]
    return {
        "size": n,
        "probes": len(probes),
        "exact_rank1": float((labels[ids[:, 0]] == probe_labels).mean()),
        "gap": {q: float(np.quantile(gap, float(q))) for q in ("0.05", "0.1", "0.25", "0.5", "0.75")},
        "noise_curve": curve,
        "sigma_for_bar": sigma_for(curve, RECALL_BAR),
        "codes": codes,
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Left: recall@1 against bytes per face per size; right: recall@1 against the score error, with the
    noise model's curve."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax, ay) = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in results:
        label = f"N = {r['size']:,}"
        pts = sorted(r["codes"], key=lambda c: c["bytes_per_face"])
        (line,) = ax.plot([c["bytes_per_face"] for c in pts], [c["recall_at_1"] for c in pts], "o", label=label)
        for c in pts:
            ax.annotate(
                c["code"],
                (c["bytes_per_face"], c["recall_at_1"]),
                fontsize=6,
                xytext=(3, -8),
                textcoords="offset points",
            )
        curve = r["noise_curve"]
        ay.plot(
            [p["sigma"] for p in curve],
            [p["recall"] for p in curve],
            "-",
            color=line.get_color(),
            label=f"{label}: Gaussian score noise",
        )
        ay.plot([c["score_error_std"] for c in pts], [c["recall_at_1"] for c in pts], "o", color=line.get_color())
    for a in (ax, ay):
        a.axhline(RECALL_BAR, color="grey", ls="--", lw=1)
        a.set_ylabel("recall@1 vs exact")
        a.set_ylim(0, 1.02)
        a.grid(alpha=0.3)
        a.set_xscale("log", base=2)
    ax.axvline(BYTES_BAR, color="grey", ls=":", lw=1)
    ax.set_xlabel("bytes per face (code)")
    ax.set_title("codes scanned exhaustively, face-like vectors", fontsize=10)
    ax.legend(fontsize=7)
    ay.set_xscale("log")
    ay.set_xlabel("score error (std of code score - exact cosine)")
    ay.set_title("recall@1 against score error (dots: codes)", fontsize=10)
    ay.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Measure every code at every size; write JSON and PNG."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100k,1M", help="gallery sizes (identities, one image each)")
    p.add_argument("--probes", type=int, default=1000)
    p.add_argument("--max-bytes", type=int, default=256, help="skip codes larger than this")
    p.add_argument("--face-model", type=Path, default=FACE_MODEL)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="5k faces, 100 probes; needs --out")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        if args.out == RESULTS:
            p.error("--quick writes smoke-test figures: give --out (not benchmarks/results)")
        args.sizes, args.probes = "5k", 100
    t0 = time.perf_counter()
    results = [run_size(parse_size(s), args) for s in args.sizes.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "compressed_search.png")
    settings = {
        "top_for_error": TOP,
        "noise_top": NOISE_TOP,
        "noise_draws": NOISE_DRAWS,
        "train_max": TRAIN_MAX,
        "face_model": str(args.face_model),
        "seed": args.seed,
    }
    what = "compressed codes on face-like vectors: recall@1 vs exact, score error, margin analysis"
    write_result_json(args.out, "compressed_search", what, argv, settings, results, t0)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
