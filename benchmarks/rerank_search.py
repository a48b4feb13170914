"""Compressed codes in memory, exact vectors on disk: recall@1 after re-ranking a shortlist, at 100k to 10M faces.

`benchmarks/compressed_search.py` measured that no code of <= 64 bytes per face reaches recall@1 0.95 against
exact search on face-like vectors: the codes' score error (0.02 for PQ64) exceeds the gap between a probe's
first and second gallery scores. The remedy of Jegou et al. ("Product quantization for nearest neighbor
search", TPAMI 2011, re-ranking with the vectors) and FAISS's `IndexRefine`: let the codes pick a shortlist
of R candidates, re-score those R with the exact vectors, keep the best. Memory holds the codes; the float32
vectors stay in a file on disk, memory-mapped, and only the shortlist's rows are read per query. After
re-ranking, recall@1 is exactly the share of probes whose exact top-1 is in the shortlist.

Per gallery size (face-like vectors of `benchmarks/face_vectors.py`, N identities with one image each, written
to a memory-mapped `.npy` file under `--scratch`; probes: another image of `--probes` enrolled identities):

- shortlist codes (`shortlist_codes`; `np`: without FAISS's polysemous training, which only speeds up Hamming
  filtering and took 220 s per PQ64 code here): exhaustive PQ32 and PQ64 scans (up to `--exhaustive-max`, 1M
  by default: a PQ64 scan of 10M answers about 2 queries/s on one core), and IVF-PQ32 / IVF-PQ64 (`nlist_for`
  lists, codes of the residual to the list's centroid; `nprobe` 16 and 64);
- per shortlist size R (`SHORTLISTS`): recall@1 against exact search, identification rank-1, queries/s of
  the whole two-step search (code search for R, gather the R rows from the memory-mapped file, dot, top-1)
  with the file in the page cache (`warm`), and for the largest R also after the file's pages were
  dropped from the page cache (`posix_fadvise(DONTNEED)`: every row read comes from the disk, `cold`);
- bytes per face in memory (the FAISS index serialised, with its 8-byte ids) and on disk (4 d);
- up to `--tuned-max` (1M), the gallery `hfr gallery build --recall 0.95 --max-bytes-per-face 64` builds
  (`hfr.gallery.tune.build_for_recall` among the ivfpq kinds, re-ranked ones included) and its recall@1 on the
  held-out probes (the tuner judges by leave-one-out on the gallery itself).

Writes `rerank_search.json` and `rerank_search.png` (recall@1 against R per code and size) into `--out`
(default benchmarks/results).

    python benchmarks/rerank_search.py --sizes 100k,1M,10M --scratch /tmp/hfr/rerank   # about 40 min, 1 core
    python benchmarks/rerank_search.py --quick --out /tmp/rs            # 20k faces, no tuned build (a minute)
    python benchmarks/rerank_search.py --sizes 1M --tuned-only          # re-measure the tuned build into the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.search_speed import FACE_MODEL, parse_size  # noqa: E402
from benchmarks.stages import command_line, script_main, write_result_json  # noqa: E402
from hfr.errors import ArgumentError  # noqa: E402
from hfr.fileio import atomic_write_text  # noqa: E402
from hfr.gallery import brute_force_topk  # noqa: E402
from hfr.machine import machine_info  # noqa: E402
from hfr.viz import save_figure  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHORTLISTS = [10, 32, 100, 320]
NPROBES = [16, 64]
TRAIN_MAX = 100_000  #: training sample of the codes (IVF codes: at least 64 points per list)
CHUNK = 262_144  #: rows written, added to FAISS and scanned by the exact search at once
RECALL_BAR, BYTES_BAR = 0.95, 64


def nlist_for(n: int) -> int:
    """IVF lists at `n` faces: 4 sqrt(n) up to 4,096 (k-means on one core stays under two minutes), at least 1."""
    return int(max(1, min(4096, round(4 * np.sqrt(n)), n // 39)))


def shortlist_codes(n: int, exhaustive_max: int) -> list[dict[str, Any]]:
    """The codes that pick shortlists at `n` faces: name, FAISS factory string, code bytes, nprobe values."""
    out: list[dict[str, Any]] = []
    if n <= exhaustive_max:
        out += [
            {"code": "PQ32", "factory": "PQ32x8np", "code_bytes": 32, "nprobes": [None]},
            {"code": "PQ64", "factory": "PQ64x8np", "code_bytes": 64, "nprobes": [None]},
        ]
    for m in (32, 64):
        factory = f"IVF{nlist_for(n)},PQ{m}x8np"
        out.append({"code": f"IVF-PQ{m}", "factory": factory, "code_bytes": m, "nprobes": NPROBES})
    return out


def write_gallery(path: Path, n: int, probes: int, model_path: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write N face-like gallery vectors (one image per identity) to the `.npy` file `path`, chunk by chunk,
    and return (probes, probe identities): another image of `probes` identities drawn at random."""
    from benchmarks.face_vectors import FaceVectorModel

    model = FaceVectorModel.load(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, model.dim))
    at = 0
    for vectors, _ in model.sample(n, 1, seed=seed, chunk=CHUNK):
        store[at : at + len(vectors)] = vectors
        at += len(vectors)
    store.flush()
    del store
    who = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(probes, n), replace=False))
    probe, truth = model.images(who, per_identity=1, seed=seed, variant=1)
    return probe.astype(np.float32), truth


