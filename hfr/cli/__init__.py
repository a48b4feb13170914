"""The `hfr` command line: one module per command group, method commands through entry points.

The core command groups live here (`quickstart`, `train`, `evaluate`, `gallery`, `data`), each a
module with a `register(subparsers)` function that adds its subcommands; a method's commands
(`hfr rotate`, `hfr generate-pairs`, `hfr deocclude`, ...) arrive through the `hfr.commands`
entry-point group, so a new method adds its commands with a line in its `pyproject.toml`:

    [project.entry-points."hfr.commands"]
    drgan = "drgan.commands:register"

A command entry point that fails to import, or whose `register` fails, is logged as a warning and
left out; the other commands keep working. `hfr.cli.common` holds what the commands share.

The CLI owns the console (rich). Any HFRError is printed on one line and the process exits with
status 2; library code only raises and logs. Each command imports the libraries it needs when it
runs, so `hfr --help` does not load torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.markup import escape

from hfr import __version__
from hfr.cli import data, evaluate, gallery, quickstart, train
from hfr.cli.common import err_console
from hfr.errors import HFRError
from hfr.registry import Registry

log = logging.getLogger("hfr")

#: The entry-point group of the methods' commands: name -> `register(subparsers)`.
ENTRY_POINT_GROUP = "hfr.commands"
#: The core command groups, in the order `hfr --help` lists them.
CORE_GROUPS: tuple[Callable[[Any], None], ...] = (
    quickstart.register,
    train.register,
    evaluate.register,
    gallery.register,
    data.register,
)
#: The methods' command groups (entry points of `hfr.commands`).
COMMANDS: Registry[Callable[[Any], None]] = Registry("command group", ENTRY_POINT_GROUP)


def _register_methods(sub: Any) -> None:
    """Add every installed method's commands; a broken one is logged and left out."""
    for name in COMMANDS.names():
        register = COMMANDS.get(name)
        try:
            register(sub)
        except Exception as exc:  # noqa: BLE001  (a plug-in's bug must not take the other commands down)
            logging.getLogger(__name__).warning(
                "%s entry point %s could not add its commands (%s: %s); its commands are unavailable",
                ENTRY_POINT_GROUP,
                name,
                type(exc).__name__,
                exc,
            )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `hfr` command and all its subcommands (the methods' included)."""
    parser = argparse.ArgumentParser(
        prog="hfr", description="Heterogeneous and pose-invariant face recognition with generative models."
    )
    parser.add_argument("--version", action="version", version=f"hfr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument(
        "--threads",
        metavar="N|auto",
        help="torch threads (default: $HFR_THREADS, else auto: one per core that other processes "
        "leave free; waiting threads sleep)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in CORE_GROUPS:
        register(sub)
    _register_methods(sub)
    return parser


def _report(exc: HFRError) -> int:
    """Print an error on one line of stderr; the exit status of a refused command (2)."""
    message = escape(" ".join(str(exc).split()))
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hfr` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        from hfr.perf import configure_process

        configure_process(args.threads)  # before any command imports torch: the OpenMP wait policy is read once
        return int(args.func(args) or 0)
    except HFRError as exc:
        return _report(exc)
    except OSError as exc:  # a write outside hfr.fileio (a log line, a folder): one line all the same
        from hfr.fileio import write_error

        failure = write_error(exc.filename or "a file", exc)
        if failure is None:
            raise
        return _report(failure)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
