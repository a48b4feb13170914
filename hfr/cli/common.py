"""What the `hfr` commands share: the consoles, the progress bar, tables and the argument helpers.

A command group's module (`hfr.cli.data`, ..., or a method's `commands` module arriving through
the `hfr.commands` entry points) imports these so that every command looks and behaves alike.
Importing this module loads rich only: the libraries a command needs are imported inside it,
so `hfr --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from hfr.errors import OptionError

if TYPE_CHECKING:
    from rich.progress import Progress

#: Results and tables (stdout).
console = Console(stderr=False)
#: Progress bars and errors (stderr).
err_console = Console(stderr=True)

#: A subcommand's function: parsed arguments in, exit status out.
Handler = Callable[[argparse.Namespace], int]
#: The progress callback `progress_bar` returns: (done, total, stage name or None).
Update = Callable[..., None]

#: What `--recognizer` takes, for help texts.
RECOGNIZER_HELP = "recognizer.pt, DR-GAN generator.pt, run folder, or dlib-resnet (pretrained; the dlib extra)"
#: The render flags (`add_render_flags`) that `flag_sets` turns into `--set`s.
RENDER_FLAGS = ("subjects", "size", "seed", "workers")


def progress_bar(description: str, enabled: bool = True) -> tuple[Progress, Update]:
    """A rich progress bar on stderr (off when not a terminal) and its update callback
    `update(done, total, stage=None)`; use the bar as a context manager around the work."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not (enabled and err_console.is_terminal),
        transient=False,
    )
    task = progress.add_task(description, total=None, rate="")
    start = time.perf_counter()

    def update(done: int, total: int, stage: str | None = None) -> None:
        elapsed = max(time.perf_counter() - start, 1e-9)
        if stage:
            progress.update(task, description=stage)
        progress.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} img/s")

    return progress, update


