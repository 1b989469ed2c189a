"""Time and peak memory of the frame-based stages for 25, 50 and 100 redkitchen frames.

Each stage runs as its own `python -m pipeline` process (as Snakemake runs it), so peak RSS is
that process's alone. Goal: time grows linearly with the number of frames, memory stays flat.

    .venv/bin/python benchmarks/scaling.py [--frames 25 50 100] [--data ../shared/data/redkitchen]
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

from bench_results import write_result  # noqa: E402


def subset_scene(source: Path, n_frames: int, root: Path) -> Path:
    """A scene folder with the first n frames of ``source`` (symlinks), its intrinsics and mesh."""
    scene = root / f"{source.name}"
    for kind, suffix in (("color", ".jpg"), ("depth", ".png"), ("pose", ".txt")):
        (scene / kind).mkdir(parents=True)
        for i in range(n_frames):
            (scene / kind / f"{i}{suffix}").symlink_to(source / kind / f"{i}{suffix}")
    (scene / "intrinsic").symlink_to(source / "intrinsic")
    mesh = f"{source.name}_vh_clean_2.ply"
    (scene / mesh).symlink_to(source / mesh)
    return scene


def measure(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `python -m pipeline ...` process."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def stage_commands(scene: Path, work: Path) -> dict[str, list[str]]:
    h5 = {name: str(work / f"{name}.h5") for name in ("scene", "superpoints", "masks2d", "tracks", "lifted")}
    return {
        "ingest": ["ingest", str(scene), "--out", h5["scene"]],
        "fuse_mesh": ["fuse_mesh", str(scene), "--out", str(work / "fused.ply")],
        "superpoints": ["superpoints", h5["scene"], "--out", h5["superpoints"]],
        # every frame (frame_step 1), so the frame count is what changes
        "features_2d": ["features_2d", h5["scene"], h5["superpoints"], "--out", str(work / "features_2d.h5"), "--frame-step", "1"],
        "keyframe_masks": ["keyframe_masks", h5["scene"], "--out", h5["masks2d"], "--scene-dir", str(scene)],
        "track": ["track", h5["scene"], h5["masks2d"], "--out", h5["tracks"], "--scene-dir", str(scene)],
        "lift": ["lift", h5["scene"], h5["superpoints"], h5["tracks"], "--out", h5["lifted"], "--scene-dir", str(scene)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="frame counts (default 25 50 100)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "redkitchen")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="10 and 20 frames")
    args = parser.parse_args(argv)
    args.frames = args.frames or ([10, 20] if args.quick else [25, 50, 100])
    if not args.data.is_dir():
        print(f"reference data not found at {args.data}", file=sys.stderr)
        return 2
    results: dict[str, dict[int, tuple[float, float]]] = {}
    for n in args.frames:
        with tempfile.TemporaryDirectory() as tmp:
            scene = subset_scene(args.data, n, Path(tmp) / "scenes")
            work = Path(tmp) / "work"
            work.mkdir()
            for stage, command in stage_commands(scene, work).items():
                results.setdefault(stage, {})[n] = measure(command)
                seconds, rss = results[stage][n]
                print(f"{n:4d} frames  {stage:15s} {seconds:7.2f} s  {rss:7.0f} MiB", flush=True)
    first, last = args.frames[0], args.frames[-1]
    pairs = list(zip(args.frames, args.frames[1:]))
    print("\nstage          " + "".join(f"{n:>6d}f s" for n in args.frames)
          + "".join(f"  s/frame {a}-{b}" for a, b in pairs) + "".join(f"{n:>6d}f MiB" for n in args.frames)
          + f"  MiB {last}/{first}")
    for stage, by_n in results.items():
        times = "".join(f"{by_n[n][0]:9.2f}" for n in args.frames)
        # Linear time = the same cost per added frame in every interval (start-up cancels out).
        marginal = "".join(f"{(by_n[b][0] - by_n[a][0]) / (b - a):15.3f}" for a, b in pairs)
        memory = "".join(f"{by_n[n][1]:11.0f}" for n in args.frames)
        print(f"{stage:13s}  {times}{marginal}{memory}  {by_n[last][1] / by_n[first][1]:8.2f}x")
    print("(time is linear when the seconds per added frame agree between intervals; memory is flat when"
          " the ratio is near 1. Stages that do not read frames (ingest, superpoints) are for comparison.)")
    write_result(args.json, "scaling", {"frames": args.frames, "stages": {
        stage: [{"frames": n, "seconds": by_n[n][0], "peak_mib": by_n[n][1]} for n in args.frames]
        for stage, by_n in results.items()}}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
