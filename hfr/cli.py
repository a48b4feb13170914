"""The `hfr` command line: one thin function per subcommand.

The CLI owns the console (rich). Any HFRError is printed on one line and the process
exits with status 2; library code only raises and logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
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

    def update(done: int, total: int, stage: str | None = None) -> None:
        elapsed = max(time.perf_counter() - start, 1e-9)
        fields = {"description": stage} if stage else {}
        progress.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} img/s", **fields)

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
    """Render SynthFace sets, pretrain LightCNN-9, evaluate, build a gallery, search; say where."""
    from hfr.config import load_config, to_yaml
    from hfr.quickstart import QuickstartConfig, run_quickstart

    cfg = load_config(QuickstartConfig, args.config, _flag_sets(args, _RENDER_FLAGS))
    if args.dry_run:
        console.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    progress, update = _progress("quickstart")
    with progress:
        summary = run_quickstart(cfg, out=args.out, progress=lambda stage, d, t: update(d, t, stage))
    table = Table(title="SynthFace sets", header_style="bold")
    for col in ("preset", "subjects", "images", "modalities", "splits", "contact sheet"):
        table.add_column(col, overflow="fold")
    for row in summary["presets"]:
        table.add_row(row["preset"], str(row["subjects"]), str(row["images"]),
                      ", ".join(f"{k} {v}" for k, v in row["modalities"].items()),
                      ", ".join(f"{k} {v}" for k, v in row["splits"].items()), row["sheet"])
    console.print(table)
    if "evaluation" in summary:
        pose = summary["evaluation"]["cross-pose"]
        modal = summary["evaluation"]["cross-modal"]
        console.print(_result_table(pose))
        console.print(_result_table(modal))
        search = Table(title=f"gallery search: {summary['search']['gallery']}", header_style="bold")
        for col in ("probe", "true subject", "rank", "subject", "score"):
            search.add_column(col, overflow="fold")
        for row in summary["search"]["rows"]:
            search.add_row(row["probe"], row["true"], str(row["rank"]), row["subject"], f"{row['score']:.3f}")
        console.print(search)
        console.print(f"plots: {pose['folder']}, {modal['folder']}; recognizer: {summary['pretrain']['recognizer']}")
    if "drgan" in summary:
        d = summary["drgan"]
        table = Table(title="DR-GAN G_enc features, cross-pose rank-1 (%)", header_style="bold")
        for col in (*d["rank1_by_abs_yaw"], "mean"):
            table.add_column(f"|yaw| {col}" if col != "mean" else col)
        table.add_row(*(f"{100 * v:.1f}" for v in d["rank1_by_abs_yaw"].values()), f"{100 * d['mean']:.1f}")
        console.print(table)
        console.print(f"DR-GAN pose sweep: {d['sweep']}; generator: {d['generator']}")
    if "dvg" in summary:
        g = summary["dvg"]
        console.print(f"DVG-Face: {g['pairs']} (grid {g['grid']}); identity consistency (NIR-VIS cosine of a pair) "
                      f"{g['consistency']:.3f}, diversity (cosine between pairs) {g['diversity']:.3f}")
    console.print(f"[bold green]done[/bold green] in {summary['seconds']:.1f} s; everything is in "
                  f"[bold]{summary['out']}[/bold] (summary.md, summary.json, sheets/, eval/)")
    return 0


def _recipe_name(config: Path | None, default: str) -> str:
    """Run folders are named after the recipe file (`configs/recognizer/synth-pretrain.yaml`
    -> `recognizer-synth-pretrain`)."""
    if config is None:
        return default
    return f"{config.parent.name}-{config.stem}" if config.parent.name not in ("", ".") else config.stem


def _train_table(title: str, result: dict[str, Any]) -> Table:
    """The last logged values and the last evaluation of a training run."""
    table = Table(title=title, header_style="bold")
    table.add_column("quantity")
    table.add_column("value")
    logs = {**result.get("logs", {}), **{f"eval/{k}": v for k, v in (result.get("eval") or {}).items()}}
    for key, value in logs.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


def cmd_train_recognizer(args: argparse.Namespace) -> int:
    """Pretrain or fine-tune a LightCNN on the engine; export recognizer.pt into the run folder."""
    from hfr.config import load_config, to_yaml
    from hfr.engine.loop import train
    from hfr.recognizer.config import RecognizerConfig
    from hfr.recognizer.task import RecognizerTask

    cfg = load_config(RecognizerConfig, args.config, args.set or [])
    if args.dry_run:
        console.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    task = RecognizerTask()
    result = train(task, cfg, recipe=_recipe_name(args.config, "recognizer"), resume=args.resume,
                   runs_root=args.runs)
    run_dir = Path(result["run_dir"])
    if getattr(task, "ctx", None) is None or task.ctx.is_main:
        out = run_dir / "recognizer.pt"
        fp = task.export(out, meta={"steps": result["step"]})
        console.print(_train_table(f"train-recognizer ({cfg.mode}, {cfg.net.arch})", result))
        console.print(f"recognizer: {out} (fingerprint {fp}); run folder: {run_dir}")
    return 0


def cmd_train_generator(args: argparse.Namespace) -> int:
    """Train the generator a recipe's `model:` names (drgan, ...); export generator.pt (and recognizer.pt)."""
    from hfr.config import load_config, read_model_name, to_yaml
    from hfr.engine.loop import train
    from hfr.engine.task import get_task

    if args.config is None:
        raise OptionError("train-generator needs --config (a recipe in configs/drgan/, ...)")
    factory = get_task(read_model_name(args.config, args.set or []))
    config_class = getattr(factory, "config_class", None)
    if config_class is None:
        raise OptionError(f"{args.config}: task {factory.__name__} has no generator recipe (config_class); "
                          f"use the command of that task")
    cfg = load_config(config_class, args.config, args.set or [])
    if args.dry_run:
        console.print(to_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    task = factory()
    result = train(task, cfg, recipe=_recipe_name(args.config, cfg.model), resume=args.resume, runs_root=args.runs)
    run_dir = Path(result["run_dir"])
    if getattr(task, "ctx", None) is None or task.ctx.is_main:
        files = task.export(run_dir, meta={"steps": result["step"]}) if hasattr(task, "export") else {}
        console.print(_train_table(f"train-generator ({cfg.model})", result))
        for name, path in files.items():
            if not name.endswith("fingerprint"):
                console.print(f"{name}: {path}")
        console.print(f"run folder: {run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run an evaluation protocol and write JSON and plots."""
    from hfr.engine.rundir import new_run_dir
    from hfr.eval.report import evaluate

    out = args.out or new_run_dir(f"evaluate-{args.protocol}", args.runs)
    progress, update = _progress("embedding")
    with progress:
        result = evaluate(args.recognizer, args.data, args.protocol, out, batch_size=args.batch_size,
                          device=args.device, progress=update)
    console.print(_result_table(result))
    console.print(f"result.json and plots: {out}")
    return 0


def _result_table(result: dict[str, Any]) -> Table:
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
            table.add_row(name, str(r["pairs"]), f"{100 * r['accuracy']:.2f} +- {100 * r['accuracy_std']:.2f}",
                          f"{100 * r['eer']:.2f}", f"{r['auc']:.4f}")
    return table


def cmd_embed(args: argparse.Namespace) -> int:
    """Write the features of every image of a target (.npy) and their ids (.csv); `--fuse`: one per subject."""
    import numpy as np

    from hfr.embed import embed_manifest, embed_subjects
    from hfr.fileio import atomic_open
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    recognizer = load_recognizer(args.recognizer, device=args.device)
    manifest = load_targets(args.data)
    progress, update = _progress("embedding")
    with progress:
        if args.fuse:
            subjects, feats = embed_subjects(recognizer, manifest, batch_size=args.batch_size, progress=update)
        else:
            feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size, progress=update)
    out = Path(args.out)
    with atomic_open(out, "wb") as handle:
        np.save(handle, feats)
    ids = out.with_suffix(".csv")
    with atomic_open(ids, "w", newline="") as handle:
        if args.fuse:
            counts = {s: 0 for s in subjects}
            for r in manifest:
                counts[r.subject] += 1
            handle.write("row,subject,images,fingerprint\n")
            for i, s in enumerate(subjects):
                handle.write(f"{i},{_csv_cell(s)},{counts[s]},{recognizer.fingerprint}\n")
        else:
            handle.write("row,path,subject,modality,fingerprint\n")
            for i, r in enumerate(manifest):
                handle.write(f"{i},{_csv_cell(r.path)},{_csv_cell(r.subject)},{r.modality},{recognizer.fingerprint}\n")
    what = "subject features (fused)" if args.fuse else "features"
    console.print(f"{len(feats)} {what} ({feats.shape[1] if feats.size else 0}-d): {out}; ids: {ids}")
    return 0


def cmd_generate_pairs(args: argparse.Namespace) -> int:
    """Write NIR-VIS pairs of new identities from a DVG-Face generator.pt (resumable)."""
    from dvg.generate import generate_pairs, load_dvg, pair_statistics
    from hfr.data.manifest import Manifest

    loaded = load_dvg(args.generator, device=args.device)
    progress, update = _progress("generating pairs")
    with progress:
        result = generate_pairs(loaded, args.out, args.num, seed=args.seed, batch_size=args.batch_size,
                                progress=lambda d, t: update(d, t), attributes=args.attributes, data=args.data,
                                split=args.split)
    console.print(f"{result['pairs']} pairs ({result['new_pairs']} new) in {result['out']}; "
                  f"manifest: {result['manifest']}")
    if args.recognizer is not None:
        from hfr.recognizer.export import load_recognizer

        stats = pair_statistics(load_recognizer(args.recognizer, device=args.device), Manifest.read(args.out))
        console.print(_stats_table("generated pairs under the recognizer", {
            "pairs measured": stats["pairs"], "identity consistency (NIR-VIS cosine)": f"{stats['consistency']:.3f}",
            "diversity (cosine between pairs)": f"{stats['diversity']:.3f}"}))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    """Rotate faces with a DR-GAN generator.pt: one PNG per (input, yaw) and pose_sweep.png."""
    from drgan.export import load_generator
    from drgan.rotate import parse_yaws, rotate_folder

    yaws = parse_yaws(args.yaw)
    loaded = load_generator(args.generator, device=args.device)
    result = rotate_folder(loaded, args.input, yaws, args.out, seed=args.seed, fuse=args.fuse)
    bins = ", ".join(f"{y:g}->{b:g}" for y, b in zip(yaws, result.bins))
    console.print(f"{result.inputs} input(s){' fused' if args.fuse else ''}, yaw -> pose bin: {bins}")
    console.print(f"{len(result.files)} images and {result.sweep.name}: {Path(args.out)}")
    return 0


def cmd_deocclude(args: argparse.Namespace) -> int:
    """Restore occluded faces (and frontalize them) with a TSGAN generator.pt; outputs and a grid."""
    from tsgan.deocclude import deocclude_folder
    from tsgan.export import load_tsgan

    loaded = load_tsgan(args.generator, device=args.device)
    result = deocclude_folder(loaded, args.input, args.out, masks=args.masks, frontalize=args.frontalize,
                              batch_size=args.batch_size)
    what = "de-occluded and frontalized" if args.frontalize else "de-occluded"
    console.print(f"{result.count} image(s) {what} ({'with' if result.masked else 'without'} masks, batches of "
                  f"{result.batch_size}) into {args.out}; before/after grid: {result.grid}")
    return 0


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def _embed_for_gallery(args: argparse.Namespace):
    """(recognizer, features, subjects, modalities, paths) of the images `--data` names.

    With `--fuse`, one entry per subject (`hfr.embed.embed_subjects`: omega-weighted for
    DR-GAN, the mean of normalised features otherwise) holding its first image's modality and path.
    """
    from hfr.embed import embed_manifest, embed_subjects
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    recognizer = load_recognizer(args.recognizer, device=args.device)
    manifest = load_targets(args.data)
    if getattr(args, "split", None):
        manifest = manifest.select(split=args.split)
    if getattr(args, "modality", None):
        manifest = manifest.select(modality=args.modality)
    if len(manifest) == 0:
        raise OptionError(f"{args.data}: no images left after --split/--modality")
    progress, update = _progress("embedding")
    with progress:
        if getattr(args, "fuse", False):
            subjects, feats = embed_subjects(recognizer, manifest, batch_size=args.batch_size, progress=update)
            first = {}
            for r in manifest:
                first.setdefault(r.subject, r)
            rows = [first[s] for s in subjects]
        else:
            feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size, progress=update)
            rows = list(manifest)
    return (recognizer, feats, [r.subject for r in rows], [r.modality for r in rows],
            [str(manifest.resolve(r.path)) for r in rows])


