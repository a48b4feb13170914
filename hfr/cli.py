"""The `hfr` command line: one thin function per subcommand.

The CLI owns the console (rich). Any HFRError is printed on one line and the process
exits with status 2; library code only raises and logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hfr import __version__
from hfr.errors import HFRError, OptionError

console = Console(stderr=False)
err_console = Console(stderr=True)
log = logging.getLogger("hfr")

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------- helpers
def _progress(description: str, enabled: bool = True):
    """A rich progress bar (transient, off when not a terminal) and its update callback."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                        console=err_console, disable=not (enabled and err_console.is_terminal),
                        transient=False)
    task = progress.add_task(description, total=None, rate="")
    import time

    start = time.perf_counter()

    def update(done: int, total: int) -> None:
        elapsed = max(time.perf_counter() - start, 1e-9)
        progress.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} img/s")

    return progress, update


def _stats_table(title: str, stats: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", overflow="fold")
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    return table


def _flag_sets(args: argparse.Namespace, flags: Sequence[str]) -> list[str]:
    """`--set` overrides followed by those of the explicit flags given (so flags win)."""
    sets = list(args.set or [])
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None:
            sets.append(f"{flag}={value}")
    return sets


_RENDER_FLAGS = ("subjects", "size", "seed", "workers")


# ---------------------------------------------------------------------- commands
def cmd_data_synth(args: argparse.Namespace) -> int:
    """Render a SynthFace preset into a dataset folder."""
    from hfr.config import load_config, to_yaml
    from hfr.data import synth
    from hfr.data.stats import dataset_stats

    cfg = load_config(synth.SynthConfig, args.config, _flag_sets(args, ("preset", *_RENDER_FLAGS)))
    synth.validate_config(cfg)
    if args.dry_run:
        console.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    if args.out is None:
        raise HFRError("hfr data synth: --out DIR is required (where to write the dataset)")
    progress, update = _progress(f"rendering {cfg.preset}")
    with progress:
        manifest = synth.write_preset(cfg, args.out, progress=update)
    console.print(_stats_table(f"{cfg.preset} -> {args.out}", dataset_stats(manifest)))
    console.print(f"manifest: {Path(args.out) / 'manifest.csv'}")
    return 0


def cmd_data_index(args: argparse.Namespace) -> int:
    """Index a real dataset in place and write its manifest."""
    from hfr.data import adapters
    from hfr.data.stats import dataset_stats

    result = adapters.index_dataset(args.format, args.root, fold=args.fold,
                                    skip_missing=args.skip_missing, protocol=args.protocol)
    out = adapters.write_index(result, args.out)
    console.print(_stats_table(f"{args.format}: {args.root}", dataset_stats(result.manifest)))
    if result.dropped:
        report = adapters.sidecar_path(out, "dropped")
        console.print(f"[yellow]dropped {len(result.dropped)} missing entries; see {report}[/yellow]")
    console.print(f"manifest: {out}")
    return 0


def cmd_data_align(args: argparse.Namespace) -> int:
    """Align faces to a canonical 5-point template from a landmarks CSV."""
    from hfr.data import transforms

    if args.template not in transforms.TEMPLATES:
        raise OptionError(f"--template {args.template!r}: use one of {', '.join(transforms.TEMPLATES)}")
    manifest = transforms.align_folder(args.landmarks, args.out, template=args.template,
                                       size=args.size, channels=args.channels)
    if manifest is not None:
        console.print(f"aligned {len(manifest)} images to {args.out}; manifest: {manifest.source}")
    else:
        console.print(f"aligned images written to {args.out} (no manifest: the CSV has no subject column)")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    """Write a contact sheet PNG of a dataset: subjects x poses, modalities or occlusions."""
    from hfr.data.manifest import Manifest
    from hfr.viz import contact_sheet, save_image

    manifest = Manifest.read(args.manifest)
    sheet = contact_sheet(manifest, by=args.by, subjects=args.subjects, split=args.split)
    save_image(args.out, sheet)
    console.print(f"contact sheet ({args.subjects} subjects by {args.by}): {args.out}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    """Print a table of a dataset's subjects, images per modality/split and yaw histogram."""
    from hfr.data.manifest import Manifest
    from hfr.data.stats import dataset_stats
    from hfr.fileio import atomic_write_text

    manifest = Manifest.read(args.manifest, check_files=not args.no_check)
    stats = dataset_stats(manifest)
    console.print(_stats_table(str(args.manifest), stats))
    if args.json:
        atomic_write_text(args.json, json.dumps(stats, indent=2) + "\n")
        console.print(f"stats: {args.json}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Render small SynthFace sets, write contact sheets and a summary, say where they are."""
    from hfr.quickstart import QuickstartConfig, run_quickstart
    from hfr.config import load_config, to_yaml

    cfg = load_config(QuickstartConfig, args.config, _flag_sets(args, _RENDER_FLAGS))
    if args.dry_run:
        console.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    progress, update = _progress("quickstart")
    with progress:
        summary = run_quickstart(cfg, out=args.out, progress=update)
    table = Table(title="hfr quickstart: SynthFace sets", header_style="bold")
    for col in ("preset", "subjects", "images", "modalities", "splits", "contact sheet"):
        table.add_column(col, overflow="fold")
    for row in summary["presets"]:
        table.add_row(row["preset"], str(row["subjects"]), str(row["images"]),
                      ", ".join(f"{k} {v}" for k, v in row["modalities"].items()),
                      ", ".join(f"{k} {v}" for k, v in row["splits"].items()), row["sheet"])
    console.print(table)
    console.print(f"[bold green]done[/bold green] in {summary['seconds']:.1f} s; "
                  f"everything is in [bold]{summary['out']}[/bold] (summary.json, summary.md, sheets/)")
    return 0


# ---------------------------------------------------------------------- parser
def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set subjects=20")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _add_render_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subjects", type=int, help="identities (per preset; default: the preset's)")
    p.add_argument("--size", type=int, help="image size in pixels (default 64)")
    p.add_argument("--seed", type=int, help="random seed (same seed, same bytes)")
    p.add_argument("--workers", type=int, help="render worker processes")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `hfr` command and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="hfr", description="Heterogeneous and pose-invariant face recognition with generative models.")
    parser.add_argument("--version", action="version", version=f"hfr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    q = sub.add_parser("quickstart", help="render small SynthFace sets, contact sheets and a summary")
    q.add_argument("--out", type=Path, help="output folder (default runs/quickstart/<timestamp>)")
    _add_render_flags(q)
    _add_config_args(q)
    q.set_defaults(func=cmd_quickstart)

    data = sub.add_parser("data", help="datasets: render, index, align, show, stats")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True

    s = dsub.add_parser("synth", help="render a SynthFace preset (webface, multipie, nirvis, occluded)")
    s.add_argument("--preset", help="webface | multipie | nirvis | occluded")
    _add_render_flags(s)
    s.add_argument("--out", type=Path, help="dataset folder to write")
    _add_config_args(s)
    s.set_defaults(func=cmd_data_synth)

    i = dsub.add_parser("index", help="index a real dataset in place (writes a manifest)")
    i.add_argument("root", type=Path, help="the dataset's root folder")
    i.add_argument("--format", required=True,
                   help="casia-nirvis2 | multipie | cfp | lfw | folder")
    i.add_argument("--out", type=Path, required=True, help="manifest.csv to write")
    i.add_argument("--fold", type=int,
                   help="protocol fold k: keep that fold and set split from it "
                        "(CASIA NIR-VIS 2.0: 1..10 View 2, 0 the View 1 dev lists; CFP/LFW: 1..10)")
    i.add_argument("--protocol", help="Multi-PIE only: setting2 (default; subjects 001-200 train, "
                                      "201-346 test) or none (empty split)")
    i.add_argument("--skip-missing", action="store_true",
                   help="drop entries whose file is missing (writes a report of what was dropped)")
    i.set_defaults(func=cmd_data_index)

    a = dsub.add_parser("align", help="align faces to a 5-point template from a landmarks CSV")
    a.add_argument("--landmarks", type=Path, required=True,
                   help="CSV: path,x1,y1,...,x5,y5 (eyes, nose, mouth corners) [,subject,modality]")
    a.add_argument("--out", type=Path, required=True, help="folder for the aligned images")
    a.add_argument("--template", default="lightcnn128",
                   help="lightcnn128 (128 px) | drgan96 (96 px) | arcface112 (112 px)")
    a.add_argument("--size", type=int, help="output size (default: the template's)")
    a.add_argument("--channels", type=int, choices=(1, 3), help="force grayscale (1) or RGB (3)")
    a.set_defaults(func=cmd_data_align)

    sh = dsub.add_parser("show", help="contact sheet PNG: subjects x poses / modalities / occlusions")
    sh.add_argument("manifest", type=Path, help="manifest.csv or its folder")
    sh.add_argument("--out", type=Path, required=True, help="PNG to write")
    sh.add_argument("--by", default="yaw", help="yaw | modality | occlusion | illumination | expression")
    sh.add_argument("--subjects", type=int, default=8, help="rows (subjects) to show")
    sh.add_argument("--split", help="only this split")
    sh.set_defaults(func=cmd_data_show)

    st = dsub.add_parser("stats", help="table of subjects, images per modality, yaw histogram")
    st.add_argument("manifest", type=Path, help="manifest.csv or its folder")
    st.add_argument("--json", type=Path, help="also write the numbers as JSON")
    st.add_argument("--no-check", action="store_true", help="do not check that the files exist")
    st.set_defaults(func=cmd_data_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hfr` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except HFRError as exc:
        message = escape(" ".join(str(exc).split()))
        err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
