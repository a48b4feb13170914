"""`hfr train-recognizer` and `hfr train-generator`: train a recipe on the engine, export its files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfr.cli.common import add_config_args, add_train_args, console, print_config, recipe_name, train_table
from hfr.errors import OptionError


def _train_and_export(args: argparse.Namespace, model: str, title: str) -> int:
    """Train the task registered as `model` on the recipe `--config` (+ `--set`s); export its files on rank 0."""
    from hfr.config import load_config
    from hfr.engine.loop import train
    from hfr.engine.task import get_task

    task_cls = get_task(model)
    cfg = load_config(task_cls.config_class, args.config, args.set or [])
    if args.dry_run:
        print_config(cfg)
        return 0
    task = task_cls()
    result = train(task, cfg, recipe=recipe_name(args.config, model), resume=args.resume, runs_root=args.runs)
    run_dir = Path(result["run_dir"])
    if task.ctx.is_main:
        files = task.export(run_dir, meta={"steps": result["step"]})
        console.print(train_table(title.format(cfg=cfg), result))
        for name, path in files.items():
            console.print(f"{name}: {path}", soft_wrap=True)
        console.print(f"run folder: {run_dir}", soft_wrap=True)
    return 0


def cmd_train_recognizer(args: argparse.Namespace) -> int:
    """Pretrain or fine-tune a LightCNN on the engine; export recognizer.pt into the run folder."""
    from hfr.config import read_model_name

    if args.config is not None:
        model = read_model_name(args.config, args.set or [], default="recognizer")
        if model != "recognizer":
            raise OptionError(
                f"{args.config} trains model {model!r}, not a recognizer; use "
                f"`hfr train-generator --config {args.config}`"
            )
    return _train_and_export(args, "recognizer", "train-recognizer ({cfg.mode}, {cfg.net.arch})")


def cmd_train_generator(args: argparse.Namespace) -> int:
    """Train the generator a recipe's `model:` names (drgan, ...); export generator.pt (and recognizer.pt)."""
    from hfr.config import read_model_name

    if args.config is None:
        raise OptionError("train-generator needs --config (a recipe in configs/drgan/, ...)")
    model = read_model_name(args.config, args.set or [])
    return _train_and_export(args, model, "train-generator ({cfg.model})")


def register(sub: Any) -> None:
    """Add `hfr train-recognizer` and `hfr train-generator` to the `hfr` subparsers `sub`."""
    tr = sub.add_parser("train-recognizer", help="pretrain or fine-tune a LightCNN recognizer")
    add_config_args(tr)
    add_train_args(tr)
    tr.set_defaults(func=cmd_train_recognizer)

    tg = sub.add_parser("train-generator", help="train a generator (DR-GAN, ...) from its recipe")
    add_config_args(tg)
    add_train_args(tg)
    tg.set_defaults(func=cmd_train_generator)