def cmd_gallery_build(args: argparse.Namespace) -> int:
    """Embed a dataset and write a new gallery folder."""
    from hfr.gallery import Gallery

    recognizer, feats, subjects, modalities, paths = _embed_for_gallery(args)
    gallery = Gallery.build(feats, subjects, recognizer.fingerprint, modalities=modalities, paths=paths,
                            index=args.index, nlist=args.nlist, nprobe=args.nprobe)
    folder = gallery.save(args.out)
    console.print(_stats_table(f"gallery {folder}", gallery.info()))
    return 0


def cmd_gallery_add(args: argparse.Namespace) -> int:
    """Embed more images into an existing gallery."""
    from hfr.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    recognizer, feats, subjects, modalities, paths = _embed_for_gallery(args)
    if recognizer.fingerprint != gallery.fingerprint:
        raise OptionError(f"--recognizer {args.recognizer} (fingerprint {recognizer.fingerprint}) is not the "
                          f"gallery's recognizer ({gallery.fingerprint}); use the same recognizer")
    ids = gallery.add(feats, subjects, modalities, paths)
    gallery.save(args.gallery)
    console.print(f"added {len(ids)} entries (ids {int(ids.min())}..{int(ids.max())}); gallery holds {len(gallery)}")
    return 0


def cmd_gallery_remove(args: argparse.Namespace) -> int:
    """Remove images by id or whole subjects from a gallery."""
    from hfr.gallery import Gallery

    if not args.id and not args.subject:
        raise OptionError("gallery remove: give --id N and/or --subject S (repeatable)")
    gallery = Gallery.load(args.gallery)
    removed = gallery.remove(ids=args.id or None, subjects=args.subject or None)
    gallery.save(args.gallery)
    console.print(f"removed {removed} images; gallery holds {len(gallery)}")
    return 0


