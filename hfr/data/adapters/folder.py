"""Plain folders (`folder`): one folder per subject, optionally one per modality inside.

`ROOT/<subject>/*.{png,jpg,jpeg,bmp}` or `ROOT/<subject>/<modality>/*.{...}` where the
modality folder is `vis`, `nir`, `sketch` or `thermal` in any letter case; images
directly in a subject folder are `vis`. Split is `train`, yaw empty.
"""

from __future__ import annotations

from pathlib import Path

from hfr.data.adapters.base import IndexResult, rel_path, walk_images
from hfr.data.manifest import Manifest, make_record
from hfr.errors import FormatError

NAME = "folder"
_FOLDER_MODALITIES: tuple[str, ...] = ("vis", "nir", "sketch", "thermal")


def index_folder(
    root: Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index a plain subject-folder tree (see the module docstring); the options are not used."""
    records = []
    for path in walk_images(root):
        parts = path.relative_to(root).parts
        if len(parts) == 2:
            subject, modality = parts[0], "vis"
        elif len(parts) == 3 and parts[1].lower() in _FOLDER_MODALITIES:
            subject, modality = parts[0], parts[1].lower()
        elif len(parts) == 1:
            raise FormatError(
                f"{path}: image directly in ROOT; put each subject's images in "
                f"ROOT/<subject>/ (or ROOT/<subject>/<modality>/)"
            )
        else:
            raise FormatError(
                f"{path}: expected ROOT/<subject>/[<modality>/]<image> with modality one of "
                f"{', '.join(_FOLDER_MODALITIES)}; {'/'.join(parts[1:-1])!r} is not a "
                f"modality folder"
            )
        records.append(make_record(rel_path(path, root), subject, modality, None, "train"))
    if not records:
        raise FormatError(f"{root}: no images found; expected ROOT/<subject>/[<modality>/]*.png|jpg|jpeg|bmp")
    return IndexResult(Manifest(records, root), [], {})
