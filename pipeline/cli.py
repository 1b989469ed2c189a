"""Command line: ``python -m pipeline <stage> ...`` runs one stage on explicit files.

Each subcommand lives in ``pipeline/commands/<name>.py`` with ``register(subparsers)``, which
adds its parser and sets ``func``; the Snakemake scripts call the same library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline import __version__
from pipeline.errors import InputError

# Order is the order shown in --help. A command line naming a stage imports only that stage's
# module (start-up time: `superpoints` must not pay for torch or the tracker); --help imports all.
COMMANDS = ["synth", "ingest", "fuse_mesh", "superpoints", "features_2d", "features_3d", "convert_csc", "ncut", "keyframe_masks", "track", "lift", "box_partition", "train", "predict", "evaluate", "pictures", "summary", "export"]


def _requested_command(argv: list[str] | None) -> str | None:
    """The module of the stage named on the command line (None: --help, --version, no or unknown stage)."""
    for arg in sys.argv[1:] if argv is None else argv:
        if arg in ("-h", "--help", "--version"):
            return None
        if not arg.startswith("-"):
            name = arg.replace("-", "_")
            return name if name in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None, *, all_commands: bool = True) -> argparse.ArgumentParser:
    """The parser; with ``all_commands=False`` only the stage that ``argv`` names is registered."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Run one stage of the 3D pseudo-label pipeline on explicit files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="STAGE", required=True)
    requested = None if all_commands else _requested_command(argv)
    for name in [requested] if requested else COMMANDS:
        try:
            module = importlib.import_module(f"pipeline.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pipeline.commands.{name}":
                continue  # stage not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv, all_commands=False).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
