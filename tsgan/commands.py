"""TSGAN's command: `hfr deocclude` (occluded faces restored, and frontalized, by a trained generator.pt).

It reaches the `hfr` command through the `hfr.commands` entry point (`tsgan = "tsgan.commands:register"`
in pyproject.toml). The command imports TSGAN's modules when it runs, so `hfr --help` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfr.cli.common import console


def cmd_deocclude(args: argparse.Namespace) -> int:
    """Restore occluded faces (and frontalize them) with a TSGAN generator.pt; outputs and a grid."""
    from tsgan.deocclude import deocclude_folder
    from tsgan.export import load_tsgan

    loaded = load_tsgan(args.generator, device=args.device)
    result = deocclude_folder(
        loaded, args.input, args.out, masks=args.masks, frontalize=args.frontalize, batch_size=args.batch_size
    )
    what = "de-occluded and frontalized" if args.frontalize else "de-occluded"
    console.print(
        f"{result.count} image(s) {what} ({'with' if result.masked else 'without'} masks, batches of "
        f"{result.batch_size}) into {args.out}; before/after grid: {result.grid}"
    )
    return 0


def register(sub: Any) -> None:
    """Add `hfr deocclude` to the `hfr` subparsers `sub`."""
    de = sub.add_parser("deocclude", help="restore occluded faces (and frontalize them) with a TSGAN generator.pt")
    de.add_argument("--generator", type=Path, required=True, help="TSGAN generator.pt (or its run folder)")
    de.add_argument("--input", type=Path, required=True, help="image or folder of images")
    de.add_argument(
        "--masks",
        "--mask",
        type=Path,
        help="folder of occlusion masks named like the inputs (255 = occluded); without: none marked",
    )
    de.add_argument("--frontalize", action="store_true", help="also run stage 2 (frontalization)")
    de.add_argument("--out", type=Path, required=True, help="folder for deoccluded/, frontalized/ and grid.png")
    de.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward (default: the training batch; mask attention mixes a batch)",
    )
    de.add_argument("--device", default="cpu", help="cpu | cuda")
    de.set_defaults(func=cmd_deocclude)
