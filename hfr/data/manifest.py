"""The one on-disk dataset format: a folder of images and a `manifest.csv`.

A manifest is a UTF-8 CSV with a header row. Required columns:

| column     | meaning                                                        |
| ---------- | -------------------------------------------------------------- |
| `path`     | image path, relative to the manifest's folder, or absolute     |
| `subject`  | identity label (a string)                                      |
| `modality` | one of MODALITIES (`vis`, `nir`, `sketch`, `thermal`)          |
| `yaw`      | head yaw in degrees; empty when unknown                        |
| `split`    | `train`, `test`, ... (protocol columns may refine it)          |

Optional columns with a known meaning: `pitch`, `session`, `illumination`,
`expression`, `occlusion`, `mask_path`, `clean_path`, `frontal_path`. Any other column
(for example `fold_3` written by the CASIA NIR-VIS 2.0 adapter) is kept as a string.

Reading validates: an unknown modality, a non-numeric yaw, an empty path or subject, a
duplicate path, or (by default) a missing file is a ManifestError naming the file and
row (the row number counts the header as row 1, as a spreadsheet shows it).
`verify_images=True` also decodes every image.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hfr.errors import ConfigError, DataError, ManifestError
from hfr.fileio import atomic_write_text

MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS: tuple[str, ...] = ("path", "subject", "modality", "yaw", "split")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "pitch",
    "session",
    "illumination",
    "expression",
    "occlusion",
    "mask_path",
    "clean_path",
    "frontal_path",
)
PATH_COLUMNS: tuple[str, ...] = ("path", "mask_path", "clean_path", "frontal_path")
NUMERIC_COLUMNS: tuple[str, ...] = ("yaw", "pitch")
MODALITIES: tuple[str, ...] = ("vis", "nir", "sketch", "thermal")


@dataclass(frozen=True)
class Record:
    """One manifest row: an image of `subject` in `modality` at head yaw `yaw` degrees.

    `extra` holds every other column as a string ("" when empty), including the known
    optional ones (`pitch`, `mask_path`, ...). Paths are stored as written in the file.
    """

    path: str
    subject: str
    modality: str
    yaw: float | None
    split: str
    extra: dict[str, str] = field(default_factory=dict)
    line: int = field(default=0, compare=False)
    """The row number in the file it was read from (header = 1); 0 for rows built in memory."""

    def get(self, column: str, default: str = "") -> str:
        """The value of an optional column as a string, `default` when absent or empty."""
        value = self.extra.get(column, "")
        return value if value != "" else default

    def get_float(self, column: str) -> float | None:
        """The value of a numeric optional column (for example `pitch`), None when empty."""
        value = self.extra.get(column, "")
        return float(value) if value != "" else None


def _format_float(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def parse_number(
    text: str, column: str, where: str, error: type[Exception] = ManifestError, allow_empty: bool = True
) -> float | None:
    """Parse a finite number from a CSV cell; empty gives None when `allow_empty`.

    Anything else raises `error` naming `where` (file and row) and the column.
    """
    text = text.strip()
    if text == "" and allow_empty:
        return None
    try:
        value = float(text)
    except ValueError:
        raise error(
            f"{where}: column {column!r} must be a number{' or empty' if allow_empty else ''}, "
            f"got {text!r}; fix the row"
        ) from None
    if not math.isfinite(value):
        raise error(f"{where}: column {column!r} must be finite, got {text!r}; fix the row")
    return value


class Manifest:
    """A list of Records and the folder their relative paths are resolved against.

    Build one with `Manifest.read(path)`, `Manifest(records, root)` or `filter`/`select`;
    write it with `write(path)` (atomically).
    """

    def __init__(
        self,
        records: Iterable[Record],
        root: str | os.PathLike,
        columns: Iterable[str] | None = None,
        source: str | os.PathLike | None = None,
    ) -> None:
        self.records: list[Record] = list(records)
        self.root = Path(root)
        self.source = Path(source) if source is not None else None
        extra_cols: list[str] = []
        if columns is not None:
            extra_cols = [c for c in columns if c not in REQUIRED_COLUMNS]
        for rec in self.records:
            for key in rec.extra:
                if key not in extra_cols:
                    extra_cols.append(key)
        self.columns: list[str] = list(REQUIRED_COLUMNS) + extra_cols

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def resolve(self, path: str) -> Path:
        """The file a manifest path names: absolute paths as they are, others under `root`."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def image_path(self, index: int) -> Path:
        """The resolved image file of row `index`."""
        return self.resolve(self.records[index].path)

    def subjects(self) -> list[str]:
        """Distinct subjects in order of first appearance."""
        return list(dict.fromkeys(r.subject for r in self.records))

    def modalities(self) -> Counter:
        """Images per modality."""
        return Counter(r.modality for r in self.records)

    def filter(self, predicate: Callable[[Record], bool]) -> Manifest:
        """A manifest of the rows for which `predicate` is true (same root and columns)."""
        return Manifest([r for r in self.records if predicate(r)], self.root, self.columns, self.source)

    def select(
        self, split: str | None = None, modality: str | None = None, subjects: Iterable[str] | None = None
    ) -> Manifest:
        """Rows of one split and/or modality and/or set of subjects."""
        wanted = set(subjects) if subjects is not None else None
        return self.filter(
            lambda r: (
                (split is None or r.split == split)
                and (modality is None or r.modality == modality)
                and (wanted is None or r.subject in wanted)
            )
        )

    def subject_index(self) -> dict[str, int]:
        """Map each subject to a dense integer label 0..S-1 in order of first appearance."""
        return {s: i for i, s in enumerate(self.subjects())}

    # ------------------------------------------------------------------ I/O
    @classmethod
    def read(cls, path: str | os.PathLike, check_files: bool = True, verify_images: bool = False) -> Manifest:
        """Read and validate a manifest CSV (a file, or a folder holding `manifest.csv`).

        Raises ManifestError naming the file and row for any invalid content.
        """
        p = Path(path)
        if p.is_dir():
            p = p / MANIFEST_NAME
        text = read_csv_text(
            p,
            "manifest",
            ManifestError,
            "pass a manifest.csv or a dataset folder that holds one (make one with "
            "`hfr data synth` or `hfr data index`)",
        )
        return cls.parse(text, root=p.parent, source=p, check_files=check_files, verify_images=verify_images)

    @classmethod
    def parse(
        cls,
        text: str,
        root: str | os.PathLike,
        source: str | os.PathLike | None = None,
        check_files: bool = True,
        verify_images: bool = False,
    ) -> Manifest:
        """Parse manifest CSV text whose relative paths are under `root`; validates as `read`."""
        name = str(source) if source is not None else "<manifest>"
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
        except StopIteration:
            raise ManifestError(
                f"{name}: empty file; a manifest needs a header row with {', '.join(REQUIRED_COLUMNS)}"
            ) from None
        header = [h.strip() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ManifestError(
                f"{name}: header lacks column(s) {', '.join(missing)}; "
                f"required columns are {', '.join(REQUIRED_COLUMNS)}"
            )
        dup_cols = [c for c, n in Counter(header).items() if n > 1]
        if dup_cols:
            raise ManifestError(f"{name}: header repeats column(s) {', '.join(dup_cols)}; keep one of each")
        pos = {c: i for i, c in enumerate(header)}
        extra_cols = [c for c in header if c not in REQUIRED_COLUMNS]
        manifest = cls([], root, header, source)
        seen: dict[str, int] = {}
        for line_no, where, row in csv_body_rows(reader, len(header), name, ManifestError):
            path = row[pos["path"]].strip()
            subject = row[pos["subject"]].strip()
            modality = row[pos["modality"]].strip().lower()
            if not path:
                raise ManifestError(f"{where}: empty path; every row needs an image path")
            if not subject:
                raise ManifestError(f"{where}: empty subject for {path!r}; every image needs an identity")
            if modality not in MODALITIES:
                raise ManifestError(
                    f"{where}: unknown modality {modality!r} for {path!r}; use one of {', '.join(MODALITIES)}"
                )
            yaw = parse_number(row[pos["yaw"]], "yaw", where)
            extra = {c: row[pos[c]].strip() for c in extra_cols}
            for col in NUMERIC_COLUMNS:
                if col in extra:
                    parse_number(extra[col], col, where)
            key = os.path.normpath(path)
            if key in seen:
                raise ManifestError(
                    f"{where}: duplicate path {path!r} (first at row {seen[key]}); each image may appear once"
                )
            seen[key] = line_no
            rec = Record(path, subject, modality, yaw, row[pos["split"]].strip(), extra, line=line_no)
            manifest.records.append(rec)
            if check_files:
                manifest._check_row_files(rec, where, verify_images)
        return manifest

    def _check_row_files(self, rec: Record, where: str, verify_images: bool) -> None:
        for col in PATH_COLUMNS:
            value = rec.path if col == "path" else rec.extra.get(col, "")
            if not value:
                continue
            file = self.resolve(value)
            if not file.is_file():
                raise ManifestError(
                    f"{where}: {col} file {file} does not exist; restore it, fix the "
                    f"row, or re-index with --skip-missing"
                )
            if verify_images:
                from hfr.data.imageio import read_image  # local: keeps manifest import light
                from hfr.errors import ImageError

                try:
                    read_image(file)
                except ImageError as exc:
                    raise ManifestError(f"{where}: {exc}") from None

    def where(self, index: int) -> str:
        """`<manifest file> row N` naming record `index` in error messages (header = row 1)."""
        name = str(self.source) if self.source is not None else "<manifest>"
        rec = self.records[index]
        return f"{name} row {rec.line}" if rec.line else f"{name} record {index}"

    def validate_files(self, verify_images: bool = False) -> None:
        """Check that every referenced file exists (and decodes, with `verify_images`)."""
        for i, rec in enumerate(self.records):
            self._check_row_files(rec, self.where(i), verify_images)

    def to_csv(self) -> str:
        """The manifest as CSV text (header first, `\\n` line ends)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for rec in self.records:
            row = []
            for col in self.columns:
                if col == "path":
                    row.append(rec.path)
                elif col == "subject":
                    row.append(rec.subject)
                elif col == "modality":
                    row.append(rec.modality)
                elif col == "yaw":
                    row.append(_format_float(rec.yaw))
                elif col == "split":
                    row.append(rec.split)
                else:
                    row.append(rec.extra.get(col, ""))
            writer.writerow(row)
        return buf.getvalue()

    def write(self, path: str | os.PathLike) -> Path:
        """Write the manifest to `path` (a file, or a folder that gets `manifest.csv`) atomically."""
        p = Path(path)
        if p.is_dir() or p.suffix == "":
            p = p / MANIFEST_NAME
        atomic_write_text(p, self.to_csv())
        return p

    def with_records(self, records: Iterable[Record]) -> Manifest:
        """A manifest with the same root and columns but other rows."""
        return Manifest(records, self.root, self.columns, self.source)


def read_csv_text(path: Path, what: str, error: type[Exception], missing_hint: str) -> str:
    """The UTF-8 text of a CSV file (BOM dropped); `error` naming the file when missing or not UTF-8."""
    if not path.is_file():
        raise error(f"{path}: {what} not found; {missing_hint}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc}); save the {what} as UTF-8") from None


def csv_body_rows(
    reader: Iterable[list[str]], n_fields: int, name: str, error: type[Exception] = ManifestError
) -> Iterator[tuple[int, str, list[str]]]:
    """Yield `(row number, "<name> row N", cells)` for the non-blank rows after a CSV header.

    Row numbers count the header as row 1. A row whose field count differs from the
    header's raises `error` naming the file and row.
    """
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{name} row {line_no}"
        if len(row) != n_fields:
            raise error(
                f"{where}: {len(row)} fields but the header has {n_fields}; "
                f"fix the row (quote fields that contain commas)"
            )
        yield line_no, where, row


def make_record(
    path: str, subject: str, modality: str, yaw: float | None = None, split: str = "", **extra: object
) -> Record:
    """Build a Record, formatting extra values as strings (None becomes empty)."""
    return Record(
        path=str(path),
        subject=str(subject),
        modality=modality,
        yaw=yaw,
        split=split,
        extra={
            k: ("" if v is None else (_format_float(v) if isinstance(v, float) else str(v))) for k, v in extra.items()
        },
    )


def relabel(rec: Record, **changes: object) -> Record:
    """A copy of `rec` with some fields changed (`extra` keys may be given by name too)."""
    fields: dict[str, Any] = {k: v for k, v in changes.items() if k in ("path", "subject", "modality", "yaw", "split")}
    extra = dict(rec.extra)
    for k, v in changes.items():
        if k not in fields:
            extra[k] = "" if v is None else str(v)
    return replace(rec, extra=extra, **fields)


def read_training_rows(
    path: str | os.PathLike | None,
    split: str,
    modalities: Iterable[str],
    example: str,
    min_subjects: int = 2,
    why: str = "cross-entropy needs at least 2",
) -> Manifest:
    """The rows of the manifest at `path` in `split` ("" = all) and `modalities` (empty = all).

    ConfigError when `path` is empty (`example` shows a value for `data.train`); DataError
    naming the manifest when no row is left or fewer than `min_subjects` subjects (`why` says why).
    """
    if not path:
        raise ConfigError(f"data.train: no training manifest; set it, e.g. --set data.train={example}")
    manifest = Manifest.read(path)
    wanted = set(modalities)
    rows = manifest.filter(lambda r: (not split or r.split == split) and (not wanted or r.modality in wanted))
    if len(rows) == 0:
        raise DataError(
            f"{manifest.source}: no rows of split {split!r} and modalities "
            f"{sorted(wanted) or 'any'}; check data.split and data.modalities"
        )
    if len(rows.subjects()) < min_subjects:
        raise DataError(f"{manifest.source}: {len(rows.subjects())} training subject(s); {why}")
    return rows


def concat_manifests(manifests: Sequence[Manifest]) -> Manifest:
    """One manifest of the rows of several, every path made absolute (so they share no root).

    A path in two of them is a DataError naming both manifests. Subjects keep their names: rows of
    one name in two sets are one identity (SynthFace presets never share names; real sets may).
    """
    if not manifests:
        raise DataError("no manifest to join")
    if len(manifests) == 1:
        return manifests[0]
    records: list[Record] = []
    seen: dict[str, Manifest] = {}
    for m in manifests:
        for r in m:
            path = os.path.abspath(m.resolve(r.path))
            if path in seen:
                raise DataError(f"{path} is in both {seen[path].source} and {m.source}; give each image once")
            seen[path] = m
            extra = {k: (os.path.abspath(m.resolve(v)) if k in PATH_COLUMNS and v else v) for k, v in r.extra.items()}
            records.append(replace(r, path=path, extra=extra))
    columns: list[str] = []
    for m in manifests:
        columns += [c for c in m.columns if c not in columns]
    return Manifest(records, Path("/"), columns, manifests[0].source)
