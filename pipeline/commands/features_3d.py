"""``python -m pipeline features_3d SCENE_H5 SUPERPOINTS_H5 --out features_3d.h5``

Per-point 3D features (CSC sparse UNet or handcrafted geometry) averaged per superpoint and
L2-normalised.

Artifact ``features_3d``: superpoint_features (S, C) f32, superpoint_weight (S,) f32 (points per
superpoint), and the geometry NCut uses to keep room structure out of its masks (whatever the
backend; see pipeline/unscene3d/features/structure.py):
  superpoint_structure (S,)   bool  planar superpoints whose plane bounds the scan (floor, walls, ceiling)
  superpoint_box_min   (S, 3) f32   superpoint bounds in the frame (h1, h2, up) of ``structure.up_axis``
  superpoint_box_max   (S, 3) f32   (for up = z: plain x, y, z)
attrs backend, feature_dim, n_structure (superpoints flagged as structure).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.params import Features3dParams
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError

log = logging.getLogger(__name__)



def superpoint_features_3d(vertices: np.ndarray, normals: np.ndarray, colors: np.ndarray, labels: np.ndarray,
                           n_superpoints: int, params: Features3dParams) -> tuple[np.ndarray, np.ndarray]:
    """((S, C) unit-length superpoint features, (S,) points per superpoint) of the chosen backend."""
    from pipeline.devices import resolve_device
    from pipeline.unscene3d.features import geometric
    from pipeline.unscene3d.features.aggregate import superpoint_features

    if params.backend == "handcrafted":
        return geometric.geometric_superpoint_features(vertices, normals, labels, n_superpoints, params.handcrafted)
    if params.backend == "csc":
        from pipeline.unscene3d.features import csc

        model, _ = csc.load_csc_checkpoint(params.csc["checkpoint"])
        point_features = csc.csc_point_features(model, vertices, colors, int(params.csc["feature_level"]),
                                                resolve_device(params.device))
        return superpoint_features(point_features, labels, n_superpoints)
    raise InputError(None, f"features_3d.backend must be 'handcrafted' or 'csc', got {params.backend!r}")


def run_features_3d(scene_h5, superpoints_h5, out_path, params: Features3dParams | dict | None = None) -> Path:
    from pipeline.unscene3d.features.structure import structure_superpoints, superpoint_boxes

    params = Features3dParams.from_dict(params)
    if params.backend not in ("handcrafted", "csc"):
        raise InputError(None, f"features_3d.backend must be 'handcrafted' or 'csc', got {params.backend!r}")
    scene = read_artifact(scene_h5, "scene", required=["vertices", "normals", "colors"])
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint"])
    labels = superpoints["point_superpoint"]
    if len(labels) != len(scene["vertices"]):
        raise InputError(superpoints_h5, f"has {len(labels)} point labels but {scene_h5} has {len(scene['vertices'])} points")
    n_superpoints = int(labels.max()) + 1 if len(labels) else 0
    features, weight = superpoint_features_3d(scene["vertices"], scene["normals"], scene["colors"], labels,
                                              n_superpoints, params)
    structure = structure_superpoints(scene["vertices"], labels, n_superpoints, params.structure)
    box_min, box_max = superpoint_boxes(scene["vertices"], labels, n_superpoints, params.structure["up_axis"])
    log.info("features_3d: %s backend, %d-d features for %d superpoints; %d of them (%d points) room structure",
             params.backend, features.shape[1], n_superpoints, int(structure.sum()), int(weight[structure].sum()))
    attrs = {"backend": params.backend, "feature_dim": int(features.shape[1]), "n_structure": int(structure.sum())}
    arrays = {"superpoint_features": features, "superpoint_weight": weight, "superpoint_structure": structure,
              "superpoint_box_min": box_min, "superpoint_box_max": box_max}
    return write_artifact(out_path, "features_3d", arrays, params=params.to_dict(),
                          inputs=[str(scene_h5), str(superpoints_h5)], attrs=attrs)


def _run(args) -> Path:
    params = params_from_args(args)
    if args.checkpoint:
        params.setdefault("csc", {})["checkpoint"] = args.checkpoint
    return run_features_3d(args.scene_h5, args.superpoints_h5, args.out, params)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "features_3d", _run, help="3D point features (CSC sparse UNet or handcrafted geometry) per superpoint",
        description="Compute per-point 3D features, average them per superpoint and write features_3d.h5.",
        params=Features3dParams, flags={"backend": "feature backend", "device": "auto | cpu | cuda | cuda:N"},
    )
    parser.add_argument("scene_h5")
    parser.add_argument("superpoints_h5")
    parser.add_argument("--out", required=True, help="output features_3d.h5")
    parser.add_argument("--checkpoint", help="CSC checkpoint: the released MinkowskiEngine file (converted on load) or the output of `convert-csc`")