def stats_table(title: str, stats: dict[str, Any]) -> Table:
    """A two-column table (quantity, value) of a flat dict; nested dicts become "k: v, ..." text,
    and dicts in them "k: a x, b y; k2: ..." (e.g. modalities per split: "test: nir 9, vis 3; ...")."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", overflow="fold")
    for key, value in stats.items():
        if isinstance(value, dict):
            if any(isinstance(v, dict) for v in value.values()):
                value = "; ".join(
                    f"{k}: " + (", ".join(f"{a} {b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
                    for k, v in value.items()
                )
            else:
                value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    return table


def result_table(result: dict[str, Any]) -> Table:
    """The table of an evaluation result (`hfr.eval.report.evaluate`): cross-pose, cross-modal or verification."""
    kind = result["protocol"]
    table = Table(title=f"{kind}: {result.get('data', '')}", header_style="bold")
    if kind == "cross-pose":
        table.add_column("|yaw|")
        table.add_column("rank-1 (%)")
        for yaw, value in result["rank1_by_abs_yaw"].items():
            table.add_row(yaw, f"{100 * value:.2f}")
        table.add_row("mean (non-frontal)", f"{100 * result['mean']:.2f}")
    elif kind == "cross-modal":
        table.add_column("metric")
        table.add_column(f"mean +- std over {result['n_folds']} fold(s) (%)")
        for key in ("rank1", "vr@far=0.01", "vr@far=0.001", "vr@far=0.0001", "eer"):
            table.add_row(key, f"{100 * result['mean'][key]:.2f} +- {100 * result['std'][key]:.2f}")
    else:
        for col in ("protocol", "pairs", "accuracy (%)", "EER (%)", "AUC"):
            table.add_column(col)
        for name, r in result["protocols"].items():
            table.add_row(
                name,
                str(r["pairs"]),
                f"{100 * r['accuracy']:.2f} +- {100 * r['accuracy_std']:.2f}",
                f"{100 * r['eer']:.2f}",
                f"{r['auc']:.4f}",
            )
    return table


def train_table(title: str, result: dict[str, Any]) -> Table:
    """The last logged values and the last evaluation of a training run (`hfr.engine.loop.train`'s result)."""
    table = Table(title=title, header_style="bold")
    table.add_column("quantity")
    table.add_column("value")
    logs = {**result.get("logs", {}), **{f"eval/{k}": v for k, v in (result.get("eval") or {}).items()}}
    for key, value in logs.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


def print_config(cfg: Any) -> None:
    """Print a resolved config as YAML (what `--dry-run` shows)."""
    from hfr.config import to_yaml

    console.print(to_yaml(cfg), end="", markup=False, highlight=False)


def flag_sets(args: argparse.Namespace, flags: Sequence[str]) -> list[str]:
    """`--set` overrides followed by those of the explicit flags given (so flags win)."""
    sets = list(args.set or [])
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None:
            sets.append(f"{flag}={value}")
    return sets


def recipe_name(config: Path | None, default: str) -> str:
    """Run folders are named after the recipe file (`configs/recognizer/synth-pretrain.yaml`
    -> `recognizer-synth-pretrain`)."""
    if config is None:
        return default
    return f"{config.parent.name}-{config.stem}" if config.parent.name not in ("", ".") else config.stem


def csv_cell(text: str) -> str:
    """`text` as one CSV field: quoted (inner quotes doubled) when it holds a comma, quote or newline."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


# ---------------------------------------------------------------------- argument helpers
def add_config_args(p: argparse.ArgumentParser) -> None:
    """--config, --set (repeatable) and --dry-run."""
    p.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable), e.g. --set subjects=20"
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def add_train_args(p: argparse.ArgumentParser) -> None:
    """--resume and --runs of the training commands."""
    p.add_argument("--resume", help="auto (newest run of the recipe) or a checkpoint / run folder")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders")


def add_embed_flags(p: argparse.ArgumentParser) -> None:
    """--batch-size and --device of the commands that embed images."""
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu | cuda")


def add_gallery_data_flags(p: argparse.ArgumentParser) -> None:
    """--recognizer, --data, --split, --modality and --fuse of `gallery build` / `gallery add`."""
    p.add_argument("--recognizer", type=Path, required=True, help=RECOGNIZER_HELP)
    p.add_argument("--data", type=Path, required=True, help="image folder or manifest")
    p.add_argument("--split", help="only rows of this split")
    p.add_argument("--modality", help="only rows of this modality")
    p.add_argument(
        "--fuse",
        action="store_true",
        help="one entry per subject: its images' features fused (omega-weighted for DR-GAN)",
    )


def add_render_flags(p: argparse.ArgumentParser) -> None:
    """--subjects, --size, --seed and --workers of the commands that render SynthFace."""
    p.add_argument("--subjects", type=int, help="identities (per preset; default: the preset's)")
    p.add_argument("--size", type=int, help="image size in pixels (default 64)")
    p.add_argument("--seed", type=int, help="random seed (same seed, same bytes)")
    p.add_argument("--workers", type=int, help="render worker processes")


def add_detect_flags(p: argparse.ArgumentParser, with_switch: bool = True) -> None:
    """--detect (raw photos in), --faces, --min-score, --template and --max-side of the commands
    that can find and align faces themselves (`hfr.data.detect`; the `detect` extra)."""
    if with_switch:
        p.add_argument(
            "--detect",
            action="store_true",
            help='raw photos in: find faces (MTCNN) and align them first (needs pip install -e ".[detect]")',
        )
    p.add_argument("--faces", default="largest", choices=("largest", "all"), help="with --detect: faces per photo")
    p.add_argument("--min-score", type=float, default=0.9, help="with --detect: the lowest detection score kept (0..1)")
    p.add_argument(
        "--template",
        default="lightcnn128",
        help="alignment template: lightcnn128 (128 px) | drgan96 (96 px) | arcface112 (112 px)",
    )
    p.add_argument("--max-side", type=int, default=1024, help="with --detect: photos are detected at most this big")


def face_detector(args: argparse.Namespace) -> Any:
    """The `hfr.data.detect.FaceDetector` the --detect flags ask for (on --device); errors name the option."""
    from hfr.data import align
    from hfr.data.detect import FaceDetector

    if args.template not in align.TEMPLATES:
        raise OptionError(f"--template {args.template!r}: use one of {', '.join(align.TEMPLATES)}")
    if not 0.0 <= args.min_score <= 1.0:
        raise OptionError(f"--min-score must be in [0, 1], got {args.min_score}")
    if args.max_side < 20:
        raise OptionError(f"--max-side must be >= 20 pixels, got {args.max_side}")
    return FaceDetector(device=getattr(args, "device", "cpu"), max_side=args.max_side)


def detect_faces(
    args: argparse.Namespace, photos: Any, out_dir: Path, what: str = "detecting faces", allow_none: bool = False
) -> Any:
    """Detect and align the faces of the photos of manifest `photos` into `out_dir` (`align_photos`);
    returns its DetectionResult, after saying how many photos had no usable face. A run in which
    no photo has one is an OptionError (naming the first photos and why) unless `allow_none`."""
    from hfr.data.detect import align_photos

    detector = face_detector(args)
    progress, update = progress_bar(what)
    with progress:
        result = align_photos(
            photos,
            out_dir,
            detector,
            template=args.template,
            size=getattr(args, "size", None),
            faces=args.faces,
            min_score=args.min_score,
            progress=update,
        )
    if result.misses:
        err_console.print(
            f"[yellow]{len(result.misses)} of {result.photos} photos without a face scoring >= {args.min_score:g}; "
            f"they are left out[/yellow]"
        )
    if result.manifest is None and not allow_none:
        first = "; ".join(f"{p}: {r}" for p, r in result.misses[:3])
        raise OptionError(f"--detect: no face found in any of the {result.photos} photos ({first})")
    return result


def face_entry_path(record: Any, faces: str) -> str:
    """What a gallery stores as the path of a detected face: its photo's absolute path
    (`--faces largest`), or `<photo>#f<k>` for face k (`--faces all`)."""
    source = record.get("source")
    return source if faces == "largest" else f"{source}#f{record.get('face')}"


@contextlib.contextmanager
def faces_of(args: argparse.Namespace, manifest: Any, allow_none: bool = False) -> Iterator[Any]:
    """`manifest` itself, or with `--detect` the manifest of its photos' aligned faces, written to a
    temporary folder that lives for the `with` block (each face row names its photo in `source`).
    No face in any photo is an OptionError, or with `allow_none` gives None."""
    if not getattr(args, "detect", False):
        yield manifest
        return
    from hfr.data.detect import require_detector

    require_detector()
    with tempfile.TemporaryDirectory(prefix="hfr-faces-") as tmp:
        yield detect_faces(args, manifest, Path(tmp), allow_none=allow_none).manifest
