"""Open a gallery folder of either backend: FAISS (`hfr.gallery.Gallery`) or Milvus (`MilvusGallery`).

A gallery folder's `meta.json` names its backend: no `"backend"` key (every gallery saved
before Milvus galleries existed) or `"faiss"` is a FAISS folder (`index.faiss`, `meta.json`,
`ids.csv`); `"milvus"` is a Milvus gallery (`hfr.gallery.milvus`). `open_gallery` and
`open_for_update` read that key and hand back the matching gallery, which offers the same
operations either way (`add`, `remove`, `search`, `search_subjects`, `info`, `entry`,
`contains_paths`, `ids`, `subjects`, `len`, `save`).

Differences that remain: a FAISS gallery is an in-memory copy whose changes reach the folder
on `save()`, while a Milvus gallery writes every change as it is made (`save()` only returns
the folder); `use_gpu` applies to FAISS only. A folder without `meta.json` (or none at all)
is treated as FAISS, so `Gallery.load` gives its usual errors (including the one naming an
interrupted save).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

from hfr.errors import ArgumentError, GalleryError
from hfr.gallery import Gallery
from hfr.gallery.milvus import BACKEND as MILVUS
from hfr.gallery.milvus import MilvusGallery
from hfr.gallery.storage import DEFAULT_LOCK_TIMEOUT, META_FILE, parse_meta_json, read_meta_bytes

__all__ = ["BACKENDS", "AnyGallery", "gallery_backend", "open_for_update", "open_gallery"]

#: The gallery backends, the default first.
BACKENDS: tuple[str, ...] = ("faiss", MILVUS)

AnyGallery: TypeAlias = Gallery | MilvusGallery
"""A gallery of either backend."""


def gallery_backend(folder: str | os.PathLike) -> str:
    """The backend of gallery `folder` as its meta.json names it: "faiss" (also without the key) or "milvus".

    A missing folder or meta.json counts as "faiss" (`Gallery.load` then says what is
    wrong); an unreadable meta.json or an unknown backend is a GalleryError naming the folder.
    """
    folder = Path(folder)
    data = read_meta_bytes(folder)
    if data is None:
        return "faiss"
    meta = parse_meta_json(folder, data)
    backend = meta.get("backend", "faiss") if isinstance(meta, dict) else "faiss"
    if backend not in BACKENDS:
        raise GalleryError(
            f"gallery folder {folder}: {META_FILE} names the backend {backend!r}; this hfr knows "
            f"{', '.join(BACKENDS)}: upgrade hfr or rebuild the gallery"
        )
    return str(backend)


def _check_use_gpu(folder: Path, use_gpu: bool | None) -> None:
    if use_gpu:
        raise ArgumentError(f"use_gpu=True: gallery {folder} is a Milvus gallery, which searches in Milvus, not FAISS")


def open_gallery(
    folder: str | os.PathLike, use_gpu: bool | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> AnyGallery:
    """The gallery of `folder`: `Gallery.load(folder, use_gpu)` or `MilvusGallery.open(folder, lock_timeout)`.

    `use_gpu` applies to FAISS galleries (True on a Milvus gallery is an ArgumentError);
    `lock_timeout` is how long a milvus-lite gallery's operations wait for another process.
    """
    folder = Path(folder)
    if gallery_backend(folder) == MILVUS:
        _check_use_gpu(folder, use_gpu)
        return MilvusGallery.open(folder, lock_timeout)
    return Gallery.load(folder, use_gpu=use_gpu)


@contextlib.contextmanager
def open_for_update(
    folder: str | os.PathLike, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, use_gpu: bool | None = None
) -> Iterator[AnyGallery]:
    """The gallery of `folder` under its writer lock until the block ends (`Gallery.open_for_update` or
    `MilvusGallery.open_for_update`): `with open_for_update(f) as g: g.add(...); g.save()` works on both.

    Another writer waits for the block (up to `lock_timeout` seconds, then a GalleryError naming
    the holder). A FAISS gallery's changes not saved inside the block are discarded; a Milvus
    gallery's are written as they are made.
    """
    folder = Path(folder)
    if gallery_backend(folder) == MILVUS:
        _check_use_gpu(folder, use_gpu)
        with MilvusGallery.open_for_update(folder, lock_timeout) as milvus:
            yield milvus
    else:
        with Gallery.open_for_update(folder, lock_timeout=lock_timeout, use_gpu=use_gpu) as gallery:
            yield gallery
