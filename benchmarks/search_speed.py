"""Gallery search speed: flat and IVF FAISS galleries against a brute-force torch matmul.

For each gallery size N (default 10k, 100k, 1M) the script draws N random unit vectors
(256-d, float32, generated in chunks) and 1,000 probes, each a noisy copy of a random
gallery vector (cosine about `--probe-cos` with its source, so the source is the right
answer and recall is meaningful). It then measures, for

- `brute`: `hfr.gallery.brute_force_topk` (torch matmul + topk, chunked over the gallery);
- `flat`: `Gallery(index="flat")` (exact; checked to return the brute-force top-k);
- `ivf`: `Gallery(index="ivf")` with nlist = round(4 * sqrt(N)) and `--nprobe` lists
  visited (k-means on at most `--train-per-list` vectors per list);

the build time (create + add, k-means training included), the search speed (queries/s
for all probes in one batch, k = `--k`), recall@1 against the brute-force top-1 and
against the probe's source vector, recall@k against the brute-force top-k, the index
size (`faiss.serialize_index` bytes, what `index.faiss` holds) and the process RSS growth
over the build. Results go to `benchmarks/results/search_speed.json` (with machine
information) and a PNG plot beside it; a table is printed.

    python benchmarks/search_speed.py                 # 10k, 100k, 1M: 4-8 min on 2 cores, mostly 1M IVF k-means
    python benchmarks/search_speed.py --sizes 10k,100k
    python benchmarks/search_speed.py --sizes "" --face-sizes 100k --face-methods flat,ivf --gpu --out /tmp/s.json

Face-like vectors (`--face-sizes`, default 100k and 1M): galleries of N identities, one image
each, drawn from `benchmarks/face_vectors.py`'s model calibrated to the shared judge's SynthFace
features (`benchmarks/results/face_vectors_model.npz`; genuine/impostor cosine mean and std within
0.003 of the real ones), and `--probes` other images of random enrolled identities. Besides
recall@1 against exact search the rows report identification rank-1 (the top-1 vector is the
probe's identity). Methods there: `brute`, `flat`, `ivf` (the same rule as above, with its
nprobe sweep), `recall-0.99` (`hfr.gallery.tune.build_for_recall(recall=0.99)`, the index
`hfr gallery build --recall 0.99` picks, removal kept), `hnsw-0.99` (the same with
`removable=False`; slow to build on 2 cores, so only up to `--hnsw-max`), `compressed` (the
fastest ivfpq at recall@1 >= 0.95 within 64 bytes per face in memory, re-ranked ones included: their
vectors file is on disk; `benchmarks/rerank_search.py` measures those at 100k-10M), `ivfpq-32` /
`ivfpq-64` (32 or 64 bytes per code, nlist by the rule above, with an nprobe sweep on the probes) and,
with `--milvus` and the extra, `milvus-lite` (exact; `--milvus-only` skips the FAISS rows). The generator's rank-1 is
optimistic against real features (0.989 vs 0.948 leave-one-out at the real set's size: the
model does not tie hard images to look-alike impostors), so read rank-1 as an upper bound and
recall as the search's own figure.

Timings on a shared machine are pessimistic: other jobs may run at the same time.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.gallery import Gallery, brute_force_topk, gpu_available  # noqa: E402
from hfr.gallery.index import index_bytes  # noqa: E402
from hfr.machine import machine_info as hfr_machine_info  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TIE_TOL = 1e-5


def parse_size(text: str) -> int:
    """'10k' -> 10000, '1M' -> 1000000, '2500' -> 2500."""
    text = text.strip()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def machine_info() -> dict[str, Any]:
    """CPU, memory, library versions and thread counts of this run (`hfr.machine.machine_info`)."""
    return hfr_machine_info(
        numpy=np.__version__,
        faiss=faiss.__version__,
        faiss_threads=faiss.omp_get_max_threads(),
        faiss_gpus=faiss.get_num_gpus(),
        gallery_on_gpu=gpu_available(),
        note="shared machine: other jobs may have run at the same time, so timings are pessimistic",
    )


def make_data(
    n: int, dim: int, probes: int, probe_cos: float, seed: int, chunk: int = 100_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N random unit vectors, and `probes` noisy unit copies of randomly chosen ones."""
    rng = np.random.default_rng(seed)
    gallery = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        gallery[start : start + len(block)] = block
    source = rng.choice(n, size=min(probes, n), replace=False)
    noise = rng.standard_normal((len(source), dim), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    # random noise is nearly orthogonal in high dimension: cos(p, g) ~ 1 / sqrt(1 + s^2)
    s = math.sqrt(1.0 / probe_cos**2 - 1.0)
    probe = gallery[source] + s * noise
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    return gallery, probe.astype(np.float32), source


def compare_topk(ids: np.ndarray, scores: np.ndarray, ref_ids: np.ndarray, ref_scores: np.ndarray) -> dict[str, int]:
    """How many probes have exactly the reference top-k, differ only by ties, or differ."""
    same = (ids == ref_ids).all(axis=1)
    close = (np.abs(scores - ref_scores) <= TIE_TOL).all(axis=1)
    return {
        "identical": int(same.sum()),
        "ties_only": int((~same & close).sum()),
        "different": int((~same & ~close).sum()),
    }


def recall_at_k(ids: np.ndarray, ref_ids: np.ndarray) -> float:
    """Mean fraction of the reference top-k found in the top-k."""
    hits = [len(set(a.tolist()) & set(b.tolist())) / ref_ids.shape[1] for a, b in zip(ids, ref_ids)]
    return float(np.mean(hits))


def nprobe_sweep(g: Gallery, probes: np.ndarray, k: int, ref_i: np.ndarray, values: str) -> list[dict[str, float]]:
    """Queries/s and recall of an IVF gallery for several nprobe values (restores nprobe).

    Values above the gallery's number of lists are skipped (they equal nprobe = nlist).
    """
    keep = g.nprobe
    out = []
    wanted = {int(v) for v in values.split(",") if v.strip()}
    for nprobe in sorted(v for v in wanted if v <= (g.nlist_effective or g.nlist)):
        g.nprobe = nprobe
        g.search(probes[:8], k)
        t0 = time.perf_counter()
        res = g.search(probes, k)
        seconds = time.perf_counter() - t0
        out.append(
            {
                "nprobe": nprobe,
                "queries_per_s": len(probes) / seconds,
                "recall_at_1_vs_brute": float((res.ids[:, 0] == ref_i[:, 0]).mean()),
                "recall_at_k_vs_brute": recall_at_k(res.ids, ref_i),
            }
        )
    g.nprobe = keep
    return out


def run_size(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Benchmark brute force, flat and IVF on one gallery size; one dict per method."""
    t0 = time.perf_counter()
    gallery, probes, source = make_data(n, args.dim, args.probes, args.probe_cos, args.seed)
    print(f"[N={n:,}] data generated in {time.perf_counter() - t0:.1f}s", flush=True)
    subjects = [str(i) for i in range(n)]
    k = args.k
    rows = []

    brute_feats = torch.from_numpy(gallery)
    brute_probes = torch.from_numpy(probes)
    brute_force_topk(brute_feats, brute_probes[:8], k, normalize=False)  # warm-up
    t0 = time.perf_counter()
    brute_s, brute_i = brute_force_topk(brute_feats, brute_probes, k, normalize=False, chunk_size=args.chunk)
    brute_time = time.perf_counter() - t0
    ref_s, ref_i = brute_s.numpy(), brute_i.numpy().astype(np.int64)
    rows.append(
        {
            "size": n,
            "method": "brute",
            "params": {"chunk_size": args.chunk, "normalize": False},
            "build_s": 0.0,
            "search_s": brute_time,
            "queries_per_s": len(probes) / brute_time,
            "recall_at_1_vs_brute": 1.0,
            "recall_at_1_vs_source": float((ref_i[:, 0] == source).mean()),
            "recall_at_k_vs_brute": 1.0,
            "index_bytes": int(gallery.nbytes),
            "rss_delta_bytes": 0,
        }
    )
    print(f"[N={n:,}] brute: {rows[-1]['queries_per_s']:.0f} q/s", flush=True)

    methods = [
        ("flat", {}),
        (
            "ivf",
            {
                "nlist": max(1, round(4 * math.sqrt(n))),
                "nprobe": args.nprobe,
                "train_points_per_list": args.train_per_list,
            },
        ),
    ]
    for kind, params in methods:
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        g = Gallery.create(args.dim, "benchmark", index=kind, use_gpu=args.gpu, **params)
        g.add(gallery, subjects)
        build = time.perf_counter() - t0
        rss_delta = rss_bytes() - rss0
        g.search(probes[:8], k)  # warm-up (and the GPU copy, if any)
        t0 = time.perf_counter()
        res = g.search(probes, k)
        search = time.perf_counter() - t0
        row: dict[str, Any] = {
            "size": n,
            "method": kind,
            "params": {**params, "on_gpu": g.use_gpu},
            "build_s": build,
            "search_s": search,
            "queries_per_s": len(probes) / search,
            "recall_at_1_vs_brute": float((res.ids[:, 0] == ref_i[:, 0]).mean()),
            "recall_at_1_vs_source": float((res.ids[:, 0] == source).mean()),
            "recall_at_k_vs_brute": recall_at_k(res.ids, ref_i),
            "index_bytes": len(faiss.serialize_index(g.cpu_index)),
            "rss_delta_bytes": int(rss_delta),
        }
        if kind == "ivf":
            row["params"]["nlist_effective"] = g.nlist_effective
            row["nprobe_sweep"] = nprobe_sweep(g, probes, k, ref_i, args.sweep)
        if kind == "flat":
            counts = compare_topk(res.ids, res.scores, ref_i, ref_s)
            row["equals_brute_force"] = {
                **counts,
                "max_abs_score_diff": float(np.abs(res.scores - ref_s).max()),
                "exact": counts["different"] == 0,
            }
        rows.append(row)
        print(
            f"[N={n:,}] {kind}: build {build:.1f}s, {row['queries_per_s']:.0f} q/s, "
            f"recall@1 {row['recall_at_1_vs_brute']:.3f}",
            flush=True,
        )
        del g, res
    return rows


FACE_MODEL = RESULTS / "face_vectors_model.npz"


def make_face_data(
    n: int, probes: int, model_path: Path, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gallery vectors, gallery labels, probes, probe labels): `n` identities of the face-vector
    model with one image each, and `probes` other images (variant 1) of randomly chosen ones."""
    from benchmarks.face_vectors import FaceVectorModel

    model = FaceVectorModel.load(model_path)
    gallery, labels = model.sample_array(n, 1, seed=seed)
    who = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(probes, n), replace=False))
    probe, truth = model.images(who, per_identity=1, seed=seed, variant=1)
    return gallery.astype(np.float32), labels, probe.astype(np.float32), truth


