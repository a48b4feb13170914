"""Choose a gallery's index kind and parameters for a recall target, from the gallery's own vectors.

`build_for_recall(features, subjects, fingerprint, recall=0.99)` builds the gallery a user asks
for with `hfr gallery build --recall 0.99`: the fastest index whose measured recall@1 against
exact search meets the target, as autofaiss does (Criteo's FAISS index tuner: try index
kinds, tune their search-time parameter on the data, keep the cheapest that meets the recall
or memory goal).

How recall is measured (`loo_recall`): leave-one-out on the gallery itself. `queries` gallery
vectors are drawn at random; each is searched with its own entry excluded from the answer,
and recall@1 is the fraction whose best other vector is the one exact search finds. Face
probes are new images of enrolled subjects, whose nearest gallery vector is most often
another image of the same subject; in a gallery with several images per subject a gallery
vector's nearest *other* vector is the same kind of neighbour, so this needs no probe set (the tests
check it on held-out probes). In a gallery of one image per subject the nearest other vector is an
impostor, one among many at similar scores: a harder target than a probe's own subject, so the
recorded recall is then a lower bound of the probes' (`benchmarks/search_speed.py` measures both;
compressed kinds suffer most).

Procedure:

1. The candidates (`candidates`): "flat" (exact, the baseline), "ivf", "ivfpq" with 16, 32
   and 64 bytes per vector (and the OPQ rotation at the smallest), "ivfpq" with 32 and 64
   bytes re-ranked (`rerank=RERANK_SHORTLIST`, 64 candidates per query re-scored with the
   exact vectors, which live on disk: `hfr.gallery.index`), and "hnsw" when the gallery need
   not remove faces (`removable=False`; FAISS's HNSW cannot delete). `nlist` is
   `round(4 * sqrt(n))`, the rule of thumb of FAISS's wiki (between 4 and 16 sqrt(n)).
2. Each candidate is built on the vectors (at most `tune_sample` of them, drawn at random;
   the whole gallery when it is smaller) and its search-time parameter (`nprobe` for IVF
   kinds, `ef_search` for HNSW) doubled from its smallest value until the recall meets the
   target. Its queries/s at that setting is measured on the same queries. A candidate over
   `max_bytes_per_vector` is left out: that limit is on memory, the serialised FAISS index
   per vector (`bytes_per_vector`); a re-ranked candidate's vectors file is reported apart
   (`disk_bytes_per_vector`, 4 * dim bytes plus a header) and not counted against it, so
   `--recall 0.95 --max-bytes-per-face 80` can choose 64-byte codes re-ranked from disk.
3. The fastest candidate that meets the target wins. When the sample is smaller than the
   gallery, queries/s is extrapolated to the gallery's size (flat and IVF scan a fixed
   fraction of the vectors: cost ~ n; HNSW ~ log n) before the comparison.
   A re-ranked candidate whose `nprobe` sweep levels off below the target then widens its shortlist
   (`rerank`, doubling up to `MAX_RERANK`): its codes, not the lists visited, lose the top-1.
4. The winner is built on every vector; its parameter is tuned again on the whole gallery
   (up while below the target, down while still above), and the recall measured there is
   what the gallery records (`Gallery.tuning`, saved in `meta.json`, shown by
   `hfr gallery info`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hfr.errors import ArgumentError
from hfr.gallery import Gallery
from hfr.gallery.index import (
    IVF_KINDS,
    MIN_POINTS_PER_LIST,
    PQ_MIN_TRAIN,
    Features,
    brute_force_topk,
    index_bytes,
    l2_normalize,
)

log = logging.getLogger(__name__)

MIN_TUNED = 2000
"""Galleries smaller than this are built flat: exact search over them is already fast."""
PQ_BYTES: tuple[int, ...] = (16, 32, 64)
"""Product-quantiser code sizes tried (bytes per vector)."""
RERANK_PQ_BYTES: tuple[int, ...] = (32, 64)
"""Code sizes also tried re-ranked (not 16: fewer quantisers to train, and its codes' score error is the largest)."""
RERANK_SHORTLIST = 64
"""Candidates per query a re-ranked candidate starts from (the tuner widens it when needed: `MAX_RERANK`).
Measured on face-like vectors with one image per identity (`benchmarks/rerank_search.py`, README "Re-ranked
compressed codes"): on probes, IVF-PQ32 codes re-ranked from a shortlist of 32 / 100 reach recall@1 0.989 /
0.995 at 100k (nprobe 16) and 0.935 / 0.981 at 1M (nprobe 64). The cost is R rows of 4 * dim bytes read per
query (64 KiB at R = 64, d = 256: page-cache hits for a hot gallery, random reads otherwise)."""
MAX_RERANK = 1024
"""The widest shortlist a re-ranked candidate is tuned to: when `nprobe` alone levels off below the target,
the shortlist doubles from `RERANK_SHORTLIST` up to this (measured at 1M face-like vectors: 32-byte codes
with a shortlist of 64 reached leave-one-out recall 0.931 at nprobe 256, below a 0.95 target,
`benchmarks/rerank_search.py`)."""
MAX_EF_SEARCH = 4096
"""The largest HNSW `ef_search` tried."""
PLATEAU = 0.002
"""Recall gained over two doublings of the search parameter below which the sweep stops (compressed kinds
level off below their quantisation limit)."""


@dataclass
class CandidateResult:
    """One candidate index as measured: its kind, build parameters, search setting and figures."""

    kind: str
    params: dict[str, Any]
    setting: dict[str, int] = field(default_factory=dict)  #: nprobe or ef_search (and rerank) where it was met
    recall: float = 0.0  #: leave-one-out recall@1 against exact search at `setting`
    queries_per_s: float = 0.0  #: measured on the vectors it was built on
    estimated_queries_per_s: float = 0.0  #: extrapolated to the whole gallery (equal when built on it)
    bytes_per_vector: float = 0.0  #: the serialised index over the vectors it holds (memory)
    disk_bytes_per_vector: float = 0.0  #: a re-ranked candidate's vectors file (disk, memory-mapped); else 0
    meets: bool = False  #: recall >= target and within the memory limit
    note: str = ""


def default_nlist(n: int) -> int:
    """IVF lists for `n` vectors: round(4 sqrt(n)), at most n / 39 (k-means' points per list), at least 1."""
    return max(1, min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_LIST))


