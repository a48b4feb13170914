"""FAISS gallery: build, add, remove, search, save and load a folder of face features.

A gallery holds L2-normalised recognizer features with one row of metadata each
(`GalleryEntry`: a stable integer id, the subject, the modality and the source image
path). Features are normalised on `add` and on `search`, so the inner product FAISS
computes is the cosine similarity of the original features; a zero, NaN or infinite
feature is an error.

Index kinds:

- `"flat"` (default): `faiss.IndexIDMap2(faiss.IndexFlatIP(d))`, an exact search; its
  results equal `brute_force_topk` (same ids in the same order, ties aside).
- `"ivf"`: `IndexIVFFlat` with `nlist` inverted lists, of which `nprobe` are visited per
  query; approximate, for large galleries. The coarse centroids are trained (k-means,
  FAISS's defaults: 10 iterations, at most `train_points_per_list` points per list) on the
  vectors of the first non-empty `add` (the build); later additions are assigned to those
  centroids. k-means needs about 39 points per list, so when the build has fewer than
  `39 * nlist` vectors the number of lists is lowered to `max(1, n // 39)` with a logged
  warning, and `info()` / `meta.json` report the effective value (`nlist_effective`).
  With `nprobe >= nlist` the search is exhaustive and equals the flat index.

GPU: when FAISS sees a GPU (`faiss.get_num_gpus() > 0`) and `use_gpu` is not False, the
CPU index stays the reference copy (it is what `add`, `remove` and `save` work on) and
searches run on a GPU copy made with `faiss.index_cpu_to_gpu`. The copy is refreshed
lazily: the first search after an `add`, a `remove` or an `nprobe` change makes a new
one. Searches that exceed FAISS's GPU limits (k or nprobe above 2048) run on the CPU
copy. Results are the same either way: same ids in the same order up to floating-point
ties (GPU and CPU sum products in a different order, so scores may differ in the last
bits). IVF training uses a GPU for its k-means assignment when one is used.

Search conventions: `k < 1` is an OptionError; `k` larger than the gallery is clamped to
its size with a logged note (INFO); an empty gallery, a feature dimension other than the
gallery's, or a recognizer fingerprint other than the gallery's is a GalleryError. An IVF
search visiting too few lists can find fewer than `k` vectors: missing places have id -1
and score -inf.

A gallery on disk is a folder of three files:

- `index.faiss`: `faiss.write_index` of the CPU index;
- `meta.json`: format, hfr version, dimension, recognizer fingerprint, count, the next
  id to hand out, creation and save times, index kind and its parameters;
- `ids.csv`: `id,subject,modality,path`, one row per vector, ordered by id.

Ids are int64 from a counter stored in `meta.json`; they are never reused, even after
removes. `load` checks that the three files agree (count, dimension, the same ids, the
index kind) and raises a GalleryError naming the folder and the file otherwise.

Crash safety of `save(folder)`: the three files are written into a hidden temporary
sibling folder (`.<name>.tmp-<random>`) and fsynced; then an existing gallery at
`folder` is renamed aside (`.<name>.old-<random>`), the new folder is renamed into place,
the parent directory is fsynced and the old folder is deleted. Whenever the process
stops, `folder` holds either the complete previous gallery or the complete new one,
with one exception: a crash between the two renames leaves no `folder` but the complete
previous gallery in `.<name>.old-<random>`; `load` then says so and names the folder to
rename back. A leftover `.<name>.tmp-*` folder is an incomplete save and can be deleted.
`save` only replaces a folder that holds nothing but gallery files, never other data.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from hfr import __version__
from hfr.errors import DataError, OptionError

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
META_FILE = "meta.json"
IDS_FILE = "ids.csv"
GALLERY_FILES: tuple[str, ...] = (INDEX_FILE, META_FILE, IDS_FILE)
IDS_HEADER: tuple[str, ...] = ("id", "subject", "modality", "path")
FORMAT_NAME = "hfr-gallery"
FORMAT_VERSION = 1
INDEX_KINDS: tuple[str, ...] = ("flat", "ivf")
MIN_POINTS_PER_LIST = 39
"""k-means points per inverted list below which FAISS warns; the IVF fallback keeps to it."""
GPU_MAX_K = 2048
"""The largest k (and nprobe) FAISS's GPU indexes accept; larger searches use the CPU copy."""

Features = np.ndarray | torch.Tensor

_gpu_resources: Any = None


class GalleryError(DataError):
    """A gallery folder is missing, corrupt or inconsistent, or a search does not fit it."""


