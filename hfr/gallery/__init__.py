"""FAISS gallery: build, add, remove, search, save and load a folder of face features.

A gallery holds L2-normalised recognizer features with one row of metadata each
(`GalleryEntry`: a stable integer id, the subject, the modality and the source image
path). Features are normalised on `add` and on `search`, so the inner product FAISS
computes is the cosine similarity of the original features; a zero, NaN or infinite
feature is an error.

`Gallery` is the facade; the work is split by concern:

- `hfr.gallery.index`: the FAISS side (`FaissIndex`): index kinds `"flat"` (exact),
  `"ivf"` (approximate, with the `nlist` fallback for small builds), `"ivfpq"` (compressed
  codes, optionally re-ranked: `rerank`) and `"hnsw"`, the lazy GPU copy, search,
  `brute_force_topk` (the exact reference) and `l2_normalize`;
- `hfr.gallery.vectors`: `VectorStore`, the exact vectors a re-ranked "ivfpq" index
  re-scores its shortlist with (memory-mapped from the folder's `vectors.npy`);
- `hfr.gallery.storage`: the folder format (`index.faiss`, `meta.json`, `ids.csv`, and
  `vectors.npy` when re-ranking), its atomic save and the checked readers behind `Gallery.load`;
- `hfr.gallery.results`: `SearchResult` (per image), `SubjectSearchResult` (per subject,
  `.rows()`) and `GalleryEntry`.

Every public name of those modules that callers used from `hfr.gallery` is re-exported here.

Writers and integrity (details in `hfr.gallery.storage`): every save holds the folder's
writer lock (`GalleryLock`, a file beside the folder); `Gallery.open_for_update(folder)`
holds it from load to save, so concurrent writers wait for each other (up to a timeout,
then a GalleryError naming the holder). A gallery remembers the version of the folder it
was loaded from: saving it back after another writer has saved meanwhile is a
GalleryError ("changed since it was loaded"), never a silent loss of the other's work.
`load` verifies the SHA-256 of `index.faiss`, `ids.csv` (and `vectors.npy`) recorded in `meta.json`, checks
that stored vectors have unit length, and removes leftovers of killed saves when no writer
holds the lock; a search score outside [-1, 1] is a GalleryError (a corrupt index).

Paths are stored as the caller gives them (the CLI gives absolute ones, so they resolve
from any working folder); `contains_paths` tells which the gallery already holds.

Search conventions: `k < 1` is an ArgumentError; `k` larger than the gallery is clamped to
its size with a logged note (INFO); an empty gallery, a feature dimension other than the
gallery's, or a recognizer fingerprint other than the gallery's is a GalleryError. An IVF
search visiting too few lists can find fewer than `k` vectors: missing places have id -1
and score -inf. Impossible arguments (an unknown index kind, an empty fingerprint, nlist
below 1, `use_gpu=True` without a GPU) are ArgumentErrors; problems of a folder on disk
are GalleryErrors naming the folder and the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hfr import __version__
from hfr.errors import ArgumentError, GalleryError
from hfr.gallery.index import (
    COMPRESSED_KINDS,
    GPU_MAX_K,
    INDEX_KINDS,
    MIN_POINTS_PER_LIST,
    FaissIndex,
    Features,
    brute_force_topk,
    check_dim,
    check_use_gpu,
    gpu_available,
    index_bytes,
    l2_normalize,
)
from hfr.gallery.results import GalleryEntry, SearchResult, SubjectSearchResult, distinct_subjects
from hfr.gallery.storage import (
    DEFAULT_LOCK_TIMEOUT,
    FORMAT_NAME,
    FORMAT_VERSION,
    GALLERY_FILES,
    IDS_FILE,
    IDS_HEADER,
    INDEX_FILE,
    META_FILE,
    VECTORS_FILE,
    GalleryLock,
    check_folder,
    check_unit_vectors,
    folder_error,
    meta_digest,
    read_ids,
    read_index,
    read_meta,
    read_meta_bytes,
    read_vectors,
    remove_leftovers_if_free,
    save_folder,
    sha256_bytes,
    verify_files,
    write_files,
)

log = logging.getLogger(__name__)

SCORE_TOLERANCE = 1e-3
"""How far outside [-1, 1] a search score may be (float32 rounding) before the index counts as corrupt."""
LOAD_ATTEMPTS = 3
"""Reads of a folder that another writer replaced mid-read before giving up."""

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GALLERY_FILES",
    "GPU_MAX_K",
    "IDS_FILE",
    "IDS_HEADER",
    "INDEX_FILE",
    "INDEX_KINDS",
    "META_FILE",
    "MIN_POINTS_PER_LIST",
    "VECTORS_FILE",
    "FaissIndex",
    "Features",
    "Gallery",
    "GalleryEntry",
    "GalleryError",
    "GalleryLock",
    "SearchResult",
    "SubjectSearchResult",
    "brute_force_topk",
    "gpu_available",
    "l2_normalize",
]


def tuning_summary(tuning: dict[str, Any] | None) -> dict[str, Any] | None:
    """What `info()` shows of a tuning record (`hfr.gallery.tune`): everything but the candidates' table,
    which stays in meta.json."""
    if tuning is None:
        return None
    return {k: v for k, v in tuning.items() if k != "candidates"}


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


class Gallery:
    """A searchable set of L2-normalised face features with stable ids and metadata.

    Make one with `Gallery.create` (empty) or `Gallery.build` (create + add), or read one
    with `Gallery.load`. The vectors live in a `FaissIndex` (see `hfr.gallery.index` for
    index kinds and GPU use); the metadata (id, subject, modality, path per vector) lives
    here; `hfr.gallery.storage` describes the folder format and its atomic save.
    """

    def __init__(
        self,
        dim: int,
        fingerprint: str,
        index: str = "flat",
        nlist: int = 1024,
        nprobe: int = 16,
        use_gpu: bool | None = None,
        train_points_per_list: int = 256,
        *,
        pq_m: int = 32,
        opq: bool = False,
        hnsw_m: int = 32,
        ef_search: int = 64,
        rerank: int = 0,
    ) -> None:
        """Prefer `Gallery.create`; the arguments are the same."""
        check_dim(dim)
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ArgumentError(
                f"a gallery needs the recognizer fingerprint of its features (a non-empty string), got {fingerprint!r}"
            )
        self._vectors = FaissIndex(
            dim, index, nlist, nprobe, use_gpu, train_points_per_list, pq_m, opq, hnsw_m, ef_search, rerank
        )
        self.tuning: dict[str, Any] | None = None  # what hfr.gallery.tune measured when it chose the index
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.created = _now()
        self.folder: Path | None = None
        self._next_id = 0
        self._ids = np.zeros(0, np.int64)
        self._subjects = np.zeros(0, object)
        self._modalities = np.zeros(0, object)
        self._paths = np.zeros(0, object)
        self._subject_counts: Counter[str] = Counter()
        self._version = 0
        self._loaded: tuple[str, str] | None = None  # (real folder, meta.json SHA-256) it was loaded from or saved to

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        dim: int,
        fingerprint: str,
        index: str = "flat",
        nlist: int = 1024,
        nprobe: int = 16,
        use_gpu: bool | None = None,
        train_points_per_list: int = 256,
        *,
        pq_m: int = 32,
        opq: bool = False,
        hnsw_m: int = 32,
        ef_search: int = 64,
        rerank: int = 0,
    ) -> Gallery:
        """An empty gallery of `dim`-dimensional features from the recognizer `fingerprint`.

        `index` is one of `INDEX_KINDS` (`hfr.gallery.index`): "flat" (exact), "ivf" (`nlist`
        lists, `nprobe` visited per query, k-means on at most `train_points_per_list` vectors
        per list of the first add), "ivfpq" (IVF over `pq_m`-byte product-quantised codes,
        `opq` for a learned rotation first) or "hnsw" (`hnsw_m` links per node, `ef_search`
        candidates per query; cannot remove). `rerank` ("ivfpq" only; 0 = off): the codes pick
        `max(k, rerank)` candidates per query, re-scored with their exact vectors, which the
        gallery folder keeps in `vectors.npy` (4 * dim bytes per vector on disk, memory-mapped
        once loaded). `hfr.gallery.tune.build_for_recall` chooses among them for a recall
        target. `use_gpu`: None = on the GPU when FAISS sees one, False = CPU, True = GPU or error.
        """
        return cls(
            dim,
            fingerprint,
            index,
            nlist,
            nprobe,
            use_gpu,
            train_points_per_list,
            pq_m=pq_m,
            opq=opq,
            hnsw_m=hnsw_m,
            ef_search=ef_search,
            rerank=rerank,
        )

    @classmethod
    def build(
        cls,
        features: Features,
        subjects: Sequence[str],
        fingerprint: str,
        modalities: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        index: str = "flat",
        nlist: int = 1024,
        nprobe: int = 16,
        use_gpu: bool | None = None,
        train_points_per_list: int = 256,
        **kind_params: Any,
    ) -> Gallery:
        """Create a gallery sized to `features` and add them (an IVF kind trains on them); `kind_params`
        are `create`'s keyword-only parameters (pq_m, opq, hnsw_m, ef_search, rerank)."""
        dim = int(features.shape[-1])
        gallery = cls.create(dim, fingerprint, index, nlist, nprobe, use_gpu, train_points_per_list, **kind_params)
        gallery.add(features, subjects, modalities, paths)
        return gallery

    # -- properties -----------------------------------------------------------------

    def __len__(self) -> int:
        """The number of vectors in the gallery."""
        return int(self._ids.shape[0])

    def __repr__(self) -> str:
        """A one-line summary: kind, size, dimension, fingerprint."""
        return f"Gallery(kind={self.kind!r}, count={len(self)}, dim={self.dim}, fingerprint={self.fingerprint!r})"

    @property
    def kind(self) -> str:
        """The index kind, one of `INDEX_KINDS`: "flat", "ivf", "ivfpq" or "hnsw"."""
        return self._vectors.kind

    @property
    def nlist(self) -> int:
        """The IVF lists asked for (see `nlist_effective` for those trained); unused by "flat"."""
        return self._vectors.nlist

    @property
    def nlist_effective(self) -> int | None:
        """The IVF lists actually trained (fewer for a small build); None before training or for "flat"."""
        return self._vectors.nlist_effective

    @property
    def train_points_per_list(self) -> int:
        """The most vectors per list the IVF k-means trains on."""
        return self._vectors.train_points_per_list

    @property
    def use_gpu(self) -> bool:
        """Whether searches run on a GPU copy of the index."""
        return self._vectors.use_gpu

    @use_gpu.setter
    def use_gpu(self, value: bool) -> None:
        self._vectors.use_gpu = value

    @property
    def nprobe(self) -> int:
        """IVF lists visited per query (clamped to the number of lists); unused by "flat"."""
        return self._vectors.nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._vectors.nprobe = value

    @property
    def ef_search(self) -> int:
        """HNSW candidates kept per query (higher: better recall, slower); unused by other kinds."""
        return self._vectors.ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._vectors.ef_search = value

    @property
    def rerank(self) -> int:
        """Candidates per query an "ivfpq" gallery re-scores with exact vectors (0: none). Whether a gallery
        re-ranks is fixed at creation; the shortlist of one that does may change (ArgumentError otherwise)."""
        return self._vectors.rerank

    @rerank.setter
    def rerank(self, value: int) -> None:
        self._vectors.rerank = value

    def vectors_file_bytes(self) -> int | None:
        """Bytes of the `vectors.npy` a re-ranked gallery's folder holds (or will hold once saved); None
        without re-ranking. The in-memory index is `hfr.gallery.index.index_bytes(gallery.cpu_index)`."""
        return self._vectors.vectors_file_bytes()

    @property
    def next_id(self) -> int:
        """The id the next added vector will get (ids are never reused)."""
        return self._next_id

    @property
    def version(self) -> int:
        """How many times the gallery's folder has been saved (0 before the first save)."""
        return self._version

    @property
    def cpu_index(self) -> Any:
        """The CPU FAISS index (the reference copy; do not modify it directly)."""
        return self._vectors.cpu_index

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

    def contains_paths(self, paths: Sequence[str]) -> np.ndarray:
        """One bool per path: True when the gallery holds an entry with exactly that (non-empty) path."""
        held = set(self._paths.tolist())
        held.discard("")
        return np.fromiter((p in held for p in paths), dtype=bool, count=len(paths))

    def info(self) -> dict[str, Any]:
        """A summary for `hfr gallery info`: size, subjects, modalities, index and its parameters.

        A compressed ("ivfpq") gallery also shows `index_bytes_in_memory` (the serialised FAISS
        index: codes, ids, quantisers), and a re-ranked one `vectors_bytes_on_disk` (its
        `vectors.npy`, memory-mapped, not read into RAM).
        """
        modality_counts = Counter(m if m else "unknown" for m in self._modalities.tolist())
        sizes: dict[str, int] = {}
        if self.kind in COMPRESSED_KINDS:
            sizes["index_bytes_in_memory"] = index_bytes(self._vectors.cpu_index)
        on_disk = self._vectors.vectors_file_bytes()
        if on_disk is not None:
            sizes["vectors_bytes_on_disk"] = on_disk
        return {
            "folder": str(self.folder) if self.folder is not None else None,
            "count": len(self),
            "subjects": len(self._subject_counts),
            "modalities": dict(sorted(modality_counts.items())),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "index": self._vectors.meta(),
            **sizes,
            "tuning": tuning_summary(self.tuning),
            "device": "gpu" if self.use_gpu else "cpu",
            "next_id": self._next_id,
            "version": self._version,
            "created": self.created,
            "hfr_version": __version__,
        }

    # -- add / remove ---------------------------------------------------------------

    def add(
        self,
        features: Features,
        subjects: Sequence[str],
        modalities: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        fingerprint: str | None = None,
    ) -> np.ndarray:
        """Add feature rows with their subjects (and optionally modalities, source paths).

        Features are L2-normalised here. Returns the new ids (int64, consecutive, never
        used before). An untrained IVF index is trained on these vectors first. A
        `fingerprint` other than the gallery's is a GalleryError. `paths` are stored as
        given: pass absolute ones (`Path.resolve()`) so they resolve from anywhere; a path
        the gallery already holds is added again (filter with `contains_paths`).
        """
        self._check_fingerprint(fingerprint, "features to add")
        vectors = l2_normalize(features, self.dim, "features to add")
        n = vectors.shape[0]
        subjects = _check_strings(subjects, n, "subjects", allow_empty=False)
        modalities = _check_strings(modalities, n, "modalities", allow_empty=True)
        paths = _check_strings(paths, n, "paths", allow_empty=True)
        if n == 0:
            return np.zeros(0, np.int64)
        new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._vectors.add(vectors, new_ids)
        self._next_id += n
        self._ids = np.concatenate([self._ids, new_ids])
        self._subjects = np.concatenate([self._subjects, np.array(subjects, dtype=object)])
        self._modalities = np.concatenate([self._modalities, np.array(modalities, dtype=object)])
        self._paths = np.concatenate([self._paths, np.array(paths, dtype=object)])
        self._subject_counts.update(subjects)
        return new_ids

    def remove(self, ids: Sequence[int] | None = None, subjects: Sequence[str] | None = None) -> int:
        """Remove vectors by id and/or every vector of the given subjects; return how many went.

        Ids or subjects that are not in the gallery are ignored (the count says what was
        removed). Removed ids are never handed out again. Neither ids nor subjects is an
        ArgumentError.
        """
        if ids is None and subjects is None:
            raise ArgumentError("remove needs ids or subjects (or both)")
        self._vectors.check_removable()
        mask = np.zeros(len(self), dtype=bool)
        if ids is not None:
            wanted = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
            mask |= np.isin(self._ids, wanted)
        if subjects is not None:
            if isinstance(subjects, str):
                subjects = [subjects]
            wanted_subjects = set(subjects)
            mask |= np.fromiter((s in wanted_subjects for s in self._subjects.tolist()), dtype=bool, count=len(self))
        count = int(mask.sum())
        if count == 0:
            return 0
        done = self._vectors.remove(self._ids[mask])
        if done != count:
            raise GalleryError(
                f"the FAISS index removed {done} vectors where the metadata "
                f"listed {count}: the gallery is inconsistent; rebuild it"
            )
        self._subject_counts.subtract(self._subjects[mask].tolist())
        self._subject_counts = Counter({s: c for s, c in self._subject_counts.items() if c > 0})
        keep = ~mask
        self._ids = self._ids[keep]
        self._subjects = self._subjects[keep]
        self._modalities = self._modalities[keep]
        self._paths = self._paths[keep]
        return count

    # -- search ---------------------------------------------------------------------

    def _check_fingerprint(self, fingerprint: str | None, what: str) -> None:
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise GalleryError(
                f"{what}: probe embedded by another recognizer than the gallery's "
                f"(probe fingerprint {fingerprint!r}, gallery fingerprint "
                f"{self.fingerprint!r}); embed with the gallery's recognizer or "
                f"rebuild the gallery"
            )

    def _prepare_search(
        self, features: Features, k: int, fingerprint: str | None, limit: int, unit: str
    ) -> tuple[np.ndarray, int]:
        self._check_fingerprint(fingerprint, "search")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"k must be an integer of at least 1, got {k!r}")
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
        gallery size is clamped (logged at INFO). Errors: k < 1 (ArgumentError); empty
        gallery, dimension mismatch, another recognizer's `fingerprint` (GalleryError).
        """
        vectors, k = self._prepare_search(features, k, fingerprint, len(self), "vectors")
        scores, found = self._vectors.search(vectors, k)
        return self._result(scores, found)

    def _result(self, scores: np.ndarray, found: np.ndarray) -> SearchResult:
        valid = found >= 0
        off = valid & ~(np.abs(scores) <= 1.0 + SCORE_TOLERANCE)
        if off.any():
            where = f" in {self.folder}" if self.folder is not None else ""
            raise GalleryError(
                f"the gallery index{where} returned a cosine similarity of {float(scores[off][0]):.4g}, "
                f"outside [-1, 1]: its stored vectors are corrupt; rebuild with hfr gallery build"
            )
        pos = np.searchsorted(self._ids, np.where(valid, found, 0))
        pos = np.minimum(pos, len(self._ids) - 1)
        if not np.array_equal(self._ids[pos][valid], found[valid]):
            raise GalleryError(
                "the FAISS index returned ids the metadata does not know: the gallery is inconsistent; rebuild it"
            )

        def column(values: np.ndarray) -> np.ndarray:
            out = values[pos]
            out[~valid] = ""
            return out

        return SearchResult(scores, found, column(self._subjects), column(self._modalities), column(self._paths))

    def search_subjects(self, features: Features, k: int = 5, fingerprint: str | None = None) -> SubjectSearchResult:
        """The k best distinct subjects of each probe (a subject's score is its best vector's).

        Searches with a growing number of neighbours (4k, doubling, up to the gallery size)
        until every probe has k distinct subjects, so with the flat index the answer is
        exact. k above the number of subjects is clamped (logged at INFO).
        """
        n_subjects = len(self._subject_counts)
        vectors, k = self._prepare_search(features, k, fingerprint, max(n_subjects, 1), "subjects")
        depth = min(len(self), 4 * k)
        while True:
            scores, found = self._vectors.search(vectors, depth)
            result, complete = distinct_subjects(self._result(scores, found), k)
            if complete or depth >= len(self):
                return result
            depth = min(len(self), depth * 2)

    # -- save / load ----------------------------------------------------------------

    def _meta(self, version: int) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hfr_version": __version__,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "count": len(self),
            "next_id": self._next_id,
            "version": version,
            "save_id": uuid.uuid4().hex,
            "created": self.created,
            "saved": _now(),
            "index": self._vectors.meta(),
            **({"tuning": self.tuning} if self.tuning is not None else {}),
        }

    def _check_unchanged(self, folder: Path, current: bytes | None) -> None:
        """GalleryError when `folder` is the one this gallery was loaded from and another writer saved it since."""
        if self._loaded is None or os.path.realpath(folder) != self._loaded[0]:
            return
        if current is not None and sha256_bytes(current) == self._loaded[1]:
            return
        if current is None:
            now = "it is gone"
        else:
            try:
                meta = read_meta(folder, current)
                now = f"it now holds {meta['count']} vectors, next id {meta['next_id']}, saved {meta.get('saved')}"
            except GalleryError:
                now = "its meta.json differs"
        raise GalleryError(
            f"gallery folder {folder} changed since it was loaded (another writer saved it: {now}); "
            f"nothing was saved, so that writer's work is kept: run the command again "
            f"(or, in Python, load the gallery again and repeat the change, ideally inside Gallery.open_for_update)"
        )

    def save(self, folder: str | os.PathLike | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Path:
        """Write the gallery folder atomically under its writer lock (see `hfr.gallery.storage`); return its path.

        `folder` defaults to the folder the gallery was loaded from or last saved to. An
        existing `folder` is replaced only when it holds nothing but gallery files. Waits
        up to `lock_timeout` seconds for another writer's lock (then a GalleryError naming
        it). Saving back to the folder the gallery was loaded from is refused with a
        GalleryError when another writer has saved that folder since (nothing is lost:
        load again and repeat the change).
        """
        if folder is None:
            if self.folder is None:
                raise ArgumentError("save needs a folder: this gallery was neither loaded nor saved before")
            folder = self.folder
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        digest = ""
        with GalleryLock(folder, lock_timeout):
            current = read_meta_bytes(folder)
            self._check_unchanged(folder, current)
            on_disk = 0
            if current is not None:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    on_disk = int(json.loads(current).get("version", 0))
            version = max(self._version, on_disk) + 1
            meta = self._meta(version)

            store = self._vectors.vector_store

            def write(tmp: Path) -> None:
                nonlocal digest
                digest = write_files(
                    tmp,
                    self._vectors.cpu_index,
                    self._ids,
                    self._subjects,
                    self._modalities,
                    self._paths,
                    meta,
                    vectors=store,
                )

            folder = save_folder(folder, write, lock_timeout)
            if store is not None:
                self._reopen_vectors(folder)
        self.folder = folder
        self._version = version
        self._loaded = (os.path.realpath(folder), digest)
        log.info("saved gallery of %d vectors to %s (version %d)", len(self), folder, version)
        return folder

    def _reopen_vectors(self, folder: Path) -> None:
        """After a save (under the lock): read the exact vectors from the `vectors.npy` just written.

        The rows added in RAM move to the new memory map, and the previous file (deleted with the
        old folder) is no longer mapped, so its disk space is freed. If the file cannot be opened the
        store keeps what it holds (the same rows), with a logged warning.
        """
        try:
            self._vectors.attach_vectors(read_vectors(folder, self.dim, self._ids, self.rerank))
        except (GalleryError, OSError) as exc:
            log.warning("gallery %s: kept the vectors in memory; re-opening %s failed (%s)", folder, VECTORS_FILE, exc)

    @classmethod
    @contextlib.contextmanager
    def open_for_update(
        cls, folder: str | os.PathLike, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, use_gpu: bool | None = None
    ) -> Iterator[Gallery]:
        """Load a gallery under its writer lock, held until the block ends: `with ... as g: g.add(...); g.save()`.

        Another writer (process or thread) waits for the block to end, so changes made
        and saved inside it cannot be lost; waiting longer than `lock_timeout` seconds for
        another writer's lock is a GalleryError naming the folder and the holder. Changes
        not saved inside the block are discarded.
        """
        folder = Path(folder)
        if not folder.parent.is_dir():
            check_folder(folder)  # the usual "does not exist" error, before trying to create a lock file
        with GalleryLock(folder, lock_timeout):
            yield cls.load(folder, use_gpu)

    @classmethod
    def load(cls, folder: str | os.PathLike, use_gpu: bool | None = None) -> Gallery:
        """Read a gallery folder, checking its checksums, that the files agree, and that vectors have unit length.

        Raises GalleryError naming the folder and the file when one is missing, unreadable,
        corrupt or disagrees with the others; ArgumentError for `use_gpu=True` without a
        GPU. A folder that another writer replaces while it is read is read again. Removes
        the leftovers of interrupted saves beside the folder when no writer holds its lock.
        """
        folder = Path(folder)
        check_use_gpu(use_gpu)
        remove_leftovers_if_free(folder)
        for attempt in range(LOAD_ATTEMPTS):
            data = read_meta_bytes(folder)
            try:
                return cls._load_once(folder, use_gpu, data)
            except (GalleryError, OSError) as exc:
                if attempt == LOAD_ATTEMPTS - 1 or data is None or meta_digest(folder) == sha256_bytes(data):
                    if isinstance(exc, OSError):
                        raise GalleryError(
                            f"gallery folder {folder}: cannot read {exc.filename or 'a file'} "
                            f"({exc.strerror or exc}); check the folder's permissions, or rebuild the gallery"
                        ) from exc
                    raise
                log.info("gallery folder %s was saved by another writer while being read; reading it again", folder)
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_once(cls, folder: Path, use_gpu: bool | None, data: bytes | None) -> Gallery:
        check_folder(folder)
        if data is None:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} is missing; the folder is not a complete gallery")
        meta = read_meta(folder, data)
        verify_files(folder, meta)
        index_meta = meta["index"]
        kind = index_meta.get("kind")
        if kind not in INDEX_KINDS:
            raise folder_error(
                folder, META_FILE, f"has an unknown index kind {kind!r} (expected {', '.join(INDEX_KINDS)})"
            )
        try:
            params: dict[str, Any] = {
                "nlist": int(index_meta.get("nlist", 1024)),
                "nprobe": int(index_meta.get("nprobe", 16)),
                "train_points_per_list": int(index_meta.get("train_points_per_list", 256)),
                "pq_m": int(index_meta.get("pq_m", 32)),
                "opq": bool(index_meta.get("opq", False)),
                "hnsw_m": int(index_meta.get("hnsw_m", 32)),
                "ef_search": int(index_meta.get("ef_search", 64)),
                "rerank": int(index_meta.get("rerank", 0)),
            }
            gallery = cls(meta["dim"], meta["fingerprint"], kind, use_gpu=False, **params)
            tuning = meta.get("tuning")
            if tuning is not None and not isinstance(tuning, dict):
                raise ValueError(f"tuning must be an object, got {type(tuning).__name__}")
            gallery.tuning = tuning
            version = int(meta.get("version", 0))
        except (ArgumentError, KeyError, TypeError, ValueError) as exc:
            raise folder_error(folder, META_FILE, f"has invalid values ({exc})") from exc
        gallery.use_gpu = gpu_available() if use_gpu is None else bool(use_gpu)
        ids, subjects, modalities, paths = read_ids(folder)
        index = read_index(folder, kind, gallery.dim, meta["count"], ids)
        if len(ids) and ids[-1] >= meta["next_id"]:
            raise folder_error(folder, META_FILE, f"next_id {meta['next_id']} is not above the largest id {ids[-1]}")
        store = read_vectors(folder, gallery.dim, ids, gallery.rerank) if gallery.rerank else None
        check_unit_vectors(folder, index, vectors=store)
        gallery._vectors.attach(index, store)
        gallery.created = str(meta.get("created", gallery.created))
        gallery._next_id = int(meta["next_id"])
        gallery._version = version
        gallery._ids = ids
        gallery._subjects = subjects
        gallery._modalities = modalities
        gallery._paths = paths
        gallery._subject_counts = Counter(subjects.tolist())
        gallery.folder = folder
        gallery._loaded = (os.path.realpath(folder), sha256_bytes(data))
        return gallery