def exact_top1(store: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 row, top-1 score) of every probe by exact search over the (memory-mapped) gallery, chunk by chunk."""
    best_s = np.full(len(probes), -np.inf, np.float32)
    best_i = np.zeros(len(probes), np.int64)
    q = torch.from_numpy(probes)
    for start in range(0, len(store), CHUNK):
        block = torch.from_numpy(np.array(store[start : start + CHUNK]))  # a writable copy of the mapped rows
        s, i = brute_force_topk(block, q, 1, normalize=False)
        s1, i1 = s[:, 0].numpy(), i[:, 0].numpy() + start
        better = s1 > best_s
        best_s[better], best_i[better] = s1[better], i1[better]
    return best_i, best_s


def drop_page_cache(path: Path) -> bool:
    """Ask the kernel to drop `path`'s cached pages (clean pages go; the next reads come from the disk)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def rerank(store: np.ndarray, probes: np.ndarray, shortlist: np.ndarray) -> np.ndarray:
    """The best row of each probe's shortlist (rows, -1 = none) by exact score, read from `store`."""
    safe = np.where(shortlist >= 0, shortlist, 0)
    flat = safe.reshape(-1)
    order = np.argsort(flat, kind="stable")  # read the file in row order
    rows = np.empty((len(flat), store.shape[1]), np.float32)
    rows[order] = store[flat[order]]
    scores = np.einsum("qrd,qd->qr", rows.reshape(*shortlist.shape, -1), probes)
    scores[shortlist < 0] = -np.inf
    return safe[np.arange(len(probes)), scores.argmax(axis=1)]


