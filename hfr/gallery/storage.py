"""The gallery folder format: three (or four) files written atomically as a whole, read back with checks.

A gallery on disk is a folder of three files (`REQUIRED_FILES`), and a fourth for a
re-ranked compressed gallery:

- `index.faiss`: `faiss.write_index` of the CPU index;
- `meta.json`: format, hfr version, dimension, recognizer fingerprint, count, the next
  id to hand out, the save `version` (1 for the first save, +1 per save) and a random
  `save_id`, creation and save times, index kind and its parameters, and `files`: the
  size and SHA-256 of `index.faiss`, `ids.csv` and (when present) `vectors.npy`;
- `ids.csv`: `id,subject,modality,path`, one row per vector, ordered by id;
- `vectors.npy`, only when `meta.json`'s `index` has `rerank` > 0 (an "ivfpq" index that
  re-scores its shortlist exactly, `hfr.gallery.index`): the normalised float32 vectors,
  shape (count, dim), C order, rows in ascending id order (the order of `ids.csv`). It is
  written by `hfr.gallery.vectors.VectorStore.write` in chunks and read with
  `np.load(..., mmap_mode="r")` (`read_vectors`), so a large gallery is never read into RAM
  as a whole. Galleries without re-ranking have no such file and no `rerank` key, exactly
  as before.

Ids are int64 from a counter stored in `meta.json`; they are never reused, even after
removes. `Gallery.load` checks that the files agree (count, dimension, the same ids,
the index kind, the vectors' shape and dtype) with the readers here, and raises a
GalleryError naming the folder and the file otherwise (a re-ranked gallery's missing or
misshapen `vectors.npy` included: rebuild it).

Integrity: `verify_files` recomputes the SHA-256 of `index.faiss`, `ids.csv` and
`vectors.npy` and compares them with `meta.json` ("corrupt (checksum mismatch); rebuild
with hfr gallery build"), so bytes overwritten inside a file whose size, counts and ids
still agree are caught; `check_unit_vectors` reads back stored vectors (those of the index,
and those of `vectors.npy`: all of them up to `UNIT_CHECK_ALL`, an evenly spread sample
beyond) and refuses any whose length is not 1, which also covers galleries saved before
checksums existed (those load with a logged note; their next save records the checksums).

Memory maps and saves: a loaded re-ranked gallery reads `vectors.npy` through a memory
map. Saving over that folder writes the new files into a temporary folder (reading the old
vectors through the map), swaps the folders and deletes the old one: on POSIX the mapped
file's inode stays readable until it is unmapped, so nothing reads a half-deleted file,
and `Gallery.save` then re-opens its store on the new `vectors.npy` (the old inode's space
is freed when the last map of it goes). Another process that loaded the folder before
keeps reading the old inode, a consistent snapshot, until it loads again.

One writer at a time: `GalleryLock(folder)` is an exclusive lock on the file
`.<name>.lock` beside the folder (`fcntl.flock` on POSIX; where `fcntl` is missing, the
file created with O_EXCL is the lock). It is reentrant within a thread, waits up to a
timeout for another holder, then raises a GalleryError naming the folder and the holder
(pid, host, command, since when, which the holder writes into the lock file). The file is
deleted on release; a file left by a killed process is not a lock under `flock` (the
kernel dropped it) and is reused. `save_folder` always takes the lock, so two saves never
interleave; `Gallery.open_for_update` holds it from load to save. Readers take no lock.

Crash safety of `save_folder(folder, write)`: the three files are written into a hidden
temporary sibling folder (`.<name>.tmp-<8 hex>`) and fsynced; then an existing gallery at
`folder` is renamed aside (`.<name>.old-<8 hex>`), the new folder is renamed into place,
the parent directory is fsynced and the old folder is deleted. Whenever the process
stops, `folder` holds either the complete previous gallery or the complete new one,
with one exception: a crash between the two renames leaves no `folder` but the complete
previous gallery in `.<name>.old-<8 hex>`; `check_folder` then says so and names the
folder to rename back. Leftovers of a killed save (`.<name>.tmp-*`, and `.<name>.old-*`
beside a complete gallery) are removed, with a logged warning, by the next save and by
the next load that can take the lock at once (`remove_leftovers`); nothing is removed
while another writer holds the lock, nor while `folder` is missing (the `.old-*` copy is
then the gallery to restore). `save_folder` only replaces a folder that holds nothing but
gallery files, never other data.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import faiss
import numpy as np

from hfr.errors import GalleryError
from hfr.gallery.index import COMPRESSED_KINDS, index_ids, index_kind, sample_vectors
from hfr.gallery.vectors import NPY_DTYPE, VectorStore

try:
    import fcntl as _fcntl

    fcntl: Any = _fcntl
except ImportError:  # pragma: no cover - Windows: the O_EXCL lock file below
    fcntl = None

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
META_FILE = "meta.json"
IDS_FILE = "ids.csv"
VECTORS_FILE = "vectors.npy"
REQUIRED_FILES: tuple[str, ...] = (INDEX_FILE, META_FILE, IDS_FILE)
"""The files every FAISS gallery folder holds."""
OPTIONAL_FILES: tuple[str, ...] = (VECTORS_FILE,)
"""Files a gallery folder holds for some index settings (`vectors.npy`: a re-ranked "ivfpq" index)."""
GALLERY_FILES: tuple[str, ...] = REQUIRED_FILES + OPTIONAL_FILES
"""Every file a FAISS gallery folder may hold: a save replaces a folder holding nothing else."""
CHECKSUMMED_FILES: tuple[str, ...] = (INDEX_FILE, IDS_FILE)
"""The files whose size and SHA-256 `meta.json` records (it cannot record its own); plus `vectors.npy`
when the gallery has it (`checksummed_files`)."""
IDS_HEADER: tuple[str, ...] = ("id", "subject", "modality", "path")
FORMAT_NAME = "hfr-gallery"
FORMAT_VERSION = 1
DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds a writer waits for another writer's lock before giving up."""
LOCK_POLL_S = 0.05
UNIT_CHECK_ALL = 4096
"""Galleries up to this size have every stored vector's length checked on load; larger ones a sample this big."""
UNIT_TOLERANCE = 1e-3
REBUILD = "rebuild with hfr gallery build"


