"""`hfr data synth | index | align | show | stats`: render, index, align and look at datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hfr.cli.common import (
    RENDER_FLAGS,
    add_config_args,
    add_detect_flags,
    add_render_flags,
    console,
    flag_sets,
    print_config,
    progress_bar,
    stats_table,
)
from hfr.errors import OptionError


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Render a SynthFace preset into a dataset folder."""
    from hfr.config import load_config
    from hfr.data import synth
    from hfr.data.stats import dataset_stats

    cfg = load_config(synth.SynthConfig, args.config, flag_sets(args, ("preset", *RENDER_FLAGS)))
    synth.validate_config(cfg)
    if args.dry_run:
        print_config(cfg)
        return 0
    if args.out is None:
        raise OptionError("hfr data synth: --out DIR is required (where to write the dataset)")
    progress, update = progress_bar(f"rendering {cfg.preset}")
    with progress:
        manifest = synth.write_preset(cfg, args.out, progress=update)
    console.print(stats_table(f"{cfg.preset} -> {args.out}", dataset_stats(manifest)))
    console.print(f"manifest: {Path(args.out) / 'manifest.csv'}")
    return 0


def cmd_data_index(args: argparse.Namespace) -> int:
    """Index a real dataset in place and write its manifest."""
    from hfr.data import adapters
    from hfr.data.stats import dataset_stats

    result = adapters.index_dataset(
        args.format, args.root, fold=args.fold, skip_missing=args.skip_missing, protocol=args.protocol
    )
    out = adapters.write_index(result, args.out)
    console.print(stats_table(f"{args.format}: {args.root}", dataset_stats(result.manifest)))
    if result.dropped:
        report = adapters.sidecar_path(out, "dropped")
        console.print(f"[yellow]dropped {len(result.dropped)} missing entries; see {report}[/yellow]")
    console.print(f"manifest: {out}")
    return 0


def cmd_data_align(args: argparse.Namespace) -> int:
    """Align faces to a canonical 5-point template: from a landmarks CSV, or found by a detector (--detect)."""
    from hfr.data import align

    if args.template not in align.TEMPLATES:
        raise OptionError(f"--template {args.template!r}: use one of {', '.join(align.TEMPLATES)}")
    if args.detect:
        return _align_detected(args)
    if args.landmarks is None:
        raise OptionError("hfr data align: give --landmarks CSV, or --detect --input DIR|IMAGE to find the faces")
    if args.input is not None:
        raise OptionError("hfr data align: --input goes with --detect; with --landmarks the CSV lists the images")
    manifest = align.align_folder(
        args.landmarks, args.out, template=args.template, size=args.size, channels=args.channels
    )
    if manifest is not None:
        console.print(f"aligned {len(manifest)} images to {args.out}; manifest: {manifest.source}")
    else:
        console.print(f"aligned images written to {args.out} (no manifest: the CSV has no subject column)")
    return 0


def _align_detected(args: argparse.Namespace) -> int:
    """`hfr data align --detect`: find, align and list the faces of raw photos (`hfr.data.detect`)."""
    from hfr.cli.common import detect_faces
    from hfr.probes import load_targets

    if args.landmarks is not None:
        raise OptionError("hfr data align: give --landmarks or --detect, not both")
    if args.input is None:
        raise OptionError("hfr data align --detect: --input DIR|IMAGE|MANIFEST is required (the photos)")
    if args.channels is not None:
        raise OptionError("hfr data align --detect: --channels is not supported (gray photos give gray crops)")
    from hfr.data.detect import require_detector

    require_detector()  # before reading any photo
    photos = load_targets(args.input)
    result = detect_faces(args, photos, args.out, "detecting and aligning")
    misses = f"; {len(result.misses)} without a face, listed in {result.sidecar}" if result.misses else ""
    console.print(
        f"aligned {result.faces} faces from {result.photos} photos to {args.out}{misses}; "
        f"manifest: {result.manifest.source}"
    )
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
    console.print(stats_table(str(args.manifest), stats))
    if args.json:
        atomic_write_text(args.json, json.dumps(stats, indent=2) + "\n")
        console.print(f"stats: {args.json}")
    return 0


def register(sub: Any) -> None:
    """Add `hfr data` and its subcommands to the `hfr` subparsers `sub`."""
    data = sub.add_parser("data", help="datasets: render, index, align, show, stats")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True

    s = dsub.add_parser("synth", help="render a SynthFace preset (webface, multipie, nirvis, occluded)")
    s.add_argument("--preset", help="webface | multipie | nirvis | occluded")
    add_render_flags(s)
    s.add_argument("--out", type=Path, help="dataset folder to write")
    add_config_args(s)
    s.set_defaults(func=cmd_data_synth)

    i = dsub.add_parser("index", help="index a real dataset in place (writes a manifest)")
    i.add_argument("root", type=Path, help="the dataset's root folder")
    i.add_argument("--format", required=True, help="casia-nirvis2 | multipie | cfp | lfw | folder")
    i.add_argument("--out", type=Path, required=True, help="manifest.csv to write")
    i.add_argument(
        "--fold",
        type=int,
        help="protocol fold k: keep that fold and set split from it "
        "(CASIA NIR-VIS 2.0: 1..10 View 2, 0 the View 1 dev lists; CFP/LFW: 1..10)",
    )
    i.add_argument(
        "--protocol",
        help="Multi-PIE only: setting2 (default; subjects 001-200 train, 201-346 test) or none (empty split)",
    )
    i.add_argument(
        "--skip-missing",
        action="store_true",
        help="drop entries whose file is missing (writes a report of what was dropped)",
    )
    i.set_defaults(func=cmd_data_index)

    a = dsub.add_parser(
        "align", help="align faces to a 5-point template: from a landmarks CSV, or found by a detector (--detect)"
    )
    a.add_argument(
        "--landmarks",
        type=Path,
        help="CSV: path,x1,y1,...,x5,y5 (eyes, nose, mouth corners) [,subject,modality]",
    )
    a.add_argument(
        "--detect",
        action="store_true",
        help='find the faces of raw photos (MTCNN; needs pip install -e ".[detect]") instead of --landmarks',
    )
    a.add_argument("--input", type=Path, help="with --detect: a photo, a folder of photos or a manifest")
    a.add_argument("--out", type=Path, required=True, help="folder for the aligned images")
    a.add_argument("--size", type=int, help="output size (default: the template's)")
    a.add_argument("--channels", type=int, choices=(1, 3), help="force grayscale (1) or RGB (3)")
    add_detect_flags(a, with_switch=False)
    a.add_argument("--device", default="cpu", help="with --detect: where the detector runs (cpu | cuda)")
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
