"""CASIA NIR-VIS 2.0 (`casia-nirvis2`): the release's protocol lists over its session folders.

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
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from hfr.data.adapters.base import IndexResult, check_fold, is_image, protocol_lines, rel_path
from hfr.data.manifest import Manifest, make_record
from hfr.errors import FormatError

NAME = "casia-nirvis2"
_CASIA_LIST = re.compile(r"^(vis|nir)_(train|gallery|probe)_(dev|[1-9]\d*)\.txt$", re.IGNORECASE)


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
            matches = [e for e in self._entries(folder) if e.lower() == comp.lower() and (folder / e).is_dir()]
            if len(matches) != 1:
                return None
            folder = folder / matches[0]
        name = parts[-1]
        if (folder / name).is_file():
            return folder / name
        stem = PurePosixPath(name).stem.lower()
        matches = [
            e
            for e in self._entries(folder)
            if PurePosixPath(e).stem.lower() == stem and is_image(Path(e)) and (folder / e).is_file()
        ]
        return folder / matches[0] if len(matches) == 1 else None


def index_casia_nirvis2(
    root: Path, *, fold: int | None = None, skip_missing: bool = False, protocol: str | None = None
) -> IndexResult:
    """Index a CASIA NIR-VIS 2.0 tree (see the module docstring); `protocol` is not used."""
    proto = root / "protocols"
    if not proto.is_dir():
        proto = next((d for d in sorted(root.iterdir()) if d.name.lower() == "protocols" and d.is_dir()), proto)
    if not proto.is_dir():
        raise FormatError(
            f"{proto}: protocol folder not found; ROOT must be the CASIA NIR-VIS 2.0 "
            f"folder that holds protocols/ and s1..s4/"
        )
    lists: dict[int, dict[tuple[str, str], Path]] = {}
    for entry in sorted(proto.iterdir()):
        m = _CASIA_LIST.match(entry.name)
        if not m or not entry.is_file():
            continue
        modality, role, k = m.group(1).lower(), m.group(2).lower(), m.group(3).lower()
        k_num = 0 if k == "dev" else int(k)
        lists.setdefault(k_num, {})[(modality, role)] = entry
    if not lists:
        raise FormatError(
            f"{proto}: no protocol lists found; expected files such as vis_gallery_1.txt "
            f"and nir_probe_1.txt ({{vis,nir}}_{{train,gallery,probe}}_{{1..10,dev}}.txt)"
        )
    check_fold("casia-nirvis2", fold, lists, "0 (dev)")
    wanted = sorted(lists) if fold is None else [fold]
    for k in wanted:
        for need in (("vis", "gallery"), ("nir", "probe")):
            if need not in lists[k]:
                name = f"{need[0]}_{need[1]}_{'dev' if k == 0 else k}.txt"
                raise FormatError(
                    f"{proto / name}: protocol file not found; fold "
                    f"{'dev' if k == 0 else k} needs its gallery and probe lists"
                )
    finder = _FileFinder(root)
    rows: dict[str, dict] = {}
    order: list[str] = []
    roles: dict[str, dict[int, str]] = {}
    dropped: list[tuple[str, str]] = []
    list_rows: dict[str, int] = {}
    for k in wanted:
        for (modality, role), list_path in sorted(lists[k].items()):
            count = 0
            for line_no, where, text, fields in protocol_lines(list_path):
                if len(fields) > 2:
                    raise FormatError(
                        f"{where}: expected an image path (and at most one label), got "
                        f"{len(fields)} fields {text!r}; fix the line"
                    )
                parts = [p for p in PureWindowsPath(fields[0].replace("/", "\\")).parts if p not in ("\\", "")]
                if len(parts) < 2 or not is_image(Path(parts[-1])):
                    raise FormatError(
                        f"{where}: {fields[0]!r} is not a relative image path of the form "
                        f"s1\\NIR\\00001\\001.bmp; fix the line"
                    )
                found = finder.find(parts)
                if found is None:
                    what = f"{list_path.name} line {line_no}: {fields[0]}"
                    if skip_missing:
                        dropped.append((what, f"file {root.joinpath(*parts)} not found"))
                        continue
                    raise FormatError(
                        f"{where}: image {root.joinpath(*parts)} not found; restore it or "
                        f"re-run with --skip-missing to drop such lines"
                    )
                rel = rel_path(found, root)
                if rel not in rows:
                    rows[rel] = {
                        "subject": parts[-2],
                        "modality": modality,
                        "session": parts[0] if len(parts) > 2 else "",
                    }
                    order.append(rel)
                    roles[rel] = {}
                elif rows[rel]["modality"] != modality:
                    raise FormatError(
                        f"{where}: {fields[0]} is listed as {modality} here but as "
                        f"{rows[rel]['modality']} in another list; fix the lists"
                    )
                previous = roles[rel].get(k)
                if previous is not None and previous != role:
                    raise FormatError(
                        f"{where}: {fields[0]} is both {previous} and {role} in fold "
                        f"{'dev' if k == 0 else k}; fix the lists"
                    )
                roles[rel][k] = role
                count += 1
            list_rows[list_path.name] = count
    if not order:
        raise FormatError(
            f"{proto}: the protocol lists name no existing image; expected lines such as "
            f"s1\\NIR\\00001\\001.bmp relative to {root}"
        )
    records = []
    for rel in order:
        info = rows[rel]
        if fold is None:
            extra = {"session": info["session"]}
            for k in wanted:
                extra[f"fold_{'dev' if k == 0 else k}"] = roles[rel].get(k, "")
            records.append(make_record(rel, info["subject"], info["modality"], None, "", **extra))
        else:
            records.append(
                make_record(rel, info["subject"], info["modality"], None, roles[rel][fold], session=info["session"])
            )
    folds = ["dev" if k == 0 else str(k) for k in wanted]
    return IndexResult(Manifest(records, root), dropped, {"folds": folds, "lists": list_rows})
