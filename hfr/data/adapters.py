"""Indexers for real face datasets: CASIA NIR-VIS 2.0, Multi-PIE, CFP, LFW and plain folders.

`index_dataset(fmt, root)` reads a dataset where it lies (nothing is copied or decoded) and
returns an `IndexResult`: a `Manifest` whose paths point at the original files, the rows
dropped by `skip_missing`, and format-specific protocol data (for example the verification
pairs of CFP and LFW). `write_index(result, out)` writes it to disk. `hfr data index` is the
command-line front end.

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

Formats
-------
`casia-nirvis2`
    ROOT holds `protocols/` and the session folders. The release layout is
    `s1/NIR/00001/001.bmp`, `s1/VIS/00001/001.jpg` (sessions s1..s4, subject folders of five
    digits), and the lists `protocols/{vis,nir}_{train,gallery,probe}_{k}.txt` (k = 1..10 for
    View 2, `dev` for View 1) name one image per line as a Windows relative path
    (`s1\\NIR\\00001\\001.bmp`); an optional second field (a label) is accepted and ignored.
    The subject is the folder that holds the image, the modality comes from the list name,
    `session` from the first path component. When a listed file is missing, a match that
    differs only in letter case or in the image suffix (`.JPG`, a `.png` re-save) is accepted.
    Without `fold`, every listed image appears once, with one column per fold found
    (`fold_dev`, `fold_1` .. `fold_10`) holding its role in that fold (`train`, `gallery`,
    `probe` or empty) and an empty `split`. With `fold=k` (0 = View 1 `dev` lists), only the
    images of fold k's lists are kept and `split` is their role.
`multipie`
    Any nesting under ROOT (the release uses
    `data/session01/multiview/001/01/05_1/001_01_01_051_07.png`); only files named
    `SSS_SS_RR_CCC_II.<png|jpg|jpeg|bmp>` (subject, session, recording, camera, illumination)
    are indexed. Columns `session`, `recording`, `camera` (`05_1`), `illumination`,
    `expression` (from session and recording: s1 neutral/smile; s2 neutral/surprise/squint;
    s3 neutral/smile/disgust; s4 neutral/neutral/scream). Yaw from the camera:
    11_0 -90, 12_0 -75, 09_0 -60, 08_0 -45, 13_0 -30, 14_0 -15, 05_1 0, 05_0 +15, 04_1 +30,
    19_0 +45, 20_0 +60, 01_0 +75, 24_0 +90. Sign convention: negative yaw is the side of
    camera 11_0 (the cameras bob.db.multipie calls "left profile"), positive the side of
    camera 24_0 ("right profile"); hfr uses the sign only as a consistent pose label. The two
    elevated cameras 08_1 and 19_1 (and any unknown camera) get an empty yaw.
    `protocol="setting2"` (default) sets `split` by subject as in the Setting 2 of DR-GAN
    (Tran et al.): subjects 001..200 `train`, 201..346 `test`; `protocol="none"` leaves
    `split` empty. The evaluation protocol, not the index, selects expressions and lights.
`cfp`
    ROOT holds `Data/Images/<id>/{frontal,profile}/NN.jpg` and `Protocol/`:
    `Pair_list_F.txt` and `Pair_list_P.txt` (`<index> <path>` per line, the path relative to
    `Protocol/`, e.g. `../Data/Images/001/frontal/01.jpg`) and
    `Split/{FF,FP}/01..10/{same,diff}.txt` (`<i>,<j>` per line, 1-based indices; FF pairs
    index the frontal list twice, FP pairs a frontal then a profile image). The manifest holds
    the listed images; subject is the `<id>` folder, column `pose` is `frontal`/`profile`,
    yaw is 0 for frontal images (nominal) and empty for profiles (their side is not given).
`lfw`
    ROOT holds `pairs.txt` and the images as `<Name>/<Name>_NNNN.jpg`, either directly in
    ROOT or in one of `lfw/`, `lfw-deepfunneled/`, `lfw_funneled/`, `lfw-funneled/`.
    `pairs.txt` starts with `<folds> <pairs per fold>` (`10 300`), then per fold that many
    matched lines `<name> <i> <j>` and as many mismatched lines `<name1> <i> <name2> <j>`
    (a first line with one number is read as one fold). Every image in the tree is indexed;
    yaw is empty.
`folder`
    `ROOT/<subject>/*.{png,jpg,jpeg,bmp}` or `ROOT/<subject>/<modality>/*.{...}` where the
    modality folder is `vis`, `nir`, `sketch` or `thermal` in any letter case; images
    directly in a subject folder are `vis`. Split is `train`, yaw empty.

Splits of the pair formats: without `fold`, subjects that appear in any pair are `test` and
the others have an empty split; with `fold=k`, subjects in fold k's pairs are `test` and all
others `train` (the folds of CFP and LFW are identity-disjoint). The pairs sidecar always
holds every fold.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from hfr.data.manifest import MANIFEST_NAME, Manifest, Record, make_record
from hfr.errors import FormatError, OptionError
from hfr.fileio import atomic_write_text

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("casia-nirvis2", "multipie", "cfp", "lfw", "folder")
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
PAIRS_COLUMNS: tuple[str, ...] = ("protocol", "fold", "path_a", "path_b", "same")
DROPPED_COLUMNS: tuple[str, ...] = ("what", "why")

MULTIPIE_YAW: dict[str, float] = {
    "110": -90.0, "120": -75.0, "090": -60.0, "080": -45.0, "130": -30.0, "140": -15.0,
    "051": 0.0, "050": 15.0, "041": 30.0, "190": 45.0, "200": 60.0, "010": 75.0, "240": 90.0,
}
MULTIPIE_EXPRESSION: dict[tuple[str, str], str] = {
    ("01", "01"): "neutral", ("01", "02"): "smile",
    ("02", "01"): "neutral", ("02", "02"): "surprise", ("02", "03"): "squint",
    ("03", "01"): "neutral", ("03", "02"): "smile", ("03", "03"): "disgust",
    ("04", "01"): "neutral", ("04", "02"): "neutral", ("04", "03"): "scream",
}
MULTIPIE_PROTOCOLS: tuple[str, ...] = ("setting2", "none")
MULTIPIE_SETTING2_TRAIN_MAX = 200
MULTIPIE_SETTING2_TEST_MAX = 346
_MULTIPIE_NAME = re.compile(r"^(\d{3})_(\d{2})_(\d{2})_(\d{3})_(\d{2})\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)
_CASIA_LIST = re.compile(r"^(vis|nir)_(train|gallery|probe)_(dev|[1-9]\d*)\.txt$", re.IGNORECASE)
_LFW_NAME = re.compile(r"^(.+)_(\d+)\.(png|jpg|jpeg|bmp)$", re.IGNORECASE)
_LFW_IMAGE_DIRS: tuple[str, ...] = ("", "lfw", "lfw-deepfunneled", "lfw_funneled", "lfw-funneled")
_FOLDER_MODALITIES: tuple[str, ...] = ("vis", "nir", "sketch", "thermal")


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


# ---------------------------------------------------------------------- helpers
def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _protocol_lines(path: Path) -> Iterator[tuple[int, str, str, list[str]]]:
    """(line number, "<file> line N", stripped text, whitespace fields) of each non-blank line."""
    for line_no, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        if text:
            yield line_no, f"{path} line {line_no}", text, text.split()


def _read_lines(path: Path) -> list[str]:
    """A protocol file's lines (without line ends); FormatError when missing or not text."""
    if not path.is_file():
        raise FormatError(f"{path}: protocol file not found; check ROOT and that the dataset's "
                          f"protocol files are unpacked in place")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        try:
            return path.read_text(encoding="latin-1").splitlines()
        except OSError as exc:
            raise FormatError(f"{path}: cannot read protocol file ({exc})") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read protocol file ({exc})") from None


