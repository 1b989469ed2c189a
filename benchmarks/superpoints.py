"""Superpoints: speed and agreement with ScanNet's C++ Segmentator on the RedKitchen mesh.

    .venv/bin/python benchmarks/superpoints.py [--data ../shared/data] [--repeats 5]

Prints in-process segmentation time (after numba warm-up) with a per-step breakdown, the first
call's cost (cold numba cache = compile; warm cache = load), the whole-process time of
``python -m pipeline superpoints ... --out x.json`` (PLY read and JSON write included) beside the
reference's 0.2 s (C++ -O3, whole process), and ARI / segment counts against the reference
segs.json. Point-cloud mode is compared with mesh mode on the same vertices without faces, and on
a synthetic room when ``pipeline.synth`` is available.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import superpoints as sp  # noqa: E402
from pipeline.commands.superpoints import read_segs_json  # noqa: E402
from pipeline.ply import read_ply  # noqa: E402

REFERENCE_SECONDS = 0.2  # ScanNet Segmentator, C++ -O3, whole process (README of the data)


def ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def first_call_seconds(ply: Path, cache_dir: str | None) -> float:
    """Time of the first segment_mesh call in a fresh process (numba compile or cache load)."""
    code = (
        "import time, sys; sys.path.insert(0, %r)\n"
        "from pipeline.ply import read_ply\nfrom pipeline import superpoints as sp\n"
        "m = read_ply(%r)\nt = time.perf_counter(); sp.segment_mesh(m.vertices, m.faces)\n"
        "print(time.perf_counter() - t)\n"
    ) % (str(ROOT), str(ply))
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cli_seconds(ply: Path, out_json: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "superpoints", str(ply), "--out", str(out_json)],
                       cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def mesh_breakdown(vertices, faces, repeats):
    steps = {}

    def run():
        t = [time.perf_counter()]
        v = sp.check_vertices(vertices, None)
        f = sp.check_faces(faces, len(v), None)
        t.append(time.perf_counter())
        normals = sp.segmentator_vertex_normals(v, f)
        t.append(time.perf_counter())
        edges = sp.mesh_edges(f)
        weights = sp.edge_weights(v, normals, edges)
        t.append(time.perf_counter())
        order = sp.sort_like_cpp(weights)
        t.append(time.perf_counter())
        sp.felzenszwalb_segments(len(v), edges, weights, order=order)
        t.append(time.perf_counter())
        return np.diff(t)

    rows = [run() for _ in range(repeats)]
    for name, values in zip(["checks", "normals", "edges+weights", "sort (std::sort order)", "union-find merges"],
                            np.array(rows).T):
        steps[name] = float(np.median(values))
    return steps


def purity(segments, instance):
    """Fraction of points whose superpoint's majority instance is their own."""
    labels = sp.relabel_consecutive(segments)
    table = np.zeros((labels.max() + 1, instance.max() + 1), np.int64)
    np.add.at(table, (labels, instance), 1)
    return table.max(axis=1).sum() / len(instance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scene = args.data / "redkitchen"
    ply = scene / "redkitchen_vh_clean_2.ply"
    reference = read_segs_json(scene / "redkitchen_vh_clean_2.0.010000.segs.json")
    mesh = read_ply(ply)
    print(f"RedKitchen mesh: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces; kThresh 0.01, segMinVerts 20")

    with tempfile.TemporaryDirectory() as cold_cache:
        compile_s = first_call_seconds(ply, cold_cache)
    load_s = first_call_seconds(ply, None)
    sp.segment_mesh(mesh.vertices, mesh.faces)  # warm up this process
    warm_s, segments = timed(lambda: sp.segment_mesh(mesh.vertices, mesh.faces), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        cli_s = cli_seconds(ply, Path(tmp) / "x.json", max(3, args.repeats // 2))
        cli_matches = np.array_equal(read_segs_json(Path(tmp) / "x.json"), reference)

    print("\nmesh mode vs ScanNet Segmentator (reference: 0.2 s whole process, C++ -O3)")
    print(f"  segments: ours {len(np.unique(segments))}, reference {len(np.unique(reference))}")
    print(f"  ARI {ari(reference, segments):.6f}; identical segIndices: {np.array_equal(segments, reference)} "
          f"(CLI JSON identical: {cli_matches})")
    print(f"  in-process, warm (median of {args.repeats}): {warm_s * 1000:7.1f} ms   "
          f"= {warm_s / REFERENCE_SECONDS:.2f} x reference")
    for name, seconds in mesh_breakdown(mesh.vertices, mesh.faces, args.repeats).items():
        print(f"      {name:<24s} {seconds * 1000:7.1f} ms")
    print(f"  first call, cold numba cache (compile): {compile_s:6.2f} s")
    print(f"  first call, warm numba cache (load):    {load_s:6.2f} s")
    print(f"  whole process CLI -> JSON (median):     {cli_s:6.2f} s   = {cli_s / REFERENCE_SECONDS:.1f} x reference")

    print("\npoint-cloud mode on the same vertices without faces (PCA normals)")
    for knn in (8, 10, 16):
        seconds, (cloud_segments, _) = timed(lambda: sp.segment_point_cloud(mesh.vertices, knn=knn), 1)
        print(f"  k={knn:2d}: {len(np.unique(cloud_segments)):4d} segments, ARI vs mesh mode "
              f"{ari(segments, cloud_segments):.4f}, {seconds:.2f} s (kNN + PCA normals included)")

    try:
        from pipeline.synth.room import generate_room
    except ImportError:
        print("\nsynthetic room: pipeline.synth not available, skipped")
        return
    room = generate_room(0)
    mesh_segments = sp.segment_mesh(room.vertices, room.faces)
    print(f"\nsynthetic room (seed 0): {len(room.vertices):,} vertices, {room.n_instances} instances")
    print(f"  mesh mode:   {len(np.unique(mesh_segments)):4d} segments, instance purity "
          f"{purity(mesh_segments, room.instance):.4f}")
    for knn in (8, 10, 16):
        cloud_segments, _ = sp.segment_point_cloud(room.vertices, knn=knn)
        print(f"  points k={knn:2d}: {len(np.unique(cloud_segments)):4d} segments, instance purity "
              f"{purity(cloud_segments, room.instance):.4f}, ARI vs mesh mode {ari(mesh_segments, cloud_segments):.4f}")


if __name__ == "__main__":
    main()