def cmd_gallery_info(args: argparse.Namespace) -> int:
    """Print what a gallery holds."""
    from hfr.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    console.print(_stats_table(f"gallery {args.gallery}", gallery.info()))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Search a gallery with probe images; print (probe, rank, subject, score)."""
    from hfr.embed import embed_manifest
    from hfr.fileio import atomic_write_text
    from hfr.gallery import Gallery
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    if args.k < 1:
        raise OptionError(f"-k must be >= 1, got {args.k}")
    gallery = Gallery.load(args.gallery)
    recognizer = load_recognizer(args.recognizer, device=args.device)
    manifest = load_targets(args.probe)
    feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size)
    result = gallery.search_subjects(feats, k=args.k, fingerprint=recognizer.fingerprint)
    names = [r.path for r in manifest]
    rows = list(result.rows(names))
    table = Table(title=f"search {args.gallery} (top {args.k})", header_style="bold")
    for col in ("probe", "rank", "subject", "score"):
        table.add_column(col, overflow="fold")
    for probe, rank, subject, score in rows[: args.max_rows]:
        table.add_row(probe, str(rank), subject, f"{score:.4f}")
    console.print(table)
    if len(rows) > args.max_rows:
        console.print(f"({len(rows) - args.max_rows} more rows; use --json or --csv for all)")
    if args.json:
        atomic_write_text(args.json, json.dumps([{"probe": p, "rank": r, "subject": s, "score": sc}
                                                 for p, r, s, sc in rows], indent=2) + "\n")
        console.print(f"results: {args.json}")
    if args.csv:
        lines = ["probe,rank,subject,score"] + [f"{_csv_cell(p)},{r},{_csv_cell(s)},{sc:.6f}" for p, r, s, sc in rows]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
        console.print(f"results: {args.csv}")
    return 0


# ---------------------------------------------------------------------- parser
def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML recipe (see configs/)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set subjects=20")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", help="auto (newest run of the recipe) or a checkpoint / run folder")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders")


def _add_embed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=128, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu | cuda")


def _add_gallery_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recognizer", type=Path, required=True, help="recognizer.pt, DR-GAN generator.pt or run folder")
    p.add_argument("--data", type=Path, required=True, help="image folder or manifest")
    p.add_argument("--split", help="only rows of this split")
    p.add_argument("--modality", help="only rows of this modality")
    p.add_argument("--fuse", action="store_true",
                   help="one entry per subject: its images' features fused (omega-weighted for DR-GAN)")


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

    tr = sub.add_parser("train-recognizer", help="pretrain or fine-tune a LightCNN recognizer")
    _add_config_args(tr)
    _add_train_args(tr)
    tr.set_defaults(func=cmd_train_recognizer)

    tg = sub.add_parser("train-generator", help="train a generator (DR-GAN, ...) from its recipe")
    _add_config_args(tg)
    _add_train_args(tg)
    tg.set_defaults(func=cmd_train_generator)

    gp = sub.add_parser("generate-pairs", help="DVG-Face: NIR-VIS pairs of new identities (resumable)")
    gp.add_argument("--generator", type=Path, required=True, help="DVG-Face generator.pt (with F_s)")
    gp.add_argument("--num", type=int, required=True, help="pairs wanted in --out in all")
    gp.add_argument("--out", type=Path, required=True, help="dataset folder (manifest.csv, images/)")
    gp.add_argument("--seed", type=int, default=0, help="pair i is drawn from (seed, i)")
    gp.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass and manifest update")
    gp.add_argument("--attributes", choices=["prior", "real"], default="prior",
                    help="attribute codes from the prior (default) or encoded from --data's real NIR-VIS images")
    gp.add_argument("--data", type=Path, help="paired NIR-VIS manifest (or folder) for --attributes real")
    gp.add_argument("--split", default="train", help="rows of --data that give attributes ('' = every row)")
    gp.add_argument("--recognizer", type=Path, help="report identity consistency and diversity under it")
    gp.add_argument("--device", default="cpu", help="cpu | cuda")
    gp.set_defaults(func=cmd_generate_pairs)

    ev = sub.add_parser("evaluate", help="run an evaluation protocol: tables, JSON and plots")
    ev.add_argument("--protocol", required=True, help="cross-modal | cross-pose | verification")
    ev.add_argument("--recognizer", type=Path, required=True, help="recognizer.pt, DR-GAN generator.pt or run folder")
    ev.add_argument("--data", type=Path, required=True, help="manifest.csv or its folder")
    ev.add_argument("--out", type=Path, help="output folder (default runs/evaluate-<protocol>/<timestamp>)")
    ev.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders")
    _add_embed_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    em = sub.add_parser("embed", help="write features (.npy) and ids (.csv) of images")
    em.add_argument("--recognizer", type=Path, required=True, help="recognizer.pt, DR-GAN generator.pt or run folder")
    em.add_argument("--data", type=Path, required=True, help="image, folder or manifest")
    em.add_argument("--out", type=Path, required=True, help="features .npy (ids go to the .csv beside it)")
    em.add_argument("--fuse", action="store_true",
                    help="one feature per subject: confidence-weighted (DR-GAN) or mean (LightCNN) fusion")
    _add_embed_flags(em)
    em.set_defaults(func=cmd_embed)

    ro = sub.add_parser("rotate", help="rotate faces to other yaws with a DR-GAN generator.pt")
    ro.add_argument("--generator", type=Path, required=True, help="DR-GAN generator.pt (or its run folder)")
    ro.add_argument("--input", type=Path, required=True, help="image, folder of images or manifest")
    ro.add_argument("--yaw", default="-60,-30,0,30,60", help="comma-separated yaws in degrees (nearest pose bin)")
    ro.add_argument("--out", type=Path, required=True, help="folder for <stem>_yaw<+30>.png and pose_sweep.png")
    ro.add_argument("--fuse", action="store_true",
                    help="treat the inputs as one subject: decode one row from their fused feature")
    ro.add_argument("--seed", type=int, default=0, help="seed of the noise z (same seed, same images)")
    ro.add_argument("--device", default="cpu", help="cpu | cuda")
    # let `--yaw -60,-30,0` through: argparse takes any other "-..." word for an option
    ro._negative_number_matcher = re.compile(r"^-\d*\.?\d+(,\s*[-+]?\d*\.?\d+)*$")
    ro.set_defaults(func=cmd_rotate)

    de = sub.add_parser("deocclude", help="restore occluded faces (and frontalize them) with a TSGAN generator.pt")
    de.add_argument("--generator", type=Path, required=True, help="TSGAN generator.pt (or its run folder)")
    de.add_argument("--input", type=Path, required=True, help="image or folder of images")
    de.add_argument("--masks", "--mask", type=Path,
                    help="folder of occlusion masks named like the inputs (255 = occluded); without: none marked")
    de.add_argument("--frontalize", action="store_true", help="also run stage 2 (frontalization)")
    de.add_argument("--out", type=Path, required=True, help="folder for deoccluded/, frontalized/ and grid.png")
    de.add_argument("--batch-size", type=int, default=None,
                    help="images per forward (default: the training batch; mask attention mixes a batch)")
    de.add_argument("--device", default="cpu", help="cpu | cuda")
    de.set_defaults(func=cmd_deocclude)

    g = sub.add_parser("gallery", help="FAISS galleries: build, add, remove, info")
    gsub = g.add_subparsers(dest="gallery_command", metavar="GALLERY_COMMAND")
    gsub.required = True
    gb = gsub.add_parser("build", help="embed a dataset into a new gallery folder")
    _add_gallery_data_flags(gb)
    gb.add_argument("--out", type=Path, required=True, help="gallery folder to write")
    gb.add_argument("--index", default="flat", help="flat (exact, default) | ivf")
    gb.add_argument("--nlist", type=int, default=1024, help="IVF lists")
    gb.add_argument("--nprobe", type=int, default=16, help="IVF lists visited per query")
    _add_embed_flags(gb)
    gb.set_defaults(func=cmd_gallery_build)
    ga = gsub.add_parser("add", help="embed more images into a gallery")
    ga.add_argument("--gallery", type=Path, required=True, help="gallery folder")
    _add_gallery_data_flags(ga)
    _add_embed_flags(ga)
    ga.set_defaults(func=cmd_gallery_add)
    gr = gsub.add_parser("remove", help="remove images by id or whole subjects")
    gr.add_argument("--gallery", type=Path, required=True)
    gr.add_argument("--id", type=int, action="append", help="gallery id (repeatable)")
    gr.add_argument("--subject", action="append", help="subject (repeatable)")
    gr.set_defaults(func=cmd_gallery_remove)
    gi = gsub.add_parser("info", help="what a gallery holds")
    gi.add_argument("--gallery", type=Path, required=True)
    gi.set_defaults(func=cmd_gallery_info)

    se = sub.add_parser("search", help="search a gallery: top-k subjects per probe")
    se.add_argument("--gallery", type=Path, required=True, help="gallery folder")
    se.add_argument("--recognizer", type=Path, required=True, help="the gallery's recognizer.pt")
    se.add_argument("--probe", type=Path, required=True, help="image, folder or manifest")
    se.add_argument("-k", type=int, default=5, help="subjects per probe (clamped to the gallery's)")
    se.add_argument("--json", type=Path, help="also write the results as JSON")
    se.add_argument("--csv", type=Path, help="also write the results as CSV")
    se.add_argument("--max-rows", type=int, default=50, help="rows to print")
    _add_embed_flags(se)
    se.set_defaults(func=cmd_search)

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
    from hfr.perf import configure_process

    configure_process()
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
