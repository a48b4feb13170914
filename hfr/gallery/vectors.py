"""The full-precision vectors of a re-ranked compressed gallery (`FaissIndex(kind="ivfpq", rerank=R)`).

`VectorStore` holds float32 rows under sorted int64 ids, in two parts:

- a read-only *base*: the rows of a gallery's `vectors.npy`, memory-mapped
  (`np.load(path, mmap_mode="r")`, so a 10M x 256 gallery does not read 10 GB into RAM; the
  operating system pages in the rows a search touches), or any array in RAM;
- an in-RAM *extra* segment: rows added since (a build, or `Gallery.add` after a load).

Removing an id marks its base row dead (the file is never written to) or drops its extra
row. `rows(ids)` gathers rows in any order from both parts. `write(path, ids)` streams the
live rows in a given (ascending) id order into a new `.npy` file, a chunk at a time, and
fsyncs it; after a save the gallery re-opens the store on the file it wrote
(`hfr.gallery.storage.read_vectors`), so the extra rows move to the new memory map and the
old file's disk space is freed once nothing maps it.

This module knows nothing of folders or checksums (`hfr.gallery.storage` does), nor of
searching (`hfr.gallery.index.FaissIndex` gathers the shortlist's rows here).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hfr.errors import GalleryError

WRITE_CHUNK_BYTES = 64 << 20
"""Bytes of rows gathered and written at once by `VectorStore.write` (bounds the memory a save needs)."""
NPY_DTYPE = np.dtype("<f4")
"""The dtype of the rows, and of `vectors.npy` (little-endian float32)."""


def npy_header_bytes(count: int, dim: int) -> int:
    """The size of the `.npy` header of a (count, dim) float32 array in C order."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, _header(count, dim))
    return buffer.tell()


def _header(count: int, dim: int) -> dict[str, object]:
    return {"descr": np.lib.format.dtype_to_descr(NPY_DTYPE), "fortran_order": False, "shape": (int(count), int(dim))}