def folder_error(folder: Path, name: str, why: str) -> GalleryError:
    """The GalleryError for file `name` of gallery `folder`: "gallery folder F: NAME WHY"."""
    return GalleryError(f"gallery folder {folder}: {name} {why}")


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of `data`, as hex."""
    return hashlib.sha256(data).hexdigest()


# -- the writer lock ----------------------------------------------------------------


def lock_path(folder: Path) -> Path:
    """The lock file of gallery `folder`: `.<name>.lock` beside it (a save swaps the folder itself)."""
    return folder.parent / f".{folder.name}.lock"


@dataclass
class _Held:
    pid: int
    thread: int
    depth: int
    fd: int


_HELD: dict[str, _Held] = {}
_HELD_MUTEX = threading.Lock()


class GalleryLock:
    """The exclusive writer lock of one gallery folder (see the module docstring).

    Use as a context manager (`with GalleryLock(folder, timeout): ...`) or with
    `acquire()` / `try_acquire()` and `release()`. Reentrant within the thread that holds
    it; another thread or process waits up to `timeout` seconds, then gets a GalleryError
    naming the folder and the holder. Failing to create the lock file (a read-only
    folder) is a GalleryError too.
    """

    def __init__(self, folder: str | os.PathLike, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """A lock of gallery `folder` (nothing is locked until `acquire`)."""
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self.timeout = float(timeout)
        self._key = os.path.join(os.path.realpath(self.path.parent), self.path.name)
        self._depth = 0

    def __enter__(self) -> GalleryLock:
        """Acquire (waiting up to the timeout)."""
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Release."""
        self.release()

    def acquire(self) -> None:
        """Take the lock, waiting up to `timeout` seconds for another holder; GalleryError after that."""
        deadline = time.monotonic() + max(0.0, self.timeout)
        while not self._try_once():
            if time.monotonic() >= deadline:
                raise self._busy_error()
            time.sleep(LOCK_POLL_S)

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; False when another thread or process holds it."""
        return self._try_once()

    def release(self) -> None:
        """Give the lock back (the last release of a reentrant holder deletes the lock file)."""
        if self._depth == 0:
            return
        self._depth -= 1
        with _HELD_MUTEX:
            held = _HELD.get(self._key)
            if held is None or held.pid != os.getpid():  # a forked child: the lock is its parent's
                return
            held.depth -= 1
            if held.depth > 0:
                return
            del _HELD[self._key]
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            finally:
                os.close(held.fd)

    def _try_once(self) -> bool:
        with _HELD_MUTEX:
            held = _HELD.get(self._key)
            if held is not None and held.pid != os.getpid():  # inherited through fork: not ours
                del _HELD[self._key]
                held = None
            if held is not None:
                if held.thread != threading.get_ident():
                    return False
                held.depth += 1
                self._depth += 1
                return True
            fd = self._os_lock()
            if fd is None:
                return False
            _HELD[self._key] = _Held(os.getpid(), threading.get_ident(), 1, fd)
            self._depth += 1
            return True

    def _os_lock(self) -> int | None:
        """The descriptor of the locked lock file, or None when another process holds it."""
        try:
            while True:
                if fcntl is None:
                    try:
                        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                    except FileExistsError:
                        return None
                    self._write_holder(fd)
                    return fd
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    return None
                except BaseException:
                    os.close(fd)
                    raise
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    self._write_holder(fd)
                    return fd
                os.close(fd)  # the holder released (and deleted) it meanwhile: lock the new file
        except OSError as exc:
            raise GalleryError(
                f"cannot lock gallery folder {self.folder}: creating {self.path} failed "
                f"({exc.strerror or exc}); a gallery can be written only where its parent folder is writable"
            ) from exc

    @staticmethod
    def _write_holder(fd: int) -> None:
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]
        text = f"pid {os.getpid()} on {socket.gethostname()} since {since}: {command}\n"
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, text.encode("utf-8", "replace"))
        except OSError:  # who holds it is a courtesy for the waiters' message
            pass

    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it ("unknown" when unreadable)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text or "unknown"

    def _busy_error(self) -> GalleryError:
        hint = (
            f"; if that process is no longer running, delete {self.path}"
            if fcntl is None
            else f" (lock file {self.path})"
        )
        return GalleryError(
            f"gallery folder {self.folder} is being written by another process "
            f"({self.holder()}); gave up after waiting {self.timeout:g} s{hint}: "
            f"run the command again when that writer has finished, or wait longer (--lock-timeout)"
        )


# -- leftovers of interrupted saves ---------------------------------------------------


def leftovers(folder: Path) -> list[Path]:
    """The `.<name>.tmp-*` and `.<name>.old-*` siblings of `folder` that interrupted saves left."""
    parent = folder.parent
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(tmp|old)-[0-9a-f]{{8}}")
    try:
        with os.scandir(parent) as entries:
            return sorted(parent / e.name for e in entries if pattern.fullmatch(e.name))
    except OSError:
        return []


def _is_complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in REQUIRED_FILES)


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the leftovers of interrupted saves of `folder`; the caller holds its lock.

    Nothing is deleted when `folder` is not a complete gallery but an `.old-*` copy exists:
    that copy is the previous gallery to rename back. Returns what was deleted (each
    logged as a warning).
    """
    found = leftovers(folder)
    if not found:
        return []
    if not _is_complete(folder) and any(".old-" in p.name for p in found):
        return []
    removed = []
    for path in found:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove %s, left by an interrupted save of gallery %s (%s)", path, folder, exc)
            continue
        log.warning("removed %s, left by an interrupted save of gallery %s", path, folder)
        removed.append(path)
    return removed


