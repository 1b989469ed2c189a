"""Masked NCut: production solver vs the plain dense reference, and mask quality.

For each scene (by default the redkitchen RGB-D sequence, the real labelled point cloud
scene0000_00, and generated synthetic rooms) this runs
ingest -> superpoints -> weight-free 2D and 3D features, builds the binarised affinity once, then
runs the same masked iterative NCut twice:

  reference   scipy.linalg.eigh on the full dense (D - W, D) pencil every iteration
  production  solver "auto": matrix-free ARPACK on the deflated normalised affinity

and prints, in one table, the time of each, their ratio, and the agreement of the masks
(IoU in points between the i-th reference and the i-th production mask; the iteration is
sequential, so one disagreement would shift everything after it). The stage's own masks (run_ncut,
default parameters) follow: the size of the largest one as a share of the scene's points, and, for
scenes with ground truth, class-agnostic AP / AP50 / AP25 (pipeline.outputs.evaluate, ScanNet rules; the 18
benchmark classes on scene0000_00). The mean line is over the generated rooms only.

``--perturbed K`` adds K copies of scene0000_00 as another scan of the room might see it (70-85 % of
its points, rotated about the vertical, jittered by 3 mm; ground truth carried along) and prints
their mean beside the superpoints taken as instances: a setting tuned to the one labelled scan
shows here whether it holds on scans it was not tuned on.

    python benchmarks/ncut.py                       # redkitchen + scene0000_00 + synthetic seeds 0 1 2
    python benchmarks/ncut.py --synthetic 0 1 2 3 --no-redkitchen
    python benchmarks/ncut.py --adjacency-radius 0       # superpoint adjacency from mesh edges only
    python benchmarks/ncut.py --quick --json out.json    # one generated room, one run of each solver
    python benchmarks/ncut.py --perturbed 3              # and three perturbed copies of scene0000_00

Both solvers are timed the same way: the best of --repeats runs (default 3) of the whole masked
iteration on the same prepared affinity.

Goal: production >= 10x faster than the reference, every mask at IoU >= 0.95.

Note on --adjacency-radius (the superpoints stage's ``adjacency_radius``, default 0.03 m): NCut
keeps the connected component of each foreground over superpoint adjacency. Synthetic rooms build
each furniture part as its own (unwelded) mesh, so with mesh edges alone (0) the parts of one
chair are not adjacent and that step cuts objects into parts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_results import write_result  # noqa: E402

REDKITCHEN = REPO.parent / "shared" / "data" / "redkitchen"
SCANNET = REPO.parent / "shared" / "data" / "scene0000_00"  # a real labelled point cloud


def prepare_scene(scene_dir: Path, work: Path, frame_step: int, adjacency_radius: float) -> Path:
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.superpoints import run_superpoints

    out = work / scene_dir.name
    out.mkdir(parents=True, exist_ok=True)
    run_ingest(scene_dir, out / "scene.h5", {"verify_images": "first"})
    run_superpoints(out / "scene.h5", out / "superpoints.h5", {"adjacency_radius": adjacency_radius})
    run_features_2d(out / "scene.h5", out / "superpoints.h5", out / "features_2d.h5", {"frame_step": frame_step})
    run_features_3d(out / "scene.h5", out / "superpoints.h5", out / "features_3d.h5")
    return out


# (share of points kept, rotation about z in radians) of each perturbed copy, in order
PERTURBATIONS = [(0.7, 0.0), (0.7, 0.6), (0.85, 1.3), (0.8, 2.2), (0.75, 3.0)]


def perturbed_copy(source: Path, out_root: Path, index: int, jitter: float = 0.003) -> Path:
    """Copy ``index`` of a labelled point-cloud scan (``PERTURBATIONS``): a seeded random share of
    its points with their ground-truth labels, rotated about z and jittered; boxes are left out."""
    from pipeline.io.ply import read_ply, write_ply

    keep, angle = PERTURBATIONS[index % len(PERTURBATIONS)]
    rng = np.random.default_rng(index)
    ply = read_ply(source / "points.ply")
    labels = (source / f"{source.name}.txt").read_text().split()
    if len(labels) != len(ply.vertices):
        raise ValueError(f"{source}: {len(labels)} labels for {len(ply.vertices)} points")
    chosen = np.sort(rng.choice(len(labels), int(keep * len(labels)), replace=False))
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    points = ply.vertices[chosen].astype(np.float64) @ rotation.T + rng.normal(0, jitter, (len(chosen), 3))
    name = f"{source.name}_p{index}"
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    write_ply(out / "points.ply", points, colors=None if ply.colors is None else ply.colors[chosen])
    (out / f"{name}.txt").write_text("\n".join(labels[i] for i in chosen) + "\n")
    return out


def superpoint_ap50(out: Path) -> float:
    """AP50 of the superpoints taken as instances (the trivial baseline)."""
    from pipeline.io.artifacts import read_artifact
    from pipeline.commands.evaluate import Predictions, score_predictions

    labels = read_artifact(out / "superpoints.h5", "superpoints")["point_superpoint"]
    return score_predictions(out / "scene.h5", Predictions("superpoints", np.asarray(labels, np.int64), None, None))["ap50"]


def mask_ious(reference: np.ndarray, production: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Point IoU of the i-th masks (0 for masks that only one solver produced)."""
    n = max(len(reference), len(production))
    ious = np.zeros(n)
    for i in range(min(len(reference), len(production))):
        inter = sizes[reference[i] & production[i]].sum()
        union = sizes[reference[i] | production[i]].sum()
        ious[i] = inter / union if union else 1.0
    return ious


