"""``python -m pipeline ncut SUPERPOINTS_H5 FEATURES_2D_H5 FEATURES_3D_H5 --out ncut.h5``

UnScene3D pseudo masks: masked iterative Normalized Cut over superpoints (see pipeline/unscene3d/ncut.py).

Artifact ``ncut``:
  masks               (M, S) bool  accepted masks over superpoints (disjoint), in acceptance order
  point_instance      (N,)   i32   mask index of each point, -1 where none
  superpoint_instance (S,)   i32   mask index of each superpoint, -1 where none
  instance_score      (M,)   f32   the rank of each mask by ``score`` (default: boundary contrast)
  ncut_score          (M,)   f32   1 - NCut(mask, rest) / 2 of the cut that produced the mask (before splitting)
  mask_parent         (M,)   i64   index of the iteration's mask each mask was split from (``split_max_ncut``;
                                   a merged mask (``merge_min_ncut``): its first part's)
attrs: modality (2d/3d/both), color_source (frames, point_colors or "" without 2D), tau_cut,
n_iterations, n_rejected, n_background (candidates rejected by the extent test), stop_reason,
affinity_density, n_masks, n_masks_before_split, n_split (masks cut again), n_merged (masks joined into
another), score, n_structure_masked (-1: features_3d.h5 has no structure flags),
extent_test (whether superpoint boxes were there for it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import NcutParams

log = logging.getLogger(__name__)


def choose_modality(requested: str, has_2d: bool, features_2d_path) -> str:
    if requested == "auto":
        return "both" if has_2d else "3d"
    if requested not in ("both", "2d", "3d"):
        raise InputError(None, f"ncut.modality must be auto, both, 2d or 3d, got {requested!r}")
    if requested in ("both", "2d") and not has_2d:
        raise InputError(features_2d_path, f"ncut.modality={requested} needs 2D features, but this artifact is empty "
                                           "(a scene without frames); use modality auto or 3d")
    return requested


@dataclass
class NCutInputs:
    """Everything masked_ncut needs, read and checked from the three artifacts."""

    modality: str
    tau: float
    modalities: list
    ranges: list | None
    above: object  # (S, S) sparse 0/1 affinity
    adjacency: np.ndarray  # (E, 2) superpoint pairs
    point_superpoint: np.ndarray
    premasked: np.ndarray | None  # (S,) room structure, masked out before the first cut
    is_background: object  # callable or None
    notes: dict  # attrs describing what was (not) used


def check_choice(params: NcutParams, key: str, choices: tuple) -> str:
    value = getattr(params, key)
    if value not in choices:
        raise InputError(None, f"ncut.{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def prepare_ncut(superpoints_h5, features_2d_h5, features_3d_h5, params: NcutParams | dict | None) -> NCutInputs:
    from pipeline.unscene3d.ncut import Modality, binarised_affinity, cosine_range, extent_background

    params = NcutParams.from_dict(params)
    structure_rule = check_choice(params, "structure", ("mask", "keep"))
    background_rule = check_choice(params, "background", ("extent", "none"))
    check_choice(params, "score", ("contrast", "ncut", "uniform"))
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
    modality = choose_modality(params.modality, has_2d, features_2d_h5)
    weight_2d = float(params.weight_2d)
    modalities = []
    if modality in ("both", "2d"):
        modalities.append(Modality("2d", f2d["superpoint_features"], weight_2d if modality == "both" else 1.0,
                                   valid=f2d["superpoint_weight"] > 0))
    if modality in ("both", "3d"):
        modalities.append(Modality("3d", f3d["superpoint_features"], 1.0 - weight_2d if modality == "both" else 1.0))
    tau = float(getattr(params, f"tau_cut_{modality}"))
    above = binarised_affinity(modalities, tau, params.affinity_normalization)
    ranges = [cosine_range(m) for m in modalities] if params.affinity_normalization == "minmax" else None
    notes = {"color_source": str(f2d.attrs.get("source", "frames")) if has_2d else ""}
    premasked = None
    if structure_rule == "mask":
        if "superpoint_structure" in f3d:
            premasked = np.asarray(f3d["superpoint_structure"], bool)
        else:  # an artifact from before structure detection: say so, do not guess
            log.warning("ncut: %s has no superpoint_structure (rerun features_3d); room structure is not masked",
                        features_3d_h5)
    notes["n_structure_masked"] = int(premasked.sum()) if premasked is not None else -1
    is_background = None
    if background_rule == "extent":
        if "superpoint_box_min" in f3d and n_superpoints:
            is_background = extent_background(f3d["superpoint_box_min"], f3d["superpoint_box_max"],
                                              float(params.max_extent_ratio))
        elif n_superpoints:
            log.warning("ncut: %s has no superpoint boxes (rerun features_3d); the extent test is skipped", features_3d_h5)
    notes["extent_test"] = is_background is not None
    return NCutInputs(modality, tau, modalities, ranges, above, superpoints["adjacency"], labels, premasked,
                      is_background, notes)


def mask_scores(inputs: NCutInputs, masks: np.ndarray, ncut_scores: np.ndarray, rule: str) -> np.ndarray:
    """instance_score of each mask by ``rule``: contrast, ncut or uniform."""
    from pipeline.unscene3d.ncut import boundary_contrast, pair_affinity

    if rule == "ncut":
        return np.asarray(ncut_scores, np.float32)
    if rule == "uniform":
        return np.ones(len(masks), np.float32)
    affinity = pair_affinity(inputs.modalities, inputs.adjacency, inputs.ranges)
    return boundary_contrast(masks, inputs.adjacency, affinity)


def run_ncut(superpoints_h5, features_2d_h5, features_3d_h5, out_path, params: NcutParams | dict | None = None) -> Path:
    from pipeline.unscene3d.ncut import masked_ncut, merge_masks, point_instances, split_masks

    params = NcutParams.from_dict(params)
    if params.split_max_ncut < 0:
        raise InputError(None, f"ncut.split_max_ncut must be >= 0 (0 = no splitting), got {params.split_max_ncut}")
    if params.merge_min_ncut < 0:
        raise InputError(None, f"ncut.merge_min_ncut must be >= 0 (0 = no merging), got {params.merge_min_ncut}")
    inputs = prepare_ncut(superpoints_h5, features_2d_h5, features_3d_h5, params)
    labels = inputs.point_superpoint
    n_superpoints = inputs.above.shape[0]
    result = masked_ncut(inputs.above, inputs.adjacency, params, inputs.premasked, inputs.is_background)
    # Masks that hold several objects similar enough to leave the scene together are cut again on
    # their own graph (a part keeps the NCut score of the cut that produced its mask).
    masks, parent = split_masks(inputs.above, result.masks, float(params.split_max_ncut), max(params.min_segments, 1),
                                float(params.eps), solver=params.solver, dense_below=params.dense_below,
                                tol=float(params.solver_tol), seed=params.seed)
    n_split = int((np.bincount(parent, minlength=len(result.masks)) > 1).sum())  # masks cut into several parts
    # ... and touching masks no boundary separates (the iteration halved an object) joined again.
    n_parts = len(masks)
    masks, first = merge_masks(inputs.above, inputs.adjacency, masks, float(params.merge_min_ncut), float(params.eps))
    parent = parent[first]
    ncut_scores = result.scores[parent]
    scores = mask_scores(inputs, masks, ncut_scores, params.score)
    point_instance = point_instances(masks, labels)
    superpoint_instance = point_instances(masks, np.arange(n_superpoints))
    density = float(inputs.above.nnz) / max(1, n_superpoints**2)
    n_background = sum(1 for step in result.iterations if step.get("background"))
    log.info("ncut: %s features, tau_cut %.2f, affinity density %.3f, %d structure superpoints masked: %d masks in "
             "%d iterations (%d rejected, %d of them as background; stop: %s); %d of them split again (NCut <= %.2f), "
             "%d joined (NCut > %.2f): %d masks", inputs.modality, inputs.tau, density,
             max(0, inputs.notes["n_structure_masked"]), len(result.masks), result.n_iterations, result.n_rejected,
             n_background, result.stop_reason, n_split, params.split_max_ncut, n_parts - len(masks),
             params.merge_min_ncut, len(masks))
    arrays = {
        "masks": masks,
        "point_instance": point_instance,
        "superpoint_instance": superpoint_instance,
        "instance_score": scores,
        "ncut_score": ncut_scores,
        "mask_parent": parent,
    }
    attrs = {"modality": inputs.modality, "tau_cut": inputs.tau, "n_iterations": result.n_iterations,
             "n_rejected": result.n_rejected, "n_background": n_background, "stop_reason": result.stop_reason,
             "affinity_density": density, "n_masks": int(len(masks)), "n_masks_before_split": int(len(result.masks)),
             "n_split": n_split, "n_merged": int(n_parts - len(masks)), "score": params.score, **inputs.notes}
    return write_artifact(out_path, "ncut", arrays, params=params.to_dict(),
                          inputs=[str(superpoints_h5), str(features_2d_h5), str(features_3d_h5)], attrs=attrs)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "ncut",
        lambda args: run_ncut(args.superpoints_h5, args.features_2d_h5, args.features_3d_h5, args.out,
                              params_from_args(args)),
        help="UnScene3D pseudo masks: masked iterative Normalized Cut over superpoints",
        description="Binarised cosine affinity of superpoint features (2D, 3D or both), iterative masked "
        "Normalized Cut, one mask per iteration; writes ncut.h5.",
        params=NcutParams, flags={"modality": "affinities used", "max_instances": "stop after this many masks",
                                  "solver": "eigen-solver"},
    )
    parser.add_argument("superpoints_h5")
    parser.add_argument("features_2d_h5")
    parser.add_argument("features_3d_h5")
    parser.add_argument("--out", required=True, help="output ncut.h5")
