"""LFW, Labeled Faces in the Wild (`lfw`): every image in the tree, the 10-fold pairs.txt.

ROOT holds `pairs.txt` and the images as `<Name>/<Name>_NNNN.jpg`, either directly in
ROOT or in one of `lfw/`, `lfw-deepfunneled/`, `lfw_funneled/`, `lfw-funneled/`.
`pairs.txt` starts with `<folds> <pairs per fold>` (`10 300`), then per fold that many
matched lines `<name> <i> <j>` and as many mismatched lines `<name1> <i> <name2> <j>`
(a first line with one number is read as one fold). Every image in the tree is indexed;
yaw is empty. Splits follow the pairs (see `hfr.data.adapters`).
"""

from __future__ import annotations

import re
from pathlib import Path

from hfr.data.adapters.base import (
    IndexResult,
    Pair,
    check_fold,
    read_lines,
    rel_path,
    split_pairs_subjects,
    walk_images,
)
from hfr.data.manifest import Manifest, Record, make_record
from hfr.errors import FormatError

NAME = "lfw"
_LFW_NAME = re.compile(r"^(.+)_(\d+)\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)
_LFW_IMAGE_DIRS: tuple[str, ...] = ("", "lfw", "lfw-deepfunneled", "lfw_funneled", "lfw-funneled")


def index_lfw(
    root: Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index an LFW tree and its pairs.txt (see the module docstring); `protocol` is not used."""
    pairs_path = root / "pairs.txt"
    lines = read_lines(pairs_path)
    numbered = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise FormatError(
            f"{pairs_path}: empty file; expected a first line '<folds> <pairs per fold>' (10 300) followed by the pairs"
        )
    head_no, head = numbered[0]
    try:
        counts = [int(v) for v in head]
    except ValueError:
        raise FormatError(
            f"{pairs_path} line {head_no}: expected '<folds> <pairs per fold>' (e.g. '10 300'), got {' '.join(head)!r}"
        ) from None
    if len(counts) == 2:
        n_folds, per_fold = counts
    elif len(counts) == 1:
        n_folds, per_fold = 1, counts[0]
    else:
        raise FormatError(
            f"{pairs_path} line {head_no}: expected '<folds> <pairs per fold>', got {len(counts)} numbers"
        )
    if n_folds < 1 or per_fold < 1:
        raise FormatError(f"{pairs_path} line {head_no}: fold and pair counts must be positive")
    body = numbered[1:]
    expected = n_folds * per_fold * 2
    if len(body) != expected:
        raise FormatError(
            f"{pairs_path}: the header promises {n_folds} folds x {per_fold} matched + "
            f"{per_fold} mismatched pairs = {expected} lines, found {len(body)}"
        )
    first_name = ""
    parsed: list[tuple[int, int, bool, str, int, str, int]] = []
    for pos, (line_no, fields) in enumerate(body):
        k = pos // (2 * per_fold) + 1
        same = pos % (2 * per_fold) < per_fold
        want = 3 if same else 4
        if len(fields) != want:
            kind = "matched '<name> <i> <j>'" if same else "mismatched '<name1> <i> <name2> <j>'"
            raise FormatError(
                f"{pairs_path} line {line_no}: fold {k} expects a {kind} line here, got "
                f"{len(fields)} fields; fix the line"
            )
        try:
            if same:
                a_name, a_num, b_name, b_num = fields[0], int(fields[1]), fields[0], int(fields[2])
            else:
                a_name, a_num, b_name, b_num = fields[0], int(fields[1]), fields[2], int(fields[3])
        except ValueError:
            raise FormatError(
                f"{pairs_path} line {line_no}: image numbers must be integers, got {' '.join(fields)!r}; fix the line"
            ) from None
        first_name = first_name or a_name
        parsed.append((line_no, k, same, a_name, a_num, b_name, b_num))
    image_root = None
    for sub in _LFW_IMAGE_DIRS:
        candidate = root / sub if sub else root
        if (candidate / first_name).is_dir():
            image_root = candidate
            break
    if image_root is None:
        shown = ", ".join(str(root / s) if s else str(root) for s in _LFW_IMAGE_DIRS)
        raise FormatError(
            f"{root}: LFW image folders not found (no {first_name}/ in any of {shown}); unpack lfw.tgz into ROOT"
        )
    by_key: dict[tuple[str, int], str] = {}
    records: list[Record] = []
    for path in walk_images(image_root):
        m = _LFW_NAME.match(path.name)
        if not m or m.group(1) != path.parent.name:
            continue
        rel = rel_path(path, root)
        by_key[(m.group(1), int(m.group(2)))] = rel
        records.append(make_record(rel, m.group(1), "vis", None, ""))
    if not records:
        raise FormatError(f"{image_root}: no LFW images found; expected <Name>/<Name>_NNNN.jpg files")
    pairs: list[Pair] = []
    dropped: list[tuple[str, str]] = []
    for line_no, k, same, a_name, a_num, b_name, b_num in parsed:
        missing = [f"{n}/{n}_{i:04d}.jpg" for n, i in ((a_name, a_num), (b_name, b_num)) if (n, i) not in by_key]
        if missing:
            if skip_missing:
                dropped.append((f"pairs.txt line {line_no}", f"image {missing[0]} not found under {image_root}"))
                continue
            raise FormatError(
                f"{pairs_path} line {line_no}: image {image_root / missing[0]} not found; "
                f"restore it or re-run with --skip-missing to drop such pairs"
            )
        pairs.append(Pair("lfw", k, by_key[(a_name, a_num)], by_key[(b_name, b_num)], same))
    check_fold("lfw", fold, range(1, n_folds + 1), "")
    records = split_pairs_subjects(records, pairs, fold)
    return IndexResult(Manifest(records, root), dropped, {"pairs": pairs, "folds": list(range(1, n_folds + 1))})
