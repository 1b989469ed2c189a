"""Masked NCut: production solver vs the plain dense reference, and mask quality.

For each scene (the redkitchen RGB-D sequence and generated synthetic rooms by default) this runs
ingest -> superpoints -> weight-free 2D and 3D features, builds the binarised affinity once, then
runs the same masked iterative NCut twice:

  reference   scipy.linalg.eigh on the full dense (D - W, D) pencil every iteration
  production  solver "auto": matrix-free ARPACK on the deflated normalised affinity

and prints, in one table, the time of each, their ratio, and the agreement of the masks
(IoU in points between the i-th reference and the i-th production mask; the iteration is
sequential, so one disagreement would shift everything after it). Scenes with ground truth also
get class-agnostic AP / AP50 / AP25 of the production masks (pipeline.evaluate, ScanNet rules).

    python benchmarks/ncut.py                       # redkitchen + synthetic seeds 0 1 2
    python benchmarks/ncut.py --synthetic 0 1 2 3 --no-redkitchen
    python benchmarks/ncut.py --adjacency-radius 0       # superpoint adjacency from mesh edges only

Goal: production >= 10x faster than the reference, every mask at IoU >= 0.95.

Note on --adjacency-radius (the superpoints stage's ``adjacency_radius``, default 0.03 m): NCut
keeps the connected component of each foreground over superpoint adjacency. Synthetic rooms build
each furniture part as its own (unwelded) mesh, so with mesh edges alone (0) the parts of one
chair are not adjacent and that step cuts objects into parts.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REDKITCHEN = REPO.parent / "shared" / "data" / "redkitchen"


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


def modalities_of(out: Path, params: dict):
    from pipeline.artifacts import read_artifact
    from pipeline.commands.ncut import choose_modality
    from pipeline.ncut import Modality

    f2d = read_artifact(out / "features_2d.h5", "features_2d")
    f3d = read_artifact(out / "features_3d.h5", "features_3d")
    has_2d = not bool(f2d.attrs.get("empty", False)) and f2d["superpoint_features"].shape[1] > 0
    modality = choose_modality(params["modality"], has_2d, out / "features_2d.h5")
    w = float(params["weight_2d"])
    mods = []
    if modality in ("both", "2d"):
        mods.append(Modality("2d", f2d["superpoint_features"], w if modality == "both" else 1.0, valid=f2d["superpoint_weight"] > 0))
    if modality in ("both", "3d"):
        mods.append(Modality("3d", f3d["superpoint_features"], 1.0 - w if modality == "both" else 1.0))
    return mods, float(params[f"tau_cut_{modality}"])


def mask_ious(reference: np.ndarray, production: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Point IoU of the i-th masks (0 for masks that only one solver produced)."""
    n = max(len(reference), len(production))
    ious = np.zeros(n)
    for i in range(min(len(reference), len(production))):
        inter = sizes[reference[i] & production[i]].sum()
        union = sizes[reference[i] | production[i]].sum()
        ious[i] = inter / union if union else 1.0
    return ious


def compare(out: Path, params: dict) -> dict:
    from pipeline.artifacts import read_artifact
    from pipeline.ncut import binarised_affinity, masked_ncut

    sp = read_artifact(out / "superpoints.h5", "superpoints")
    sizes = np.bincount(sp["point_superpoint"])
    mods, tau = modalities_of(out, params)
    started = time.perf_counter()
    above = binarised_affinity(mods, tau, params["affinity_normalization"])
    affinity_s = time.perf_counter() - started
    runs = {}
    # The reference runs once (it is slow); the production solver's time is the best of 3 runs.
    for name, solver, repeats in (("reference", "dense", 1), ("production", "auto", 3)):
        best = np.inf
        for _ in range(repeats):
            started = time.perf_counter()
            runs[name] = masked_ncut(above, sp["adjacency"], {**params, "solver": solver})
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


