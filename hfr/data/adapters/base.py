"""What every dataset adapter shares: the result types, the table entry type, file helpers.

The format modules (`casia_nirvis2`, `multipie`, `cfp`, `lfw`, `folder`) each provide one
indexer with the `Indexer` signature; `hfr.data.adapters` lists them in its format table.
The helpers here read protocol files, walk image trees and set splits from pairs, raising
FormatError (files) or ArgumentError (an impossible fold) with messages that name the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hfr.data.manifest import Manifest, Record
from hfr.errors import ArgumentError, FormatError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
PAIRS_COLUMNS: tuple[str, ...] = ("protocol", "fold", "path_a", "path_b", "same")
DROPPED_COLUMNS: tuple[str, ...] = ("what", "why")


@dataclass(frozen=True)
class Pair:
    """One verification pair: two image paths (as in the manifest), same identity or not."""

    protocol: str
    fold: int
    path_a: str
    path_b: str
    same: bool


@dataclass
class IndexResult:
    """What `index_dataset` found: the manifest, what `skip_missing` dropped, protocol data.

    `protocol` is format-specific: `{"pairs": [Pair, ...], "folds": [1, ...]}` for cfp and lfw,
    `{"folds": [...], "lists": {name: rows}}` for casia-nirvis2, `{"split": name}` for
    multipie, `{}` for folder.
    """

    manifest: Manifest
    dropped: list[tuple[str, str]] = field(default_factory=list)
    protocol: dict = field(default_factory=dict)


class Indexer(Protocol):
    """The signature of a format's indexer: ROOT (checked, absolute) and the options.

    An indexer ignores options its format does not take (`index_dataset` has already refused
    them, using the format table's `takes_fold` and `protocols`).
    """

    def __call__(self, root: Path, *, fold: int | None, skip_missing: bool, protocol: str | None) -> IndexResult:
        """Index the dataset at `root`; FormatError for files that do not follow the format."""
        ...


@dataclass(frozen=True)
class DatasetFormat:
    """One row of the format table: the format's name, its indexer and the options it takes.

    `takes_fold`: whether `fold` selects one of the format's folds; `protocols`: the split
    protocols it knows, the first being the default (empty when it has none).
    """

    name: str
    index: Indexer
    takes_fold: bool = False
    protocols: tuple[str, ...] = ()


def rel_path(path: Path, root: Path) -> str:
    """`path` relative to `root` as a POSIX string (the manifest's path form)."""
    return path.relative_to(root).as_posix()


def is_image(path: Path) -> bool:
    """Whether `path` has an image suffix (IMAGE_EXTENSIONS, any letter case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def protocol_lines(path: Path) -> Iterator[tuple[int, str, str, list[str]]]:
    """(line number, "<file> line N", stripped text, whitespace fields) of each non-blank line."""
    for line_no, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if text:
            yield line_no, f"{path} line {line_no}", text, text.split()


def read_lines(path: Path) -> list[str]:
    """A protocol file's lines (without line ends); FormatError when missing or not text."""
    if not path.is_file():
        raise FormatError(
            f"{path}: protocol file not found; check ROOT and that the dataset's protocol files are unpacked in place"
        )
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        try:
            return path.read_text(encoding="latin-1").splitlines()
        except OSError as exc:
            raise FormatError(f"{path}: cannot read protocol file ({exc})") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read protocol file ({exc})") from None


def walk_images(root: Path) -> list[Path]:
    """Every image file under `root`, sorted; symlinked folders are followed, each real folder once."""
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if is_image(p):
                found.append(p)
    return found


def check_root(root: str | os.PathLike) -> Path:
    """ROOT as an absolute, resolved folder; FormatError when it is not a folder."""
    p = Path(root).expanduser()
    if not p.is_dir():
        raise FormatError(f"{p}: dataset folder not found; pass the folder the dataset was unpacked to")
    return p.resolve()


def split_pairs_subjects(records: list[Record], pairs: list[Pair], fold: int | None) -> list[Record]:
    """Set `split` by subject from the pairs: test subjects of fold `fold` (or of any fold)."""
    subject_of = {r.path: r.subject for r in records}
    test: set[str] = set()
    for pair in pairs:
        if fold is None or pair.fold == fold:
            test.add(subject_of[pair.path_a])
            test.add(subject_of[pair.path_b])
    other = "" if fold is None else "train"
    return [
        Record(r.path, r.subject, r.modality, r.yaw, "test" if r.subject in test else other, r.extra) for r in records
    ]


def check_fold(fmt: str, fold: int | None, folds: Iterable[int], label: str) -> None:
    """ArgumentError unless `fold` is None or one of `folds` (fold 0 is shown as `label`)."""
    if fold is None:
        return
    available = sorted(set(folds))
    if fold not in available:
        shown = ", ".join(label if f == 0 else str(f) for f in available)
        raise ArgumentError(f"--fold {fold} is not a fold of this {fmt} dataset; available folds: {shown}")
