"""Indexers for real face datasets: CASIA NIR-VIS 2.0, Multi-PIE, CFP, LFW and plain folders.

`index_dataset(fmt, root)` reads a dataset where it lies (nothing is copied or decoded) and
returns an `IndexResult`: a `Manifest` whose paths point at the original files, the rows
dropped by `skip_missing`, and format-specific protocol data (for example the verification
pairs of CFP and LFW). `write_index(result, out)` writes it to disk. `hfr data index` is the
command-line front end.

Formats
-------
`FORMAT_TABLE` maps each format name to a `DatasetFormat` (its indexer and the options it
takes); each format lives in its own module, whose docstring describes the layout it reads:
`casia-nirvis2` (`casia_nirvis2.py`), `multipie` (`multipie.py`), `cfp` (`cfp.py`),
`lfw` (`lfw.py`) and `folder` (`folder.py`). The result types and the helpers the formats
share are in `base.py`. A new format is a module with an `Indexer` and a row in the table.

Paths
-----
In the returned manifest, paths are POSIX paths relative to ROOT and `manifest.root` is
ROOT (absolute). `write_index` keeps them relative, rebased onto the manifest's folder, when
the manifest is written inside ROOT (the dataset then stays movable as a whole); when it is
written elsewhere, every path is absolute. Pair sidecars use exactly the same path strings as
the manifest's `path` column, so pairs can be joined with manifest rows by path.

Files written by `write_index(result, "<dir>/<stem>.csv")`
---------------------------------------------------------
- `<stem>.csv`: the manifest (see `hfr.data.manifest`).
- `<stem>.pairs.csv` (cfp, lfw): one verification pair per row, header
  `protocol,fold,path_a,path_b,same`; `protocol` is `FF` or `FP` for CFP and `lfw` for LFW,
  `fold` is the 1-based fold number, `same` is 1 for a genuine pair and 0 for an impostor
  pair. Read it back with `read_pairs`.
- `<stem>.dropped.csv` (only when `skip_missing` dropped something): header `what,why`, one
  row per dropped protocol line or pair. A stale report from an earlier run is removed.

Splits of the pair formats: without `fold`, subjects that appear in any pair are `test` and
the others have an empty split; with `fold=k`, subjects in fold k's pairs are `test` and all
others `train` (the folds of CFP and LFW are identity-disjoint). The pairs sidecar always
holds every fold.

Errors: an unknown format or an option the format does not take is an ArgumentError;
files that do not follow the format are a FormatError naming the file (and line).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

from hfr.data.adapters.base import (
    DROPPED_COLUMNS,
    IMAGE_EXTENSIONS,
    PAIRS_COLUMNS,
    DatasetFormat,
    Indexer,
    IndexResult,
    Pair,
    check_root,
    read_lines,
)
from hfr.data.adapters.casia_nirvis2 import index_casia_nirvis2
from hfr.data.adapters.cfp import index_cfp
from hfr.data.adapters.folder import index_folder
from hfr.data.adapters.lfw import index_lfw
from hfr.data.adapters.multipie import MULTIPIE_EXPRESSION, MULTIPIE_PROTOCOLS, MULTIPIE_YAW, index_multipie
from hfr.data.manifest import MANIFEST_NAME, Manifest, Record
from hfr.errors import ArgumentError, FormatError
from hfr.fileio import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = [
    "DROPPED_COLUMNS",
    "FORMATS",
    "FORMAT_TABLE",
    "IMAGE_EXTENSIONS",
    "MULTIPIE_EXPRESSION",
    "MULTIPIE_PROTOCOLS",
    "MULTIPIE_YAW",
    "PAIRS_COLUMNS",
    "DatasetFormat",
    "IndexResult",
    "Indexer",
    "Pair",
    "index_dataset",
    "read_pairs",
    "sidecar_path",
    "write_index",
]

FORMAT_TABLE: dict[str, DatasetFormat] = {
    spec.name: spec
    for spec in (
        DatasetFormat("casia-nirvis2", index_casia_nirvis2, takes_fold=True),
        DatasetFormat("multipie", index_multipie, protocols=MULTIPIE_PROTOCOLS),
        DatasetFormat("cfp", index_cfp, takes_fold=True),
        DatasetFormat("lfw", index_lfw, takes_fold=True),
        DatasetFormat("folder", index_folder),
    )
}
"""Format name -> its indexer and options, in the order `hfr data index --format` lists them."""
FORMATS: tuple[str, ...] = tuple(FORMAT_TABLE)


def _names(names: list[str]) -> str:
    """`a, b and c` (or `a` alone)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def index_dataset(
    fmt: str, root: str | Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index the dataset at `root` in format `fmt` (one of FORMATS); see the module docstring.

    `fold` selects one fold of casia-nirvis2 (1..10, 0 for the View 1 dev lists), cfp or lfw
    (1..10). `skip_missing` drops protocol lines naming missing files and records them in
    `IndexResult.dropped` instead of failing. `protocol` is the Multi-PIE split
    (`setting2`, the default, or `none`). Raises ArgumentError for an unknown format or an
    impossible option, FormatError for files that do not follow the format.
    """
    spec = FORMAT_TABLE.get(fmt)
    if spec is None:
        raise ArgumentError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fold is not None and not spec.takes_fold:
        with_folds = [s.name for s in FORMAT_TABLE.values() if s.takes_fold]
        raise ArgumentError(f"--fold applies to {_names(with_folds)}, not {fmt}; leave it out")
    if protocol is not None and not spec.protocols:
        with_protocols = [s.name for s in FORMAT_TABLE.values() if s.protocols]
        raise ArgumentError(f"a split protocol applies to {_names(with_protocols)} only, not {fmt}; leave it out")
    path = check_root(root)
    result = spec.index(path, fold=fold, skip_missing=skip_missing, protocol=protocol)
    logger.info(
        "indexed %d images of %d subjects (%s) in %s; %d dropped",
        len(result.manifest),
        len(result.manifest.subjects()),
        fmt,
        path,
        len(result.dropped),
    )
    return result


def _manifest_target(out: str | Path) -> Path:
    p = Path(out).expanduser()
    if p.is_dir() or p.suffix == "":
        p = p / MANIFEST_NAME
    return p.resolve()


def _rebase(rel: str, root: Path, folder: Path, inside: bool) -> str:
    absolute = root / rel
    return Path(os.path.relpath(absolute, folder)).as_posix() if inside else absolute.as_posix()


def sidecar_path(manifest_path: str | Path, kind: str) -> Path:
    """The path of a file written beside a manifest: `<stem>.<kind>.csv` (kind: pairs, dropped)."""
    p = Path(manifest_path)
    return p.with_name(f"{p.stem}.{kind}.csv")


def write_index(result: IndexResult, out: str | Path) -> Path:
    """Write `result` to `out` (a .csv file, or a folder that gets manifest.csv) atomically.

    Also writes `<stem>.pairs.csv` when the protocol has pairs and `<stem>.dropped.csv`
    when rows were dropped (removing a stale one otherwise). Returns the manifest path.
    """
    target = _manifest_target(out)
    root = result.manifest.root.resolve()
    folder = target.parent
    inside = folder == root or root in folder.parents
    mapping: dict[str, str] = {}
    records = []
    for rec in result.manifest.records:
        new = _rebase(rec.path, root, folder, inside)
        mapping[rec.path] = new
        records.append(Record(new, rec.subject, rec.modality, rec.yaw, rec.split, rec.extra))
    Manifest(records, folder, result.manifest.columns).write(target)
    pairs: list[Pair] = result.protocol.get("pairs", []) if isinstance(result.protocol, dict) else []
    if pairs:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(PAIRS_COLUMNS)
        for pair in pairs:
            writer.writerow(
                [
                    pair.protocol,
                    pair.fold,
                    mapping.get(pair.path_a, _rebase(pair.path_a, root, folder, inside)),
                    mapping.get(pair.path_b, _rebase(pair.path_b, root, folder, inside)),
                    1 if pair.same else 0,
                ]
            )
        atomic_write_text(sidecar_path(target, "pairs"), buf.getvalue())
    report = sidecar_path(target, "dropped")
    if result.dropped:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(DROPPED_COLUMNS)
        writer.writerows(result.dropped)
        atomic_write_text(report, buf.getvalue())
    elif report.is_file():
        report.unlink()
    return target


def read_pairs(path: str | Path) -> list[Pair]:
    """Read a `<stem>.pairs.csv` sidecar; paths are returned as written (relative to its folder
    or absolute, like the manifest's). Raises FormatError naming the file and row when malformed."""
    p = Path(path)
    lines = read_lines(p)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(PAIRS_COLUMNS):
        raise FormatError(f"{p}: header must be {','.join(PAIRS_COLUMNS)}; re-run `hfr data index`")
    pairs = []
    for row_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(PAIRS_COLUMNS):
            raise FormatError(f"{p} row {row_no}: {len(row)} fields, expected {len(PAIRS_COLUMNS)}")
        try:
            fold = int(row[1])
        except ValueError:
            raise FormatError(f"{p} row {row_no}: fold {row[1]!r} is not an integer") from None
        if row[4] not in ("0", "1"):
            raise FormatError(f"{p} row {row_no}: same must be 0 or 1, got {row[4]!r}")
        pairs.append(Pair(row[0], fold, row[2], row[3], row[4] == "1"))
    return pairs
