"""`hfr quickstart`: render, pretrain, evaluate, search and the methods' stages in one run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from hfr.cli.common import (
    RENDER_FLAGS,
    add_config_args,
    add_render_flags,
    console,
    flag_sets,
    print_config,
    progress_bar,
    result_table,
)

if TYPE_CHECKING:
    from hfr.quickstart import StageOutput, TextTable


def text_table(table: TextTable) -> Table:
    """A stage's `TextTable` as a rich table."""
    out = Table(title=table.title, header_style="bold")
    for col in table.columns:
        out.add_column(col)
    for row in table.rows:
        out.add_row(*row)
    return out


def cmd_quickstart(args: argparse.Namespace) -> int:
    """Render SynthFace sets, pretrain LightCNN-9, evaluate, build a gallery, search, run the methods' stages;
    say where everything is."""
    from hfr.config import load_config
    from hfr.quickstart import QuickstartConfig, TextTable, run_quickstart

    cfg = load_config(QuickstartConfig, args.config, flag_sets(args, RENDER_FLAGS))
    if args.dry_run:
        print_config(cfg)
        return 0
    outputs: list[StageOutput] = []
    progress, update = progress_bar("quickstart")
    with progress:
        summary = run_quickstart(
            cfg,
            out=args.out,
            progress=lambda stage, d, t: update(d, t, stage),
            report=lambda name, output: outputs.append(output),
        )
    table = Table(title="SynthFace sets", header_style="bold")
    for col in ("preset", "subjects", "images", "modalities", "splits", "contact sheet"):
        table.add_column(col, overflow="fold")
    for row in summary["presets"]:
        table.add_row(
            row["preset"],
            str(row["subjects"]),
            str(row["images"]),
            ", ".join(f"{k} {v}" for k, v in row["modalities"].items()),
            ", ".join(f"{k} {v}" for k, v in row["splits"].items()),
            row["sheet"],
        )
    console.print(table)
    if "evaluation" in summary:
        pose = summary["evaluation"]["cross-pose"]
        modal = summary["evaluation"]["cross-modal"]
        console.print(result_table(pose))
        console.print(result_table(modal))
        search = Table(title=f"gallery search: {summary['search']['gallery']}", header_style="bold")
        for col in ("probe", "true subject", "rank", "subject", "score"):
            search.add_column(col, overflow="fold")
        for row in summary["search"]["rows"]:
            search.add_row(row["probe"], row["true"], str(row["rank"]), row["subject"], f"{row['score']:.3f}")
        console.print(search)
        console.print(f"plots: {pose['folder']}, {modal['folder']}; recognizer: {summary['pretrain']['recognizer']}")
    for output in outputs:
        for item in output.console:
            if isinstance(item, TextTable):
                console.print(text_table(item))
            else:
                console.print(item, markup=False)
    console.print(
        f"[bold green]done[/bold green] in {summary['seconds']:.1f} s; everything is in "
        f"[bold]{summary['out']}[/bold] (summary.md, summary.json, sheets/, eval/)"
    )
    return 0


def register(sub: Any) -> None:
    """Add `hfr quickstart` to the `hfr` subparsers `sub`."""
    q = sub.add_parser("quickstart", help="render small SynthFace sets, contact sheets and a summary")
    q.add_argument("--out", type=Path, help="output folder (default runs/quickstart/<timestamp>)")
    add_render_flags(q)
    add_config_args(q)
    q.set_defaults(func=cmd_quickstart)
