"""DR-GAN's command: `hfr rotate` (faces turned to other yaws by a trained generator.pt).

It reaches the `hfr` command through the `hfr.commands` entry point (`drgan = "drgan.commands:register"`
in pyproject.toml). The command imports DR-GAN's modules when it runs, so `hfr --help` stays light.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from hfr.cli.common import console


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


def register(sub: Any) -> None:
    """Add `hfr rotate` to the `hfr` subparsers `sub`."""
    ro = sub.add_parser("rotate", help="rotate faces to other yaws with a DR-GAN generator.pt")
    ro.add_argument("--generator", type=Path, required=True, help="DR-GAN generator.pt (or its run folder)")
    ro.add_argument("--input", type=Path, required=True, help="image, folder of images or manifest")
    ro.add_argument("--yaw", default="-60,-30,0,30,60", help="comma-separated yaws in degrees (nearest pose bin)")
    ro.add_argument("--out", type=Path, required=True, help="folder for <stem>_yaw<+30>.png and pose_sweep.png")
    ro.add_argument(
        "--fuse", action="store_true", help="treat the inputs as one subject: decode one row from their fused feature"
    )
    ro.add_argument("--seed", type=int, default=0, help="seed of the noise z (same seed, same images)")
    ro.add_argument("--device", default="cpu", help="cpu | cuda")
    # let `--yaw -60,-30,0` through: argparse takes any other "-..." word for an option
    ro._negative_number_matcher = re.compile(r"^-\d*\.?\d+(,\s*[-+]?\d*\.?\d+)*$")
    ro.set_defaults(func=cmd_rotate)
