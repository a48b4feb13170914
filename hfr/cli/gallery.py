"""`hfr gallery build | add | remove | info` and `hfr search`: FAISS galleries of recognizer features."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from hfr.cli.common import add_embed_flags, add_gallery_data_flags, console, csv_cell, progress_bar, stats_table
from hfr.errors import OptionError


def _embed_for_gallery(args: argparse.Namespace) -> tuple[Any, Any, list[str], list[str], list[str]]:
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
    progress, update = progress_bar("embedding")
    with progress:
        if getattr(args, "fuse", False):
            subjects, feats = embed_subjects(recognizer, manifest, batch_size=args.batch_size, progress=update)
            first: dict[str, Any] = {}
            for r in manifest:
                first.setdefault(r.subject, r)
            rows = [first[s] for s in subjects]
        else:
            feats = embed_manifest(recognizer, manifest, batch_size=args.batch_size, progress=update)
            rows = list(manifest)
    return (
        recognizer,
        feats,
        [r.subject for r in rows],
        [r.modality for r in rows],
        [str(manifest.resolve(r.path)) for r in rows],
    )


def cmd_gallery_build(args: argparse.Namespace) -> int:
    """Embed a dataset and write a new gallery folder."""
    from hfr.gallery import Gallery

    recognizer, feats, subjects, modalities, paths = _embed_for_gallery(args)
    gallery = Gallery.build(
        feats,
        subjects,
        recognizer.fingerprint,
        modalities=modalities,
        paths=paths,
        index=args.index,
        nlist=args.nlist,
        nprobe=args.nprobe,
    )
    folder = gallery.save(args.out)
    console.print(stats_table(f"gallery {folder}", gallery.info()))
    return 0


def cmd_gallery_add(args: argparse.Namespace) -> int:
    """Embed more images into an existing gallery."""
    from hfr.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    recognizer, feats, subjects, modalities, paths = _embed_for_gallery(args)
    if recognizer.fingerprint != gallery.fingerprint:
        raise OptionError(
            f"--recognizer {args.recognizer} (fingerprint {recognizer.fingerprint}) is not the "
            f"gallery's recognizer ({gallery.fingerprint}); use the same recognizer"
        )
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
    console.print(stats_table(f"gallery {args.gallery}", gallery.info()))
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
        atomic_write_text(
            args.json,
            json.dumps([{"probe": p, "rank": r, "subject": s, "score": sc} for p, r, s, sc in rows], indent=2) + "\n",
        )
        console.print(f"results: {args.json}")
    if args.csv:
        lines = ["probe,rank,subject,score"] + [f"{csv_cell(p)},{r},{csv_cell(s)},{sc:.6f}" for p, r, s, sc in rows]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
        console.print(f"results: {args.csv}")
    return 0


def register(sub: Any) -> None:
    """Add `hfr gallery ...` and `hfr search` to the `hfr` subparsers `sub`."""
    g = sub.add_parser("gallery", help="FAISS galleries: build, add, remove, info")
    gsub = g.add_subparsers(dest="gallery_command", metavar="GALLERY_COMMAND")
    gsub.required = True
    gb = gsub.add_parser("build", help="embed a dataset into a new gallery folder")
    add_gallery_data_flags(gb)
    gb.add_argument("--out", type=Path, required=True, help="gallery folder to write")
    gb.add_argument("--index", default="flat", help="flat (exact, default) | ivf")
    gb.add_argument("--nlist", type=int, default=1024, help="IVF lists")
    gb.add_argument("--nprobe", type=int, default=16, help="IVF lists visited per query")
    add_embed_flags(gb)
    gb.set_defaults(func=cmd_gallery_build)
    ga = gsub.add_parser("add", help="embed more images into a gallery")
    ga.add_argument("--gallery", type=Path, required=True, help="gallery folder")
    add_gallery_data_flags(ga)
    add_embed_flags(ga)
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
    add_embed_flags(se)
    se.set_defaults(func=cmd_search)
