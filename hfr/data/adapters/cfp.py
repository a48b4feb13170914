"""CFP, Celebrities in Frontal-Profile (`cfp`): frontal and profile images, FF and FP pairs.

ROOT holds `Data/Images/<id>/{frontal,profile}/NN.jpg` and `Protocol/`:
`Pair_list_F.txt` and `Pair_list_P.txt` (`<index> <path>` per line, the path relative to
`Protocol/`, e.g. `../Data/Images/001/frontal/01.jpg`) and
`Split/{FF,FP}/01..10/{same,diff}.txt` (`<i>,<j>` per line, 1-based indices; FF pairs
index the frontal list twice, FP pairs a frontal then a profile image). The manifest holds
the listed images; subject is the `<id>` folder, column `pose` is `frontal`/`profile`,
yaw is 0 for frontal images (nominal) and empty for profiles (their side is not given).
Splits follow the pairs (see `hfr.data.adapters`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from hfr.data.adapters.base import (
    IndexResult,
    Pair,
    check_fold,
    protocol_lines,
    read_lines,
    rel_path,
    split_pairs_subjects,
)
from hfr.data.manifest import Manifest, Record, make_record
from hfr.errors import FormatError

NAME = "cfp"


def _read_cfp_list(
    list_path: Path, root: Path, pose: str, skip_missing: bool, dropped: list[tuple[str, str]]
) -> tuple[dict[int, str], set[int], list[Record]]:
    """Index -> manifest path for one Pair_list file, the indices dropped, and its records."""
    index: dict[int, str] = {}
    missing: set[int] = set()
    records: list[Record] = []
    base = list_path.parent
    for line_no, where, text, fields in protocol_lines(list_path):
        if len(fields) != 2:
            raise FormatError(
                f"{where}: expected '<index> <image path>', got {len(fields)} fields {text!r}; fix the line"
            )
        try:
            idx = int(fields[0])
        except ValueError:
            raise FormatError(f"{where}: index {fields[0]!r} is not an integer; fix the line") from None
        if idx in index or idx in missing:
            raise FormatError(f"{where}: index {idx} appears twice; each image needs its own index")
        target = Path(os.path.normpath(base / fields[1].replace("\\", "/")))
        if not target.is_file():
            if skip_missing:
                dropped.append((f"{list_path.name} line {line_no}: {fields[1]}", f"file {target} not found"))
                missing.add(idx)
                continue
            raise FormatError(
                f"{where}: image {target} not found; restore it or re-run with "
                f"--skip-missing to drop it and the pairs that use it"
            )
        try:
            rel = rel_path(target, root)
        except ValueError:
            raise FormatError(
                f"{where}: {fields[1]} points outside ROOT {root}; ROOT must be the "
                f"CFP folder holding Data/ and Protocol/"
            ) from None
        parts = PurePosixPath(rel).parts
        subject = parts[-3] if len(parts) >= 3 else parts[0]
        index[idx] = rel
        records.append(make_record(rel, subject, "vis", 0.0 if pose == "frontal" else None, "", pose=pose))
    return index, missing, records


def _read_index_pairs(path: Path) -> list[tuple[int, int, int]]:
    """(line number, i, j) for each `i,j` line of a CFP split file."""
    out = []
    for line_no, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 2:
            raise FormatError(f"{path} line {line_no}: expected '<i>,<j>', got {text!r}; fix the line")
        try:
            out.append((line_no, int(fields[0]), int(fields[1])))
        except ValueError:
            raise FormatError(f"{path} line {line_no}: indices must be integers, got {text!r}; fix the line") from None
    return out


def index_cfp(
    root: Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index a CFP tree and its FF/FP pairs (see the module docstring); `protocol` is not used."""
    proto = root / "Protocol"
    if not proto.is_dir():
        raise FormatError(
            f"{proto}: protocol folder not found; ROOT must be the CFP folder that holds Data/Images/ and Protocol/"
        )
    dropped: list[tuple[str, str]] = []
    frontal, f_missing, f_records = _read_cfp_list(proto / "Pair_list_F.txt", root, "frontal", skip_missing, dropped)
    profile, p_missing, p_records = _read_cfp_list(proto / "Pair_list_P.txt", root, "profile", skip_missing, dropped)
    pairs: list[Pair] = []
    folds: set[int] = set()
    for name, second, second_missing, second_list in (
        ("FF", frontal, f_missing, "Pair_list_F.txt"),
        ("FP", profile, p_missing, "Pair_list_P.txt"),
    ):
        split_dir = proto / "Split" / name
        if not split_dir.is_dir():
            raise FormatError(
                f"{split_dir}: protocol folder not found; CFP needs Protocol/Split/FF and "
                f"Protocol/Split/FP with folds 01..10"
            )
        fold_dirs = sorted(
            (d for d in split_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name)
        )
        if not fold_dirs:
            raise FormatError(f"{split_dir}: no fold folders found; expected 01..10 each holding same.txt and diff.txt")
        for fold_dir in fold_dirs:
            k = int(fold_dir.name)
            folds.add(k)
            for fname, same in (("same.txt", True), ("diff.txt", False)):
                path = fold_dir / fname
                for line_no, i, j in _read_index_pairs(path):
                    lost = False
                    for idx, table, gone, list_name in (
                        (i, frontal, f_missing, "Pair_list_F.txt"),
                        (j, second, second_missing, second_list),
                    ):
                        if idx in gone:
                            lost = True
                        elif idx not in table:
                            raise FormatError(
                                f"{path} line {line_no}: index {idx} is not in "
                                f"{proto / list_name}; fix the line or the list"
                            )
                    if lost:
                        dropped.append(
                            (
                                f"{name}/{fold_dir.name}/{fname} line {line_no}: {i},{j}",
                                "uses an image that was dropped",
                            )
                        )
                    else:
                        pairs.append(Pair(name, k, frontal[i], second[j], same))
    records = f_records + p_records
    if not records:
        raise FormatError(
            f"{proto}: Pair_list_F.txt and Pair_list_P.txt name no existing image; expected "
            f"lines such as '1 ../Data/Images/001/frontal/01.jpg'"
        )
    check_fold("cfp", fold, folds, "")
    records = split_pairs_subjects(records, pairs, fold)
    return IndexResult(Manifest(records, root), dropped, {"pairs": pairs, "folds": sorted(folds)})