class VectorStore:
    """Float32 rows under unique int64 ids: a read-only (often memory-mapped) base plus rows added in RAM.

    `VectorStore(dim)` is empty; `VectorStore(dim, ids, rows, source)` starts from `rows`
    (an (N, dim) float32 array, e.g. a memory map of `source`) under `ids` (ascending,
    unique). Ids handed to `add`, `remove` and `rows` are int64; -1 (a missing search
    result) is never stored, so callers filter it out first. See the module docstring.
    """

    def __init__(
        self, dim: int, ids: np.ndarray | None = None, rows: np.ndarray | None = None, source: Path | None = None
    ) -> None:
        """A store of `dim`-dimensional rows; `ids` and `rows` (both or neither) are its read-only base."""
        self.dim = int(dim)
        if (ids is None) != (rows is None):
            raise ValueError("VectorStore needs both ids and rows for its base, or neither")
        base_ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        base = np.zeros((0, self.dim), np.float32) if rows is None else rows
        if base.ndim != 2 or base.shape != (len(base_ids), self.dim) or base.dtype != NPY_DTYPE:
            raise ValueError(
                f"VectorStore base rows must be float32 ({len(base_ids)}, {self.dim}), "
                f"got {base.dtype} {tuple(base.shape)}"
            )
        if len(base_ids) > 1 and not (np.diff(base_ids) > 0).all():
            raise ValueError("VectorStore base ids must be ascending and unique")
        self._base_ids = base_ids
        self._base = base
        self._alive = np.ones(len(base_ids), dtype=bool)
        self._extra_ids = np.zeros(0, np.int64)
        self._extra = np.zeros((0, self.dim), np.float32)
        self.source = source
        """The file the base rows are memory-mapped from (None when they are in RAM)."""

    # -- state ----------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of live rows."""
        return int(self._alive.sum()) + len(self._extra_ids)

    @property
    def mapped(self) -> bool:
        """Whether the base rows are a memory map of a file (`source`)."""
        return isinstance(self._base, np.memmap)

    @property
    def base(self) -> np.ndarray:
        """The read-only base rows (a `np.memmap` for a loaded gallery), dead rows included; do not modify."""
        return self._base

    def ids(self) -> np.ndarray:
        """Every live id, ascending."""
        return np.sort(np.concatenate([self._base_ids[self._alive], self._extra_ids]))

    def ram_bytes(self) -> int:
        """Bytes held in RAM: the rows added since the base was opened, the ids and the live-row mask
        (memory-mapped base rows are not counted: the operating system pages them in and out)."""
        mapped = 0 if self.mapped else int(self._base.nbytes)
        return mapped + int(self._extra.nbytes + self._extra_ids.nbytes + self._base_ids.nbytes + self._alive.nbytes)

    def file_bytes(self) -> int:
        """Bytes of the `.npy` file `write` makes of the live rows: header + 4 * dim per row."""
        return npy_header_bytes(len(self), self.dim) + len(self) * self.dim * NPY_DTYPE.itemsize

    # -- add / remove / gather ------------------------------------------------------

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each id: (in the live base?, its base position, in the extra rows?, its extra position)."""
        in_base = np.zeros(len(ids), dtype=bool)
        base_pos = np.zeros(len(ids), dtype=np.int64)
        if len(self._base_ids):
            base_pos = np.minimum(np.searchsorted(self._base_ids, ids), len(self._base_ids) - 1)
            in_base = (self._base_ids[base_pos] == ids) & self._alive[base_pos]
        in_extra = np.zeros(len(ids), dtype=bool)
        extra_pos = np.zeros(len(ids), dtype=np.int64)
        if len(self._extra_ids):
            extra_pos = np.minimum(np.searchsorted(self._extra_ids, ids), len(self._extra_ids) - 1)
            in_extra = self._extra_ids[extra_pos] == ids
        return in_base, base_pos, in_extra, extra_pos

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """One bool per id: whether the store holds a live row under it."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        in_base, _, in_extra, _ = self._locate(ids)
        return in_base | in_extra

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add float32 rows under new ids (unique, not held already; any order); kept in RAM until a save."""
        vectors = np.asarray(vectors, dtype=NPY_DTYPE)
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise ValueError(f"VectorStore.add needs ({len(ids)}, {self.dim}) rows, got {tuple(vectors.shape)}")
        if not len(ids):
            return
        if len(np.unique(ids)) != len(ids) or self.contains(ids).any():
            raise GalleryError(
                "the gallery's vector store already holds an id being added: the gallery is inconsistent; rebuild it"
            )
        all_ids = np.concatenate([self._extra_ids, ids])
        all_rows = np.concatenate([self._extra, vectors])
        if len(all_ids) > 1 and not (np.diff(all_ids) > 0).all():
            order = np.argsort(all_ids, kind="stable")
            all_ids, all_rows = all_ids[order], all_rows[order]
        self._extra_ids = all_ids
        self._extra = np.ascontiguousarray(all_rows)

    def remove(self, ids: np.ndarray) -> int:
        """Remove the rows of these ids (ids not held are ignored); return how many went."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        in_base, base_pos, in_extra, _ = self._locate(ids)
        self._alive[base_pos[in_base]] = False
        if in_extra.any():
            keep = ~np.isin(self._extra_ids, ids[in_extra])
            self._extra_ids = self._extra_ids[keep]
            self._extra = self._extra[keep]
        return int(in_base.sum() + in_extra.sum())

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids` (any order, repeats allowed) as a new (len(ids), dim) float32 array.

        Rows of the memory-mapped base are read in file order. An id the store does not hold
        (including -1) is a GalleryError: the caller filters missing search results first.
        """
        ids = np.asarray(ids, dtype=np.int64).ravel()
        out = np.empty((len(ids), self.dim), dtype=NPY_DTYPE)
        in_base, base_pos, in_extra, extra_pos = self._locate(ids)
        missing = ~(in_base | in_extra)
        if missing.any():
            raise GalleryError(
                f"the gallery's vector store has no row for id {int(ids[missing][0])}, which the index returned: "
                f"the gallery is inconsistent; rebuild it"
            )
        if in_base.any():
            where = np.flatnonzero(in_base)
            positions = base_pos[where]
            order = np.argsort(positions, kind="stable")  # read the file front to back
            out[where[order]] = self._base[positions[order]]
        if in_extra.any():
            where = np.flatnonzero(in_extra)
            out[where] = self._extra[extra_pos[where]]
        return out

    def sample(self, limit: int) -> np.ndarray:
        """All live rows when there are at most `limit`, else about `limit` spread evenly over the ids."""
        ids = self.ids()
        if len(ids) > limit:
            ids = ids[np.unique(np.linspace(0, len(ids) - 1, limit).astype(np.int64))]
        return self.rows(ids)

    def chunks(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        """The rows of `ids` in their order, as successive arrays of at most `WRITE_CHUNK_BYTES`."""
        step = max(1, WRITE_CHUNK_BYTES // (self.dim * NPY_DTYPE.itemsize))
        for start in range(0, len(ids), step):
            yield self.rows(ids[start : start + step])

    # -- files ----------------------------------------------------------------------

    def write(self, path: Path, ids: np.ndarray | None = None) -> None:
        """Write the live rows as a (N, dim) float32 `.npy` file at `path`, in the order of `ids`, and fsync it.

        `ids` (default: every live id, ascending) must be exactly the live ids: a missing id
        is a GalleryError, and so is a count other than `len(self)` (the gallery's metadata and
        this store disagree). Rows are gathered `WRITE_CHUNK_BYTES` at a time.
        """
        ids = self.ids() if ids is None else np.asarray(ids, dtype=np.int64).ravel()
        if len(ids) != len(self):
            raise GalleryError(
                f"the gallery lists {len(ids)} vectors but its vector store holds {len(self)}: "
                f"the gallery is inconsistent; rebuild it"
            )
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, _header(len(ids), self.dim))
            for chunk in self.chunks(ids):
                handle.write(chunk.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
