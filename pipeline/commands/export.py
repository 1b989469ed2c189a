"""`python -m pipeline export SCENE_H5 SUPERPOINTS_H5 LABELS_H5 --out DIR`: labels for other tools."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.artifacts import read_artifact
from pipeline.export import (
    mask3d_array,
    spformer_sample,
    write_colored_ply,
    write_mask3d,
    write_scannet_benchmark,
    write_spformer,
)

log = logging.getLogger(__name__)


def export_paths(out_dir, scene: str) -> dict[str, Path]:
    out_dir = Path(out_dir)
    return {
        "scannet": out_dir / "scannet" / f"{scene}.txt",
        "spformer": out_dir / "spformer" / f"{scene}.pth",
        "mask3d": out_dir / "mask3d" / f"{scene}.npy",
        "ply": out_dir / f"{scene}_instances.ply",
    }


def run_export(scene_h5, superpoints_h5, labels_h5, out_dir, scene: str | None = None) -> dict[str, Path]:
    """Write the ScanNet benchmark files, SPFormer and Mask3D trainer files and a coloured PLY."""
    scene_art = read_artifact(scene_h5, "scene", required=["vertices", "colors", "normals"])
    superpoints = read_artifact(superpoints_h5, "superpoints", required=["point_superpoint"])["point_superpoint"]
    labels = read_artifact(labels_h5, Path(labels_h5).stem, required=["point_instance"])
    point_instance = labels["point_instance"]
    scores = labels.get("instance_score")
    scene = scene or scene_art.attrs.get("scene_name") or Path(scene_h5).parent.name
    vertices = scene_art["vertices"]
    if len(point_instance) != len(vertices):
        raise ValueError(f"{labels_h5}: {len(point_instance)} labels for {len(vertices)} points in {scene_h5}")
    paths = export_paths(out_dir, scene)
    write_scannet_benchmark(paths["scannet"].parent, scene, point_instance, scores)
    write_spformer(paths["spformer"], spformer_sample(vertices, scene_art["colors"], superpoints, point_instance))
    write_mask3d(paths["mask3d"], mask3d_array(vertices, scene_art["colors"], scene_art["normals"], superpoints, point_instance))
    write_colored_ply(paths["ply"], vertices, point_instance, scene_art.get("faces"))
    n = len(np.unique(point_instance[point_instance >= 0]))
    log.info("exported %d instances of %s from %s", n, scene, labels_h5)
    return paths


def _handle(args) -> int:
    for kind, path in run_export(args.scene_h5, args.superpoints_h5, args.labels_h5, args.out).items():
        print(f"{kind}: {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write labels as ScanNet benchmark files, trainer files and a coloured PLY",
        description="Export per-point instances (any artifact with point_instance) for other tools.")
    parser.add_argument("scene_h5")
    parser.add_argument("superpoints_h5")
    parser.add_argument("labels_h5", help="e.g. pseudo_labels.h5, lifted.h5 or ncut.h5")
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=_handle)
