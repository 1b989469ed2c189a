"""The command line: --help lists every stage; running one stage imports that stage's module only."""

import subprocess
import sys

import pytest

from pipeline.cli import COMMANDS


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_every_stage():
    run = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    listed = {line.split()[0] for line in run.stdout.splitlines() if line.startswith("    ") and line.split()}
    for name in COMMANDS:
        assert name in listed or name.replace("_", "-") in listed, (name, run.stdout)


_IMPORTED = ("import sys; from pipeline.cli import build_parser; "
             "args = build_parser(sys.argv[1:], all_commands=False).parse_args(sys.argv[1:]); "
             "print(args.command, sorted(m for m in sys.modules if m.startswith('pipeline.commands.')))")


@pytest.mark.parametrize("argv", [["superpoints", "mesh.ply", "--out", "x.json"], ["-v", "ingest", "scene", "--out", "s.h5"]])
def test_a_stage_imports_only_its_own_command_module(argv):
    run = _run(_IMPORTED, *argv)
    assert run.returncode == 0, run.stderr
    stage = argv[1] if argv[0] == "-v" else argv[0]
    assert run.stdout.split()[0] == stage
    assert run.stdout.strip().endswith(f"['pipeline.commands.{stage}']"), run.stdout


def test_an_unknown_stage_is_answered_with_every_stage():
    run = subprocess.run([sys.executable, "-m", "pipeline", "no_such_stage"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "invalid choice: 'no_such_stage'" in run.stderr and "'superpoints'" in run.stderr and "'export'" in run.stderr
