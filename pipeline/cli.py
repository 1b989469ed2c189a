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

# Order is the order shown in --help; modules are imported on start-up, so keep them light.
COMMANDS = ["synth", "ingest", "fuse_mesh", "superpoints", "features_2d", "features_3d", "ncut", "keyframe_masks", "track", "lift", "box_partition", "train", "predict", "evaluate", "pictures", "summary", "export"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Run one stage of the 3D pseudo-label pipeline on explicit files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="STAGE", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pipeline.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pipeline.commands.{name}":
                continue  # stage not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