@dataclass
class GalleryEntry:
    """One gallery vector's metadata: stable id, subject, modality and source image path."""

    id: int
    subject: str
    modality: str
    path: str


@dataclass
class SearchResult:
    """The k nearest gallery vectors of each probe, best first.

    `scores` (Q, k) float32 are cosine similarities, `ids` (Q, k) int64 the gallery ids;
    `subjects`, `modalities`, `paths` (Q, k) are object arrays of strings looked up at
    search time (so they stay valid after later removes). A place with no result (IVF
    visiting too few lists) has id -1, score -inf and empty strings.
    """

    scores: np.ndarray
    ids: np.ndarray
    subjects: np.ndarray
    modalities: np.ndarray
    paths: np.ndarray

    @property
    def k(self) -> int:
        """The number of results per probe (after clamping to the gallery size)."""
        return int(self.ids.shape[1])

    def __len__(self) -> int:
        """The number of probes."""
        return int(self.ids.shape[0])

    def entries(self, probe: int) -> list[GalleryEntry | None]:
        """The gallery entries found for probe number `probe`, best first (None where missing)."""
        out: list[GalleryEntry | None] = []
        for j in range(self.k):
            gid = int(self.ids[probe, j])
            out.append(None if gid < 0 else GalleryEntry(
                gid, str(self.subjects[probe, j]), str(self.modalities[probe, j]),
                str(self.paths[probe, j])))
        return out


@dataclass
class SubjectSearchResult:
    """The k best distinct subjects of each probe, best first.

    `subjects[q]` lists the subjects for probe q, `scores` (Q, k) their best cosine score
    over the subject's gallery vectors and `ids` (Q, k) the id of that best vector. A
    probe whose IVF search found fewer than k distinct subjects has id -1, score -inf and
    subject "" in the remaining places.
    """

    subjects: list[list[str]]
    scores: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        """The number of probes."""
        return len(self.subjects)

    def rows(self, probes: Sequence[str] | None = None) -> Iterator[tuple[str, int, str, float]]:
        """Yield (probe, rank, subject, score) with rank counted from 1, skipping empty places.

        `probes` names the probes (for example their image paths); by default their numbers.
        """
        if probes is not None and len(probes) != len(self.subjects):
            raise OptionError(f"got {len(probes)} probe names for {len(self.subjects)} probes")
        for q, subjects in enumerate(self.subjects):
            name = str(q) if probes is None else str(probes[q])
            for rank, subject in enumerate(subjects, start=1):
                if self.ids[q, rank - 1] >= 0:
                    yield name, rank, subject, float(self.scores[q, rank - 1])