def remove_leftovers_if_free(folder: Path) -> list[Path]:
    """`remove_leftovers` when no other writer holds the lock now (readers' cleanup); else nothing."""
    if not leftovers(folder):
        return []
    lock = GalleryLock(folder, timeout=0)
    try:
        if not lock.try_acquire():
            log.info("gallery %s: another writer holds its lock; leaving the temporary folders beside it", folder)
            return []
    except GalleryError as exc:
        log.info("gallery %s: leftovers of an interrupted save stay (%s)", folder, exc)
        return []
    try:
        return remove_leftovers(folder)
    finally:
        lock.release()


# -- writing ------------------------------------------------------------------------


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


def write_files(
    folder: Path,
    index: Any,
    ids: np.ndarray,
    subjects: np.ndarray,
    modalities: np.ndarray,
    paths: np.ndarray,
    meta: dict[str, Any],
    vectors: VectorStore | None = None,
) -> str:
    """Write index.faiss, ids.csv, vectors.npy (when `vectors` is given) and meta.json into `folder`
    (a fresh temporary one), each fsynced.

    `vectors`, the exact vectors of a re-ranked index, are written in the order of `ids`
    (ascending); a store holding other ids than `ids` is a GalleryError. `meta` gets a
    `files` entry with the size and SHA-256 of each file but itself. Returns the SHA-256 of
    the meta.json written (the version token `Gallery` compares).
    """
    index_path = folder / INDEX_FILE
    try:
        faiss.write_index(index, str(index_path))
    except (RuntimeError, OSError) as exc:
        raise GalleryError(
            f"could not write {index_path.name} of the gallery ({exc}); the previous gallery, if any, is untouched"
        ) from exc
    _fsync_file(index_path)
    with open(folder / IDS_FILE, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(IDS_HEADER)
        writer.writerows(zip(ids.tolist(), subjects.tolist(), modalities.tolist(), paths.tolist()))
        handle.flush()
        os.fsync(handle.fileno())
    names = CHECKSUMMED_FILES
    if vectors is not None:
        vectors.write(folder / VECTORS_FILE, ids)
        names = (*names, VECTORS_FILE)
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)} for name in names}
    data = (json.dumps({**meta, "files": files}, indent=2) + "\n").encode("utf-8")
    with open(folder / META_FILE, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return sha256_bytes(data)


def save_folder(
    folder: str | os.PathLike, write: Callable[[Path], None], lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Path:
    """Make `folder` a gallery folder atomically: `write(tmp)` fills a temporary sibling, then swap.

    Holds the folder's `GalleryLock` (waiting up to `lock_timeout` seconds) and first
    removes leftovers of interrupted saves. An existing `folder` is replaced only when it
    holds nothing but gallery files (a GalleryError otherwise, and for a file in its
    place). On any failure the temporary folder is removed and the previous gallery, if
    any, is untouched. Returns the path.
    """
    folder = Path(folder)
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    with GalleryLock(folder, lock_timeout):
        remove_leftovers(folder)
        if folder.exists():
            if not folder.is_dir():
                raise GalleryError(f"cannot save the gallery to {folder}: it is a file, not a folder")
            others = sorted(p.name for p in folder.iterdir() if p.name not in GALLERY_FILES)
            if others:
                raise GalleryError(
                    f"cannot save the gallery to {folder}: the folder holds other "
                    f"files ({', '.join(others[:3])}); choose a new or gallery folder"
                )
        token = uuid.uuid4().hex[:8]
        tmp = parent / f".{folder.name}.tmp-{token}"
        old = parent / f".{folder.name}.old-{token}"
        try:
            tmp.mkdir()
            write(tmp)
            _fsync_dir(tmp)
            if folder.exists():
                os.rename(folder, old)
                os.rename(tmp, folder)
                _fsync_dir(parent)
                shutil.rmtree(old, ignore_errors=True)  # what stays is removed by the next save or load
            else:
                os.rename(tmp, folder)
                _fsync_dir(parent)
        except BaseException as exc:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not folder.exists():
                with contextlib.suppress(OSError):
                    os.rename(old, folder)
            if isinstance(exc, OSError):
                raise GalleryError(
                    f"cannot save gallery folder {folder}: {exc.strerror or exc} ({exc.filename or folder}); "
                    f"the previous gallery, if any, is unchanged: free some space or fix the permissions, "
                    f"then run the command again"
                ) from exc
            raise
    return folder


# -- reading ------------------------------------------------------------------------


def check_folder(folder: Path) -> None:
    """GalleryError unless `folder` exists and holds the three required files (names an interrupted save).

    A re-ranked gallery's `vectors.npy` is checked once `meta.json` is read (`verify_files`, `read_vectors`).
    """
    if not folder.is_dir():
        aside = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
        if aside:
            raise GalleryError(
                f"gallery folder {folder} is missing, but a save was interrupted "
                f"after moving the previous gallery aside to {aside[-1]}: rename "
                f"it back to {folder.name} to restore it"
            )
        raise GalleryError(
            f"gallery folder {folder} does not exist (build one with `hfr gallery build` or Gallery.save)"
        )
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise GalleryError(
                f"gallery folder {folder}: {name} is missing; the folder is not a complete gallery, rebuild it"
            )


def read_meta_bytes(folder: Path) -> bytes | None:
    """The raw bytes of `folder`'s meta.json, or None when there is none."""
    try:
        return (folder / META_FILE).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def meta_digest(folder: Path) -> str | None:
    """The SHA-256 of `folder`'s meta.json (a new value after every save), or None when there is none."""
    data = read_meta_bytes(folder)
    return None if data is None else sha256_bytes(data)


def parse_meta_json(folder: Path, data: bytes) -> Any:
    """The bytes of `folder`'s meta.json parsed as JSON; GalleryError naming the folder when they are not."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GalleryError(
            f"gallery folder {folder}: {META_FILE} is not valid JSON ({exc}); the file is corrupt, rebuild the gallery"
        ) from exc


def read_meta(folder: Path, data: bytes | None = None) -> dict[str, Any]:
    """meta.json of `folder` (or its bytes `data`), with its format, version and the typed keys checked."""
    meta = parse_meta_json(folder, (folder / META_FILE).read_bytes() if data is None else data)
    if isinstance(meta, dict) and meta.get("backend", "faiss") != "faiss":
        raise GalleryError(
            f"gallery folder {folder} is a {meta.get('backend')} gallery, not a FAISS folder: open it with "
            f"hfr.gallery.backends.open_gallery (the hfr gallery and search commands do)"
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise GalleryError(
            f'gallery folder {folder}: {META_FILE} is not an hfr gallery\'s meta.json (no "format": "{FORMAT_NAME}")'
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise GalleryError(
            f"gallery folder {folder}: {META_FILE} has format_version "
            f"{meta.get('format_version')!r}; this hfr reads version "
            f"{FORMAT_VERSION}: rebuild the gallery"
        )
    for key, types in (("dim", int), ("count", int), ("next_id", int), ("fingerprint", str), ("index", dict)):
        if not isinstance(meta.get(key), types) or isinstance(meta.get(key), bool):
            raise GalleryError(f"gallery folder {folder}: {META_FILE} lacks a valid {key!r} (got {meta.get(key)!r})")
    return meta


def meta_rerank(meta: dict[str, Any]) -> int:
    """The `rerank` of a gallery's meta.json `index` entry (0 when absent or not a positive integer)."""
    index = meta.get("index")
    value = index.get("rerank", 0) if isinstance(index, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def checksummed_files(meta: dict[str, Any]) -> tuple[str, ...]:
    """The files of a gallery whose size and SHA-256 its meta.json records: `CHECKSUMMED_FILES`, and
    `vectors.npy` when the gallery re-ranks (`meta_rerank` > 0)."""
    return (*CHECKSUMMED_FILES, VECTORS_FILE) if meta_rerank(meta) else CHECKSUMMED_FILES


def missing_vectors_error(folder: Path, rerank: int | None = None) -> GalleryError:
    """The GalleryError of a re-ranked gallery folder without its vectors.npy."""
    setting = f" (rerank {rerank})" if rerank else ""
    return folder_error(
        folder,
        VECTORS_FILE,
        f"is missing, but meta.json says the index re-ranks with exact vectors{setting}; "
        f"the folder is not a complete gallery, {REBUILD}",
    )


def verify_files(folder: Path, meta: dict[str, Any]) -> bool:
    """Check index.faiss, ids.csv and (re-ranked galleries) vectors.npy against the sizes and SHA-256
    sums in `meta`; False when it has none.

    A gallery saved before checksums existed has no `files` entry: it is logged (WARNING)
    and passes (its next save records them). A mismatch is a GalleryError naming the file,
    and so is a re-ranked gallery's missing vectors.npy.
    """
    if meta_rerank(meta) and not (folder / VECTORS_FILE).is_file():
        raise missing_vectors_error(folder, meta_rerank(meta))
    files = meta.get("files")
    if files is None:
        log.warning(
            "gallery folder %s has no checksums in %s (saved by an older hfr), so its files are not "
            "verified; its next save (hfr gallery add/remove, or Gallery.save) records them",
            folder,
            META_FILE,
        )
        return False
    for name in checksummed_files(meta):
        entry = files.get(name) if isinstance(files, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise folder_error(folder, META_FILE, f"lacks a valid checksum of {name}; the file is corrupt, {REBUILD}")
        size = (folder / name).stat().st_size
        expected = entry.get("bytes")
        if isinstance(expected, int) and size != expected:
            raise folder_error(
                folder, name, f"is corrupt (checksum mismatch: {size} bytes, meta.json records {expected}); {REBUILD}"
            )
        if sha256_file(folder / name) != entry["sha256"]:
            raise folder_error(folder, name, f"is corrupt (checksum mismatch); {REBUILD}")
    return True


def check_unit_vectors(
    folder: Path, index: Any, limit: int = UNIT_CHECK_ALL, vectors: VectorStore | None = None
) -> None:
    """GalleryError unless the stored vectors checked (all up to `limit`, else a spread sample) have length 1.

    Checks the vectors of `index` (not those of compressed kinds: their reconstructions are
    approximate by design) and, for a re-ranked gallery, its exact `vectors` (vectors.npy).
    """
    if vectors is not None:
        _check_lengths(folder, VECTORS_FILE, vectors.sample(limit))
    if index_kind(index) in COMPRESSED_KINDS:
        return  # product-quantised codes: reconstructions are approximate by design
    _check_lengths(folder, INDEX_FILE, sample_vectors(index, limit))


def _check_lengths(folder: Path, name: str, vectors: np.ndarray) -> None:
    if not len(vectors):
        return
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if bad.any():
        raise folder_error(
            folder,
            name,
            f"holds a vector of length {norms[bad][0]:.4g} where every stored vector has length 1; "
            f"the file is corrupt, {REBUILD}",
        )


def read_ids(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ids.csv of `folder` as (ids int64 ascending, subjects, modalities, paths object arrays)."""
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
                raise GalleryError(
                    f"gallery folder {folder}: {IDS_FILE} must start with the "
                    f"header {','.join(IDS_HEADER)}, got {header!r}"
                )
            for row in reader:
                line = reader.line_num
                if len(row) != len(IDS_HEADER):
                    raise GalleryError(
                        f"gallery folder {folder}: {IDS_FILE} row {line} has "
                        f"{len(row)} fields, expected {len(IDS_HEADER)}"
                    )
                try:
                    ids.append(int(row[0]))
                except ValueError as exc:
                    raise GalleryError(
                        f"gallery folder {folder}: {IDS_FILE} row {line} has a non-integer id {row[0]!r}"
                    ) from exc
                if not row[1]:
                    raise GalleryError(f"gallery folder {folder}: {IDS_FILE} row {line} has an empty subject")
                subjects.append(row[1])
                modalities.append(row[2])
                paths.append(row[3])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise GalleryError(
            f"gallery folder {folder}: {IDS_FILE} cannot be parsed ({exc}); the file is corrupt, rebuild the gallery"
        ) from exc
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


def read_index(folder: Path, kind: str, dim: int, count: int, ids: np.ndarray) -> Any:
    """index.faiss of `folder`, checked against meta.json (kind, dim, count) and ids.csv (`ids`)."""
    try:
        index = faiss.read_index(str(folder / INDEX_FILE))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise folder_error(
            folder, INDEX_FILE, f"cannot be read by FAISS ({first}); the file is corrupt, rebuild the gallery"
        ) from exc
    found = index_kind(index)
    if found != kind:
        what = found if found is not None else "no gallery kind"
        raise folder_error(
            folder,
            INDEX_FILE,
            f"holds a {type(index).__name__} ({what}), but meta.json says {kind!r}; the files do not belong together",
        )
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise folder_error(folder, INDEX_FILE, "does not use the inner-product metric")
    if index.d != dim:
        raise folder_error(folder, INDEX_FILE, f"has dimension {index.d} but meta.json says {dim}")
    if index.ntotal != count:
        raise folder_error(folder, INDEX_FILE, f"holds {index.ntotal} vectors but meta.json says {count}")
    if len(ids) != count:
        raise folder_error(folder, IDS_FILE, f"has {len(ids)} rows but meta.json says {count}")
    if not np.array_equal(np.sort(index_ids(index)), ids):
        raise folder_error(folder, IDS_FILE, "lists other ids than index.faiss holds")
    return index


def read_vectors(folder: Path, dim: int, ids: np.ndarray, rerank: int | None = None) -> VectorStore:
    """vectors.npy of a re-ranked gallery `folder`, memory-mapped read-only, as the `VectorStore` of `ids`.

    `ids` are the gallery's ids, ascending (ids.csv): the file must hold float32 rows of
    shape (len(ids), dim) in C order, one per id in that order. A missing file, one NumPy
    cannot read, or another shape or dtype is a GalleryError naming the folder and the file.
    `rerank` (meta.json's) only words the missing-file error.
    """
    path = folder / VECTORS_FILE
    if not path.is_file():
        raise missing_vectors_error(folder, rerank)
    try:
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise folder_error(
            folder, VECTORS_FILE, f"cannot be read as a NumPy array ({exc}); the file is corrupt, {REBUILD}"
        ) from exc
    want = (len(ids), int(dim))
    if not isinstance(rows, np.ndarray) or rows.dtype != NPY_DTYPE or rows.shape != want or not rows.flags.c_contiguous:
        what = f"{rows.dtype} array of shape {tuple(rows.shape)}" if isinstance(rows, np.ndarray) else "no array"
        raise folder_error(
            folder,
            VECTORS_FILE,
            f"holds a {what}, but the gallery's {want[0]} vectors of dimension {want[1]} need a little-endian "
            f"float32 array of shape {want} in C order; the files do not belong together, {REBUILD}",
        )
    return VectorStore(int(dim), ids, rows, source=path)