def build_code(spec: dict[str, Any], store: np.ndarray, seed: int) -> tuple[Any, float]:
    """Train the code on a random sample of the gallery and add every row; (index, seconds)."""
    import faiss

    index = faiss.index_factory(store.shape[1], spec["factory"], faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    lists = faiss.extract_index_ivf(index).nlist if spec["nprobes"] != [None] else 0
    train_n = min(len(store), max(TRAIN_MAX, 64 * lists))  # k-means wants >= 39 points per list
    sample = np.ascontiguousarray(store[np.sort(rng.choice(len(store), size=train_n, replace=False))])
    t0 = time.perf_counter()
    index.train(sample)
    for start in range(0, len(store), CHUNK):
        index.add(np.ascontiguousarray(store[start : start + CHUNK]))
    return index, time.perf_counter() - t0


def measure_code(
    spec: dict[str, Any], path: Path, probes: np.ndarray, truth: dict[str, np.ndarray], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every (nprobe, shortlist) row of one shortlist code."""
    import faiss

    store = np.load(path, mmap_mode="r")
    n, d = store.shape
    index, build = build_code(spec, store, args.seed)
    memory = int(faiss.serialize_index(index).nbytes) / n + 8  # + the 8-byte id a gallery keeps per face
    rows = []
    for nprobe in spec["nprobes"]:
        if nprobe is not None:
            faiss.extract_index_ivf(index).nprobe = nprobe
        index.search(probes[:8], 1)
        for r in args.shortlists:
            t0 = time.perf_counter()
            _, shortlist = index.search(probes, r)
            code_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            best = rerank(store, probes, shortlist)
            rerank_s = time.perf_counter() - t0
            row = {
                "size": n,
                "code": spec["code"],
                "factory": spec["factory"],
                "nprobe": nprobe,
                "shortlist": r,
                "code_bytes": spec["code_bytes"],
                "memory_bytes_per_face": round(memory, 1),
                "disk_bytes_per_face": 4 * d,
                "build_s": round(build, 1),
                "recall_at_1": float((best == truth["top1"]).mean()),
                "code_recall_at_1": float((shortlist[:, 0] == truth["top1"]).mean()),
                "rank1": float((truth["labels"][best] == truth["probe_labels"]).mean()),
                "queries_per_s": len(probes) / (code_s + rerank_s),
                "rerank_share": rerank_s / (code_s + rerank_s),
            }
            if r == max(args.shortlists) and drop_page_cache(path):
                cold = np.load(path, mmap_mode="r")
                t0 = time.perf_counter()
                rerank(cold, probes, shortlist)
                row["cold_queries_per_s"] = len(probes) / (code_s + time.perf_counter() - t0)
                del cold
            rows.append(row)
            probe_txt = f"nprobe {nprobe}" if nprobe is not None else "exhaustive"
            print(
                f"  {spec['code']:>8} ({probe_txt}), R={r:4d}: recall@1 {row['recall_at_1']:.3f} (codes alone "
                f"{row['code_recall_at_1']:.3f}), rank-1 {row['rank1']:.3f}, {row['queries_per_s']:.0f} q/s "
                f"(re-rank {100 * row['rerank_share']:.0f}%)"
                + (f", cold {row['cold_queries_per_s']:.0f} q/s" if "cold_queries_per_s" in row else "")
                + f", {memory:.0f} B/face in memory, build {build:.0f} s",
                flush=True,
            )
    return rows


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Write the gallery, find the exact top-1s, measure every shortlist code."""
    path = args.scratch / f"gallery-{n}.npy"
    t0 = time.perf_counter()
    probes, probe_labels = write_gallery(path, n, args.probes, args.face_model, args.seed)
    store = np.load(path, mmap_mode="r")
    top1, _ = exact_top1(store, probes)
    labels = np.arange(n, dtype=np.int64)  # one image per identity: row k is identity k
    truth = {"top1": top1, "labels": labels, "probe_labels": probe_labels}
    exact_rank1 = float((labels[top1] == probe_labels).mean())
    print(
        f"[N={n:,}] gallery written and searched exactly in {time.perf_counter() - t0:.0f} s; "
        f"exact rank-1 {exact_rank1:.3f}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    if not args.tuned_only:
        for spec in shortlist_codes(n, args.exhaustive_max):
            rows += measure_code(spec, path, probes, truth, args)
    tuned = tuned_row(store, probes, truth, args) if n <= args.tuned_max else None
    if not args.keep:
        path.unlink()
    return {"size": n, "probes": len(probes), "exact_rank1": exact_rank1, "rows": rows, "tuned": tuned}


def tuned_row(
    store: np.ndarray, probes: np.ndarray, truth: dict[str, np.ndarray], args: argparse.Namespace
) -> dict[str, Any]:
    """What `hfr gallery build --recall 0.95 --max-bytes-per-face 64` builds (`build_for_recall` among the
    ivfpq kinds, re-ranked ones included), measured on the held-out probes: the gallery's ids are its rows."""
    from hfr.gallery.index import index_bytes
    from hfr.gallery.tune import build_for_recall

    n = len(store)
    vectors = np.array(store)
    t0 = time.perf_counter()
    gallery = build_for_recall(
        vectors, [str(i) for i in range(n)], "benchmark", RECALL_BAR, max_bytes_per_vector=BYTES_BAR, kinds=["ivfpq"]
    )
    build = time.perf_counter() - t0
    del vectors
    gallery.search(probes[:8], 1)
    t0 = time.perf_counter()
    found = gallery.search(probes, 1).ids[:, 0]
    seconds = time.perf_counter() - t0
    tuning = gallery.tuning or {}
    row = {
        "size": n,
        "index": gallery.info()["index"],
        "build_s": round(build, 1),
        "recall_at_1": float((found == truth["top1"]).mean()),
        "rank1": float((truth["labels"][np.maximum(found, 0)] == truth["probe_labels"]).mean()),
        "queries_per_s": len(probes) / seconds,
        "memory_bytes_per_face": index_bytes(gallery.cpu_index) / n,
        "disk_bytes_per_face": (gallery.vectors_file_bytes() or 0) / n,
        "tuned_recall_at_1": tuning.get("recall_at_1"),
        "candidates": [
            {k: c[k] for k in ("kind", "params", "setting", "recall", "bytes_per_vector", "meets", "note")}
            for c in tuning.get("candidates", [])
        ],
    }
    print(
        f"  --recall {RECALL_BAR} --max-bytes-per-face {BYTES_BAR}: chose {row['index']}, recall@1 on the probes "
        f"{row['recall_at_1']:.3f} (tuner's leave-one-out {row['tuned_recall_at_1']}), rank-1 {row['rank1']:.3f}, "
        f"{row['queries_per_s']:.0f} q/s, {row['memory_bytes_per_face']:.1f} B/face in memory, "
        f"{row['disk_bytes_per_face']:.0f} on disk, build {build:.0f} s",
        flush=True,
    )
    return row


def merge_tuned(path: Path, results: list[dict[str, Any]], command: str) -> int:
    """`--tuned-only`: put the tuned builds measured now into an earlier run's JSON (same sizes, seed, probes),
    each with the command that made it."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArgumentError(f"--tuned-only updates {path}, which cannot be read ({exc}): run without it first") from exc
    by_size = {r["size"]: r for r in earlier.get("results", [])}
    for res in results:
        if res["size"] not in by_size or by_size[res["size"]]["probes"] != res["probes"]:
            raise ArgumentError(f"--tuned-only: {path} has no results at N={res['size']:,} with {res['probes']} probes")
        by_size[res["size"]]["tuned"] = {**res["tuned"], "command": command, "machine": machine_info()}
    atomic_write_text(path, json.dumps(earlier, indent=2) + "\n")
    print(f"updated the tuned builds in {path}")
    return 0


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """recall@1 against the shortlist size, one panel per gallery size, one line per (code, nprobe)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False, sharey=True)
    for ax, res in zip(axes[0], results, strict=True):
        keys = sorted({(r["code"], r["nprobe"] or 0) for r in res["rows"]})
        for code, nprobe in keys:
            pts = [r for r in res["rows"] if r["code"] == code and (r["nprobe"] or 0) == nprobe]
            label = (
                f"{code}, "
                + (f"nprobe {nprobe}" if nprobe else "full scan")
                + f" ({pts[0]['memory_bytes_per_face']:.0f} B)"
            )
            ax.plot([p["shortlist"] for p in pts], [p["recall_at_1"] for p in pts], "o-", label=label, ms=3)
        ax.axhline(RECALL_BAR, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("shortlist R re-ranked with exact vectors")
        ax.set_ylim(0.6, 1.01)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, title="codes (memory per face)", title_fontsize=6)
        ax.set_title(f"N = {res['size']:,}", fontsize=10)
    axes[0][0].set_ylabel("recall@1 vs exact")
    fig.suptitle(
        "codes in memory pick R candidates, exact vectors on disk re-rank them (face-like vectors)", fontsize=10
    )
    save_figure(fig, path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Measure every size; write JSON and PNG."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100k,1M", help="gallery sizes (identities, one image each)")
    p.add_argument("--probes", type=int, default=1000)
    p.add_argument("--shortlists", default=",".join(map(str, SHORTLISTS)), help="shortlist sizes R")
    p.add_argument("--exhaustive-max", default="1M", help="largest size with exhaustive PQ scans")
    p.add_argument("--tuned-max", default="1M", help="largest size where the --recall 0.95 gallery is built")
    p.add_argument(
        "--tuned-only",
        action="store_true",
        help="measure only the tuned builds and put them into --out's rerank_search.json of an earlier run",
    )
    p.add_argument("--scratch", type=Path, default=Path("runs/rerank_search"), help="where gallery files go")
    p.add_argument("--keep", action="store_true", help="keep the gallery files")
    p.add_argument("--face-model", type=Path, default=FACE_MODEL)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20k faces, 200 probes; needs --out")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        if args.out == RESULTS:
            p.error("--quick writes smoke-test figures: give --out (not benchmarks/results)")
        args.sizes, args.probes, args.tuned_max = "20k", 200, "0"  # the tuner's own tests cover the tuned build
    try:
        args.shortlists = sorted({int(s) for s in args.shortlists.split(",") if s.strip()})
    except ValueError as exc:
        raise ArgumentError(f"--shortlists must be integers separated by commas, got {args.shortlists!r}") from exc
    if not args.shortlists or min(args.shortlists) < 1:
        raise ArgumentError(f"--shortlists must be positive integers, got {args.shortlists!r}")
    args.exhaustive_max = parse_size(args.exhaustive_max)
    args.tuned_max = parse_size(args.tuned_max)
    t0 = time.perf_counter()
    results = [run_size(parse_size(s), args) for s in args.sizes.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tuned_only:
        return merge_tuned(args.out / "rerank_search.json", results, command_line(argv))
    plot(results, args.out / "rerank_search.png")
    settings = {
        "shortlists": args.shortlists,
        "nprobes": NPROBES,
        "train_max": TRAIN_MAX,
        "exhaustive_max": args.exhaustive_max,
        "face_model": str(args.face_model),
        "seed": args.seed,
    }
    what = "codes in memory pick a shortlist, exact vectors on disk re-rank it: recall@1 vs exact"
    write_result_json(args.out, "rerank_search", what, argv, settings, results, t0)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
