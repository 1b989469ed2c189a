"""Run every benchmark, each writing its numbers as JSON (``make bench``; ``make bench-quick``).

    .venv/bin/python benchmarks/run_all.py                      # full: benchmarks/results/, then README rows
    .venv/bin/python benchmarks/run_all.py --quick              # short runs into benchmarks/out/quick/
    .venv/bin/python benchmarks/run_all.py --only superpoints ncut

Each benchmark runs as its own process (``python benchmarks/<name>.py ... --json OUT/<name>.json``),
its output going to ``OUT/<name>.log``; one that fails is reported and the others still run (exit 1
at the end). In full mode the README's Performance rows rendered from result files
(``benchmarks/bench_results.py``) are then rewritten from the new files; quick mode never touches
the README, and its results are not what the README quotes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import RESULTS, ensure_envelope, update_readme  # noqa: E402

QUICK_OUT = REPO / "benchmarks" / "out" / "quick"

# name -> (full-mode arguments, quick-mode arguments); "{out}" in them is the results folder
BENCHMARKS = {
    "superpoints": ([], ["--quick"]),
    "ncut": (["--perturbed", "3"], ["--quick"]),
    "tracking": ([], ["--quick"]),
    "backproject": ([], ["--quick"]),
    "scaling": ([], ["--quick"]),
    "planning": ([], ["--quick"]),
    # ScanNet resolution (long: features_2d on every frame of 1,000), then the capacity plan from it
    "scaling_scannet": (["--scannet"], ["--scannet", "--quick"]),
    "capacity": (["--scaling", "{out}/scaling_scannet.json"], ["--quick", "--scaling", "{out}/scaling_scannet.json"]),
    "fusion": ([], ["--quick"]),
    "overlap_assignment": ([], ["--quick"]),
    "train_memory": (["--held"], ["--quick"]),
    # real_scan.py's own flags: its defaults (seeds 0 1 2, both modes) in full mode
    "real_scan": ([], ["--seeds", "0", "--modes", "box"]),
}


# results named other than their script
SCRIPTS = {"scaling_scannet": "scaling"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of every benchmark)")
    parser.add_argument("--out", type=Path, help=f"results folder (default {RESULTS.relative_to(REPO)}, "
                                                  f"--quick: {QUICK_OUT.relative_to(REPO)})")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--no-readme", action="store_true", help="full mode: do not rewrite the README rows")
    args = parser.parse_args(argv)
    out = (args.out or (QUICK_OUT if args.quick else RESULTS)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed, summary = [], []
    for name, (full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(REPO / "benchmarks" / f"{SCRIPTS.get(name, name)}.py"),
                   *(arg.replace("{out}", str(out)) for arg in (quick if args.quick else full)),
                   "--json", str(out / f"{name}.json")]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        with open(out / f"{name}.log", "w") as log:
            code = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
        seconds = time.monotonic() - started
        if code == 0:  # every result file carries date and machine, whoever wrote it
            ensure_envelope(out / f"{name}.json", name, args.quick, [Path(c).name for c in command[1:2]] + command[2:])
        summary.append(f"{name:20s} {'ok' if code == 0 else f'FAILED ({code})':>12s} {seconds:7.0f} s")
        print(f"   {'ok' if code == 0 else f'failed with exit code {code}, see ' + str(out / (name + '.log'))} "
              f"({seconds:.0f} s)", flush=True)
        if code:
            failed.append(name)
    print("\n".join(["", f"results in {out}", *summary]))
    if not args.quick and not args.no_readme and out == RESULTS.resolve():
        print(f"README: {update_readme()} row(s) rewritten from {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