@dataclass
class FaceTruth:
    """What a face-like row is scored against: exact top-k ids, gallery labels, each probe's identity."""

    exact_ids: np.ndarray
    labels: np.ndarray
    probe_labels: np.ndarray


def face_row(
    n: int,
    method: str,
    params: dict[str, Any],
    build: float,
    ids: np.ndarray,
    seconds: float,
    size: int,
    truth: FaceTruth,
) -> dict[str, Any]:
    """One face-like result row (printed as it is made): speed, recall@1 against exact, rank-1, bytes per face."""
    queries = len(truth.probe_labels)
    out = {
        "vectors": "face",
        "size": n,
        "method": method,
        "params": params,
        "build_s": build,
        "search_s": seconds,
        "queries_per_s": queries / seconds,
        "recall_at_1_vs_brute": float((ids[:, 0] == truth.exact_ids[:, 0]).mean()),
        "rank1": float((truth.labels[ids[:, 0]] == truth.probe_labels).mean()),
        "recall_at_k_vs_brute": recall_at_k(ids, truth.exact_ids),
        "index_bytes": size,
        "bytes_per_face": size / n,
    }
    print(
        f"[face N={n:,}] {method}: build {build:.1f}s, {out['queries_per_s']:.0f} q/s, recall@1 "
        f"{out['recall_at_1_vs_brute']:.4f}, rank-1 {out['rank1']:.4f}, {out['bytes_per_face']:.1f} B/face",
        flush=True,
    )
    return out