def compare(out: Path, params: dict, repeats: int) -> dict:
    from pipeline.commands.ncut import prepare_ncut
    from pipeline.unscene3d.ncut import masked_ncut

    started = time.perf_counter()
    # The stage's own preparation: modalities, binarised affinity, room structure, extent test.
    inputs = prepare_ncut(out / "superpoints.h5", out / "features_2d.h5", out / "features_3d.h5", params)
    affinity_s = time.perf_counter() - started
    above = inputs.above
    sizes = np.bincount(inputs.point_superpoint)
    runs = {}
    # Both solvers: the best of `repeats` runs, timed the same way.
    for name, solver in (("reference", "dense"), ("production", "auto")):
        best = np.inf
        for _ in range(repeats):
            started = time.perf_counter()
            runs[name] = masked_ncut(above, inputs.adjacency, {**params, "solver": solver}, inputs.premasked,
                                     inputs.is_background)
            best = min(best, time.perf_counter() - started)
        runs[name].seconds = best
    ious = mask_ious(runs["reference"].masks, runs["production"].masks, sizes)
    return {
        "superpoints": len(sizes), "density": above.nnz / len(sizes) ** 2, "affinity_s": affinity_s,
        "iterations": runs["production"].n_iterations, "masks_ref": len(runs["reference"].masks),
        "masks_prod": len(runs["production"].masks), "ref_s": runs["reference"].seconds,
        "prod_s": runs["production"].seconds, "min_iou": float(ious.min()) if len(ious) else 1.0,
        "n_below": int((ious < 0.95).sum()),
    }


