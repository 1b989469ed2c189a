"""``python -m pipeline ncut SUPERPOINTS_H5 FEATURES_2D_H5 FEATURES_3D_H5 --out ncut.h5``

UnScene3D pseudo masks: masked iterative Normalized Cut over superpoints (see pipeline/ncut.py).

Artifact ``ncut``:
  masks               (M, S) bool  accepted masks over superpoints (disjoint), in acceptance order
  point_instance      (N,)   i32   mask index of each point, -1 where none
  superpoint_instance (S,)   i32   mask index of each superpoint, -1 where none
  instance_score      (M,)   f32   1 - NCut(mask, rest) / 2 of the cut that produced the mask
attrs: modality (2d/3d/both), tau_cut, n_iterations, n_rejected, stop_reason, affinity_density.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from pipeline.artifacts import read_artifact, write_artifact
from pipeline.errors import InputError

log = logging.getLogger(__name__)


def default_params() -> dict:
    from pipeline.ncut import DEFAULT_PARAMS

    return dict(DEFAULT_PARAMS)


def choose_modality(requested: str, has_2d: bool, features_2d_path) -> str:
    if requested == "auto":
        return "both" if has_2d else "3d"
    if requested not in ("both", "2d", "3d"):
        raise InputError(None, f"ncut.modality must be auto, both, 2d or 3d, got {requested!r}")
    if requested in ("both", "2d") and not has_2d:
        raise InputError(features_2d_path, f"ncut.modality={requested} needs 2D features, but this artifact is empty "
                                           "(a scene without frames); use modality auto or 3d")
    return requested


def run_ncut(superpoints_h5, features_2d_h5, features_3d_h5, out_path, params: dict | None = None) -> Path:
    from pipeline.ncut import Modality, binarised_affinity, masked_ncut, point_instances

    defaults = default_params()
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise InputError(None, f"unknown ncut parameter(s) {unknown}; known: {sorted(defaults)}")
    params = {**defaults, **(params or {})}
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint", "adjacency"])
    labels = superpoints["point_superpoint"]
    n_superpoints = int(labels.max()) + 1 if len(labels) else 0
    f2d = read_artifact(features_2d_h5, "features_2d", required=["superpoint_features", "superpoint_weight"])
    f3d = read_artifact(features_3d_h5, "features_3d", required=["superpoint_features"])
    for art in (f2d, f3d):
        if len(art["superpoint_features"]) != n_superpoints:
            raise InputError(art.path, f"has features for {len(art['superpoint_features'])} superpoints, "
                                       f"{superpoints_h5} has {n_superpoints}; rerun the feature stage")
    has_2d = not bool(f2d.attrs.get("empty", False)) and f2d["superpoint_features"].shape[1] > 0
    modality = choose_modality(params["modality"], has_2d, features_2d_h5)
    weight_2d = float(params["weight_2d"])
    modalities = []
    if modality in ("both", "2d"):
        modalities.append(Modality("2d", f2d["superpoint_features"], weight_2d if modality == "both" else 1.0,
                                   valid=f2d["superpoint_weight"] > 0))
    if modality in ("both", "3d"):
        modalities.append(Modality("3d", f3d["superpoint_features"], 1.0 - weight_2d if modality == "both" else 1.0))
    tau = float(params[f"tau_cut_{modality}"])
    above = binarised_affinity(modalities, tau, params["affinity_normalization"])
    result = masked_ncut(above, superpoints["adjacency"], params)
    point_instance = point_instances(result.masks, labels)
    superpoint_instance = point_instances(result.masks, np.arange(n_superpoints))
    density = float(above.nnz) / max(1, n_superpoints**2)
    log.info("ncut: %s features, tau_cut %.2f, affinity density %.3f: %d masks in %d iterations (%d rejected, stop: %s)",
             modality, tau, density, len(result.masks), result.n_iterations, result.n_rejected, result.stop_reason)
    arrays = {
        "masks": result.masks,
        "point_instance": point_instance,
        "superpoint_instance": superpoint_instance,
        "instance_score": result.scores,
    }
    attrs = {"modality": modality, "tau_cut": tau, "n_iterations": result.n_iterations, "n_rejected": result.n_rejected,
             "stop_reason": result.stop_reason, "affinity_density": density, "n_masks": int(len(result.masks))}
    return write_artifact(out_path, "ncut", arrays, params=params,
                          inputs=[str(superpoints_h5), str(features_2d_h5), str(features_3d_h5)], attrs=attrs)


def _handle(args: argparse.Namespace) -> int:
    params = json.loads(args.params) if args.params else {}
    for key in ("modality", "max_instances", "solver"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    out = run_ncut(args.superpoints_h5, args.features_2d_h5, args.features_3d_h5, args.out, params)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ncut", help="UnScene3D pseudo masks: masked iterative Normalized Cut over superpoints",
        description="Binarised cosine affinity of superpoint features (2D, 3D or both), iterative masked "
        "Normalized Cut, one mask per iteration; writes ncut.h5.",
    )
    parser.add_argument("superpoints_h5")
    parser.add_argument("features_2d_h5")
    parser.add_argument("features_3d_h5")
    parser.add_argument("--out", required=True, help="output ncut.h5")
    parser.add_argument("--modality", choices=["auto", "both", "2d", "3d"])
    parser.add_argument("--max-instances", dest="max_instances", type=int)
    parser.add_argument("--solver", choices=["auto", "lanczos", "dense"])
    parser.add_argument("--params", help="JSON object of further parameters (the config section)")
    parser.set_defaults(func=_handle)
