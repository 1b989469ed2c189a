"""Tracking throughput and memory of the `track` stage itself: 25, 50 and 100 redkitchen frames (640x480).

For each frame count a scene folder with the first n frames is ingested and its keyframe masks are
made by the `keyframe_masks` stage (not timed). Then, in a fresh process (peak RSS is per process),
the `track` stage's own function runs, ``pipeline.commands.track.run_track``, exactly as
``python -m pipeline track`` and the DAG call it, with config.yaml's `track` section: reading the
keyframe masks keyframe by keyframe, propagating every object, matching, updating object states,
streaming each label map into tracks.h5, resume saves, and writing the artifact. Printed per count:
wall and CPU time of that call, frames per second, RSS before the call and its peak during it,
objects created and live at the end, and the share of pixels left unknown (surfaces the tracker had
not observed yet), the last three read back from tracks.h5 after the timing.

    python benchmarks/tracking.py                       # config.yaml's tracker (depth reprojection), cpu
    python benchmarks/tracking.py --quick --json out.json   # 10 and 20 frames
    python benchmarks/tracking.py --tracker sam2-random --device cuda
        # SAM 2.1 hiera-tiny with random weights (no checkpoint needed): SAM 2's cost, not its quality

There is no published reference for these numbers; the capture rate of the sequences (30 fps for
ScanNet and 7-Scenes) is the natural yardstick for an offline stage.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REDKITCHEN = REPO.parent / "shared" / "data" / "redkitchen"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import write_result  # noqa: E402
from scaling import subset_scene  # noqa: E402


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM belongs to the process's own memory map; ru_maxrss would also
    carry the parent's peak across fork + exec (Linux keeps it), inflating the children's figures."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def config_section(name: str) -> dict:
    import yaml

    return dict(yaml.safe_load((REPO / "config.yaml").read_text()).get(name) or {})


def random_sam2_checkpoint(folder: Path, config: str) -> Path:
    import torch

    from pipeline.tracking.masks2d.sam2_amg import build_sam2_model

    model = build_sam2_model(config, (), "cpu", video=True)
    path = folder / "sam2_random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def track_params(tracker: str, device: str, sam2_config: str, folder: Path) -> dict:
    params = {**config_section("track"), "device": device}
    if tracker == "sam2-random":
        checkpoint = random_sam2_checkpoint(folder, sam2_config)
        params.update({"tracker": "sam2", "sam2": {"model_config": sam2_config, "checkpoint": str(checkpoint)}})
    return params


def child(scene_h5: str, masks2d_h5: str, out: str, params: dict) -> dict:
    """Run the track stage once in this (fresh) process; time and memory of that call only."""
    import numpy as np

    from pipeline.io.artifacts import open_artifact
    from pipeline.commands.track import run_track
    from pipeline.tracking.states import State

    baseline = peak_rss_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    run_track(scene_h5, masks2d_h5, out, params)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = peak_rss_mib()
    with open_artifact(out, "tracks") as tracks:  # read frame by frame, after the timing
        labels = tracks.data["labels"]
        unknown = sum(int(np.count_nonzero(labels[i] == int(tracks.attrs["unknown_label"]))) for i in range(len(labels)))
        state = tracks.data["objects/state"][()]
        return {"frames": int(len(labels)), "keyframes": int(tracks.data["frames/is_keyframe"][()].sum()),
                "width": int(tracks.attrs["width"]), "height": int(tracks.attrs["height"]),
                "seconds": seconds, "cpu_seconds": cpu_seconds, "baseline_mib": baseline, "peak_mib": peak,
                "objects": int(tracks.attrs["n_objects"]),
                "live": int(np.isin(state, [int(State.ACTIVE), int(State.DORMANT)]).sum()),
                "unknown": unknown / max(1, labels.size)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=None, help="frame counts (default 25 50 100)")
    parser.add_argument("--tracker", choices=["reprojection", "sam2-random"], default="reprojection")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sam2-config", default="configs/sam2.1/sam2.1_hiera_t.yaml")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="10 and 20 frames")
    parser.add_argument("--child", nargs=4, metavar=("SCENE_H5", "MASKS2D_H5", "OUT", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.child:
        print(json.dumps(child(*args.child[:3], json.loads(args.child[3]))))
        return 0
    if not REDKITCHEN.is_dir():
        print(f"redkitchen not found at {REDKITCHEN}")
        return 1
    frame_counts = args.frames or ([10, 20] if args.quick else [25, 50, 100])
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.keyframe_masks import run_keyframe_masks

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        params = track_params(args.tracker, args.device, args.sam2_config, Path(tmp))
        keyframe_params = config_section("keyframe_masks")
        stride = keyframe_params.get("keyframes", {}).get("stride")
        print(f"track stage (run_track), tracker {params['tracker']}{' (random weights)' if args.tracker == 'sam2-random' else ''}, "
              f"device {args.device}, redkitchen 640x480; keyframe masks by the keyframe_masks stage "
              f"({keyframe_params.get('generator')}, keyframe stride {stride}), not timed")
        print(f"{'frames':>7}{'keyfr':>6}{'seconds':>9}{'cpu s':>8}{'fps':>7}{'RSS before':>12}{'peak RSS':>10}"
              f"{'growth':>8}{'objects':>9}{'live':>6}{'unknown':>9}")
        for n in frame_counts:
            root = Path(tmp) / f"n{n}"
            scene = subset_scene(REDKITCHEN, n, root / "scenes")
            scene_h5 = run_ingest(scene, root / "scene.h5", {"verify_images": "first"})
            masks2d_h5 = run_keyframe_masks(scene_h5, root / "masks2d.h5", keyframe_params)
            command = [sys.executable, __file__, "--child", str(scene_h5), str(masks2d_h5), str(root / "tracks.h5"),
                       json.dumps(params)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['frames']:>7}{row['keyframes']:>6}{row['seconds']:>9.2f}{row['cpu_seconds']:>8.2f}"
                  f"{row['frames'] / row['seconds']:>7.1f}{row['baseline_mib']:>10.0f}Mi{row['peak_mib']:>8.0f}Mi"
                  f"{row['peak_mib'] - row['baseline_mib']:>6.0f}Mi{row['objects']:>9}{row['live']:>6}{row['unknown']:>9.2f}",
                  flush=True)
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            print(f"time ratio {last['seconds'] / first['seconds']:.2f} for {last['frames'] / first['frames']:.0f}x frames "
                  f"(linear = {last['frames'] / first['frames']:.0f}); peak RSS {first['peak_mib']:.0f} -> {last['peak_mib']:.0f} MiB")
    write_result(args.json, "tracking", {"tracker": params["tracker"] + ("-random" if args.tracker == "sam2-random" else ""),
                                         "device": args.device, "width": rows[-1]["width"], "height": rows[-1]["height"],
                                         "keyframe_stride": stride, "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
