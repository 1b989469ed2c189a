"""Back-projection throughput and memory: 25, 50 and 100 redkitchen frames.

Each frame count runs in a fresh process (peak RSS is per process), streaming every frame of the
sequence (frame_step 1) through the feature backend and the depth-tested back-projection onto the
89k-vertex mesh. Printed per count: wall time of the frame loop, frames per second, its CPU time
(steadier than wall time on a shared machine), the process's RSS before the loop and its peak
during the loop. Streaming means the peak should not grow with
the number of frames (flat) while time grows linearly.

    python benchmarks/backproject.py                      # handcrafted colour features, cpu
    python benchmarks/backproject.py --backend dino-random --device cuda
        # a full-size ViT-S/8 with random weights (no checkpoint needed): DINO's cost, not its features
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
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import write_result  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_backend(name: str, device):
    from pipeline.unscene3d.features.color import ColorFeatures
    from pipeline.unscene3d.features.dino import DinoFeatures, build_dino_vit

    if name == "handcrafted":
        return ColorFeatures({}, device)
    return DinoFeatures(build_dino_vit(), {}, device)  # random weights, real size


def child(scene_h5: str, n_frames: int, backend_name: str, device_name: str, batch_size: int) -> dict:
    import numpy as np

    from pipeline.io.artifacts import read_artifact
    from pipeline.unscene3d.backproject import Cameras, backproject_features
    from pipeline.devices import resolve_device
    from pipeline.commands.features_2d import read_frame_batches

    device = resolve_device(device_name)
    scene = read_artifact(scene_h5, "scene")
    ids = scene["frames/id"][scene["frames/valid"].astype(bool)][:n_frames]
    poses = {int(i): p for i, p in zip(scene["frames/id"], scene["frames/pose"])}
    color_size = tuple(int(x) for x in scene["frames/color_size"])
    depth_size = tuple(int(x) for x in scene["frames/depth_size"])
    cameras = Cameras(scene["intrinsics/color"], scene["intrinsics/depth"], color_size, depth_size)
    backend = make_backend(backend_name, device)
    params = {"batch_size": batch_size, "depth_scale": 1000.0}
    # Warm-up on one frame so one-off allocations are in the baseline, not the measurement.
    warm = read_frame_batches(Path(scene.attrs["scene_dir"]), ids[:1], poses, backend, params, color_size, depth_size)
    backproject_features(scene["vertices"], warm, cameras, backend.feature_dim, 0.05, str(device))
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = peak_rss_mib()
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    batches = read_frame_batches(Path(scene.attrs["scene_dir"]), ids, poses, backend, params, color_size, depth_size)
    result = backproject_features(scene["vertices"], batches, cameras, backend.feature_dim, 0.05, str(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    row = {"frames": int(len(ids)), "seconds": seconds, "cpu_seconds": cpu_seconds() - cpu_started, "baseline_mib": baseline, "peak_mib": peak_rss_mib(),
           "points_seen": int((result.visibility > 0).sum()), "mean_visibility": float(np.mean(result.visibility))}
    if device.type == "cuda":
        row["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="*", default=None, help="frame counts (default 25 50 100)")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="10 and 20 frames")
    parser.add_argument("--backend", choices=["handcrafted", "dino-random"], default="handcrafted")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("SCENE_H5", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.frames = args.frames or ([10, 20] if args.quick else [25, 50, 100])
    warnings.filterwarnings("ignore")
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.backend, args.device, args.batch_size)))
        return 0
    if not REDKITCHEN.is_dir():
        print(f"redkitchen not found at {REDKITCHEN}")
        return 1
    from pipeline.commands.ingest import run_ingest

    with tempfile.TemporaryDirectory() as tmp:
        scene_h5 = run_ingest(REDKITCHEN, Path(tmp) / "scene.h5", {"verify_images": "first"})
        print(f"backend {args.backend}, device {args.device}, batch {args.batch_size}, 89,209 points, 640x480 frames")
        print(f"{'frames':>7}{'seconds':>9}{'fps':>7}{'s/frame':>9}{'CPU s':>8}{'RSS before':>12}{'peak RSS':>10}{'growth':>8}{'seen':>8}")
        rows = []
        for n in args.frames:
            command = [sys.executable, __file__, "--child", str(scene_h5), str(n), "--backend", args.backend,
                       "--device", args.device, "--batch-size", str(args.batch_size)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            gpu = f"  GPU peak {row['gpu_peak_mib']:.0f} MiB" if "gpu_peak_mib" in row else ""
            print(f"{row['frames']:>7}{row['seconds']:>9.2f}{row['frames'] / row['seconds']:>7.1f}"
                  f"{row['seconds'] / row['frames']:>9.3f}{row['cpu_seconds']:>8.1f}{row['baseline_mib']:>10.0f}Mi{row['peak_mib']:>8.0f}Mi"
                  f"{row['peak_mib'] - row['baseline_mib']:>6.0f}Mi{row['points_seen']:>8}{gpu}", flush=True)
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            print(f"time ratio {last['seconds'] / first['seconds']:.2f} (CPU time {last['cpu_seconds'] / first['cpu_seconds']:.2f}) "
                  f"for {last['frames'] / first['frames']:.0f}x frames "
                  f"(linear = {last['frames'] / first['frames']:.0f}); peak RSS {first['peak_mib']:.0f} -> {last['peak_mib']:.0f} MiB")
    write_result(args.json, "backproject", {"backend": args.backend, "device": args.device, "batch_size": args.batch_size,
                                            "rows": rows}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