def quality(out: Path, params: dict) -> dict:
    """The stage's masks: their number and largest size, and AP / AP50 / AP25 where there is ground truth."""
    from pipeline.io.artifacts import read_artifact
    from pipeline.commands.evaluate import run_evaluate
    from pipeline.commands.ncut import run_ncut

    run_ncut(out / "superpoints.h5", out / "features_2d.h5", out / "features_3d.h5", out / "ncut.h5", params)
    art = read_artifact(out / "ncut.h5", "ncut")
    labels = art["point_instance"]
    sizes = np.bincount(labels[labels >= 0], minlength=len(art["masks"]))
    result = {"masks": int(len(art["masks"])), "largest": int(sizes.max()) if len(sizes) else 0,
              "points": int(len(labels)), "covered_points": int((labels >= 0).sum()),
              "ap": None, "ap50": None, "ap25": None}
    if "gt/instance" in read_artifact(out / "scene.h5", "scene").data:
        metrics = run_evaluate(out / "scene.h5", out / "ncut.h5")
        result.update({key: metrics[key] for key in ("ap", "ap50", "ap25")})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=[], help="extra scene folder (ScanNet layout)")
    parser.add_argument("--synthetic", type=int, nargs="*", default=[0, 1, 2], help="seeds of generated rooms")
    parser.add_argument("--no-redkitchen", action="store_true")
    parser.add_argument("--no-scannet", action="store_true", help="skip the real labelled scan scene0000_00")
    parser.add_argument("--frame-step", type=int, default=5, help="2D features from every k-th frame")
    parser.add_argument("--modality", default="auto", choices=["auto", "both", "2d", "3d"])
    parser.add_argument("--adjacency-radius", type=float, default=None, metavar="R",
                        help="superpoints' adjacency_radius in metres (default: the stage default)")
    parser.add_argument("--work", help="folder for intermediate artifacts (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each solver; the best is kept")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="one generated room only, one run of each solver")
    parser.add_argument("--perturbed", type=int, default=0, metavar="K",
                        help="also K perturbed copies of scene0000_00 (subsampled, rotated, jittered)")
    args = parser.parse_args(argv)
    if args.quick:
        args.synthetic, args.no_redkitchen, args.no_scannet, args.repeats = args.synthetic[:1], True, True, 1
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    from pipeline.params import NcutParams, SuperpointsParams
    from pipeline.commands.synth import run_synth

    radius = SuperpointsParams().adjacency_radius if args.adjacency_radius is None else args.adjacency_radius

    params = NcutParams.from_dict({"modality": args.modality}).to_dict()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        scenes = [Path(s) for s in args.scene]
        if not args.no_redkitchen:
            if REDKITCHEN.is_dir():
                scenes.append(REDKITCHEN)
            else:
                print(f"(redkitchen not found at {REDKITCHEN}; skipped)")
        if not args.no_scannet:
            if SCANNET.is_dir():
                scenes.append(SCANNET)
            else:
                print(f"(scene0000_00 not found at {SCANNET}; skipped)")
        for seed in args.synthetic:
            scenes.append(run_synth(work / "synthetic" / f"synth_room_{seed}", {"seed": seed}))
        perturbed = [perturbed_copy(SCANNET, work / "perturbed", k) for k in range(args.perturbed)] \
            if SCANNET.is_dir() else []
        scenes += perturbed
        header = (f"{'scene':<18}{'S':>6}{'dens':>6}{'iters':>6}{'masks':>7}{'ref s':>8}{'prod s':>8}{'ratio':>7}"
                  f"{'minIoU':>8}{'<0.95':>6}{'largest':>9}{'AP':>7}{'AP50':>7}{'AP25':>7}")
        print(f"params: {params}\nsuperpoint adjacency radius: {radius} m; each solver timed as the best of "
              f"{args.repeats} run(s)\n{header}")
        rows = []
        totals = {"ref_s": 0.0, "prod_s": 0.0, "n_below": 0}
        aps, perturbed_rows = [], []
        for scene_dir in scenes:
            out = prepare_scene(Path(scene_dir), work, args.frame_step, radius)
            row = compare(out, params, args.repeats)
            q = quality(out, params)
            rows.append({"scene": Path(scene_dir).name, **row, **q, "largest": q["largest"] / max(1, q["points"]),
                         "covered": q["covered_points"] / max(1, q["points"]),
                         "synthetic": Path(scene_dir).parent == work / "synthetic"})
            for key in totals:
                totals[key] += row[key]
            ap_text = "".join(f"{q[k]:>7.3f}" for k in ("ap", "ap50", "ap25")) if q["ap"] is not None else f"{'-':>7}" * 3
            if q["ap"] is not None and Path(scene_dir).parent == work / "synthetic":
                aps.append([q["ap"], q["ap50"], q["ap25"]])
            if Path(scene_dir) in perturbed:
                perturbed_rows.append([q["ap"], q["ap50"], q["ap25"], superpoint_ap50(out)])
            masks = f"{row['masks_ref']}/{row['masks_prod']}"
            largest = f"{100 * q['largest'] / max(1, q['points']):.1f}%"
            print(f"{Path(scene_dir).name:<18}{row['superpoints']:>6}{row['density']:>6.2f}{row['iterations']:>6}{masks:>7}"
                  f"{row['ref_s']:>8.2f}{row['prod_s']:>8.2f}{row['ref_s'] / row['prod_s']:>7.1f}"
                  f"{row['min_iou']:>8.3f}{row['n_below']:>6}{largest:>9}{ap_text}", flush=True)
        print(f"total: reference {totals['ref_s']:.2f} s, production {totals['prod_s']:.2f} s, "
              f"speed-up {totals['ref_s'] / max(totals['prod_s'], 1e-9):.1f}x (goal >= 10x); "
              f"masks below IoU 0.95: {totals['n_below']} (goal 0)")
        synthetic_mean = None
        if aps:
            mean = np.mean(aps, axis=0)
            print(f"mean over {len(aps)} generated rooms: AP {mean[0]:.3f}  AP50 {mean[1]:.3f}  AP25 {mean[2]:.3f}")
            synthetic_mean = {"rooms": len(aps), "ap": mean[0], "ap50": mean[1], "ap25": mean[2]}
        perturbed_mean = None
        if perturbed_rows:
            mean = np.mean(perturbed_rows, axis=0)
            print(f"mean over {len(perturbed_rows)} perturbed copies of scene0000_00: AP {mean[0]:.3f}  AP50 {mean[1]:.3f}  "
                  f"AP25 {mean[2]:.3f} (AP50 of their superpoints as instances {mean[3]:.3f}); AP50 per copy "
                  + " ".join(f"{row[1]:.3f}" for row in perturbed_rows))
            perturbed_mean = {"copies": len(perturbed_rows), "ap": mean[0], "ap50": mean[1], "ap25": mean[2],
                              "superpoints_ap50": mean[3], "ap50_per_copy": [row[1] for row in perturbed_rows]}
    ious = [r["min_iou"] for r in rows]
    write_result(args.json, "ncut", {
        "params": params, "adjacency_radius": radius, "repeats": args.repeats, "frame_step": args.frame_step,
        "scenes": rows, "ref_s": totals["ref_s"], "prod_s": totals["prod_s"], "n_below": totals["n_below"],
        "min_iou": min(ious) if ious else None, "synthetic_mean": synthetic_mean,
        "perturbed_mean": perturbed_mean}, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
