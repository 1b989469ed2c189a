"""Peak memory and seconds per step of the `train` stage for 4, 32 and 128 scenes.

The scenes are copies of one scan's training inputs (default: ``../shared/data/scene0000_00``,
81k points and 27 boxes, run through ingest, superpoints and box_partition once into a temporary
folder; each copy is a folder of symlinks to those artifacts under its own name). For each scene
count, `python -m pipeline train` runs as its own process (box mode, demo preset, CPU, a few steps),
so its peak RSS (``ru_maxrss`` of the child) is the stage's alone. Seconds per step are the median
of the per-step times the checkpoint's history records (log_every 1), the first step left out
(warm-up).

Goal: peak RSS at 128 scenes within 1.2x of 4 scenes (scenes stream from their artifacts through
a cache of ``train.scene_cache`` scenes). ``--held`` also runs each count with a cache as large as
the count, i.e. every scene held in memory as `train` did before streaming, for comparison.

    .venv/bin/python benchmarks/train_memory.py [--scenes 4 32 128] [--steps 5] [--held] [--json OUT]
    .venv/bin/python benchmarks/train_memory.py --quick        # 2 and 8 scenes, 3 steps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import write_result  # noqa: E402

GOAL_RATIO = 1.2  # peak RSS at the largest scene count / at the smallest
ARTIFACTS = ("scene.h5", "superpoints.h5", "boxes.h5")


def pipeline_run(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"python -m pipeline {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def base_artifacts(data: Path, work: Path) -> Path:
    """ingest, superpoints and box_partition of one scan (the inputs `train` reads)."""
    out = work / "base"
    out.mkdir(parents=True)
    pipeline_run(["ingest", str(data), "--out", str(out / "scene.h5")])
    pipeline_run(["superpoints", str(out / "scene.h5"), "--out", str(out / "superpoints.h5")])
    pipeline_run(["box_partition", str(out / "scene.h5"), "--out", str(out / "boxes.h5")])
    return out


def copies(base: Path, n: int, root: Path) -> list[Path]:
    """``n`` results/<scene> folders, each of symlinks to the base artifacts under its own name."""
    folders = []
    for i in range(n):
        folder = root / f"copy{i:04d}"
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for name in ARTIFACTS:
                (folder / name).symlink_to(base / name)
        folders.append(folder)
    return folders


def measure(folders: list[Path], out: Path, steps: int, cache: int | None) -> dict:
    """One `train` process: wall seconds, peak RSS (MiB), per-step seconds from the checkpoint."""
    params = {"mode": "box", "preset": "demo", "device": "cpu", "iterations": steps, "log_every": 1,
              "checkpoint_every": 0}
    if cache is not None:
        params["scene_cache"] = cache
    command = [sys.executable, "-m", "pipeline", "train", "--out", str(out), "--no-resume", "--params", json.dumps(params)]
    for folder in folders:
        command += ["--scene-dir", str(folder)]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    stderr = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"train on {len(folders)} scenes failed:\n{stderr[-3000:]}")
    from pipeline.learning.train.loop import load_checkpoint_file

    history = json.loads(load_checkpoint_file(out)["history"])
    seconds = [row["seconds"] for row in history]
    timed = seconds[1:] or seconds
    return {"scenes": len(folders), "steps": len(seconds), "peak_mib": usage.ru_maxrss / 1024,
            "s_per_step": statistics.median(timed), "step_seconds": seconds, "wall_s": wall,
            "outside_steps_s": wall - sum(seconds), "scene_cache": cache}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, nargs="+", help="scene counts (default 4 32 128; --quick 2 8)")
    parser.add_argument("--steps", type=int, help="training steps per run (default 5; --quick 3)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scene0000_00",
                        help="the scan copied (ScanNet layout or points.ply, with boxes.json)")
    parser.add_argument("--held", action="store_true", help="also run with every scene held (scene_cache = count)")
    parser.add_argument("--quick", action="store_true", help="2 and 8 scenes, 3 steps")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)
    counts = args.scenes or ([2, 8] if args.quick else [4, 32, 128])
    steps = args.steps or (3 if args.quick else 5)
    if not args.data.is_dir():
        print(f"{args.data}: no such scene folder (give --data)", file=sys.stderr)
        return 2
    rows, held = [], []
    with tempfile.TemporaryDirectory(prefix="train_memory_") as tmp:
        work = Path(tmp)
        base = base_artifacts(args.data, work)
        for n in counts:
            folders = copies(base, n, work / "scenes")
            rows.append(measure(folders, work / f"model_{n}.pt", steps, None))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "step_seconds"}), flush=True)
            if args.held:
                held.append(measure(folders, work / f"held_{n}.pt", steps, n))
                print(json.dumps({k: v for k, v in held[-1].items() if k != "step_seconds"}), flush=True)
    ratio = rows[-1]["peak_mib"] / rows[0]["peak_mib"]
    print(f"\ntrain, box mode, demo preset, CPU, {steps} steps, copies of {args.data.name}")
    header = f"{'scenes':>7s} {'peak RSS MiB':>13s} {'s/step':>7s} {'outside steps s':>16s}"
    if held:
        header += f" {'all held: MiB':>14s} {'s/step':>7s}"
    print(header)
    for i, row in enumerate(rows):
        line = f"{row['scenes']:7d} {row['peak_mib']:13.0f} {row['s_per_step']:7.2f} {row['outside_steps_s']:16.1f}"
        if held:
            line += f" {held[i]['peak_mib']:14.0f} {held[i]['s_per_step']:7.2f}"
        print(line)
    print(f"peak RSS {counts[-1]} / {counts[0]} scenes: {ratio:.3f}x (goal <= {GOAL_RATIO}x: "
          f"{'met' if ratio <= GOAL_RATIO else 'NOT met'})")
    if held:
        print(f"every scene held: {held[-1]['peak_mib'] / held[0]['peak_mib']:.3f}x")
    write_result(args.json, "train_memory", {
        "data": args.data.name, "steps": steps, "mode": "box", "preset": "demo", "device": "cpu",
        "rows": rows, "held": held, "ratio": ratio, "goal_ratio": GOAL_RATIO}, args.quick)
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
