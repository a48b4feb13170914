"""Turning what a user points `hfr search` / `hfr embed` at into a manifest of images.

A target is an image file, a folder (every image below it, sorted; the subject is the
image's parent folder name, so `<root>/<subject>/*.jpg` trees keep their labels), or a
manifest (`manifest.csv`, any `.csv`, or a folder holding `manifest.csv`).
"""

from __future__ import annotations

import os
from pathlib import Path

from hfr.data.imageio import IMAGE_SUFFIXES
from hfr.data.manifest import MANIFEST_NAME, Manifest, make_record
from hfr.errors import DataError


def load_targets(target: str | os.PathLike) -> Manifest:
    """A manifest of the images `target` names (see the module docstring); errors name it."""
    p = Path(target)
    if (p.is_file() and p.suffix.lower() == ".csv") or (p.is_dir() and (p / MANIFEST_NAME).is_file()):
        manifest = Manifest.read(p)
        if len(manifest) == 0:
            raise DataError(
                f"{manifest.source}: the manifest has a header and no rows: no images to use; add "
                f"rows or give another manifest"
            )
        return manifest
    if p.is_file():
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{p}: not an image ({', '.join(IMAGE_SUFFIXES)}) nor a manifest .csv")
        return Manifest([make_record(str(p.resolve()), p.parent.name or "unknown", "vis")], p.parent)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        records = [
            make_record(f.relative_to(p).as_posix(), f.parent.name if f.parent != p else "unknown", "vis")
            for f in files
        ]
        return Manifest(records, p)
    raise DataError(f"{p}: no such image, folder or manifest")
