"""Tracking throughput and memory: 25, 50 and 100 redkitchen frames (640x480).

Each frame count runs in a fresh process (peak RSS is per process). Keyframe masks (every 10th
frame, Felzenszwalb, containment-filtered) are computed first and not timed; the timed loop is the
track stage's per-frame work: reading the depth frame, propagating all objects, matching keyframe
masks, updating object states. Printed per count: wall time of the loop, frames per second, RSS
before the loop and its peak during it, objects created and live at the end, and the share of
pixels left unknown (surfaces the tracker had not observed yet).

    python benchmarks/tracking.py                       # depth-reprojection tracker, cpu
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


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_sam2_checkpoint(folder: Path, config: str) -> Path:
    import torch

    from pipeline.masks2d.sam2_amg import build_sam2_model

    model = build_sam2_model(config, (), "cpu", video=True)
    path = folder / "sam2_random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def child(scene_h5: str, n_frames: int, tracker_name: str, device: str, sam2_config: str) -> dict:
    import numpy as np

    from pipeline.artifacts import read_artifact
    from pipeline.commands.track import new_machine
    from pipeline.keyframes import select_keyframes
    from pipeline.masks2d.base import FrameInput, MaskSet, build_generator, clean_masks, pack_masks, unpack_masks
    from pipeline.tracking.base import StepFrames, build_tracker
    from pipeline.tracking.driver import DEFAULT_PARAMS, TrackingDriver
    from pipeline.tracking.frames import SceneFrames

    scene = read_artifact(scene_h5, "scene")
    frames = SceneFrames.from_scene(scene)
    indices = frames.valid_indices[:n_frames]
    keyframes = select_keyframes(frames.poses[: indices[-1] + 1], frames.valid[: indices[-1] + 1], {"stride": 10})
    generator = build_generator("felzenszwalb")
    packed = {}  # kept packed, as masks2d.h5 holds them, and unpacked when the keyframe comes
    for index in keyframes:
        raw = generator.generate(FrameInput(frames.color(index), frames.depth(index)))
        kept = clean_masks(raw, 100, 0.8, "larger", 200)[0]
        packed[int(np.searchsorted(indices, index))] = (pack_masks(kept.masks), kept.scores)
        del raw, kept
    height, width = frames.camera.shape

    def unpacker(bits, scores):
        return lambda: MaskSet(unpack_masks(bits, height, width), scores)
    params = dict(DEFAULT_PARAMS)
    steps = StepFrames(frames, indices)
    if tracker_name == "sam2-random":
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = random_sam2_checkpoint(Path(tmp), sam2_config)
            tracker = build_tracker("sam2", steps, {"model_config": sam2_config, "checkpoint": str(checkpoint)}, device)
    else:
        tracker = build_tracker(tracker_name, steps, {}, device)
    machine = new_machine(params)
    driver = TrackingDriver(steps, {s: unpacker(*m) for s, m in packed.items()}, tracker, machine, params)
    baseline = peak_rss_mib()
    started = time.perf_counter()
    labels = []  # the stage keeps every label map until it writes tracks.h5
    for step in range(len(indices)):
        labels.append(driver.step(step).labels)
    seconds = time.perf_counter() - started
    tracker.close()
    return {"frames": int(len(indices)), "keyframes": int(len(keyframes)), "seconds": seconds,
            "baseline_mib": baseline, "peak_mib": peak_rss_mib(), "objects": len(machine.objects),
            "live": len(machine.live_ids), "unknown": float(np.mean(np.stack(labels) == 65535))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=[25, 50, 100])
    parser.add_argument("--tracker", choices=["reprojection", "sam2-random"], default="reprojection")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sam2-config", default="configs/sam2.1/sam2.1_hiera_t.yaml")
    parser.add_argument("--child", nargs=2, metavar=("SCENE_H5", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.child:
        row = child(args.child[0], int(args.child[1]), args.tracker, args.device, args.sam2_config)
        print(json.dumps(row))
        return 0
    if not REDKITCHEN.is_dir():
        print(f"redkitchen not found at {REDKITCHEN}")
        return 1
    from pipeline.commands.ingest import run_ingest

    with tempfile.TemporaryDirectory() as tmp:
        scene_h5 = run_ingest(REDKITCHEN, Path(tmp) / "scene.h5", {"verify_images": "first"})
        print(f"tracker {args.tracker}, device {args.device}, redkitchen 640x480, Felzenszwalb keyframe masks every 10th frame")
        print(f"{'frames':>7}{'keyfr':>6}{'seconds':>9}{'fps':>7}{'RSS before':>12}{'peak RSS':>10}{'growth':>8}"
              f"{'objects':>9}{'live':>6}{'unknown':>9}")
        rows = []
        for n in args.frames:
            command = [sys.executable, __file__, "--child", str(scene_h5), str(n), "--tracker", args.tracker,
                       "--device", args.device, "--sam2-config", args.sam2_config]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['frames']:>7}{row['keyframes']:>6}{row['seconds']:>9.2f}{row['frames'] / row['seconds']:>7.1f}"
                  f"{row['baseline_mib']:>10.0f}Mi{row['peak_mib']:>8.0f}Mi{row['peak_mib'] - row['baseline_mib']:>6.0f}Mi"
                  f"{row['objects']:>9}{row['live']:>6}{row['unknown']:>9.2f}", flush=True)
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            print(f"time ratio {last['seconds'] / first['seconds']:.2f} for {last['frames'] / first['frames']:.0f}x frames "
                  f"(linear = {last['frames'] / first['frames']:.0f}); peak RSS {first['peak_mib']:.0f} -> {last['peak_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
