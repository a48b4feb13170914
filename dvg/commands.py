"""DVG-Face's command: `hfr generate-pairs` (NIR-VIS pairs of new identities, resumable).

It reaches the `hfr` command through the `hfr.commands` entry point (`dvg = "dvg.commands:register"`
in pyproject.toml). The command imports DVG-Face's modules when it runs, so `hfr --help` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfr.cli.common import console, progress_bar, stats_table


def cmd_generate_pairs(args: argparse.Namespace) -> int:
    """Write NIR-VIS pairs of new identities from a DVG-Face generator.pt (resumable)."""
    from dvg.generate import generate_pairs, load_dvg, pair_statistics
    from hfr.data.manifest import Manifest

    loaded = load_dvg(args.generator, device=args.device)
    progress, update = progress_bar("generating pairs")
    with progress:
        result = generate_pairs(
            loaded,
            args.out,
            args.num,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=lambda d, t: update(d, t),
            attributes=args.attributes,
            data=args.data,
            split=args.split,
        )
    console.print(
        f"{result['pairs']} pairs ({result['new_pairs']} new) in {result['out']}; manifest: {result['manifest']}"
    )
    if args.recognizer is not None:
        from hfr.recognizer.export import load_recognizer

        stats = pair_statistics(load_recognizer(args.recognizer, device=args.device), Manifest.read(args.out))
        console.print(
            stats_table(
                "generated pairs under the recognizer",
                {
                    "pairs measured": stats["pairs"],
                    "identity consistency (NIR-VIS cosine)": f"{stats['consistency']:.3f}",
                    "diversity (cosine between pairs)": f"{stats['diversity']:.3f}",
                },
            )
        )
    return 0


def register(sub: Any) -> None:
    """Add `hfr generate-pairs` to the `hfr` subparsers `sub`."""
    gp = sub.add_parser("generate-pairs", help="DVG-Face: NIR-VIS pairs of new identities (resumable)")
    gp.add_argument("--generator", type=Path, required=True, help="DVG-Face generator.pt (with F_s)")
    gp.add_argument("--num", type=int, required=True, help="pairs wanted in --out in all")
    gp.add_argument("--out", type=Path, required=True, help="dataset folder (manifest.csv, images/)")
    gp.add_argument("--seed", type=int, default=0, help="pair i is drawn from (seed, i)")
    gp.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass and manifest update")
    gp.add_argument(
        "--attributes",
        choices=["auto", "codes", "prior", "real"],
        default="auto",
        help="attribute codes: of training pairs stored in generator.pt (codes), from the prior, or "
        "encoded from --data's real NIR-VIS images (real); auto (default) = codes when stored, else prior",
    )
    gp.add_argument("--data", type=Path, help="paired NIR-VIS manifest (or folder) for --attributes real")
    gp.add_argument("--split", default="train", help="rows of --data that give attributes ('' = every row)")
    gp.add_argument("--recognizer", type=Path, help="report identity consistency and diversity under it")
    gp.add_argument("--device", default="cpu", help="cpu | cuda")
    gp.set_defaults(func=cmd_generate_pairs)