def quality(out: Path, params: dict) -> dict | None:
    from pipeline.artifacts import read_artifact
    from pipeline.commands.evaluate import run_evaluate
    from pipeline.commands.ncut import run_ncut

    if "gt/instance" not in read_artifact(out / "scene.h5", "scene").data:
        return None
    run_ncut(out / "superpoints.h5", out / "features_2d.h5", out / "features_3d.h5", out / "ncut.h5", params)
    metrics = run_evaluate(out / "scene.h5", out / "ncut.h5")
    return {key: metrics[key] for key in ("ap", "ap50", "ap25", "n_gt", "n_pred")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", default=[], help="extra scene folder (ScanNet layout)")
    parser.add_argument("--synthetic", type=int, nargs="*", default=[0, 1, 2], help="seeds of generated rooms")
    parser.add_argument("--no-redkitchen", action="store_true")
    parser.add_argument("--frame-step", type=int, default=5, help="2D features from every k-th frame")
    parser.add_argument("--modality", default="auto", choices=["auto", "both", "2d", "3d"])
    parser.add_argument("--adjacency-radius", type=float, default=None, metavar="R",
                        help="superpoints' adjacency_radius in metres (default: the stage default)")
    parser.add_argument("--work", help="folder for intermediate artifacts (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")

    from pipeline.commands.ncut import default_params
    from pipeline.commands.superpoints import DEFAULT_PARAMS as SUPERPOINT_DEFAULTS
    from pipeline.commands.synth import run_synth

    radius = SUPERPOINT_DEFAULTS["adjacency_radius"] if args.adjacency_radius is None else args.adjacency_radius

    params = {**default_params(), "modality": args.modality}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        scenes = [Path(s) for s in args.scene]
        if not args.no_redkitchen:
            if REDKITCHEN.is_dir():
                scenes.append(REDKITCHEN)
            else:
                print(f"(redkitchen not found at {REDKITCHEN}; skipped)")
        for seed in args.synthetic:
            scenes.append(run_synth(work / "synthetic" / f"synth_room_{seed}", {"seed": seed}))
        header = (f"{'scene':<18}{'S':>6}{'dens':>6}{'iters':>6}{'masks':>7}{'ref s':>8}{'prod s':>8}{'ratio':>7}"
                  f"{'minIoU':>8}{'<0.95':>6}{'AP':>7}{'AP50':>7}{'AP25':>7}")
        print(f"params: {params}\nsuperpoint adjacency radius: {radius} m\n{header}")
        totals = {"ref_s": 0.0, "prod_s": 0.0, "n_below": 0}
        aps = []
        for scene_dir in scenes:
            out = prepare_scene(Path(scene_dir), work, args.frame_step, radius)
            row = compare(out, params)
            q = quality(out, params)
            for key in totals:
                totals[key] += row[key]
            ap_text = "".join(f"{q[k]:>7.3f}" for k in ("ap", "ap50", "ap25")) if q and q["ap"] is not None else f"{'-':>7}" * 3
            if q and q["ap"] is not None:
                aps.append([q["ap"], q["ap50"], q["ap25"]])
            masks = f"{row['masks_ref']}/{row['masks_prod']}"
            print(f"{Path(scene_dir).name:<18}{row['superpoints']:>6}{row['density']:>6.2f}{row['iterations']:>6}{masks:>7}"
                  f"{row['ref_s']:>8.2f}{row['prod_s']:>8.2f}{row['ref_s'] / row['prod_s']:>7.1f}"
                  f"{row['min_iou']:>8.3f}{row['n_below']:>6}{ap_text}", flush=True)
        print(f"total: reference {totals['ref_s']:.2f} s, production {totals['prod_s']:.2f} s, "
              f"speed-up {totals['ref_s'] / max(totals['prod_s'], 1e-9):.1f}x (goal >= 10x); "
              f"masks below IoU 0.95: {totals['n_below']} (goal 0)")
        if aps:
            mean = np.mean(aps, axis=0)
            print(f"mean over {len(aps)} scenes with ground truth: AP {mean[0]:.3f}  AP50 {mean[1]:.3f}  AP25 {mean[2]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