def timed_search(search: Any, probes: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """(top-k ids, seconds) of one batched search after a warm-up on 8 probes."""
    search(probes[:8], k)
    t0 = time.perf_counter()
    ids = search(probes, k)
    return ids, time.perf_counter() - t0


#: the face-like rows besides brute force, in run order (`--face-methods` picks some)
FACE_METHODS = ("flat", "ivf", "recall-0.99", "compressed", "hnsw-0.99", "ivfpq-32", "ivfpq-64")


def run_face_size(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Face-like vectors at one size: exact, fixed-rule IVF and the recall-tuned indexes (module docstring)."""
    from hfr.gallery.tune import build_for_recall

    t0 = time.perf_counter()
    gallery, labels, probes, truth = make_face_data(n, args.probes, args.face_model, args.seed)
    print(f"[face N={n:,}] data generated in {time.perf_counter() - t0:.1f}s", flush=True)
    subjects = labels.astype(str).tolist()
    k = args.k
    brute_feats = torch.from_numpy(gallery)
    ref_ids, brute_time = timed_search(
        lambda p, kk: brute_force_topk(brute_feats, torch.from_numpy(p), kk, normalize=False)[1].numpy(), probes, k
    )
    rows: list[dict[str, Any]] = []

    truth_of = FaceTruth(ref_ids, labels, truth)

    def row(method: str, params: dict[str, Any], build: float, ids: np.ndarray, seconds: float, size: int) -> None:
        rows.append(face_row(n, method, params, build, ids, seconds, size, truth_of))

    row("brute", {}, 0.0, ref_ids, brute_time, int(gallery.nbytes))
    nlist = max(1, round(4 * math.sqrt(n)))

    def fixed(**params: Any) -> Any:
        """A build of a gallery with these index parameters."""
        return lambda: Gallery.build(gallery, subjects, "benchmark", use_gpu=args.gpu, **params)

    def tuned(recall: float, **params: Any) -> Any:
        """A build by `build_for_recall` for `recall` with these options."""
        return lambda: build_for_recall(
            gallery, subjects, "benchmark", recall, tune_sample=args.tune_sample, use_gpu=args.gpu, **params
        )

    builds: list[tuple[str, Any]] = [
        ("flat", fixed()),
        ("ivf", fixed(index="ivf", nlist=nlist, nprobe=args.nprobe, train_points_per_list=args.train_per_list)),
        ("recall-0.99", tuned(0.99)),
        ("compressed", tuned(0.95, max_bytes_per_vector=64, kinds=["ivfpq"])),
    ]
    if n <= args.hnsw_max:
        builds.append(("hnsw-0.99", tuned(0.99, removable=False, kinds=["hnsw"])))
    for m in (32, 64):  # fixed-rule compressed rows, swept on the probes (the tuner judges by leave-one-out)
        builds.append((f"ivfpq-{m}", fixed(index="ivfpq", nlist=nlist, nprobe=args.nprobe, pq_m=m)))
    if args.milvus_only:
        builds = []
    if args.face_methods is not None:  # brute force always runs: it is every row's reference
        builds = [(method, build) for method, build in builds if method in args.face_methods]
    for method, build in builds:
        gc.collect()
        t0 = time.perf_counter()
        g = build()
        seconds = time.perf_counter() - t0
        ids, search_s = timed_search(lambda p, kk, g=g: g.search(p, kk).ids, probes, k)
        params = {**g.info()["index"], "on_gpu": g.use_gpu}
        if g.tuning is not None:
            params["tuning"] = g.tuning
        row(method, params, seconds, ids, search_s, index_bytes(g.cpu_index))
        if method == "ivf" or method.startswith("ivfpq"):
            rows[-1]["nprobe_sweep"] = nprobe_sweep(g, probes, k, ref_ids, args.sweep)
        del g
    if args.milvus or args.milvus_only:
        rows.append(milvus_row(n, gallery, subjects, probes, k, truth_of))
    return rows


def milvus_row(
    n: int, gallery: np.ndarray, subjects: list[str], probes: np.ndarray, k: int, truth: FaceTruth
) -> dict[str, Any]:
    """The milvus-lite gallery (exact FLAT) on the same vectors, in a temporary folder."""
    import tempfile

    from hfr.gallery.milvus import MilvusGallery

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        g = MilvusGallery.build(Path(tmp) / "g", gallery, subjects, "benchmark")
        build = time.perf_counter() - t0
        with g:
            ids, seconds = timed_search(lambda p, kk: g.search(p, kk).ids, probes, k)
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    return face_row(n, "milvus-lite", {"index": "FLAT", "metric": "IP"}, build, ids, seconds, size, truth)


def format_face_table(rows: list[dict[str, Any]]) -> str:
    """The face-like rows as a plain-text table."""
    head = f"{'N':>9} {'method':<12} {'build s':>8} {'q/s':>9} {'R@1 exact':>9} {'rank-1':>7} {'B/face':>7}  index"
    lines = [head, "-" * len(head)]
    for r in rows:
        p = r["params"]
        what = ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("tuning", "metric", "on_gpu", "trained"))
        lines.append(
            f"{r['size']:>9,} {r['method']:<12} {r['build_s']:>8.1f} {r['queries_per_s']:>9.0f} "
            f"{r['recall_at_1_vs_brute']:>9.4f} {r['rank1']:>7.4f} {r['bytes_per_face']:>7.1f}  {what}"
        )
    return "\n".join(lines)


def format_table(rows: list[dict[str, Any]], k: int) -> str:
    """A plain-text table of the results."""
    head = (
        f"{'N':>9} {'method':<6} {'build s':>8} {'q/s':>9} {'R@1 brute':>9} "
        f"{'R@1 src':>8} {f'R@{k} brute':>10} {'index MB':>9} {'RSS +MB':>8}  notes"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        note = ""
        if r["method"] == "ivf":
            note = f"nlist={r['params']['nlist_effective']} nprobe={r['params']['nprobe']}"
        if r["method"] == "flat":
            c = r["equals_brute_force"]
            note = f"top-{k} == brute: {c['identical']} identical, {c['ties_only']} ties, {c['different']} different"
        lines.append(
            f"{r['size']:>9,} {r['method']:<6} {r['build_s']:>8.2f} {r['queries_per_s']:>9.0f} "
            f"{r['recall_at_1_vs_brute']:>9.3f} {r['recall_at_1_vs_source']:>8.3f} "
            f"{r['recall_at_k_vs_brute']:>10.3f} {r['index_bytes'] / 2**20:>9.1f} "
            f"{r['rss_delta_bytes'] / 2**20:>8.1f}  {note}"
        )
    sweeps = [r for r in rows if r.get("nprobe_sweep")]
    if sweeps:
        lines += ["", "IVF nprobe sweep (queries/s, recall@1 vs brute force):"]
        for r in sweeps:
            cells = ", ".join(
                f"{s['nprobe']}: {s['queries_per_s']:.0f} q/s R@1 {s['recall_at_1_vs_brute']:.3f}"
                for s in r["nprobe_sweep"]
            )
            lines.append(f"  N={r['size']:,} nlist={r['params']['nlist_effective']}: {cells}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Queries/s and recall@1 against gallery size, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = "FAISS on GPU" if any(r["params"].get("on_gpu") for r in rows) else "CPU"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for method in ("brute", "flat", "ivf"):
        sel = [r for r in rows if r["method"] == method]
        sizes = [r["size"] for r in sel]
        ax1.plot(sizes, [r["queries_per_s"] for r in sel], "o-", label=method)
        ax2.plot(sizes, [r["recall_at_1_vs_brute"] for r in sel], "o-", label=method)
    ax1.set(xscale="log", yscale="log", xlabel="gallery size", ylabel="queries / s", title=f"search speed ({device})")
    ax2.set(xscale="log", xlabel="gallery size", ylabel="recall@1 vs brute force", title="recall@1", ylim=(0, 1.05))
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON results and plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="gallery sizes, e.g. 10k,100k,1M")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--sweep", default="1,4,16,64,256", help="IVF nprobe values to also time (empty: none)")
    parser.add_argument(
        "--train-per-list", type=int, default=64, help="IVF k-means sample: at most this many vectors per list"
    )
    parser.add_argument(
        "--probe-cos", type=float, default=0.7, help="cosine between a probe and its source gallery vector"
    )
    parser.add_argument("--chunk", type=int, default=65536, help="brute-force gallery chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gpu",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the FAISS galleries on the GPU (default: when FAISS sees one)",
    )
    parser.add_argument("--face-sizes", default="100k,1M", help="face-like gallery sizes (identities); empty: none")
    parser.add_argument("--face-model", type=Path, default=FACE_MODEL, help="benchmarks/face_vectors.py's model")
    parser.add_argument("--tune-sample", type=int, default=100_000, help="build_for_recall's tuning sample")
    parser.add_argument(
        "--hnsw-max", type=parse_size, default=100_000, help="largest face-like gallery given an HNSW row (slow build)"
    )
    parser.add_argument("--milvus-only", action="store_true", help="face-like rows: brute force and milvus-lite only")
    parser.add_argument("--milvus", action="store_true", help="also time a milvus-lite gallery on face-like vectors")
    parser.add_argument(
        "--face-methods",
        default=None,
        help=f"face-like rows to measure besides brute force, comma-separated from {','.join(FACE_METHODS)} "
        "(default: all; the GPU check keeps to the quick ones)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "search_speed.json")
    args = parser.parse_args(argv)
    if args.face_methods is not None:
        args.face_methods = [m.strip() for m in args.face_methods.split(",") if m.strip()]
        unknown = sorted(set(args.face_methods) - set(FACE_METHODS))
        if unknown:
            parser.error(f"--face-methods: unknown {', '.join(unknown)}; use {', '.join(FACE_METHODS)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    face_rows: list[dict[str, Any]] = []
    face_sizes = [parse_size(s) for s in args.face_sizes.split(",") if s.strip()]
    settings = {
        "sizes": sizes,
        "dim": args.dim,
        "probes": args.probes,
        "k": args.k,
        "nprobe": args.nprobe,
        "nprobe_sweep": args.sweep,
        "nlist_rule": "round(4 * sqrt(N))",
        "train_points_per_list": args.train_per_list,
        "probe_cos": args.probe_cos,
        "face_sizes": face_sizes,
        "face_model": str(args.face_model),
        "face_methods": "all" if args.face_methods is None else args.face_methods,
        "tune_sample": args.tune_sample,
        "seed": args.seed,
        "timing": "one batched search of all probes after a warm-up; build = create + add (IVF k-means included)",
    }

    def write(done: bool) -> dict[str, Any]:
        """The JSON so far (rewritten after every size, so an interrupted run keeps what it measured)."""
        result = {
            "benchmark": "gallery search speed",
            "settings": settings,
            "machine": machine_info(),
            "complete": done,
            "total_s": time.perf_counter() - started,
            "results": rows,
            "face_results": face_rows,
        }
        atomic_write_text(args.out, json.dumps(result, indent=2, default=float) + "\n")
        return result

    for n in sizes:
        rows.extend(run_size(n, args))
        write(False)
        gc.collect()
    for n in face_sizes:
        face_rows.extend(run_face_size(n, args))
        write(False)
        gc.collect()
    result = write(True)
    if rows:  # the plot is of the uniform-vector rows (a face-only run has none)
        plot(rows, args.out.with_suffix(".png"))
        print(format_table(rows, args.k))
    if face_rows:
        print(format_face_table(face_rows))
    wrote = f"{args.out} and {args.out.with_suffix('.png')}" if rows else str(args.out)
    print(f"wrote {wrote} ({result['total_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
