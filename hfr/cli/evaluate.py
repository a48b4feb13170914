"""`hfr evaluate` and `hfr embed`: evaluation protocols, and features of images for other tools."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfr.cli.common import add_embed_flags, console, csv_cell, progress_bar, result_table


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run an evaluation protocol and write JSON and plots."""
    from hfr.engine.rundir import new_run_dir
    from hfr.eval.report import evaluate

    out = args.out or new_run_dir(f"evaluate-{args.protocol}", args.runs)
    progress, update = progress_bar("embedding")
    with progress:
        result = evaluate(
            args.recognizer,
            args.data,
            args.protocol,
            out,
            batch_size=args.batch_size,
            device=args.device,
            progress=update,
        )
    console.print(result_table(result))
    console.print(f"result.json and plots: {out}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Write the features of every image of a target (.npy) and their ids (.csv); `--fuse`: one per subject."""
    import numpy as np

    from hfr.embed import embed_manifest, embed_subjects
    from hfr.fileio import atomic_open
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    recognizer = load_recognizer(args.recognizer, device=args.device)
    manifest = load_targets(args.data)
    progress, update = progress_bar("embedding")
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
                handle.write(f"{i},{csv_cell(s)},{counts[s]},{recognizer.fingerprint}\n")
        else:
            handle.write("row,path,subject,modality,fingerprint\n")
            for i, r in enumerate(manifest):
                handle.write(f"{i},{csv_cell(r.path)},{csv_cell(r.subject)},{r.modality},{recognizer.fingerprint}\n")
    what = "subject features (fused)" if args.fuse else "features"
    console.print(f"{len(feats)} {what} ({feats.shape[1] if feats.size else 0}-d): {out}; ids: {ids}")
    return 0


def register(sub: Any) -> None:
    """Add `hfr evaluate` and `hfr embed` to the `hfr` subparsers `sub`."""
    ev = sub.add_parser("evaluate", help="run an evaluation protocol: tables, JSON and plots")
    ev.add_argument("--protocol", required=True, help="cross-modal | cross-pose | verification")
    ev.add_argument("--recognizer", type=Path, required=True, help="recognizer.pt, DR-GAN generator.pt or run folder")
    ev.add_argument("--data", type=Path, required=True, help="manifest.csv or its folder")
    ev.add_argument("--out", type=Path, help="output folder (default runs/evaluate-<protocol>/<timestamp>)")
    ev.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders")
    add_embed_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    em = sub.add_parser("embed", help="write features (.npy) and ids (.csv) of images")
    em.add_argument("--recognizer", type=Path, required=True, help="recognizer.pt, DR-GAN generator.pt or run folder")
    em.add_argument("--data", type=Path, required=True, help="image, folder or manifest")
    em.add_argument("--out", type=Path, required=True, help="features .npy (ids go to the .csv beside it)")
    em.add_argument(
        "--fuse",
        action="store_true",
        help="one feature per subject: confidence-weighted (DR-GAN) or mean (LightCNN) fusion",
    )
    add_embed_flags(em)
    em.set_defaults(func=cmd_embed)
