"""`hfr evaluate` and `hfr embed`: evaluation protocols, and features of images for other tools."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfr.cli.common import (
    RECOGNIZER_HELP,
    add_detect_flags,
    add_embed_flags,
    console,
    csv_cell,
    faces_of,
    progress_bar,
    result_table,
)
from hfr.errors import OptionError


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run an evaluation protocol and write JSON and plots."""
    from hfr.engine.rundir import new_run_dir
    from hfr.eval.report import evaluate

    if args.protocol == "generator":
        return _evaluate_generator(args)
    if args.recognizer is None:
        raise OptionError(f"--protocol {args.protocol} needs --recognizer (recognizer.pt or run folder)")
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


def _evaluate_generator(args: argparse.Namespace) -> int:
    """`--protocol generator`: the generated-face quality protocol (`hfr.eval.generator`)."""
    from hfr.engine.rundir import new_run_dir
    from hfr.eval.generator_report import markdown_table, run_generator_protocol

    if args.generator is None:
        raise OptionError("--protocol generator needs --generator (generator.pt, run folder, truth or grey)")
    if args.judge is None and args.yaw_estimator is None:
        raise OptionError(
            "--protocol generator needs --judge (a recognizer.pt the generator never saw) and/or --yaw-estimator"
        )
    out = args.out or new_run_dir("evaluate-generator", args.runs)
    with console.status("generating and measuring"):
        result = run_generator_protocol(
            args.generator,
            args.data,
            out,
            judge=args.judge,
            yaw_estimator=args.yaw_estimator,
            tasks=args.task or None,
            max_inputs=args.max_inputs,
            pairs=args.pairs,
            seed=args.seed,
            device=args.device,
        )
    console.print(markdown_table(result))
    console.print(f"result.json, table.md and grids: {out}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Write the features of every image of a target (.npy) and their ids (.csv); `--fuse`: one per subject."""
    import numpy as np

    from hfr.embed import embed_manifest, embed_subjects
    from hfr.fileio import atomic_open
    from hfr.probes import load_targets
    from hfr.recognizer.export import load_recognizer

    recognizer = load_recognizer(args.recognizer, device=args.device)
    with faces_of(args, load_targets(args.data)) as manifest:
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
    box = ("box_x1", "box_y1", "box_x2", "box_y2")
    with atomic_open(ids, "w", newline="") as handle:
        if args.fuse:
            counts = {s: 0 for s in subjects}
            for r in manifest:
                counts[r.subject] += 1
            handle.write("row,subject,images,fingerprint\n")
            for i, s in enumerate(subjects):
                handle.write(f"{i},{csv_cell(s)},{counts[s]},{recognizer.fingerprint}\n")
        elif args.detect:  # one row per face: its photo, its rank in the photo (0 = largest) and its box
            handle.write("row,path,face," + ",".join(box) + ",score,subject,modality,fingerprint\n")
            for i, r in enumerate(manifest):
                where = ",".join(r.get(c) for c in box)
                handle.write(
                    f"{i},{csv_cell(r.get('photo'))},{r.get('face')},{where},{r.get('score')},{csv_cell(r.subject)},"
                    f"{r.modality},{recognizer.fingerprint}\n"
                )
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
    ev.add_argument("--protocol", required=True, help="cross-modal | cross-pose | verification | generator")
    ev.add_argument("--recognizer", type=Path, help=RECOGNIZER_HELP)
    ev.add_argument("--data", type=Path, required=True, help="manifest.csv or its folder")
    gen = ev.add_argument_group("generator protocol (--protocol generator)")
    gen.add_argument(
        "--generator", help="generator.pt or run folder of any method; `truth` or `grey` for the references"
    )
    gen.add_argument("--judge", type=Path, help="recognizer.pt that measures identity (never the F the generator used)")
    gen.add_argument("--yaw-estimator", type=Path, help="yaw_estimator.pt that measures pose")
    gen.add_argument(
        "--task", action="append", help="rotate | frontalize | deocclude | pairs (repeat; default: all that fit)"
    )
    gen.add_argument("--max-inputs", type=int, default=240, help="test faces given to the generator per task")
    gen.add_argument("--pairs", type=int, default=400, help="generated pairs for the pairs task")
    gen.add_argument("--seed", type=int, default=0, help="seed of the input draw and the generator's noise")
    ev.add_argument("--out", type=Path, help="output folder (default runs/evaluate-<protocol>/<timestamp>)")
    ev.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders")
    add_embed_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    em = sub.add_parser("embed", help="write features (.npy) and ids (.csv) of images")
    em.add_argument("--recognizer", type=Path, required=True, help=RECOGNIZER_HELP)
    em.add_argument("--data", type=Path, required=True, help="image, folder or manifest")
    em.add_argument("--out", type=Path, required=True, help="features .npy (ids go to the .csv beside it)")
    em.add_argument(
        "--fuse",
        action="store_true",
        help="one feature per subject: confidence-weighted (DR-GAN) or mean (LightCNN) fusion",
    )
    add_embed_flags(em)
    add_detect_flags(em)
    em.set_defaults(func=cmd_embed)
