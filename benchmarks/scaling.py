"""Time and peak memory of the frame-based stages for 25, 50 and 100 redkitchen frames, or for
250, 500 and 1,000 frames at ScanNet's resolution (--scannet).

Each stage runs as its own `python -m pipeline` process (as Snakemake runs it), so peak RSS is
that process's alone. Goal: time grows linearly with the number of frames, memory stays flat.

--scannet makes the frames ScanNet's sizes from the real redkitchen frames: colour upsampled
(bilinear) from 640x480 to 1296x968 and written as JPEG (quality 90) with its intrinsic scaled to
match, depth kept at 640x480 (ScanNet's depth size). Longer sequences walk redkitchen's 100 frames
forwards and backwards (0..99, 98..0, 1..99, ...), so the camera path stays continuous and the
scanned area does not grow with the frame count (a real scan's does, up to the room's size).
The table then also lists the artifact sizes (disk per scan) at each frame count.

    .venv/bin/python benchmarks/scaling.py [--frames 25 50 100] [--data ../shared/data/redkitchen]
    .venv/bin/python benchmarks/scaling.py --scannet [--frames 250 500 1000] [--stages fuse_mesh track]
        [--keep earlier.json]

--keep takes over the stages (and artifact sizes) of an earlier --json result that this run does
not measure, for the same frame counts: re-measure one stage after a change without re-running an
expensive one (features_2d on every frame). They are marked in the tables ("earlier run") and in the
JSON (``earlier``: stage -> that run's date, command and load).
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


SCANNET_COLOR = (1296, 968)  # ScanNet's colour size (w, h); its depth is 640x480 like redkitchen's
FRAME_STAGES = ("fuse_mesh", "features_2d", "keyframe_masks", "track", "lift")
# Memory is "flat" when the peak at the largest frame count is within this factor of the smallest's.
FLAT_MEMORY = 1.10


def pingpong(i: int, n_source: int) -> int:
    """Source frame of frame ``i`` when walking ``n_source`` frames forwards, backwards, forwards..."""
    period = 2 * (n_source - 1)
    k = i % period
    return k if k < n_source else period - k


def scannet_resolution_frames(source: Path, root: Path) -> Path:
    """The source frames' colour upsampled to 1296x968 JPEGs once (depth, poses: the source's own)."""
    import numpy as np
    from PIL import Image

    from pipeline.scene.geometry import scale_intrinsics

    out = root / "color_1296x968"
    out.mkdir(parents=True)
    n_source = len(list((source / "color").glob("*.jpg")))
    for i in range(n_source):
        with Image.open(source / "color" / f"{i}.jpg") as image:
            size = image.size
            image.convert("RGB").resize(SCANNET_COLOR, Image.BILINEAR).save(out / f"{i}.jpg", quality=90)
    intrinsic = root / "intrinsic"
    intrinsic.mkdir()
    colour = np.loadtxt(source / "intrinsic" / "intrinsic_color.txt")
    np.savetxt(intrinsic / "intrinsic_color.txt", scale_intrinsics(colour, size, SCANNET_COLOR), fmt="%.6f")
    for name in ("intrinsic_depth.txt", "extrinsic_color.txt", "extrinsic_depth.txt"):
        if (source / "intrinsic" / name).is_file():
            (intrinsic / name).symlink_to(source / "intrinsic" / name)
    return root


def scannet_scene(source: Path, frames_root: Path, n_frames: int, root: Path) -> Path:
    """A scene folder of ``n_frames`` ScanNet-resolution frames (symlinks into ``frames_root``)."""
    scene = root / source.name
    n_source = len(list((frames_root / "color_1296x968").glob("*.jpg")))
    for kind in ("color", "depth", "pose"):
        (scene / kind).mkdir(parents=True)
    for i in range(n_frames):
        j = pingpong(i, n_source)
        (scene / "color" / f"{i}.jpg").symlink_to(frames_root / "color_1296x968" / f"{j}.jpg")
        (scene / "depth" / f"{i}.png").symlink_to(source / "depth" / f"{j}.png")
        (scene / "pose" / f"{i}.txt").symlink_to(source / "pose" / f"{j}.txt")
    (scene / "intrinsic").symlink_to(frames_root / "intrinsic")
    mesh = f"{source.name}_vh_clean_2.ply"
    (scene / mesh).symlink_to(source / mesh)
    return scene


def artifact_mib(work: Path) -> dict[str, float]:
    """Size of every artifact in ``work`` (MiB), resume folders excluded (they are removed at the end)."""
    return {path.name: path.stat().st_size / 2**20 for path in sorted(work.iterdir()) if path.is_file()}


def measure(args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds user + system) of one `python -m pipeline ...` process.

    CPU seconds are what a stage costs on a cluster (and what a busy machine does not inflate the way it
    inflates wall time); they exceed wall time where a stage runs threads (torch, BLAS).
    """
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


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
        "lift": ["lift", h5["scene"], h5["superpoints"], h5["tracks"], "--masks2d", h5["masks2d"], "--out", h5["lifted"],
                 "--scene-dir", str(scene)],  # with the raw single-view masks, as the rule
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="frame counts (default 25 50 100)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "redkitchen")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="10 and 20 frames (--scannet: 20 and 40)")
    parser.add_argument("--scannet", action="store_true",
                        help="ScanNet's resolution (colour 1296x968, depth 640x480), default 250 500 1000 frames")
    parser.add_argument("--stages", nargs="+", help="measure only these stages (their inputs are still made)")
    parser.add_argument("--keep", type=Path, help="earlier --json result: take over the stages this run does not measure")
    args = parser.parse_args(argv)
    if args.scannet:
        args.frames = args.frames or ([20, 40] if args.quick else [250, 500, 1000])
    else:
        args.frames = args.frames or ([10, 20] if args.quick else [25, 50, 100])
    if not args.data.is_dir():
        print(f"reference data not found at {args.data}", file=sys.stderr)
        return 2
    results: dict[str, dict[int, tuple[float, float]]] = {}
    sizes: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as frames_tmp:
        frames_root = scannet_resolution_frames(args.data, Path(frames_tmp)) if args.scannet else None
        for n in args.frames:
            with tempfile.TemporaryDirectory() as tmp:
                if args.scannet:
                    scene = scannet_scene(args.data, frames_root, n, Path(tmp) / "scenes")
                else:
                    scene = subset_scene(args.data, n, Path(tmp) / "scenes")
                work = Path(tmp) / "work"
                work.mkdir()
                for stage, command in stage_commands(scene, work).items():
                    wanted = not args.stages or stage in args.stages or stage in ("ingest", "superpoints")
                    if not wanted and stage not in ("keyframe_masks", "track"):
                        continue  # nothing measured reads its output
                    seconds, rss, cpu = measure(command)
                    if not wanted:
                        continue  # made because a measured stage reads it
                    results.setdefault(stage, {})[n] = (seconds, rss, cpu)
                    print(f"{n:4d} frames  {stage:15s} {seconds:7.2f} s  {rss:7.0f} MiB  {cpu:7.2f} CPU s", flush=True)
                sizes[n] = artifact_mib(work)
    resolution = ({"color": list(SCANNET_COLOR), "depth": [640, 480], "source": "redkitchen upsampled"}
                  if args.scannet else "redkitchen")
    earlier = take_over(args.keep, args.frames, resolution, results, sizes) if args.keep else {}
    first, last = args.frames[0], args.frames[-1]
    pairs = list(zip(args.frames, args.frames[1:]))
    print("\nstage          " + "".join(f"{n:>6d}f s" for n in args.frames)
          + "".join(f"  s/frame {a}-{b}" for a, b in pairs) + "".join(f"{n:>6d}f MiB" for n in args.frames)
          + f"  MiB {last}/{first}  CPU s/frame {first}-{last}")
    for stage, by_n in results.items():
        times = "".join(f"{by_n[n][0]:9.2f}" for n in args.frames)
        # Linear time = the same cost per added frame in every interval (start-up cancels out).
        marginal = "".join(f"{(by_n[b][0] - by_n[a][0]) / (b - a):15.3f}" for a, b in pairs)
        memory = "".join(f"{by_n[n][1]:11.0f}" for n in args.frames)
        cpu = (by_n[last][2] - by_n[first][2]) / (last - first)
        print(f"{stage:13s}  {times}{marginal}{memory}  {by_n[last][1] / by_n[first][1]:8.2f}x  {cpu:15.3f}"
              + ("  (earlier run)" if stage in earlier else ""))
    print("(time is linear when the seconds per added frame agree between intervals; memory is flat when"
          " the ratio is near 1. Stages that do not read frames (ingest, superpoints) are for comparison.)")
    for stage, run in earlier.items():
        print(f"{stage}: from the earlier run of {run['date']} ({' '.join(run['command'])}, load {run['load']})")
    if args.scannet:
        print_goals(results, args.frames, earlier)
    print("\nartifact sizes, MiB: " + "  ".join(f"{n} frames: " + ", ".join(f"{name} {mib:.1f}" for name, mib in by_name.items())
                                              for n, by_name in sizes.items()))
    # --scannet: its own benchmark name (benchmarks/results/scaling_scannet.json beside scaling.json)
    write_result(args.json, "scaling_scannet" if args.scannet else "scaling", {
        "frames": args.frames, "resolution": resolution, "flat_memory": FLAT_MEMORY,
        "stages": {stage: [{"frames": n, "seconds": by_n[n][0], "peak_mib": by_n[n][1], "cpu_seconds": by_n[n][2]}
                          for n in args.frames if n in by_n]
                   for stage, by_n in results.items()},
        "artifact_mib": {str(n): by_name for n, by_name in sizes.items()}, "earlier": earlier}, args.quick)
    return 0


