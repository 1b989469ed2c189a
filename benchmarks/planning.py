"""Planning a whole dataset: `snakemake -n` for 100, 500 and 1,500 scans, and the SLURM jobs it makes.

Each scan is a point cloud (`<scan>/points.ply`, a link to scene0000_00's; no frames), so the DAG
has ScanNet's shape (11 rule jobs per scan plus train, summary and all) without any data to read.
For each scan count it times

- `snakemake -n` (the plain dry run: every rule job planned and printed), and
- the same dry run through `profiles/slurm` (`benchmarks/group_jobs.py`), counting the jobs that
  profile submits: one per group and scan (`prep`, `masks`, `labels`) and one per gather rule.

Goals (issue 17): a few submitted jobs per scan instead of one per rule and scan; planning time
visible (reference: 16,503 jobs planned in 31 s for 1,500 scans on this machine).

    .venv/bin/python benchmarks/planning.py [--scans 100 500 1500] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import group_jobs  # noqa: E402
from bench_results import write_result  # noqa: E402

SOURCE = REPO.parent / "shared" / "data" / "scene0000_00" / "points.ply"
PROFILE = REPO / "profiles" / "slurm"
REFERENCE = {"scans": 1500, "jobs": 16503, "seconds": 31.0}  # the measurement
GOAL_JOBS_PER_SCAN = 3  # "a few jobs per scan"


def make_scans(root: Path, n: int, source: Path) -> Path:
    """``n`` point-cloud scan folders and a config naming them; returns the config."""
    lines = ["scenes:"]
    for i in range(n):
        scan = root / "scans" / f"scene{i:04d}_00"
        scan.mkdir(parents=True)
        (scan / "points.ply").symlink_to(source)
        lines.append(f"  scene{i:04d}_00: {scan}")
    config = root / "scans.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def run(command: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS MiB, CPU seconds, stdout + stderr) of one process.

    CPU seconds (user + system) are the load-independent number: on a busy machine the wall time
    is mostly waiting for a core."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, text


def planned_jobs(output: str) -> int:
    """The `total` of a dry run's job table."""
    for line in output.splitlines()[::-1]:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total":
            return int(parts[1])
    raise RuntimeError("no job table in the dry run's output")


def measure(n: int, source: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = make_scans(root, n, source)
        snakefile = ["--snakefile", str(REPO / "Snakefile"), "--configfile", str(config)]
        work = root / "work"
        work.mkdir()
        plain_s, plain_mib, plain_cpu, output = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *snakefile], work)
        jobs = planned_jobs(output)
        grouped_s, grouped_mib, grouped_cpu, output = run(
            [sys.executable, str(REPO / "benchmarks" / "group_jobs.py"), "--profile", str(PROFILE), *snakefile], work)
        submitted = group_jobs.parse(output)
    groups = sum("group" in job for job in submitted)
    return {"scans": n, "jobs": jobs, "dry_run_s": plain_s, "dry_run_cpu_s": plain_cpu, "dry_run_mib": plain_mib,
            "sbatch_ungrouped": jobs - 1,  # every rule job but `all` (it runs in the main process)
            "sbatch_grouped": len(submitted), "group_jobs": groups, "single_jobs": len(submitted) - groups,
            "grouped_dry_run_s": grouped_s, "grouped_dry_run_cpu_s": grouped_cpu, "grouped_dry_run_mib": grouped_mib}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, nargs="+", help="scan counts (default 100 500 1500)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the points.ply every scan links to")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="20 and 50 scans")
    args = parser.parse_args(argv)
    args.scans = args.scans or ([20, 50] if args.quick else [100, 500, 1500])
    if not args.source.is_file():
        print(f"reference data not found at {args.source}", file=sys.stderr)
        return 2
    rows = []
    for n in args.scans:
        rows.append(measure(n, args.source))
        r = rows[-1]
        print(f"{n:5d} scans: {r['jobs']} jobs planned in {r['dry_run_s']:.1f} s, {r['dry_run_cpu_s']:.1f} CPU s "
              f"({r['dry_run_mib']:.0f} MiB); "
              f"profiles/slurm submits {r['sbatch_grouped']} jobs instead of {r['sbatch_ungrouped']} "
              f"(dry run {r['grouped_dry_run_s']:.1f} s, {r['grouped_dry_run_cpu_s']:.1f} CPU s)", flush=True)
    print("\n scans   jobs  `snakemake -n` s  CPU s  CPU ms/job  peak MiB  sbatch without groups  with groups"
          "  per scan  grouped dry run s  CPU s")
    for r in rows:
        print(f"{r['scans']:6d} {r['jobs']:6d} {r['dry_run_s']:17.1f} {r['dry_run_cpu_s']:6.1f} "
              f"{1000 * r['dry_run_cpu_s'] / r['jobs']:11.2f} {r['dry_run_mib']:9.0f} {r['sbatch_ungrouped']:22d} "
              f"{r['sbatch_grouped']:12d} {r['sbatch_grouped'] / r['scans']:9.2f} {r['grouped_dry_run_s']:18.1f} "
              f"{r['grouped_dry_run_cpu_s']:6.1f}")
    last = rows[-1]
    per_scan = (last["sbatch_grouped"] - last["single_jobs"]) / last["scans"]
    print(f"\ngoal: a few jobs per scan: {per_scan:.0f} group jobs per scan + {last['single_jobs']} gather jobs "
          f"({last['sbatch_grouped']} for {last['scans']} scans, {last['sbatch_ungrouped'] / last['sbatch_grouped']:.1f}x "
          f"fewer than one per rule and scan): {'met' if per_scan <= GOAL_JOBS_PER_SCAN else 'NOT met'}")
    print(f"planning time (reference {REFERENCE['jobs']} jobs for {REFERENCE['scans']} scans in "
          f"{REFERENCE['seconds']:.0f} s): {last['jobs']} jobs for {last['scans']} scans in {last['dry_run_s']:.1f} s, "
          f"{last['dry_run_cpu_s']:.1f} CPU s (through profiles/slurm: {last['grouped_dry_run_s']:.1f} s, "
          f"{last['grouped_dry_run_cpu_s']:.1f} CPU s)")
    write_result(args.json, "planning", {"rows": rows, "reference": REFERENCE}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
