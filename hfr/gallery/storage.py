"""The gallery folder format: three files written atomically as a whole, read back with checks.

A gallery on disk is a folder of three files:

- `index.faiss`: `faiss.write_index` of the CPU index;
- `meta.json`: format, hfr version, dimension, recognizer fingerprint, count, the next
  id to hand out, creation and save times, index kind and its parameters;
- `ids.csv`: `id,subject,modality,path`, one row per vector, ordered by id.

Ids are int64 from a counter stored in `meta.json`; they are never reused, even after
removes. `Gallery.load` checks that the three files agree (count, dimension, the same ids,
the index kind) with the readers here, and raises a GalleryError naming the folder and the
file otherwise. There is no lock: one writer at a time is the caller's business.

Crash safety of `save_folder(folder, write)`: the three files are written into a hidden
temporary sibling folder (`.<name>.tmp-<random>`) and fsynced; then an existing gallery at
`folder` is renamed aside (`.<name>.old-<random>`), the new folder is renamed into place,
the parent directory is fsynced and the old folder is deleted. Whenever the process
stops, `folder` holds either the complete previous gallery or the complete new one,
with one exception: a crash between the two renames leaves no `folder` but the complete
previous gallery in `.<name>.old-<random>`; `check_folder` then says so and names the
folder to rename back. A leftover `.<name>.tmp-*` folder is an incomplete save and can be
deleted. `save_folder` only replaces a folder that holds nothing but gallery files, never
other data.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from hfr.errors import GalleryError
from hfr.gallery.index import index_ids

INDEX_FILE = "index.faiss"
META_FILE = "meta.json"
IDS_FILE = "ids.csv"
GALLERY_FILES: tuple[str, ...] = (INDEX_FILE, META_FILE, IDS_FILE)
IDS_HEADER: tuple[str, ...] = ("id", "subject", "modality", "path")
FORMAT_NAME = "hfr-gallery"
FORMAT_VERSION = 1


def folder_error(folder: Path, name: str, why: str) -> GalleryError:
    """The GalleryError for file `name` of gallery `folder`: "gallery folder F: NAME WHY"."""
    return GalleryError(f"gallery folder {folder}: {name} {why}")


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
) -> None:
    """Write index.faiss, ids.csv and meta.json into `folder` (a fresh temporary one), each fsynced."""
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
    with open(folder / META_FILE, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def save_folder(folder: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Make `folder` a gallery folder atomically: `write(tmp)` fills a temporary sibling, then swap.

    An existing `folder` is replaced only when it holds nothing but gallery files (a
    GalleryError otherwise, and for a file in its place). On any failure the temporary
    folder is removed and the previous gallery, if any, is untouched. Returns the path.
    """
    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise GalleryError(f"cannot save the gallery to {folder}: it is a file, not a folder")
        others = sorted(p.name for p in folder.iterdir() if p.name not in GALLERY_FILES)
        if others:
            raise GalleryError(
                f"cannot save the gallery to {folder}: the folder holds other "
                f"files ({', '.join(others[:3])}); choose a new or gallery folder"
            )
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = parent / f".{folder.name}.tmp-{token}"
    tmp.mkdir()
    try:
        write(tmp)
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
    return folder


# -- reading ------------------------------------------------------------------------


def check_folder(folder: Path) -> None:
    """GalleryError unless `folder` exists and holds the three files (names an interrupted save)."""
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
    for name in GALLERY_FILES:
        if not (folder / name).is_file():
            raise GalleryError(
                f"gallery folder {folder}: {name} is missing; the folder is not a complete gallery, rebuild it"
            )


def read_meta(folder: Path) -> dict[str, Any]:
    """meta.json of `folder`, with its format, version and the typed keys checked."""
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GalleryError(
            f"gallery folder {folder}: {META_FILE} is not valid JSON ({exc}); the file is corrupt, rebuild the gallery"
        ) from exc
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
    if kind == "flat" and not isinstance(index, faiss.IndexIDMap2):
        raise folder_error(
            folder,
            INDEX_FILE,
            f"holds a {type(index).__name__}, but meta.json says 'flat' (IndexIDMap2 over IndexFlatIP)",
        )
    if kind == "ivf" and not isinstance(index, faiss.IndexIVFFlat):
        raise folder_error(
            folder, INDEX_FILE, f"holds a {type(index).__name__}, but meta.json says 'ivf' (IndexIVFFlat)"
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
