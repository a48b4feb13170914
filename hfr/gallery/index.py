"""The FAISS side of a gallery: index kinds, IVF training, the lazy GPU copy, search, brute force.

Vectors reach this module L2-normalised (`l2_normalize`), so the inner product FAISS
computes is the cosine similarity of the original features.

Index kinds (`INDEX_KINDS`):

- `"flat"` (default): `faiss.IndexIDMap2(faiss.IndexFlatIP(d))`, an exact search; its
  results equal `brute_force_topk` (same ids in the same order, ties aside). FAISS keeps
  and saves the vectors, but the search itself is a torch matmul + top-k over a zero-copy
  view of FAISS's storage (`exact_search`): on this project's CPU benchmark FAISS's own
  flat search answered about half the queries per second of the matmul it is checked
  against, and on a GPU cuBLAS does the same work. With several GPUs the vectors are split
  in contiguous shards, one per GPU, and the shards' top-k merged.
- `"ivf"`: `IndexIVFFlat` with `nlist` inverted lists, of which `nprobe` are visited per
  query; approximate, for large galleries. The coarse centroids are trained (k-means,
  FAISS's defaults: 10 iterations, at most `train_points_per_list` points per list) on the
  vectors of the first non-empty `add` (the build); later additions are assigned to those
  centroids. k-means needs about 39 points per list, so when the build has fewer than
  `39 * nlist` vectors the number of lists is lowered to `max(1, n // 39)` with a logged
  warning, and `meta()` reports the effective value (`nlist_effective`). With
  `nprobe >= nlist` the search is exhaustive and equals the flat index.
- `"ivfpq"`: IVF over product-quantised codes (`IVF{nlist},PQ{pq_m}x8`, optionally behind
  an OPQ rotation, `opq=True`: Ge et al., "Optimized Product Quantization", TPAMI 2014):
  `pq_m` bytes per vector plus the 8-byte id, for galleries that do not fit in memory as
  float32 (Jegou et al., "Product quantization for nearest neighbor search", TPAMI 2011).
  Scores are approximations of the cosine (clipped to [-1, 1]); the first add needs at
  least 256 vectors to train the quantiser. `pq_m` must divide the dimension.
  Re-ranked (`rerank=R > 0`, "ivfpq" only): the codes pick a shortlist of `max(k, R)`
  candidates per query, which are re-scored with their exact float32 vectors, and the exact
  top-k among them is returned with exact cosines as scores: the re-ranking of Jegou,
  Tavenard, Douze and Amsaleg ("Searching in one billion vectors: re-rank with source
  coding", ICASSP 2011), here with the exact vectors, as FAISS's `IndexRefineFlat` does.
  The codes' score error (~0.02 for 64-byte codes on face vectors) exceeds the gap between a
  probe's top-1 and top-2, so codes alone lose the top-1 (README, "Why no code of <= 64 bytes
  reaches recall@1 0.95"); re-ranked, the top-1 only has to be among the codes' first R. The
  vectors live in a `hfr.gallery.vectors.VectorStore`, memory-mapped from the gallery
  folder's `vectors.npy` (4 * d bytes per vector on disk, paged in as searches touch them),
  so memory holds the codes and ids (and the rows added since the last save). With R at
  least the gallery size and `nprobe >= nlist` the results equal the flat index's.
- `"hnsw"`: `IndexIDMap2(IndexHNSWFlat(d, hnsw_m))` (Malkov and Yashunin, TPAMI 2018), a
  graph over the full vectors; `ef_search` candidates per query. Fast at high recall and
  needs no training, but FAISS's HNSW cannot delete: `remove` is refused with a
  GalleryError (rebuild the gallery instead), and it searches on the CPU.

`hfr.gallery.tune` picks a kind and its parameters for a recall target.

GPU: when FAISS sees a GPU (`faiss.get_num_gpus() > 0`) and `use_gpu` is not False, the
CPU index stays the reference copy (it is what `add`, `remove` and saving work on) and
searches run on GPU copies: the flat vectors as torch tensors (sharded over all visible
GPUs), IVF kinds through `faiss.index_cpu_to_gpu`, or `faiss.index_cpu_to_all_gpus`
with `shard=True` when there are several GPUs. The copies are refreshed lazily: the first
search after an `add`, a `remove` or a search-parameter change makes new ones. Searches
that exceed FAISS's GPU limits (k or nprobe above `GPU_MAX_K`) and HNSW searches run on
the CPU copy. Results are the same either way: same ids in the same order up to
floating-point ties (GPU and CPU sum products in a different order, so scores may differ
in the last bits). IVF training uses a GPU for its k-means assignment when one is used.

A search that visits too few IVF lists can find fewer than `k` vectors: missing places
have id -1 and score -inf.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np
import torch

from hfr.errors import ArgumentError, GalleryError
from hfr.gallery.vectors import VectorStore

log = logging.getLogger(__name__)

INDEX_KINDS: tuple[str, ...] = ("flat", "ivf", "ivfpq", "hnsw")
IVF_KINDS: tuple[str, ...] = ("ivf", "ivfpq")
"""Kinds with inverted lists (trained on the first add; `nlist`, `nprobe`)."""
COMPRESSED_KINDS: tuple[str, ...] = ("ivfpq",)
"""Kinds that store codes, not the vectors: approximate scores, no unit-length check on load."""
REMOVABLE_KINDS: tuple[str, ...] = ("flat", "ivf", "ivfpq")
"""Kinds whose FAISS index can delete vectors (FAISS's HNSW cannot)."""
PQ_MIN_TRAIN = 256
"""Vectors the first add of an "ivfpq" gallery needs: 256 centroids per sub-quantiser (8 bits)."""
EXACT_SCORE_BLOCK = 1 << 26
"""Largest (queries x gallery rows) score block the exact search computes at once (256 MiB of float32: what
`brute_force_topk` computes for 1,000 probes at its default 65,536-row chunk; a quarter of it measured
10-20% fewer queries/s at 300k x 256 on this CPU)."""
MIN_POINTS_PER_LIST = 39
"""k-means points per inverted list below which FAISS warns; the IVF fallback keeps to it."""
GPU_MAX_K = 2048
"""The largest k (and nprobe) FAISS's GPU indexes accept; larger searches use the CPU copy."""
RERANK_KINDS: tuple[str, ...] = ("ivfpq",)
"""Kinds that can re-rank a shortlist with exact vectors (`rerank > 0`)."""
RERANK_BLOCK = 1 << 22
"""Most shortlist floats (queries x shortlist x d) gathered at once when re-ranking (16 MiB of float32)."""

Features = np.ndarray | torch.Tensor

_gpu_resources: Any = None


def gpu_available() -> bool:
    """True when the installed FAISS has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _gpu_res() -> Any:
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    return _gpu_resources


def check_use_gpu(use_gpu: bool | None) -> None:
    """ArgumentError when `use_gpu` is True but FAISS sees no GPU."""
    if use_gpu and not gpu_available():
        raise ArgumentError(
            "use_gpu=True but FAISS sees no GPU (faiss.get_num_gpus() == 0 or a "
            "CPU-only FAISS build): leave use_gpu unset to choose automatically"
        )


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def check_dim(dim: Any) -> None:
    """ArgumentError unless `dim` is a positive integer (a feature dimension)."""
    if not _is_int(dim) or dim < 1:
        raise ArgumentError(f"gallery dimension must be a positive integer, got {dim!r}")


def l2_normalize(features: Features, dim: int | None = None, what: str = "features") -> np.ndarray:
    """Return `features` as a C-contiguous float32 (N, d) array of unit rows.

    Accepts a numpy array or a torch tensor (any device and float dtype), (N, d) or a single
    (d,) vector. Raises GalleryError when the dimension differs from `dim`, or a row is
    zero, NaN or infinite (naming the row).
    """
    if isinstance(features, torch.Tensor):
        array = features.detach().to("cpu", torch.float32).numpy()
    else:
        array = np.asarray(features)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise GalleryError(f"{what} must be a (N, d) array or a (d,) vector, got shape {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise GalleryError(f"{what} must be real numbers, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise GalleryError(
            f"{what} have dimension {array.shape[1]} but the gallery's dimension "
            f"is {dim}: embed them with the gallery's recognizer"
        )
    array = np.asarray(array, dtype=np.float32)
    if array.shape[0] == 0:
        return np.ascontiguousarray(array)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    finite = np.isfinite(norms[:, 0])
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise GalleryError(
            f"{what} row {row} holds NaN or infinite values (or values too large to normalise in float32)"
        )
    if (norms == 0).any():
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise GalleryError(f"{what} row {row} is a zero vector, which has no direction to compare")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def brute_force_topk(
    gallery_feats: Features, probe_feats: Features, k: int, normalize: bool = True, chunk_size: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product in torch: (scores, indices) of shape (Q, k), best first.

    The reference the FAISS indexes are checked against. `indices` are row numbers in
    `gallery_feats`. With `normalize` both sides are L2-normalised first (cosine). The
    gallery is processed `chunk_size` rows at a time (matmul, topk, merge), so a
    1M x 256 gallery needs only a (Q, chunk_size) score matrix at once. `k` is clamped to
    the gallery size; `k < 1` is an ArgumentError.
    """
    gallery = torch.as_tensor(gallery_feats, dtype=torch.float32)
    probes = torch.as_tensor(probe_feats, dtype=torch.float32).to(gallery.device)
    if probes.ndim == 1:
        probes = probes[None]
    if gallery.ndim != 2 or probes.ndim != 2 or gallery.shape[1] != probes.shape[1]:
        raise GalleryError(
            f"brute_force_topk needs (N, d) gallery and (Q, d) probes, got "
            f"{tuple(gallery.shape)} and {tuple(probes.shape)}"
        )
    if k < 1:
        raise ArgumentError(f"k must be at least 1, got {k}")
    if normalize:
        probes = probes / probes.norm(dim=1, keepdim=True)
    k = min(k, gallery.shape[0])
    best_scores: torch.Tensor | None = None
    best_index: torch.Tensor | None = None
    for start in range(0, gallery.shape[0], chunk_size):
        chunk = gallery[start : start + chunk_size]
        if normalize:
            chunk = chunk / chunk.norm(dim=1, keepdim=True)
        scores = probes @ chunk.T
        top_s, top_i = scores.topk(min(k, chunk.shape[0]), dim=1)
        top_i = top_i + start
        if best_scores is None or best_index is None:
            best_scores, best_index = top_s, top_i
        else:
            merged_s = torch.cat([best_scores, top_s], dim=1)
            merged_i = torch.cat([best_index, top_i], dim=1)
            best_scores, order = merged_s.topk(k, dim=1)
            best_index = merged_i.gather(1, order)
    assert best_scores is not None and best_index is not None
    return best_scores, best_index


def _ivf_part(index: Any) -> Any:
    """The IndexIVF inside an IVF-kind index (itself, or behind an OPQ `IndexPreTransform`)."""
    return faiss.extract_index_ivf(index)


def _hnsw(index: Any) -> Any:
    """The HNSW graph parameters (`faiss.HNSW`) of an "hnsw" kind's IDMap2 index."""
    inner: Any = faiss.downcast_index(index.index)
    return inner.hnsw


def index_ids(index: Any) -> np.ndarray:
    """Every id stored in a CPU index (IDMap2 over flat or HNSW, or an IVF kind), unsorted."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = _ivf_part(index)
    invlists = ivf.invlists
    parts = []
    for lst in range(ivf.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(lst, ptr)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def sample_vectors(index: Any, limit: int) -> np.ndarray:
    """Stored vectors of a CPU index (IDMap2 over a flat or HNSW index, or IVF-Flat) as float32 rows.

    All of them when the index holds at most `limit`, else about `limit` spread evenly
    (over positions for an IDMap2 index, over the inverted lists for IVF). For the load-time
    check that stored vectors have unit length (`hfr.gallery.storage.check_unit_vectors`);
    compressed kinds (`COMPRESSED_KINDS`) store codes, not vectors, and are not sampled.
    """
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        n = int(inner.ntotal)
        if n <= limit:
            return inner.reconstruct_n(0, n) if n else np.zeros((0, index.d), np.float32)
        positions = np.unique(np.linspace(0, n - 1, limit).astype(np.int64))
        return np.stack([inner.reconstruct(int(p)) for p in positions])
    invlists = index.invlists
    sizes = [invlists.list_size(lst) for lst in range(index.nlist)]
    total = sum(sizes)
    parts = []
    for lst, size in enumerate(sizes):
        if not size:
            continue
        ptr = invlists.get_codes(lst)
        try:
            codes = faiss.rev_swig_ptr(ptr, size * invlists.code_size).copy()
        finally:
            invlists.release_codes(lst, ptr)
        rows = codes.view(np.float32).reshape(size, index.d)
        if total > limit:
            take = max(1, round(limit * size / total))
            rows = rows[np.unique(np.linspace(0, size - 1, take).astype(np.int64))]
        parts.append(rows)
    return np.concatenate(parts) if parts else np.zeros((0, index.d), np.float32)


def index_kind(index: Any) -> str | None:
    """The kind (`INDEX_KINDS`) a CPU FAISS index read from disk is, or None when it is none of them."""
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            return "hnsw"
        return "flat" if isinstance(inner, faiss.IndexFlat) else None
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf"
    try:
        ivf = faiss.downcast_index(_ivf_part(index))
    except (RuntimeError, AttributeError):
        return None
    return "ivfpq" if isinstance(ivf, faiss.IndexIVFPQ) else None


def index_bytes(index: Any) -> int:
    """The size of a CPU index serialised (what `index.faiss` holds)."""
    return int(faiss.serialize_index(index).nbytes)


def exact_search(shards: Sequence[torch.Tensor], vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of `vectors` over gallery rows split in `shards` (contiguous, in order).

    Returns (scores float32, positions int64) of shape (Q, k) on the CPU, best first; positions
    count rows across the shards. Each shard is searched on its own device in blocks of at most
    `EXACT_SCORE_BLOCK` scores (matmul, top-k), and the blocks' and shards' top-k are merged.
    """
    tops: list[tuple[torch.Tensor, torch.Tensor]] = []
    offset = 0
    for shard in shards:
        n = int(shard.shape[0])
        if n:
            probes = torch.from_numpy(vectors).to(shard.device)
            rows = max(1, min(n, EXACT_SCORE_BLOCK // max(1, probes.shape[0])))
            scores, positions = brute_force_topk(shard, probes, k, normalize=False, chunk_size=rows)
            tops.append((scores.cpu(), positions.cpu() + offset))
        offset += n
    if len(tops) == 1:
        scores, positions = tops[0]
    else:
        all_scores = torch.cat([t[0] for t in tops], dim=1)
        all_positions = torch.cat([t[1] for t in tops], dim=1)
        scores, order = all_scores.topk(min(k, all_scores.shape[1]), dim=1)
        positions = all_positions.gather(1, order)
    return scores.numpy().astype(np.float32), positions.numpy().astype(np.int64)


def _positive_int(name: str, value: Any, low: int = 1) -> None:
    if not _is_int(value) or value < low:
        raise ArgumentError(f"{name} must be an integer of at least {low}, got {value!r}")


def check_rerank(kind: str, rerank: Any) -> None:
    """ArgumentError unless `rerank` is an integer >= 0, and 0 for kinds that cannot re-rank (`RERANK_KINDS`)."""
    if not _is_int(rerank) or rerank < 0:
        raise ArgumentError(f"rerank must be an integer of at least 0 (0 = no re-ranking), got {rerank!r}")
    if rerank and kind not in RERANK_KINDS:
        raise ArgumentError(
            f"rerank={rerank} re-scores the shortlist of a compressed index with exact vectors, so it applies "
            f"to index 'ivfpq' only, not {kind!r}: use index 'ivfpq' (with pq_m), or leave rerank at 0 "
            f"({kind} already scores with the vectors themselves)"
        )


class FaissIndex:
    """A gallery's vectors in FAISS: the CPU reference index of one kind and its lazy GPU copies.

    Holds normalised vectors under int64 ids chosen by the caller; knows nothing of
    subjects or files. See the module docstring for the kinds, IVF training, re-ranking
    (`rerank`, with the exact vectors in `vector_store`) and GPU use. Raises ArgumentError for
    an unknown kind, a parameter out of range, `rerank` with a kind other than "ivfpq", or
    `use_gpu=True` without a GPU.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        nlist: int = 1024,
        nprobe: int = 16,
        use_gpu: bool | None = None,
        train_points_per_list: int = 256,
        pq_m: int = 32,
        opq: bool = False,
        hnsw_m: int = 32,
        ef_search: int = 64,
        rerank: int = 0,
    ) -> None:
        """An empty index of `dim`-dimensional vectors; see `Gallery.create` for the arguments."""
        check_dim(dim)
        if kind not in INDEX_KINDS:
            raise ArgumentError(f"unknown gallery index {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
        _positive_int("nlist", nlist)
        _positive_int("nprobe", nprobe)
        _positive_int("train_points_per_list", train_points_per_list, MIN_POINTS_PER_LIST)
        _positive_int("pq_m", pq_m)
        _positive_int("hnsw_m", hnsw_m, 2)
        _positive_int("ef_search", ef_search)
        check_rerank(kind, rerank)
        if kind == "ivfpq" and dim % pq_m:
            raise ArgumentError(
                f"pq_m={pq_m} does not divide the dimension {dim}: the product quantiser splits each vector "
                f"into pq_m equal parts; choose a divisor of {dim} (pq_m bytes per vector)"
            )
        check_use_gpu(use_gpu)
        self.dim = int(dim)
        self.kind = kind
        self.nlist = int(nlist)
        self.train_points_per_list = int(train_points_per_list)
        self.pq_m = int(pq_m)
        self.opq = bool(opq)
        self.hnsw_m = int(hnsw_m)
        self._nprobe = int(nprobe)
        self._ef_search = int(ef_search)
        self.nlist_effective: int | None = None
        self._use_gpu = gpu_available() if use_gpu is None else bool(use_gpu)
        self._gpu_index: Any = None
        self._shards: list[torch.Tensor] | None = None
        self._id_map: np.ndarray | None = None
        self._shortlist = int(rerank)
        self._store: VectorStore | None = VectorStore(self.dim) if self._shortlist else None
        self._index = self._new_index(self.nlist)

    def _new_index(self, nlist: int) -> Any:
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.kind == "hnsw":
            graph = faiss.IndexIDMap2(faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT))
            _hnsw(graph).efSearch = self._ef_search
            return graph
        spec = f"IVF{nlist},Flat" if self.kind == "ivf" else f"IVF{nlist},PQ{self.pq_m}x8np"
        if self.kind == "ivfpq" and self.opq:
            spec = f"OPQ{self.pq_m}," + spec
        index: Any = faiss.index_factory(self.dim, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = _ivf_part(index)
        ivf.nprobe = min(self._nprobe, nlist)
        ivf.cp.max_points_per_centroid = self.train_points_per_list
        return index

    def _train(self, vectors: np.ndarray) -> None:
        n = vectors.shape[0]
        if self.kind == "ivfpq" and n < PQ_MIN_TRAIN:
            raise GalleryError(
                f"an ivfpq gallery trains its product quantiser (256 centroids per part) on its first add, "
                f"which has {n} vectors; add at least {PQ_MIN_TRAIN} at once, or use index 'flat' or 'ivf' "
                f"for a gallery this small"
            )
        nlist = self.nlist
        if n < MIN_POINTS_PER_LIST * nlist:
            nlist = max(1, n // MIN_POINTS_PER_LIST)
            log.warning(
                "IVF gallery: %d build vectors are too few to train %d lists (k-means needs "
                "%d per list); using nlist=%d instead. Build with more vectors, or use "
                "index='flat' for small galleries.",
                n,
                self.nlist,
                MIN_POINTS_PER_LIST,
                nlist,
            )
        index = self._new_index(nlist)
        ivf = _ivf_part(index)
        gpu_flat = None
        if self._use_gpu:
            gpu_flat = faiss.index_cpu_to_gpu(_gpu_res(), 0, faiss.IndexFlatIP(self.dim))
            ivf.clustering_index = gpu_flat
        index.train(vectors)
        if gpu_flat is not None:
            ivf.clustering_index = None
        self._index = index
        self.nlist_effective = nlist

    # -- state ----------------------------------------------------------------------

    @property
    def cpu_index(self) -> Any:
        """The CPU FAISS index (the reference copy; do not modify it directly)."""
        return self._index

    @property
    def use_gpu(self) -> bool:
        """Whether searches (and IVF training) run on GPU copies."""
        return self._use_gpu

    @use_gpu.setter
    def use_gpu(self, value: bool) -> None:
        check_use_gpu(value)
        self._use_gpu = bool(value)
        self._drop_copies()

    @property
    def nprobe(self) -> int:
        """IVF lists visited per query (clamped to the number of lists); unused by other kinds."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        _positive_int("nprobe", value)
        self._nprobe = int(value)
        if self.kind in IVF_KINDS:
            ivf = _ivf_part(self._index)
            ivf.nprobe = min(self._nprobe, ivf.nlist)
            self._drop_copies()

    @property
    def ef_search(self) -> int:
        """HNSW candidates kept per query (higher: better recall, slower); unused by other kinds."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        _positive_int("ef_search", value)
        self._ef_search = int(value)
        if self.kind == "hnsw":
            _hnsw(self._index).efSearch = self._ef_search

    @property
    def rerank(self) -> int:
        """Candidates per query a re-ranked "ivfpq" index re-scores exactly (0: none). Whether an index
        re-ranks is fixed at creation (only then does it keep the vectors); the shortlist of one that does
        can change between searches, like `nprobe` (the tuner widens it)."""
        return self._shortlist

    @rerank.setter
    def rerank(self, value: int) -> None:
        if self._store is None:
            raise ArgumentError(
                f"this {self.kind} index was created without re-ranking and keeps no vectors to re-rank with: "
                f"build the gallery again with rerank > 0 (hfr gallery build --index ivfpq --rerank R)"
            )
        _positive_int("rerank", value)
        self._shortlist = int(value)

    @property
    def vector_store(self) -> VectorStore | None:
        """The exact vectors a re-ranked index re-scores its shortlist with (None when `rerank` is 0)."""
        return self._store

    def vectors_file_bytes(self) -> int | None:
        """Bytes on disk of the vectors file (`vectors.npy`) a re-ranked index keeps; None without re-ranking.

        The in-memory index is `index_bytes(cpu_index)`; this is what the folder holds on top of it.
        """
        return None if self._store is None else self._store.file_bytes()

    def attach_vectors(self, store: VectorStore) -> None:
        """Adopt the exact vectors of a re-ranked index (read from disk, or re-opened after a save)."""
        if self._store is None:
            raise ArgumentError(f"a {self.kind} index with rerank=0 keeps no vectors to attach")
        if store.dim != self.dim:
            raise ArgumentError(f"vectors of dimension {store.dim} for an index of dimension {self.dim}")
        self._store = store

    def attach(self, index: Any, vectors: VectorStore | None = None) -> None:
        """Adopt a CPU index read from disk (its kind already checked) as the reference copy, and, when
        re-ranking, its exact `vectors` (required then)."""
        if self._store is not None:
            if vectors is None:
                raise ArgumentError(f"a re-ranked index (rerank={self.rerank}) needs its vectors to attach")
            self.attach_vectors(vectors)
        self._index = index
        if self.kind in IVF_KINDS:
            ivf = _ivf_part(index)
            self.nlist_effective = ivf.nlist if index.is_trained else None
            ivf.nprobe = min(self._nprobe, ivf.nlist)
        if self.kind == "hnsw":
            _hnsw(index).efSearch = self._ef_search
        self._drop_copies()

    def meta(self) -> dict[str, Any]:
        """The kind and its parameters, as `meta.json` and `Gallery.info()` report them."""
        out: dict[str, Any] = {"kind": self.kind, "metric": "inner_product"}
        if self.kind in IVF_KINDS:
            out.update(
                nlist=self.nlist,
                nlist_effective=self.nlist_effective,
                nprobe=self._nprobe,
                train_points_per_list=self.train_points_per_list,
                trained=bool(self._index.is_trained),
            )
        if self.kind == "ivfpq":
            out.update(pq_m=self.pq_m, opq=self.opq)
            if self.rerank:  # absent when 0: meta.json of a gallery without re-ranking is as before
                out.update(rerank=self.rerank)
        if self.kind == "hnsw":
            out.update(hnsw_m=self.hnsw_m, ef_search=self._ef_search)
        return out

    # -- add / remove / search ------------------------------------------------------

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add normalised float32 vectors under `ids` (int64); an untrained IVF kind trains on them first.

        A re-ranked index also keeps the vectors in its `vector_store` (in RAM until a save).
        """
        if self.kind in IVF_KINDS and not self._index.is_trained:
            self._train(vectors)
        if self._store is not None and self._store.contains(ids).any():
            raise GalleryError("the gallery's vector store already holds an id being added; rebuild the gallery")
        self._index.add_with_ids(vectors, ids)
        self._drop_copies()
        if self._store is not None:
            self._store.add(vectors, ids)

    def check_removable(self) -> None:
        """GalleryError when this kind cannot delete vectors (`REMOVABLE_KINDS`)."""
        if self.kind not in REMOVABLE_KINDS:
            raise GalleryError(
                f"a {self.kind} gallery cannot remove vectors (FAISS's HNSW graph has no deletion): "
                f"build the gallery again without them (hfr gallery build), or build it with index "
                f"flat, ivf or ivfpq if you need to remove faces"
            )

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors with these ids (from the vector store too, when re-ranking); return how many
        FAISS removed. GalleryError when the store removed another number (index and store disagree)."""
        self.check_removable()
        done = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        self._drop_copies()
        if self._store is not None:
            stored = self._store.remove(ids)
            if stored != done:
                raise GalleryError(
                    f"the FAISS index removed {done} vectors but the vector store {stored}: "
                    f"the gallery is inconsistent; rebuild it"
                )
        return done

    def _drop_copies(self) -> None:
        self._gpu_index = None
        self._shards = None
        self._id_map = None

    def _flat_shards(self) -> list[torch.Tensor]:
        """The flat vectors as torch tensors: a zero-copy view of FAISS's storage on the CPU, or one
        contiguous shard per visible GPU."""
        if self._shards is None:
            flat: Any = faiss.downcast_index(self._index.index)
            n = int(flat.ntotal)
            if n:
                view = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)
                rows = torch.from_numpy(view)
            else:
                rows = torch.zeros((0, self.dim), dtype=torch.float32)
            if self._use_gpu and torch.cuda.is_available():
                parts = torch.tensor_split(rows, torch.cuda.device_count())
                self._shards = [part.to(f"cuda:{i}") for i, part in enumerate(parts)]
            else:
                self._shards = [rows]
            self._id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return self._shards

    def _ivf_gpu_copy(self) -> Any:
        if self._gpu_index is None:
            ivf = _ivf_part(self._index)
            if faiss.get_num_gpus() > 1:
                options = faiss.GpuMultipleClonerOptions()
                options.shard = True
                self._gpu_index = faiss.index_cpu_to_all_gpus(self._index, options)
            else:
                self._gpu_index = faiss.index_cpu_to_gpu(_gpu_res(), 0, self._index)
            faiss.GpuParameterSpace().set_index_parameter(self._gpu_index, "nprobe", min(self._nprobe, ivf.nlist))
        return self._gpu_index

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search normalised vectors: (scores float32, ids int64), -inf / -1 where missing.

        A re-ranked index asks its codes for `max(k, rerank)` candidates and returns the exact top-k among
        them (`_rerank`).
        """
        if self.kind == "flat":
            shards = self._flat_shards()
            assert self._id_map is not None
            k_found = min(k, len(self._id_map))
            scores = np.full((vectors.shape[0], k), -np.inf, np.float32)
            found = np.full((vectors.shape[0], k), -1, np.int64)
            if k_found:
                top_scores, positions = exact_search(shards, vectors, k_found)
                scores[:, :k_found] = top_scores
                found[:, :k_found] = self._id_map[positions]
            return scores, found
        depth = max(k, self.rerank)
        gpu_ok = self._use_gpu and self.kind in IVF_KINDS and depth <= GPU_MAX_K and self._nprobe <= GPU_MAX_K
        if gpu_ok:
            scores, found = self._ivf_gpu_copy().search(vectors, depth)
        else:
            scores, found = self._index.search(vectors, depth)
        found = found.astype(np.int64)
        if self._store is not None:
            return self._rerank(vectors, found, k)
        if self.kind in COMPRESSED_KINDS:
            scores = np.clip(scores, -1.0, 1.0)
        scores = np.where(found >= 0, scores, -np.inf).astype(np.float32)
        return scores, found

    def _rerank(self, vectors: np.ndarray, found: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top-k of each query among its shortlist `found` (ids, -1 where missing).

        Gathers the candidates' vectors from the store (`RERANK_BLOCK` floats at a time), scores them by
        exact inner products (cosines) and sorts by them (ties keep the codes' order); missing places
        stay id -1, score -inf.
        """
        assert self._store is not None
        n_queries, depth = found.shape
        exact = np.full((n_queries, depth), -np.inf, dtype=np.float32)
        valid = found >= 0
        block = max(1, RERANK_BLOCK // max(1, depth * self.dim))
        for start in range(0, n_queries, block):
            stop = min(n_queries, start + block)
            hit = valid[start:stop]
            if not hit.any():
                continue
            query_of, place = np.nonzero(hit)
            rows = self._store.rows(found[start:stop][hit])
            exact[start + query_of, place] = np.einsum("ij,ij->i", rows, vectors[start + query_of])
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(exact, order, axis=1)
        ids = np.take_along_axis(found, order, axis=1)  # a missing place (-1, score -inf) sorts last
        return scores, ids