def take_over(path: Path, frames: list[int], resolution, results: dict, sizes: dict) -> dict[str, dict]:
    """Add the stages and artifact sizes of the earlier result ``path`` that this run did not measure
    (at the same frame counts) to ``results`` and ``sizes``; returns stage -> where it came from."""
    import json

    record = json.loads(Path(path).read_text())
    data = record["data"]
    if data.get("resolution") != resolution:
        raise ValueError(f"{path}: measured on other frames ({data.get('resolution')}, not {resolution})")
    run = {"date": record["date"], "command": record["command"],
           "load": record["machine"].get("load_average_1min")}
    earlier = {}
    for stage, rows in data["stages"].items():
        by_n = {row["frames"]: row for row in rows}
        if stage in results or not all(n in by_n for n in frames):
            continue
        results[stage] = {n: (by_n[n]["seconds"], by_n[n]["peak_mib"], by_n[n]["cpu_seconds"]) for n in frames}
        earlier[stage] = dict(data.get("earlier", {}).get(stage, run))
    for n in frames:
        for name, mib in data.get("artifact_mib", {}).get(str(n), {}).items():
            sizes.setdefault(n, {}).setdefault(name, mib)
    return earlier


def print_goals(results, frames, earlier=None) -> None:
    """The issue's goal beside each frame stage: nothing but time may grow with the number of frames."""
    first, last = frames[0], frames[-1]
    print(f"\ngoal at ScanNet resolution: peak RSS at {last} frames within {FLAT_MEMORY:.2f}x of {first} frames "
          "(nothing grows with the number of frames except time); time per frame constant")
    for stage in FRAME_STAGES:
        by_n = results.get(stage)
        if not by_n or first not in by_n or last not in by_n:
            continue
        ratio = by_n[last][1] / by_n[first][1]
        per_frame = (by_n[last][0] - by_n[first][0]) / (last - first)
        cpu_per_frame = (by_n[last][2] - by_n[first][2]) / (last - first)
        verdict = "met" if ratio <= FLAT_MEMORY else "NOT met"
        print(f"  {stage:15s} {per_frame:6.3f} s ({cpu_per_frame:6.3f} CPU s) per added frame; peak RSS {by_n[first][1]:6.0f} -> "
              f"{by_n[last][1]:6.0f} MiB ({ratio:.2f}x): {verdict}"
              + (f" (earlier run, {earlier[stage]['date']})" if earlier and stage in earlier else ""))


if __name__ == "__main__":
    raise SystemExit(main())
