"""TSDF fusion of the RedKitchen frames: time and distance to the provided mesh.

    .venv/bin/python benchmarks/fusion.py [--data ../shared/data]

The provided mesh was fused from 300 frames (voxel about 1.5 cm); we have every third of them.
Chamfer distances are mean nearest-vertex distances in each direction: fused -> provided
(accuracy; includes surface seen beyond the provided mesh's depth range) and provided -> fused
(completeness); medians show the typical distance without the extra coverage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.commands.fuse_mesh import ScanNetFrames  # noqa: E402
from pipeline.scene.fusion import chamfer_distance, fuse_tsdf  # noqa: E402
from pipeline.io.ply import read_ply  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_results import write_result  # noqa: E402


def median_distance(a, b) -> float:
    from scipy.spatial import cKDTree

    return float(np.median(cKDTree(b).query(a)[0]))

CONFIGS = [
    {"voxel": 0.02, "trunc": 0.06},
    {"voxel": 0.02, "trunc": 0.06, "block_voxels": 128},
    {"voxel": 0.015, "trunc": 0.045},
    {"voxel": 0.04, "trunc": 0.12, "every": 5},
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="only the coarsest configuration (4 cm, every 5th frame)")
    args = parser.parse_args(argv)
    scene = args.data / "redkitchen"
    reference = read_ply(scene / "redkitchen_vh_clean_2.ply").vertices
    print(f"provided mesh: {len(reference):,} vertices")
    print(f"{'params':<52s} {'time':>6s} {'frames':>6s} {'blocks':>6s} {'vertices':>9s} "
          f"{'fused->ref':>10s} {'ref->fused':>10s} {'mean':>7s} {'medians (f->r, r->f)':>22s}")
    rows = []
    for params in CONFIGS[-1:] if args.quick else CONFIGS:
        start = time.perf_counter()
        mesh = fuse_tsdf(ScanNetFrames(scene), params)
        seconds = time.perf_counter() - start
        accuracy, completeness = chamfer_distance(mesh.vertices, reference)
        print(f"{str(params):<52s} {seconds:5.1f}s {mesh.stats['frames_used']:6d} {mesh.stats['blocks']:6d} "
              f"{len(mesh.vertices):9,d} {accuracy * 100:8.2f}cm {completeness * 100:8.2f}cm "
              f"{50 * (accuracy + completeness):5.2f}cm "
              f"{median_distance(mesh.vertices, reference) * 100:9.2f}cm "
              f"{median_distance(reference, mesh.vertices) * 100:6.2f}cm")
        rows.append({"params": params, "seconds": seconds, "frames": mesh.stats["frames_used"],
                     "blocks": mesh.stats["blocks"], "vertices": len(mesh.vertices), "accuracy_m": accuracy,
                     "completeness_m": completeness})
    write_result(args.json, "fusion", {"reference_vertices": len(reference), "rows": rows}, args.quick)


if __name__ == "__main__":
    main()