def gpu_available() -> bool:
    """True when the installed FAISS has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _gpu_res() -> Any:
    global _gpu_resources
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    return _gpu_resources


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
        raise GalleryError(f"{what} must be a (N, d) array or a (d,) vector, got shape "
                           f"{tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise GalleryError(f"{what} must be real numbers, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise GalleryError(f"{what} have dimension {array.shape[1]} but the gallery's dimension "
                           f"is {dim}: embed them with the gallery's recognizer")
    array = np.asarray(array, dtype=np.float32)
    if array.shape[0] == 0:
        return np.ascontiguousarray(array)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    finite = np.isfinite(norms[:, 0])
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise GalleryError(f"{what} row {row} holds NaN or infinite values (or values too large "
                           f"to normalise in float32)")
    if (norms == 0).any():
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise GalleryError(f"{what} row {row} is a zero vector, which has no direction to compare")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def brute_force_topk(gallery_feats: Features, probe_feats: Features, k: int,
                     normalize: bool = True, chunk_size: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k by inner product in torch: (scores, indices) of shape (Q, k), best first.

    The reference the FAISS indexes are checked against. `indices` are row numbers in
    `gallery_feats`. With `normalize` both sides are L2-normalised first (cosine). The
    gallery is processed `chunk_size` rows at a time (matmul, topk, merge), so a
    1M x 256 gallery needs only a (Q, chunk_size) score matrix at once. `k` is clamped to
    the gallery size.
    """
    gallery = torch.as_tensor(gallery_feats, dtype=torch.float32)
    probes = torch.as_tensor(probe_feats, dtype=torch.float32).to(gallery.device)
    if probes.ndim == 1:
        probes = probes[None]
    if gallery.ndim != 2 or probes.ndim != 2 or gallery.shape[1] != probes.shape[1]:
        raise GalleryError(f"brute_force_topk needs (N, d) gallery and (Q, d) probes, got "
                           f"{tuple(gallery.shape)} and {tuple(probes.shape)}")
    if k < 1:
        raise OptionError(f"k must be at least 1, got {k}")
    if normalize:
        probes = probes / probes.norm(dim=1, keepdim=True)
    k = min(k, gallery.shape[0])
    best_scores: torch.Tensor | None = None
    best_index: torch.Tensor | None = None
    for start in range(0, gallery.shape[0], chunk_size):
        chunk = gallery[start:start + chunk_size]
        if normalize:
            chunk = chunk / chunk.norm(dim=1, keepdim=True)
        scores = probes @ chunk.T
        top_s, top_i = scores.topk(min(k, chunk.shape[0]), dim=1)
        top_i = top_i + start
        if best_scores is None:
            best_scores, best_index = top_s, top_i
        else:
            merged_s = torch.cat([best_scores, top_s], dim=1)
            merged_i = torch.cat([best_index, top_i], dim=1)
            best_scores, order = merged_s.topk(k, dim=1)
            best_index = merged_i.gather(1, order)
    assert best_scores is not None and best_index is not None
    return best_scores, best_index


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_strings(values: Sequence[str] | None, n: int, name: str, allow_empty: bool) -> list[str]:
    if values is None:
        return [""] * n
    if isinstance(values, str):
        raise GalleryError(f"{name} must be a sequence of strings, one per feature row, not one string")
    values = list(values)
    if len(values) != n:
        raise GalleryError(f"got {len(values)} {name} for {n} feature rows: give one per row")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise GalleryError(f"{name} row {i} is {type(value).__name__}, expected a string")
        if not allow_empty and value == "":
            raise GalleryError(f"{name} row {i} is empty")
    return values


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _index_ids(index: Any) -> np.ndarray:
    """Every id stored in a CPU index (IDMap2 or IVF), unsorted."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = index.invlists
    parts = []
    for lst in range(index.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(lst, ptr)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


class Gallery:
    """A searchable set of L2-normalised face features with stable ids and metadata.

    Make one with `Gallery.create` (empty) or `Gallery.build` (create + add), or read one
    with `Gallery.load`. See the module docstring for index kinds, GPU use, search
    conventions and the folder format.
    """

    def __init__(self, dim: int, fingerprint: str, index: str = "flat", nlist: int = 1024,
                 nprobe: int = 16, use_gpu: bool | None = None,
                 train_points_per_list: int = 256) -> None:
        """Prefer `Gallery.create`; the arguments are the same."""
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise OptionError(f"gallery dimension must be a positive integer, got {dim!r}")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise OptionError("a gallery needs the recognizer fingerprint of its features "
                              f"(a non-empty string), got {fingerprint!r}")
        if index not in INDEX_KINDS:
            raise OptionError(f"unknown gallery index {index!r}: choose one of {', '.join(INDEX_KINDS)}")
        for name, value, low in (("nlist", nlist, 1), ("nprobe", nprobe, 1),
                                 ("train_points_per_list", train_points_per_list, MIN_POINTS_PER_LIST)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionError(f"{name} must be an integer of at least {low}, got {value!r}")
        if use_gpu and not gpu_available():
            raise OptionError("use_gpu=True but FAISS sees no GPU (faiss.get_num_gpus() == 0 or a "
                              "CPU-only FAISS build): leave use_gpu unset to choose automatically")
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.kind = index
        self.nlist = int(nlist)
        self.train_points_per_list = int(train_points_per_list)
        self._nprobe = int(nprobe)
        self.nlist_effective: int | None = None
        self.use_gpu = gpu_available() if use_gpu is None else bool(use_gpu)
        self.created = _now()
        self.folder: Path | None = None
        self._next_id = 0
        self._ids = np.zeros(0, np.int64)
        self._subjects = np.zeros(0, object)
        self._modalities = np.zeros(0, object)
        self._paths = np.zeros(0, object)
        self._subject_counts: Counter[str] = Counter()
        self._gpu_index: Any = None
        self._gpu_id_map: np.ndarray | None = None
        self._index = self._new_index(self.nlist)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(cls, dim: int, fingerprint: str, index: str = "flat", nlist: int = 1024,
               nprobe: int = 16, use_gpu: bool | None = None,
               train_points_per_list: int = 256) -> Gallery:
        """An empty gallery of `dim`-dimensional features from the recognizer `fingerprint`.

        `index` is "flat" (exact) or "ivf" (`nlist` lists, `nprobe` visited per query,
        k-means on at most `train_points_per_list` vectors per list of the first add).
        `use_gpu`: None = on the GPU when FAISS sees one, False = CPU, True = GPU or error.
        """
        return cls(dim, fingerprint, index, nlist, nprobe, use_gpu, train_points_per_list)

    @classmethod
    def build(cls, features: Features, subjects: Sequence[str], fingerprint: str,
              modalities: Sequence[str] | None = None, paths: Sequence[str] | None = None,
              index: str = "flat", nlist: int = 1024, nprobe: int = 16,
              use_gpu: bool | None = None, train_points_per_list: int = 256) -> Gallery:
        """Create a gallery sized to `features` and add them (an IVF index trains on them)."""
        dim = int(features.shape[-1])
        gallery = cls.create(dim, fingerprint, index, nlist, nprobe, use_gpu, train_points_per_list)
        gallery.add(features, subjects, modalities, paths)
        return gallery

    def _new_index(self, nlist: int) -> Any:
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        ivf = faiss.index_factory(self.dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf.nprobe = min(self._nprobe, nlist)
        ivf.cp.max_points_per_centroid = self.train_points_per_list
        return ivf

    def _train(self, vectors: np.ndarray) -> None:
        n = vectors.shape[0]
        nlist = self.nlist
        if n < MIN_POINTS_PER_LIST * nlist:
            nlist = max(1, n // MIN_POINTS_PER_LIST)
            log.warning("IVF gallery: %d build vectors are too few to train %d lists (k-means needs "
                        "%d per list); using nlist=%d instead. Build with more vectors, or use "
                        "index='flat' for small galleries.", n, self.nlist, MIN_POINTS_PER_LIST, nlist)
        index = self._new_index(nlist)
        gpu_flat = None
        if self.use_gpu:
            gpu_flat = faiss.index_cpu_to_gpu(_gpu_res(), 0, faiss.IndexFlatIP(self.dim))
            index.clustering_index = gpu_flat
        index.train(vectors)
        if gpu_flat is not None:
            index.clustering_index = None
        self._index = index
        self.nlist_effective = nlist

    # -- properties -----------------------------------------------------------------

    def __len__(self) -> int:
        """The number of vectors in the gallery."""
        return int(self._ids.shape[0])

    def __repr__(self) -> str:
        """A one-line summary: kind, size, dimension, fingerprint."""
        return (f"Gallery(kind={self.kind!r}, count={len(self)}, dim={self.dim}, "
                f"fingerprint={self.fingerprint!r})")

    @property
    def nprobe(self) -> int:
        """IVF lists visited per query (clamped to the number of lists); unused by "flat"."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise OptionError(f"nprobe must be a positive integer, got {value!r}")
        self._nprobe = int(value)
        if self.kind == "ivf":
            self._index.nprobe = min(self._nprobe, self._index.nlist)
            self._drop_gpu()

    @property
    def next_id(self) -> int:
        """The id the next added vector will get (ids are never reused)."""
        return self._next_id

    @property
    def cpu_index(self) -> Any:
        """The CPU FAISS index (the reference copy; do not modify it directly)."""
        return self._index

    def ids(self) -> np.ndarray:
        """The ids in the gallery, ascending (a copy)."""
        return self._ids.copy()

    def subjects(self) -> list[str]:
        """The distinct subjects in the gallery, sorted."""
        return sorted(self._subject_counts)

    def entry(self, gid: int) -> GalleryEntry:
        """The metadata of gallery id `gid`; GalleryError when it is not in the gallery."""
        pos = int(np.searchsorted(self._ids, gid))
        if pos >= len(self._ids) or self._ids[pos] != gid:
            raise GalleryError(f"id {gid} is not in the gallery (removed, or never added)")
        return GalleryEntry(int(gid), self._subjects[pos], self._modalities[pos], self._paths[pos])

    def info(self) -> dict[str, Any]:
        """A summary for `hfr gallery info`: size, subjects, modalities, index and its parameters."""
        modality_counts = Counter(m if m else "unknown" for m in self._modalities.tolist())
        return {
            "folder": str(self.folder) if self.folder is not None else None,
            "count": len(self),
            "subjects": len(self._subject_counts),
            "modalities": dict(sorted(modality_counts.items())),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "index": self._index_meta(),
            "device": "gpu" if self.use_gpu else "cpu",
            "next_id": self._next_id,
            "created": self.created,
            "hfr_version": __version__,
        }

    def _index_meta(self) -> dict[str, Any]:
        if self.kind == "flat":
            return {"kind": "flat", "metric": "inner_product"}
        return {"kind": "ivf", "metric": "inner_product", "nlist": self.nlist,
                "nlist_effective": self.nlist_effective, "nprobe": self._nprobe,
                "train_points_per_list": self.train_points_per_list,
                "trained": bool(self._index.is_trained)}

    # -- add / remove ---------------------------------------------------------------

    def add(self, features: Features, subjects: Sequence[str],
            modalities: Sequence[str] | None = None, paths: Sequence[str] | None = None,
            fingerprint: str | None = None) -> np.ndarray:
        """Add feature rows with their subjects (and optionally modalities, source paths).

        Features are L2-normalised here. Returns the new ids (int64, consecutive, never
        used before). An untrained IVF index is trained on these vectors first. A
        `fingerprint` other than the gallery's is a GalleryError.
        """
        self._check_fingerprint(fingerprint, "features to add")
        vectors = l2_normalize(features, self.dim, "features to add")
        n = vectors.shape[0]
        subjects = _check_strings(subjects, n, "subjects", allow_empty=False)
        modalities = _check_strings(modalities, n, "modalities", allow_empty=True)
        paths = _check_strings(paths, n, "paths", allow_empty=True)
        if n == 0:
            return np.zeros(0, np.int64)
        if self.kind == "ivf" and not self._index.is_trained:
            self._train(vectors)
        new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._index.add_with_ids(vectors, new_ids)
        self._next_id += n
        self._ids = np.concatenate([self._ids, new_ids])
        self._subjects = np.concatenate([self._subjects, np.array(subjects, dtype=object)])
        self._modalities = np.concatenate([self._modalities, np.array(modalities, dtype=object)])
        self._paths = np.concatenate([self._paths, np.array(paths, dtype=object)])
        self._subject_counts.update(subjects)
        self._drop_gpu()
        return new_ids

    def remove(self, ids: Sequence[int] | None = None, subjects: Sequence[str] | None = None) -> int:
        """Remove vectors by id and/or every vector of the given subjects; return how many went.

        Ids or subjects that are not in the gallery are ignored (the count says what was
        removed). Removed ids are never handed out again.
        """
        if ids is None and subjects is None:
            raise OptionError("remove needs ids or subjects (or both)")
        mask = np.zeros(len(self), dtype=bool)
        if ids is not None:
            wanted = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
            mask |= np.isin(self._ids, wanted)
        if subjects is not None:
            if isinstance(subjects, str):
                subjects = [subjects]
            wanted_subjects = set(subjects)
            mask |= np.fromiter((s in wanted_subjects for s in self._subjects.tolist()),
                                dtype=bool, count=len(self))
        count = int(mask.sum())
        if count == 0:
            return 0
        removed = self._ids[mask]
        done = self._index.remove_ids(faiss.IDSelectorBatch(removed))
        if done != count:
            raise GalleryError(f"the FAISS index removed {done} vectors where the metadata "
                               f"listed {count}: the gallery is inconsistent; rebuild it")
        self._subject_counts.subtract(self._subjects[mask].tolist())
        self._subject_counts = Counter({s: c for s, c in self._subject_counts.items() if c > 0})
        keep = ~mask
        self._ids = self._ids[keep]
        self._subjects = self._subjects[keep]
        self._modalities = self._modalities[keep]
        self._paths = self._paths[keep]
        self._drop_gpu()
        return count

    # -- search ---------------------------------------------------------------------

    def _check_fingerprint(self, fingerprint: str | None, what: str) -> None:
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise GalleryError(f"{what}: probe embedded by another recognizer than the gallery's "
                               f"(probe fingerprint {fingerprint!r}, gallery fingerprint "
                               f"{self.fingerprint!r}); embed with the gallery's recognizer or "
                               f"rebuild the gallery")

    def _drop_gpu(self) -> None:
        self._gpu_index = None
        self._gpu_id_map = None

    def _raw_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search of normalised vectors: (scores, ids) with -1 / -inf where missing."""
        gpu_ok = self.use_gpu and k <= GPU_MAX_K and (self.kind == "flat" or self._nprobe <= GPU_MAX_K)
        if gpu_ok:
            if self._gpu_index is None:
                if self.kind == "flat":
                    self._gpu_index = faiss.index_cpu_to_gpu(_gpu_res(), 0, self._index.index)
                    self._gpu_id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
                else:
                    self._gpu_index = faiss.index_cpu_to_gpu(_gpu_res(), 0, self._index)
                    faiss.GpuParameterSpace().set_index_parameter(
                        self._gpu_index, "nprobe", min(self._nprobe, self._index.nlist))
            scores, found = self._gpu_index.search(vectors, k)
            if self.kind == "flat":
                assert self._gpu_id_map is not None
                found = np.where(found >= 0, self._gpu_id_map[np.maximum(found, 0)], -1)
        else:
            scores, found = self._index.search(vectors, k)
        found = found.astype(np.int64)
        scores = np.where(found >= 0, scores, -np.inf).astype(np.float32)
        return scores, found

    def _prepare_search(self, features: Features, k: int, fingerprint: str | None,
                        limit: int, unit: str) -> tuple[np.ndarray, int]:
        self._check_fingerprint(fingerprint, "search")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise OptionError(f"k must be an integer of at least 1, got {k!r}")
        if len(self) == 0:
            raise GalleryError("the gallery is empty: add features before searching")
        vectors = l2_normalize(features, self.dim, "probe features")
        if k > limit:
            log.info("k=%d is more than the gallery's %d %s; returning %d", k, limit, unit, limit)
            k = limit
        return vectors, int(k)

    def search(self, features: Features, k: int = 5, fingerprint: str | None = None) -> SearchResult:
        """The k most similar gallery vectors of each probe row, best first.

        Probe features are L2-normalised here; scores are cosine similarities. k above the
        gallery size is clamped (logged at INFO). Errors: k < 1 (OptionError); empty
        gallery, dimension mismatch, another recognizer's `fingerprint` (GalleryError).
        """
        vectors, k = self._prepare_search(features, k, fingerprint, len(self), "vectors")
        scores, found = self._raw_search(vectors, k)
        return self._result(scores, found)

    def _result(self, scores: np.ndarray, found: np.ndarray) -> SearchResult:
        valid = found >= 0
        pos = np.searchsorted(self._ids, np.where(valid, found, 0))
        pos = np.minimum(pos, len(self._ids) - 1)
        if not np.array_equal(self._ids[pos][valid], found[valid]):
            raise GalleryError("the FAISS index returned ids the metadata does not know: the "
                               "gallery is inconsistent; rebuild it")

        def column(values: np.ndarray) -> np.ndarray:
            out = values[pos]
            out[~valid] = ""
            return out

        return SearchResult(scores, found, column(self._subjects), column(self._modalities),
                            column(self._paths))

    def search_subjects(self, features: Features, k: int = 5,
                        fingerprint: str | None = None) -> SubjectSearchResult:
        """The k best distinct subjects of each probe (a subject's score is its best vector's).

        Searches with a growing number of neighbours (4k, doubling, up to the gallery size)
        until every probe has k distinct subjects, so with the flat index the answer is
        exact. k above the number of subjects is clamped (logged at INFO).
        """
        n_subjects = len(self._subject_counts)
        vectors, k = self._prepare_search(features, k, fingerprint, max(n_subjects, 1), "subjects")
        q = vectors.shape[0]
        depth = min(len(self), 4 * k)
        while True:
            scores, found = self._raw_search(vectors, depth)
            result = self._result(scores, found)
            out_subjects: list[list[str]] = []
            out_scores = np.full((q, k), -np.inf, np.float32)
            out_ids = np.full((q, k), -1, np.int64)
            complete = True
            for i in range(q):
                seen: list[str] = []
                seen_set: set[str] = set()
                for j in range(depth):
                    if found[i, j] < 0:
                        break
                    subject = result.subjects[i, j]
                    if subject in seen_set:
                        continue
                    seen_set.add(subject)
                    out_scores[i, len(seen)] = scores[i, j]
                    out_ids[i, len(seen)] = found[i, j]
                    seen.append(subject)
                    if len(seen) == k:
                        break
                if len(seen) < k:
                    complete = complete and found[i, -1] < 0
                out_subjects.append(seen + [""] * (k - len(seen)))
            if complete or depth >= len(self):
                return SubjectSearchResult(out_subjects, out_scores, out_ids)
            depth = min(len(self), depth * 2)

    # -- save / load ----------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hfr_version": __version__,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "count": len(self),
            "next_id": self._next_id,
            "created": self.created,
            "saved": _now(),
            "index": self._index_meta(),
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the gallery folder atomically (see the module docstring); return its path.

        An existing `folder` is replaced only when it holds nothing but gallery files.
        """
        folder = Path(folder)
        if folder.exists():
            if not folder.is_dir():
                raise GalleryError(f"cannot save the gallery to {folder}: it is a file, not a folder")
            others = sorted(p.name for p in folder.iterdir() if p.name not in GALLERY_FILES)
            if others:
                raise GalleryError(f"cannot save the gallery to {folder}: the folder holds other "
                                   f"files ({', '.join(others[:3])}); choose a new or gallery folder")
        parent = folder.parent
        parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        tmp = parent / f".{folder.name}.tmp-{token}"
        tmp.mkdir()
        try:
            self._write_files(tmp)
            _fsync_dir(tmp)
            if folder.exists():
                old = parent / f".{folder.name}.old-{token}"
                os.rename(folder, old)
                os.rename(tmp, folder)
                _fsync_dir(parent)
                shutil.rmtree(old)
            else:
                os.rename(tmp, folder)
                _fsync_dir(parent)
        except BaseException:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.folder = folder
        log.info("saved gallery of %d vectors to %s", len(self), folder)
        return folder

    def _write_files(self, tmp: Path) -> None:
        index_path = tmp / INDEX_FILE
        try:
            faiss.write_index(self._index, str(index_path))
        except (RuntimeError, OSError) as exc:
            raise GalleryError(f"could not write {index_path.name} of the gallery "
                               f"({exc}); the previous gallery, if any, is untouched") from exc
        _fsync_file(index_path)
        with open(tmp / IDS_FILE, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(IDS_HEADER)
            writer.writerows(zip(self._ids.tolist(), self._subjects.tolist(),
                                 self._modalities.tolist(), self._paths.tolist()))
            handle.flush()
            os.fsync(handle.fileno())
        with open(tmp / META_FILE, "w", encoding="utf-8") as handle:
            json.dump(self._meta(), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, folder: str | os.PathLike, use_gpu: bool | None = None) -> Gallery:
        """Read a gallery folder, checking that index.faiss, meta.json and ids.csv agree.

        Raises GalleryError naming the folder and the file when one is missing, unreadable
        or disagrees with the others.
        """
        folder = Path(folder)
        if use_gpu and not gpu_available():
            raise OptionError("use_gpu=True but FAISS sees no GPU (faiss.get_num_gpus() == 0 or a "
                              "CPU-only FAISS build): leave use_gpu unset to choose automatically")
        if not folder.is_dir():
            aside = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
            if aside:
                raise GalleryError(f"gallery folder {folder} is missing, but a save was interrupted "
                                   f"after moving the previous gallery aside to {aside[-1]}: rename "
                                   f"it back to {folder.name} to restore it")
            raise GalleryError(f"gallery folder {folder} does not exist (build one with `hfr gallery "
                               f"build` or Gallery.save)")
        for name in GALLERY_FILES:
            if not (folder / name).is_file():
                raise GalleryError(f"gallery folder {folder}: {name} is missing; the folder is not a "
                                   f"complete gallery, rebuild it")
        meta = cls._read_meta(folder)

        def bad(name: str, why: str) -> GalleryError:
            return GalleryError(f"gallery folder {folder}: {name} {why}")

        index_meta = meta["index"]
        kind = index_meta.get("kind")
        if kind not in INDEX_KINDS:
            raise bad(META_FILE, f"has an unknown index kind {kind!r} (expected {', '.join(INDEX_KINDS)})")
        try:
            if kind == "ivf":
                gallery = cls(meta["dim"], meta["fingerprint"], "ivf", int(index_meta["nlist"]),
                              int(index_meta["nprobe"]), False,
                              int(index_meta.get("train_points_per_list", 256)))
            else:
                gallery = cls(meta["dim"], meta["fingerprint"], "flat", use_gpu=False)
        except (OptionError, KeyError, TypeError, ValueError) as exc:
            raise bad(META_FILE, f"has invalid values ({exc})") from exc
        gallery.use_gpu = gpu_available() if use_gpu is None else bool(use_gpu)
        ids, subjects, modalities, paths = cls._read_ids(folder)
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise bad(INDEX_FILE, f"cannot be read by FAISS ({first}); the file is corrupt, rebuild "
                                  f"the gallery") from exc
        if kind == "flat" and not isinstance(index, faiss.IndexIDMap2):
            raise bad(INDEX_FILE, f"holds a {type(index).__name__}, but meta.json says 'flat' "
                                  f"(IndexIDMap2 over IndexFlatIP)")
        if kind == "ivf" and not isinstance(index, faiss.IndexIVFFlat):
            raise bad(INDEX_FILE, f"holds a {type(index).__name__}, but meta.json says 'ivf' "
                                  f"(IndexIVFFlat)")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise bad(INDEX_FILE, "does not use the inner-product metric")
        if index.d != gallery.dim:
            raise bad(INDEX_FILE, f"has dimension {index.d} but meta.json says {gallery.dim}")
        if index.ntotal != meta["count"]:
            raise bad(INDEX_FILE, f"holds {index.ntotal} vectors but meta.json says {meta['count']}")
        if len(ids) != meta["count"]:
            raise bad(IDS_FILE, f"has {len(ids)} rows but meta.json says {meta['count']}")
        if not np.array_equal(np.sort(_index_ids(index)), ids):
            raise bad(IDS_FILE, "lists other ids than index.faiss holds")
        if len(ids) and ids[-1] >= meta["next_id"]:
            raise bad(META_FILE, f"next_id {meta['next_id']} is not above the largest id {ids[-1]}")
        gallery._index = index
        if kind == "ivf":
            gallery.nlist_effective = index.nlist if index.is_trained else None
            index.nprobe = min(gallery._nprobe, index.nlist)
        gallery.created = str(meta.get("created", gallery.created))
        gallery._next_id = int(meta["next_id"])
        gallery._ids = ids
        gallery._subjects = subjects
        gallery._modalities = modalities
        gallery._paths = paths
        gallery._subject_counts = Counter(subjects.tolist())
        gallery.folder = folder
        return gallery

    @staticmethod
    def _read_meta(folder: Path) -> dict[str, Any]:
        path = folder / META_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} is not valid JSON ({exc}); "
                               f"the file is corrupt, rebuild the gallery") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} is not an hfr gallery's "
                               f"meta.json (no \"format\": \"{FORMAT_NAME}\")")
        if meta.get("format_version") != FORMAT_VERSION:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} has format_version "
                               f"{meta.get('format_version')!r}; this hfr reads version "
                               f"{FORMAT_VERSION}: rebuild the gallery")
        for key, types in (("dim", int), ("count", int), ("next_id", int), ("fingerprint", str),
                           ("index", dict)):
            if not isinstance(meta.get(key), types) or isinstance(meta.get(key), bool):
                raise GalleryError(f"gallery folder {folder}: {META_FILE} lacks a valid {key!r} "
                                   f"(got {meta.get(key)!r})")
        return meta

    @staticmethod
    def _read_ids(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        path = folder / IDS_FILE
        ids: list[int] = []
        subjects: list[str] = []
        modalities: list[str] = []
        paths: list[str] = []
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None or tuple(header) != IDS_HEADER:
                    raise GalleryError(f"gallery folder {folder}: {IDS_FILE} must start with the "
                                       f"header {','.join(IDS_HEADER)}, got {header!r}")
                for row in reader:
                    line = reader.line_num
                    if len(row) != len(IDS_HEADER):
                        raise GalleryError(f"gallery folder {folder}: {IDS_FILE} row {line} has "
                                           f"{len(row)} fields, expected {len(IDS_HEADER)}")
                    try:
                        ids.append(int(row[0]))
                    except ValueError as exc:
                        raise GalleryError(f"gallery folder {folder}: {IDS_FILE} row {line} has a "
                                           f"non-integer id {row[0]!r}") from exc
                    if not row[1]:
                        raise GalleryError(f"gallery folder {folder}: {IDS_FILE} row {line} has an "
                                           f"empty subject")
                    subjects.append(row[1])
                    modalities.append(row[2])
                    paths.append(row[3])
        except (UnicodeDecodeError, csv.Error) as exc:
            raise GalleryError(f"gallery folder {folder}: {IDS_FILE} cannot be parsed ({exc}); "
                               f"the file is corrupt, rebuild the gallery") from exc
        id_array = np.array(ids, dtype=np.int64)
        order = np.argsort(id_array, kind="stable")
        id_array = id_array[order]
        if len(id_array) > 1 and (np.diff(id_array) == 0).any():
            dup = int(id_array[1:][np.diff(id_array) == 0][0])
            raise GalleryError(f"gallery folder {folder}: {IDS_FILE} lists id {dup} more than once")

        def column(values: list[str]) -> np.ndarray:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array[order]

        return id_array, column(subjects), column(modalities), column(paths)
