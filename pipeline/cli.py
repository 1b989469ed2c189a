"""Command line: ``python -m pipeline <stage> ...`` runs one stage on explicit files.

Each subcommand lives in ``pipeline/commands/<name>.py`` with ``register(subparsers)``, which
adds its parser with :func:`add_command` below; the Snakemake scripts call the same library functions.
A stage command's options come from its typed parameters (pipeline/params.py): ``--params`` takes a
JSON object like the stage's config section, and each flag named in ``flags`` overrides one key on
top of it. Flags left out are no override, so the defaults stay in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import sys
import typing
from typing import Callable, Literal

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


# ----------------------------------------------------------------------------------------------
# Glue shared by the stage commands.


def _flag_options(cls, name: str) -> dict:
    """argparse keywords of the flag for field ``name`` of ``cls``: its type, choices or list form."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is Literal:
        return {"choices": list(typing.get_args(hint))}
    if typing.get_origin(hint) is list:
        return {"nargs": "*", "metavar": name.upper()}
    if hint is bool:
        return {"type": _boolean, "metavar": "true|false"}
    kind = hint if hint in (int, float, str) else next((a for a in args if a in (int, float, str)), str)
    return {"type": kind}


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_command(subparsers, name: str, run: Callable, *, help: str, description: str | None = None,
                params=None, flags: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """Subcommand ``name``: ``run(args)`` does the work and returns what it wrote (a path, a list of
    paths, or None when it reported itself). ``params``: the stage's StageParams class, which adds
    ``--params`` and a flag per entry of ``flags`` (field name -> help; the default is shown)."""
    parser = subparsers.add_parser(name, help=help, description=description or help)
    if params is not None:
        defaults = params.defaults()
        fields = {f.name for f in dataclasses.fields(params)}
        for key, text in (flags or {}).items():
            assert key in fields, f"{name}: --{key} is not a {params.STAGE} parameter"
            parser.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None,
                                help=f"{text} (default: {defaults[key]})", **_flag_options(params, key))
        parser.add_argument("--params", metavar="JSON",
                            help=f"stage parameters as a JSON object, as in config.yaml's {params.STAGE} section "
                            "(flags override it)")
        parser.set_defaults(_flags=tuple(flags or ()))
    parser.set_defaults(func=lambda args: _report(run(args)))
    return parser


def params_from_args(args: argparse.Namespace) -> dict:
    """The overrides of a stage command: its --params object with the flags that were given on top."""
    try:
        params = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        raise InputError(None, f"--params is not valid JSON ({exc})") from None
    if not isinstance(params, dict):
        raise InputError(None, f"--params must be a JSON object, got {args.params!r}")
    for key in args._flags:
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    return params


def _report(written) -> int:
    for path in [] if written is None else written if isinstance(written, (list, tuple)) else [written]:
        print(f"wrote {path}")
    return 0