def candidates(dim: int, n: int, removable: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The (kind, parameters) tried for a gallery of `n` vectors of dimension `dim` (module docstring)."""
    nlist = default_nlist(n)
    out: list[tuple[str, dict[str, Any]]] = [("flat", {}), ("ivf", {"nlist": nlist})]
    if n >= PQ_MIN_TRAIN:
        sizes = [m for m in PQ_BYTES if m <= dim and dim % m == 0]
        out += [("ivfpq", {"nlist": nlist, "pq_m": m}) for m in sizes]
        if sizes:
            out.append(("ivfpq", {"nlist": nlist, "pq_m": sizes[0], "opq": True}))
        reranked = [m for m in sizes if m in RERANK_PQ_BYTES]
        out += [("ivfpq", {"nlist": nlist, "pq_m": m, "rerank": RERANK_SHORTLIST}) for m in reranked]
    if not removable:
        out.append(("hnsw", {"hnsw_m": 32}))
    return out


def _exact_neighbours(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row of each query's best other vector by exact search (queries are rows of `vectors`)."""
    _, top_t = brute_force_topk(vectors, vectors[queries], 2, normalize=False)
    top = top_t.numpy()
    return np.where(top[:, 0] == queries, top[:, 1], top[:, 0])


def loo_recall(gallery: Gallery, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(recall@1, queries/s) of `gallery` (ids = rows of `vectors`) on the query rows, each with itself
    excluded; `truth` holds each query's exact best other row."""
    start = time.perf_counter()
    found = gallery.search(vectors[queries], k=min(3, len(gallery))).ids
    seconds = time.perf_counter() - start
    other = found != queries[:, None]
    first = np.where(other.any(axis=1), found[np.arange(len(queries)), other.argmax(axis=1)], -1)
    return float(np.mean(first == truth)), len(queries) / max(seconds, 1e-9)


def _setting_name(kind: str) -> str | None:
    return "nprobe" if kind in IVF_KINDS else ("ef_search" if kind == "hnsw" else None)


def _settings(gallery: Gallery) -> list[int]:
    """The search-parameter values tried, smallest first (doubling)."""
    if gallery.kind in IVF_KINDS:
        top = int(gallery.nlist_effective or gallery.nlist)
        v = 1
    else:
        top, v = MAX_EF_SEARCH, 16
    values: list[int] = []
    while v < top:
        values.append(v)
        v *= 2
    return [*values, top]


def _set(gallery: Gallery, value: int) -> None:
    if gallery.kind in IVF_KINDS:
        gallery.nprobe = value
    else:
        gallery.ef_search = value


def _tune_setting(
    gallery: Gallery, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, target: float, start: int | None
) -> tuple[int | None, float, float]:
    """The smallest doubling of the search parameter meeting `target` (from `start`, going down while it
    still meets it, up while it does not): (value, recall, queries/s); value None for flat. When no
    value meets it, the largest tried and its figures."""
    if _setting_name(gallery.kind) is None:
        recall, qps = loo_recall(gallery, vectors, queries, truth)
        return None, recall, qps
    values = _settings(gallery)
    pos = 0 if start is None else int(np.searchsorted(values, min(start, values[-1])))
    measured: dict[int, tuple[float, float]] = {}

    def measure(i: int) -> tuple[float, float]:
        if i not in measured:
            _set(gallery, values[i])
            measured[i] = loo_recall(gallery, vectors, queries, truth)
        return measured[i]

    while measure(pos)[0] < target and pos < len(values) - 1:
        if pos >= 2 and measure(pos)[0] - measure(pos - 2)[0] < PLATEAU:
            break  # two doublings gained nothing: the kind's recall has levelled off below the target
        pos += 1
    while pos > 0 and measure(pos)[0] >= target and measure(pos - 1)[0] >= target:
        pos -= 1
    _set(gallery, values[pos])
    recall, qps = measure(pos)
    while recall < target and 0 < gallery.rerank < MAX_RERANK:
        gallery.rerank = min(MAX_RERANK, 2 * gallery.rerank)  # the codes' shortlist, not the lists, falls short
        recall, qps = loo_recall(gallery, vectors, queries, truth)
    return values[pos], recall, qps


def _disk_bytes(gallery: Gallery) -> int:
    """Bytes of a gallery's vectors file (`vectors.npy`, re-ranked "ivfpq" only; 0 for the others)."""
    return gallery.vectors_file_bytes() or 0


def _extrapolate(kind: str, qps: float, built_on: int, n: int) -> float:
    if built_on >= n:
        return qps
    if kind == "hnsw":
        return qps * math.log(max(built_on, 2)) / math.log(n)
    return qps * built_on / n


def build_for_recall(
    features: Features,
    subjects: Sequence[str],
    fingerprint: str,
    recall: float = 0.99,
    modalities: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    *,
    removable: bool = True,
    max_bytes_per_vector: float | None = None,
    kinds: Sequence[str] | None = None,
    queries: int = 1000,
    tune_sample: int = 200_000,
    seed: int = 0,
    use_gpu: bool | None = None,
) -> Gallery:
    """A gallery of `features` with the fastest index whose leave-one-out recall@1 meets `recall`
    (module docstring), its measurements in `gallery.tuning`.

    `removable=False` lets HNSW compete (it cannot remove faces); `max_bytes_per_vector` leaves out
    candidates whose in-memory index takes more (e.g. 80 for a compressed gallery: re-ranked candidates'
    vectors files are on disk and not counted); `kinds` limits the kinds tried
    (default: all of `candidates`). When no candidate meets
    the target, the exact flat index is used and the tuning record says so. ArgumentError for a
    recall outside (0, 1] or fewer than 2 queries.
    """
    if not 0.0 < recall <= 1.0:
        raise ArgumentError(f"recall must be in (0, 1], got {recall!r}")
    if queries < 2:
        raise ArgumentError(f"queries must be at least 2, got {queries!r}")
    vectors = l2_normalize(features, None, "features to add")
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    record: dict[str, Any] = {
        "target_recall": recall,
        "method": "leave-one-out recall@1 against exact search (hfr.gallery.tune)",
        "seed": seed,
        "removable": removable,
        "max_bytes_per_vector": max_bytes_per_vector,
        "kinds": list(kinds) if kinds is not None else None,
    }

    def flat(reason: str) -> Gallery:
        gallery = Gallery.build(vectors, subjects, fingerprint, modalities, paths, index="flat", use_gpu=use_gpu)
        gallery.tuning = {**record, "chosen": "flat", "recall_at_1": 1.0, "reason": reason}
        return gallery

    if n < MIN_TUNED:
        return flat(f"{n} vectors: fewer than {MIN_TUNED}, exact search is fast enough")

    sample_rows = np.sort(rng.choice(n, tune_sample, replace=False)) if n > tune_sample else np.arange(n)
    sample = np.ascontiguousarray(vectors[sample_rows])
    q_rows = np.sort(rng.choice(len(sample), min(queries, len(sample)), replace=False))
    truth = _exact_neighbours(sample, q_rows)
    results: list[CandidateResult] = []
    tried = [(k, p) for k, p in candidates(dim, len(sample), removable) if kinds is None or k in kinds]
    if not tried:
        raise ArgumentError(f"no candidate index among kinds {list(kinds or [])} (removable={removable})")
    for kind, params in tried:
        row = CandidateResult(kind, dict(params))
        try:
            trial = Gallery.build(sample, ["s"] * len(sample), "tune", index=kind, use_gpu=use_gpu, **params)
        except Exception as exc:  # a candidate FAISS cannot build here is skipped, with the reason
            row.note = f"not built: {exc}"
            results.append(row)
            continue
        value, row.recall, row.queries_per_s = _tune_setting(trial, sample, q_rows, truth, recall, None)
        name = _setting_name(kind)
        if name is not None and value is not None:
            row.setting = {name: value}
        if trial.rerank:
            row.setting["rerank"] = trial.rerank
        row.estimated_queries_per_s = _extrapolate(kind, row.queries_per_s, len(sample), n)
        row.bytes_per_vector = index_bytes(trial.cpu_index) / len(sample)
        row.disk_bytes_per_vector = _disk_bytes(trial) / len(sample)
        over = max_bytes_per_vector is not None and row.bytes_per_vector > max_bytes_per_vector
        row.meets = row.recall >= recall and not over
        if over:
            row.note = f"over the memory limit ({row.bytes_per_vector:.1f} > {max_bytes_per_vector} bytes per vector)"
        results.append(row)
        log.info("tune: %s %s %s recall %.4f, %.0f queries/s", kind, params, row.setting, row.recall, row.queries_per_s)
    record["candidates"] = [asdict(r) for r in results]
    record["tuned_on"] = len(sample)
    winners = [r for r in results if r.meets]
    if not winners:
        return flat("no candidate met the target within the limits")
    best = max(winners, key=lambda r: r.estimated_queries_per_s)
    params = dict(best.params)
    if best.kind in IVF_KINDS:
        params["nlist"] = default_nlist(n)
    if "rerank" in best.setting:  # the shortlist the sample needed: a larger gallery needs at least as many
        params["rerank"] = best.setting["rerank"]
    gallery = Gallery.build(
        vectors, subjects, fingerprint, modalities, paths, index=best.kind, use_gpu=use_gpu, **params
    )
    start = None
    name = _setting_name(best.kind)
    if name is not None and name in best.setting:
        start = best.setting[name]
        if best.kind in IVF_KINDS:  # the same fraction of lists on the whole gallery
            start = max(1, round(start * params["nlist"] / best.params["nlist"]))
    if len(sample) < n:
        q_rows = np.sort(rng.choice(n, min(queries, n), replace=False))
        truth = _exact_neighbours(vectors, q_rows)
    value, measured, qps = _tune_setting(gallery, vectors, q_rows, truth, recall, start)
    record.update(
        chosen=best.kind,
        params=params,
        setting={
            **({name: value} if name is not None and value is not None else {}),
            **({"rerank": gallery.rerank} if gallery.rerank else {}),
        },
        recall_at_1=measured,
        queries=len(q_rows),
        queries_per_s=qps,
        bytes_per_vector=index_bytes(gallery.cpu_index) / n,
        disk_bytes_per_vector=_disk_bytes(gallery) / n,
        met=measured >= recall,
    )
    gallery.tuning = record
    if measured < recall:
        log.warning(
            "tune: %s reached recall %.4f on the whole gallery, below the target %.4f", best.kind, measured, recall
        )
    return gallery