def _walk_images(root: Path) -> list[Path]:
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
            if _is_image(p):
                found.append(p)
    return found


class _FileFinder:
    """Finds a listed file under ROOT, tolerating letter case and image-suffix differences."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listing: dict[Path, list[str]] = {}
        self._found: dict[tuple[str, ...], Path | None] = {}

    def _entries(self, folder: Path) -> list[str]:
        if folder not in self._listing:
            try:
                self._listing[folder] = os.listdir(folder)
            except OSError:
                self._listing[folder] = []
        return self._listing[folder]

    def find(self, parts: Iterable[str]) -> Path | None:
        """The existing file that `parts` (relative components) names, or None."""
        key = tuple(p for p in parts if p not in ("", "."))
        if key not in self._found:
            self._found[key] = self._search(list(key))
        return self._found[key]

    def _search(self, parts: list[str]) -> Path | None:
        exact = self.root.joinpath(*parts)
        if exact.is_file():
            return exact
        folder = self.root
        for comp in parts[:-1]:
            if (folder / comp).is_dir():
                folder = folder / comp
                continue
            matches = [e for e in self._entries(folder)
                       if e.lower() == comp.lower() and (folder / e).is_dir()]
            if len(matches) != 1:
                return None
            folder = folder / matches[0]
        name = parts[-1]
        if (folder / name).is_file():
            return folder / name
        stem = PurePosixPath(name).stem.lower()
        matches = [e for e in self._entries(folder)
                   if PurePosixPath(e).stem.lower() == stem and _is_image(Path(e))
                   and (folder / e).is_file()]
        return folder / matches[0] if len(matches) == 1 else None


def _check_root(root: str | os.PathLike) -> Path:
    p = Path(root).expanduser()
    if not p.is_dir():
        raise FormatError(f"{p}: dataset folder not found; pass the folder the dataset was unpacked to")
    return p.resolve()


def _split_pairs_subjects(records: list[Record], pairs: list[Pair], fold: int | None) -> list[Record]:
    """Set `split` by subject from the pairs: test subjects of fold `fold` (or of any fold)."""
    subject_of = {r.path: r.subject for r in records}
    test: set[str] = set()
    for pair in pairs:
        if fold is None or pair.fold == fold:
            test.add(subject_of[pair.path_a])
            test.add(subject_of[pair.path_b])
    other = "" if fold is None else "train"
    return [Record(r.path, r.subject, r.modality, r.yaw, "test" if r.subject in test else other, r.extra)
            for r in records]


def _check_fold(fmt: str, fold: int | None, folds: Iterable[int], label: str) -> None:
    if fold is None:
        return
    available = sorted(set(folds))
    if fold not in available:
        shown = ", ".join(label if f == 0 else str(f) for f in available)
        raise OptionError(f"--fold {fold} is not a fold of this {fmt} dataset; available folds: {shown}")


# ---------------------------------------------------------------------- casia-nirvis2
def _index_casia(root: Path, fold: int | None, skip_missing: bool) -> IndexResult:
    proto = root / "protocols"
    if not proto.is_dir():
        proto = next((d for d in sorted(root.iterdir()) if d.name.lower() == "protocols" and d.is_dir()),
                     proto)
    if not proto.is_dir():
        raise FormatError(f"{proto}: protocol folder not found; ROOT must be the CASIA NIR-VIS 2.0 "
                          f"folder that holds protocols/ and s1..s4/")
    lists: dict[int, dict[tuple[str, str], Path]] = {}
    for entry in sorted(proto.iterdir()):
        m = _CASIA_LIST.match(entry.name)
        if not m or not entry.is_file():
            continue
        modality, role, k = m.group(1).lower(), m.group(2).lower(), m.group(3).lower()
        k_num = 0 if k == "dev" else int(k)
        lists.setdefault(k_num, {})[(modality, role)] = entry
    if not lists:
        raise FormatError(f"{proto}: no protocol lists found; expected files such as vis_gallery_1.txt "
                          f"and nir_probe_1.txt ({{vis,nir}}_{{train,gallery,probe}}_{{1..10,dev}}.txt)")
    _check_fold("casia-nirvis2", fold, lists, "0 (dev)")
    wanted = sorted(lists) if fold is None else [fold]
    for k in wanted:
        for need in (("vis", "gallery"), ("nir", "probe")):
            if need not in lists[k]:
                name = f"{need[0]}_{need[1]}_{'dev' if k == 0 else k}.txt"
                raise FormatError(f"{proto / name}: protocol file not found; fold "
                                  f"{'dev' if k == 0 else k} needs its gallery and probe lists")
    finder = _FileFinder(root)
    rows: dict[str, dict] = {}
    order: list[str] = []
    roles: dict[str, dict[int, str]] = {}
    dropped: list[tuple[str, str]] = []
    list_rows: dict[str, int] = {}
    for k in wanted:
        for (modality, role), list_path in sorted(lists[k].items()):
            count = 0
            for line_no, where, text, fields in _protocol_lines(list_path):
                if len(fields) > 2:
                    raise FormatError(f"{where}: expected an image path (and at most one label), got "
                                      f"{len(fields)} fields {text!r}; fix the line")
                parts = [p for p in PureWindowsPath(fields[0].replace("/", "\\")).parts
                         if p not in ("\\", "")]
                if len(parts) < 2 or not _is_image(Path(parts[-1])):
                    raise FormatError(f"{where}: {fields[0]!r} is not a relative image path of the form "
                                      f"s1\\NIR\\00001\\001.bmp; fix the line")
                found = finder.find(parts)
                if found is None:
                    what = f"{list_path.name} line {line_no}: {fields[0]}"
                    if skip_missing:
                        dropped.append((what, f"file {root.joinpath(*parts)} not found"))
                        continue
                    raise FormatError(f"{where}: image {root.joinpath(*parts)} not found; restore it or "
                                      f"re-run with --skip-missing to drop such lines")
                rel = _rel(found, root)
                if rel not in rows:
                    rows[rel] = {"subject": parts[-2], "modality": modality,
                                 "session": parts[0] if len(parts) > 2 else ""}
                    order.append(rel)
                    roles[rel] = {}
                elif rows[rel]["modality"] != modality:
                    raise FormatError(f"{where}: {fields[0]} is listed as {modality} here but as "
                                      f"{rows[rel]['modality']} in another list; fix the lists")
                previous = roles[rel].get(k)
                if previous is not None and previous != role:
                    raise FormatError(f"{where}: {fields[0]} is both {previous} and {role} in fold "
                                      f"{'dev' if k == 0 else k}; fix the lists")
                roles[rel][k] = role
                count += 1
            list_rows[list_path.name] = count
    if not order:
        raise FormatError(f"{proto}: the protocol lists name no existing image; expected lines such as "
                          f"s1\\NIR\\00001\\001.bmp relative to {root}")
    records = []
    for rel in order:
        info = rows[rel]
        if fold is None:
            extra = {"session": info["session"]}
            for k in wanted:
                extra[f"fold_{'dev' if k == 0 else k}"] = roles[rel].get(k, "")
            records.append(make_record(rel, info["subject"], info["modality"], None, "", **extra))
        else:
            records.append(make_record(rel, info["subject"], info["modality"], None, roles[rel][fold],
                                       session=info["session"]))
    folds = ["dev" if k == 0 else str(k) for k in wanted]
    return IndexResult(Manifest(records, root), dropped, {"folds": folds, "lists": list_rows})


# ---------------------------------------------------------------------- multipie
def _index_multipie(root: Path, protocol: str) -> IndexResult:
    if protocol not in MULTIPIE_PROTOCOLS:
        raise OptionError(f"unknown Multi-PIE split protocol {protocol!r}; use one of "
                          f"{', '.join(MULTIPIE_PROTOCOLS)}")
    records = []
    unknown_cameras: set[str] = set()
    for path in _walk_images(root):
        m = _MULTIPIE_NAME.match(path.name)
        if not m:
            continue
        subject, session, recording, camera, light = m.group(1, 2, 3, 4, 5)
        yaw = MULTIPIE_YAW.get(camera)
        if yaw is None and camera not in ("081", "191"):
            unknown_cameras.add(camera)
        split = ""
        if protocol == "setting2":
            sid = int(subject)
            if 1 <= sid <= MULTIPIE_SETTING2_TRAIN_MAX:
                split = "train"
            elif sid <= MULTIPIE_SETTING2_TEST_MAX:
                split = "test"
        records.append(make_record(
            _rel(path, root), subject, "vis", yaw, split, session=session, recording=recording,
            camera=f"{camera[:2]}_{camera[2]}", illumination=light,
            expression=MULTIPIE_EXPRESSION.get((session, recording), "")))
    if unknown_cameras:
        logger.warning("Multi-PIE: unknown camera code(s) %s; their yaw is left empty",
                       ", ".join(sorted(unknown_cameras)))
    if not records:
        raise FormatError(f"{root}: no Multi-PIE images found; expected files named "
                          f"SSS_SS_RR_CCC_II.png (e.g. 001_01_01_051_07.png) anywhere under ROOT")
    return IndexResult(Manifest(records, root), [], {"split": protocol})


# ---------------------------------------------------------------------- cfp
def _read_cfp_list(list_path: Path, root: Path, pose: str, skip_missing: bool,
                   dropped: list[tuple[str, str]]) -> tuple[dict[int, str], set[int], list[Record]]:
    """Index -> manifest path for one Pair_list file, the indices dropped, and its records."""
    index: dict[int, str] = {}
    missing: set[int] = set()
    records: list[Record] = []
    base = list_path.parent
    for line_no, where, text, fields in _protocol_lines(list_path):
        if len(fields) != 2:
            raise FormatError(f"{where}: expected '<index> <image path>', got {len(fields)} fields "
                              f"{text!r}; fix the line")
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
            raise FormatError(f"{where}: image {target} not found; restore it or re-run with "
                              f"--skip-missing to drop it and the pairs that use it")
        try:
            rel = _rel(target, root)
        except ValueError:
            raise FormatError(f"{where}: {fields[1]} points outside ROOT {root}; ROOT must be the "
                              f"CFP folder holding Data/ and Protocol/") from None
        parts = PurePosixPath(rel).parts
        subject = parts[-3] if len(parts) >= 3 else parts[0]
        index[idx] = rel
        records.append(make_record(rel, subject, "vis", 0.0 if pose == "frontal" else None, "", pose=pose))
    return index, missing, records


def _read_index_pairs(path: Path) -> list[tuple[int, int, int]]:
    """(line number, i, j) for each `i,j` line of a CFP split file."""
    out = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 2:
            raise FormatError(f"{path} line {line_no}: expected '<i>,<j>', got {text!r}; fix the line")
        try:
            out.append((line_no, int(fields[0]), int(fields[1])))
        except ValueError:
            raise FormatError(f"{path} line {line_no}: indices must be integers, got {text!r}; "
                              f"fix the line") from None
    return out


def _index_cfp(root: Path, fold: int | None, skip_missing: bool) -> IndexResult:
    proto = root / "Protocol"
    if not proto.is_dir():
        raise FormatError(f"{proto}: protocol folder not found; ROOT must be the CFP folder that holds "
                          f"Data/Images/ and Protocol/")
    dropped: list[tuple[str, str]] = []
    frontal, f_missing, f_records = _read_cfp_list(proto / "Pair_list_F.txt", root, "frontal",
                                                   skip_missing, dropped)
    profile, p_missing, p_records = _read_cfp_list(proto / "Pair_list_P.txt", root, "profile",
                                                   skip_missing, dropped)
    pairs: list[Pair] = []
    folds: set[int] = set()
    for name, second, second_missing, second_list in (("FF", frontal, f_missing, "Pair_list_F.txt"),
                                                      ("FP", profile, p_missing, "Pair_list_P.txt")):
        split_dir = proto / "Split" / name
        if not split_dir.is_dir():
            raise FormatError(f"{split_dir}: protocol folder not found; CFP needs Protocol/Split/FF and "
                              f"Protocol/Split/FP with folds 01..10")
        fold_dirs = sorted((d for d in split_dir.iterdir() if d.is_dir() and d.name.isdigit()),
                           key=lambda d: int(d.name))
        if not fold_dirs:
            raise FormatError(f"{split_dir}: no fold folders found; expected 01..10 each holding "
                              f"same.txt and diff.txt")
        for fold_dir in fold_dirs:
            k = int(fold_dir.name)
            folds.add(k)
            for fname, same in (("same.txt", True), ("diff.txt", False)):
                path = fold_dir / fname
                for line_no, i, j in _read_index_pairs(path):
                    lost = False
                    for idx, table, gone, list_name in ((i, frontal, f_missing, "Pair_list_F.txt"),
                                                        (j, second, second_missing, second_list)):
                        if idx in gone:
                            lost = True
                        elif idx not in table:
                            raise FormatError(f"{path} line {line_no}: index {idx} is not in "
                                              f"{proto / list_name}; fix the line or the list")
                    if lost:
                        dropped.append((f"{name}/{fold_dir.name}/{fname} line {line_no}: {i},{j}",
                                        "uses an image that was dropped"))
                    else:
                        pairs.append(Pair(name, k, frontal[i], second[j], same))
    records = f_records + p_records
    if not records:
        raise FormatError(f"{proto}: Pair_list_F.txt and Pair_list_P.txt name no existing image; expected "
                          f"lines such as '1 ../Data/Images/001/frontal/01.jpg'")
    _check_fold("cfp", fold, folds, "")
    records = _split_pairs_subjects(records, pairs, fold)
    return IndexResult(Manifest(records, root), dropped, {"pairs": pairs, "folds": sorted(folds)})


# ---------------------------------------------------------------------- lfw
def _index_lfw(root: Path, fold: int | None, skip_missing: bool) -> IndexResult:
    pairs_path = root / "pairs.txt"
    lines = _read_lines(pairs_path)
    numbered = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise FormatError(f"{pairs_path}: empty file; expected a first line '<folds> <pairs per fold>' "
                          f"(10 300) followed by the pairs")
    head_no, head = numbered[0]
    try:
        counts = [int(v) for v in head]
    except ValueError:
        raise FormatError(f"{pairs_path} line {head_no}: expected '<folds> <pairs per fold>' (e.g. "
                          f"'10 300'), got {' '.join(head)!r}") from None
    if len(counts) == 2:
        n_folds, per_fold = counts
    elif len(counts) == 1:
        n_folds, per_fold = 1, counts[0]
    else:
        raise FormatError(f"{pairs_path} line {head_no}: expected '<folds> <pairs per fold>', got "
                          f"{len(counts)} numbers")
    if n_folds < 1 or per_fold < 1:
        raise FormatError(f"{pairs_path} line {head_no}: fold and pair counts must be positive")
    body = numbered[1:]
    expected = n_folds * per_fold * 2
    if len(body) != expected:
        raise FormatError(f"{pairs_path}: the header promises {n_folds} folds x {per_fold} matched + "
                          f"{per_fold} mismatched pairs = {expected} lines, found {len(body)}")
    first_name = None
    parsed: list[tuple[int, int, bool, str, int, str, int]] = []
    for pos, (line_no, fields) in enumerate(body):
        k = pos // (2 * per_fold) + 1
        same = pos % (2 * per_fold) < per_fold
        want = 3 if same else 4
        if len(fields) != want:
            kind = "matched '<name> <i> <j>'" if same else "mismatched '<name1> <i> <name2> <j>'"
            raise FormatError(f"{pairs_path} line {line_no}: fold {k} expects a {kind} line here, got "
                              f"{len(fields)} fields; fix the line")
        try:
            if same:
                a_name, a_num, b_name, b_num = fields[0], int(fields[1]), fields[0], int(fields[2])
            else:
                a_name, a_num, b_name, b_num = fields[0], int(fields[1]), fields[2], int(fields[3])
        except ValueError:
            raise FormatError(f"{pairs_path} line {line_no}: image numbers must be integers, got "
                              f"{' '.join(fields)!r}; fix the line") from None
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
        raise FormatError(f"{root}: LFW image folders not found (no {first_name}/ in any of {shown}); "
                          f"unpack lfw.tgz into ROOT")
    by_key: dict[tuple[str, int], str] = {}
    records: list[Record] = []
    for path in _walk_images(image_root):
        m = _LFW_NAME.match(path.name)
        if not m or m.group(1) != path.parent.name:
            continue
        rel = _rel(path, root)
        by_key[(m.group(1), int(m.group(2)))] = rel
        records.append(make_record(rel, m.group(1), "vis", None, ""))
    if not records:
        raise FormatError(f"{image_root}: no LFW images found; expected <Name>/<Name>_NNNN.jpg files")
    pairs: list[Pair] = []
    dropped: list[tuple[str, str]] = []
    for line_no, k, same, a_name, a_num, b_name, b_num in parsed:
        missing = [f"{n}/{n}_{i:04d}.jpg" for n, i in ((a_name, a_num), (b_name, b_num))
                   if (n, i) not in by_key]
        if missing:
            if skip_missing:
                dropped.append((f"pairs.txt line {line_no}",
                                f"image {missing[0]} not found under {image_root}"))
                continue
            raise FormatError(f"{pairs_path} line {line_no}: image {image_root / missing[0]} not found; "
                              f"restore it or re-run with --skip-missing to drop such pairs")
        pairs.append(Pair("lfw", k, by_key[(a_name, a_num)], by_key[(b_name, b_num)], same))
    _check_fold("lfw", fold, range(1, n_folds + 1), "")
    records = _split_pairs_subjects(records, pairs, fold)
    return IndexResult(Manifest(records, root), dropped,
                       {"pairs": pairs, "folds": list(range(1, n_folds + 1))})


# ---------------------------------------------------------------------- folder
def _index_folder(root: Path) -> IndexResult:
    records = []
    for path in _walk_images(root):
        parts = path.relative_to(root).parts
        if len(parts) == 2:
            subject, modality = parts[0], "vis"
        elif len(parts) == 3 and parts[1].lower() in _FOLDER_MODALITIES:
            subject, modality = parts[0], parts[1].lower()
        elif len(parts) == 1:
            raise FormatError(f"{path}: image directly in ROOT; put each subject's images in "
                              f"ROOT/<subject>/ (or ROOT/<subject>/<modality>/)")
        else:
            raise FormatError(f"{path}: expected ROOT/<subject>/[<modality>/]<image> with modality one of "
                              f"{', '.join(_FOLDER_MODALITIES)}; {'/'.join(parts[1:-1])!r} is not a "
                              f"modality folder")
        records.append(make_record(_rel(path, root), subject, modality, None, "train"))
    if not records:
        raise FormatError(f"{root}: no images found; expected ROOT/<subject>/[<modality>/]*.png|jpg|jpeg|bmp")
    return IndexResult(Manifest(records, root), [], {})


# ---------------------------------------------------------------------- public API
def index_dataset(fmt: str, root: str | Path, *, fold: int | None = None,
                  skip_missing: bool = False, protocol: str | None = None) -> IndexResult:
    """Index the dataset at `root` in format `fmt` (one of FORMATS); see the module docstring.

    `fold` selects one fold of casia-nirvis2 (1..10, 0 for the View 1 dev lists), cfp or lfw
    (1..10). `skip_missing` drops protocol lines naming missing files and records them in
    `IndexResult.dropped` instead of failing. `protocol` is the Multi-PIE split
    (`setting2`, the default, or `none`). Raises OptionError for an unknown format or an
    impossible option, FormatError for files that do not follow the format.
    """
    if fmt not in FORMATS:
        raise OptionError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fold is not None and fmt not in ("casia-nirvis2", "cfp", "lfw"):
        raise OptionError(f"--fold applies to casia-nirvis2, cfp and lfw, not {fmt}; leave it out")
    if protocol is not None and fmt != "multipie":
        raise OptionError(f"a split protocol applies to multipie only, not {fmt}; leave it out")
    path = _check_root(root)
    if fmt == "casia-nirvis2":
        result = _index_casia(path, fold, skip_missing)
    elif fmt == "multipie":
        result = _index_multipie(path, protocol or "setting2")
    elif fmt == "cfp":
        result = _index_cfp(path, fold, skip_missing)
    elif fmt == "lfw":
        result = _index_lfw(path, fold, skip_missing)
    else:
        result = _index_folder(path)
    logger.info("indexed %d images of %d subjects (%s) in %s; %d dropped", len(result.manifest),
                len(result.manifest.subjects()), fmt, path, len(result.dropped))
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
            writer.writerow([pair.protocol, pair.fold,
                             mapping.get(pair.path_a, _rebase(pair.path_a, root, folder, inside)),
                             mapping.get(pair.path_b, _rebase(pair.path_b, root, folder, inside)),
                             1 if pair.same else 0])
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
    lines = _read_lines(p)
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
