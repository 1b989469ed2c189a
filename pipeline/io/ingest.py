"""Scene ingest: one ScanNet-layout folder (or a point cloud) -> the arrays of scene.h5."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.io import scannet
from pipeline.errors import InputError
from pipeline.scene.geometry import instance_boxes, mesh_vertex_normals, point_cloud_normals, scale_intrinsics
from pipeline.io.nyu40 import SCANNET18_IDS
from pipeline.params import IngestParams
from pipeline.io.ply import read_ply

log = logging.getLogger(__name__)

ORACLE_BOXES = "ground_truth (oracle)"  # boxes_source of boxes built from ground truth


@dataclass
class IngestedScene:
    arrays: dict
    attrs: dict
    inputs: list[str] = field(default_factory=list)


def mesh_path_of(scene_dir: Path) -> Path:
    return scene_dir / f"{scene_dir.name}_vh_clean_2.ply"


def find_geometry(scene_dir: Path) -> tuple[Path | None, str]:
    """The scene's geometry file and its kind ("mesh" or "points"); (None, "") when there is none."""
    mesh = mesh_path_of(scene_dir)
    if mesh.is_file():
        return mesh, "mesh"
    points = scene_dir / "points.ply"
    if points.is_file():
        return points, "points"
    return None, ""


def _read_geometry(path: Path, kind: str, params: IngestParams) -> dict:
    ply = read_ply(path)
    vertices = ply.vertices
    if len(vertices) == 0:
        raise InputError(path, "empty scene: the file has no vertices")
    bad = ~np.all(np.isfinite(vertices), axis=1)
    if np.any(bad):
        raise InputError(path, f"{int(bad.sum())} vertices have non-finite (NaN/inf) coordinates")
    colors = ply.colors
    if colors is None:
        log.warning("%s has no vertex colours; using grey", path)
        colors = np.full((len(vertices), 3), 128, np.uint8)
    arrays = {"vertices": vertices, "colors": colors}
    if kind == "mesh":
        if ply.faces is None or len(ply.faces) == 0:
            raise InputError(path, "mesh has no faces; name a face-less cloud points.ply to use point-cloud mode")
        arrays["faces"] = ply.faces.astype(np.int32)
        arrays["normals"] = mesh_vertex_normals(vertices, ply.faces)
    else:
        normals = ply.normals
        if normals is None:
            normals = point_cloud_normals(vertices, k=params.normal_neighbours)
        arrays["normals"] = normals.astype(np.float32)
    return arrays


def _read_frames(scene_dir: Path, params: IngestParams) -> tuple[dict, dict]:
    ids = scannet.list_frame_ids(scene_dir)
    if len(ids) == 0:
        return {}, {"n_frames": 0, "n_invalid_poses": 0}
    intrinsic_color = scannet.read_intrinsic(scene_dir, "color")
    poses = np.stack([scannet.read_pose(scene_dir, i) for i in ids])
    valid = np.array([scannet.pose_is_valid(p) for p in poses])

    verify_all = params.verify_images == "all"
    sizes = {"color": None, "depth": None}
    started = time.monotonic()
    for n, frame_id in enumerate(ids if verify_all else ids[:1]):
        for kind in ("color", "depth"):
            path = scannet.frame_path(scene_dir, kind, frame_id)
            size = scannet.image_size(path, verify=True)
            if sizes[kind] is None:
                sizes[kind] = size
            elif size != sizes[kind]:
                raise InputError(path, f"{kind} image is {size[0]}x{size[1]}, other {kind} frames are {sizes[kind][0]}x{sizes[kind][1]}")
        if n and n % 500 == 0:
            log.info("checked %d/%d frames (%.1f s)", n, len(ids), time.monotonic() - started)

    depth_file = scene_dir / "intrinsic" / "intrinsic_depth.txt"
    if depth_file.is_file():
        intrinsic_depth = scannet.read_intrinsic(scene_dir, "depth")
    else:
        # Without a depth intrinsic, assume depth is registered to colour and rescale for its size.
        intrinsic_depth = scale_intrinsics(intrinsic_color, sizes["color"], sizes["depth"])
        log.warning("%s missing: scaled colour intrinsics from %s to %s", depth_file, sizes["color"], sizes["depth"])

    n_invalid = int((~valid).sum())
    if n_invalid:
        skipped = ", ".join(map(str, ids[~valid][:10])) + (" ..." if n_invalid > 10 else "")
        log.warning("%s: %d of %d frames have invalid (non-finite) poses and are skipped: %s", scene_dir, n_invalid, len(ids), skipped)
    if not np.any(valid):
        log.warning("%s: no frame has a valid pose; frame-based stages will have nothing to use", scene_dir)
    arrays = {
        "frames": {
            "id": ids,
            "pose": poses,
            "valid": valid,
            "color_size": np.asarray(sizes["color"], np.int32),
            "depth_size": np.asarray(sizes["depth"], np.int32),
        },
        "intrinsics": {"color": intrinsic_color, "depth": intrinsic_depth},
    }
    return arrays, {"n_frames": int(len(ids)), "n_invalid_poses": n_invalid}


def box_instance_positions(box_instance_id: np.ndarray, gt_instance_id: np.ndarray) -> np.ndarray:
    """(B,) int32 GT position of each box's ``instance_id`` (-1 when the GT has no such instance).

    boxes.json names instances by the ground truth's own ids; everything downstream indexes GT
    instances by position. Where an id appears twice in the GT, the first position is taken.
    """
    box_instance_id = np.asarray(box_instance_id, np.int64)
    position_of = {}
    for position, own_id in enumerate(np.asarray(gt_instance_id, np.int64).tolist()):
        position_of.setdefault(own_id, position)
    return np.array([position_of.get(i, -1) if i >= 0 else -1 for i in box_instance_id.tolist()], np.int32)


def oracle_box_instances(labels, nyu40: np.ndarray, box_min: np.ndarray, ignore_labels) -> list[int]:
    """GT instances that get an oracle box: the benchmark's 18 classes when the GT carries NYU40
    ids, else every instance whose label is not in ``ignore_labels``; never an empty instance."""
    nyu40 = np.asarray(nyu40)
    has_nyu40 = nyu40.size > 0 and bool(np.any(nyu40 >= 0))
    ignored = {str(label).lower() for label in ignore_labels}
    keep = []
    for i, label in enumerate(labels):
        wanted = int(nyu40[i]) in SCANNET18_IDS if has_nyu40 else str(label).lower() not in ignored
        if wanted and np.all(np.isfinite(box_min[i])):
            keep.append(i)
    return keep


def _ground_truth_arrays(scene_dir: Path, vertices: np.ndarray, params: IngestParams) -> tuple[dict, dict]:
    gt = scannet.read_scannet_ground_truth(scene_dir, len(vertices), params.label_map or None)
    boxes_file = scene_dir / "boxes.json"
    arrays: dict = {}
    attrs = {
        "has_gt": gt is not None,
        "gt_source": gt.source if gt is not None else "",
        "gt_nyu40_source": gt.nyu40_source if gt is not None else "",
        "boxes_source": "",
    }
    if gt is not None:
        box_min, box_max = instance_boxes(vertices, gt.instance, len(gt.labels))
        arrays["gt"] = {
            "instance": gt.instance,
            "instance_label": np.asarray(gt.labels, dtype=str),
            "instance_nyu40": gt.nyu40.astype(np.int32),
            "instance_id": gt.instance_id.astype(np.int64),
            "box_min": box_min,
            "box_max": box_max,
        }
    if params.boxes_from_ground_truth:
        if gt is None:
            raise InputError(scene_dir, "ingest.boxes_from_ground_truth is set but the scene has no ground truth "
                                        "(<scene>.aggregation.json or <scene>.txt)")
        if boxes_file.is_file():
            log.warning("%s is ignored: ingest.boxes_from_ground_truth builds the boxes from ground truth", boxes_file)
        keep = oracle_box_instances(gt.labels, gt.nyu40, box_min, params.box_ignore_labels)
        boxes = scannet.Boxes(box_min[keep], box_max[keep], [gt.labels[i] for i in keep], np.asarray(keep, np.int32))
        attrs["boxes_source"] = ORACLE_BOXES
        log.warning("%s: %d ORACLE boxes built from ground-truth instances (ingest.boxes_from_ground_truth); "
                    "box-mode labels of this scene are not ground-truth free", scene_dir.name, len(keep))
    elif boxes_file.is_file():
        boxes = scannet.read_boxes_json(boxes_file)
        attrs["boxes_source"] = "boxes.json"
        if gt is not None:
            named = boxes.instance >= 0
            boxes.instance = box_instance_positions(boxes.instance, gt.instance_id)
            lost = np.flatnonzero(named & (boxes.instance < 0))
            if lost.size:
                log.warning(
                    "%s: %d box(es) name an instance_id the ground truth lacks (boxes %s); they get instance -1",
                    boxes_file, lost.size, lost[:10].tolist(),
                )
    else:
        return arrays, attrs
    arrays["boxes"] = {
        "min": boxes.box_min,
        "max": boxes.box_max,
        "label": np.asarray(boxes.labels, dtype=str),
        "instance": boxes.instance,
    }
    return arrays, attrs


def ingest_scene(scene_dir: str | os.PathLike, params: IngestParams | dict | None = None, mesh_path: str | os.PathLike | None = None) -> IngestedScene:
    """Read and validate one scene folder. ``mesh_path`` overrides the scene's own mesh (fused meshes)."""
    params = IngestParams.from_dict(params)
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise InputError(scene_dir, "scene folder does not exist")
    if mesh_path is not None:
        geometry, kind = Path(mesh_path), "mesh"
    else:
        geometry, kind = find_geometry(scene_dir)
    frame_arrays, frame_attrs = _read_frames(scene_dir, params)
    if geometry is None:
        if frame_attrs["n_frames"]:
            raise InputError(
                scene_dir,
                f"has frames but no mesh ({mesh_path_of(scene_dir).name}); fuse one with "
                "`python -m pipeline fuse_mesh` (the Snakemake DAG does this automatically)",
            )
        raise InputError(scene_dir, f"empty scene: no {mesh_path_of(scene_dir).name}, no points.ply and no frames")
    arrays = _read_geometry(geometry, kind, params)
    arrays.update(frame_arrays)
    gt_arrays, gt_attrs = _ground_truth_arrays(scene_dir, arrays["vertices"], params)
    arrays.update(gt_arrays)
    attrs = {
        "scene_name": scene_dir.name,
        "scene_dir": str(scene_dir.resolve()),
        "kind": kind,
        "geometry_file": str(geometry),
        "n_vertices": int(len(arrays["vertices"])),
        "n_faces": int(len(arrays.get("faces", ()))),
        **frame_attrs,
        **gt_attrs,
    }
    log.info(
        "%s: %s with %d vertices, %d faces, %d frames (%d invalid poses), ground truth: %s, boxes: %s",
        scene_dir.name, kind, attrs["n_vertices"], attrs["n_faces"], attrs["n_frames"],
        attrs["n_invalid_poses"], attrs["has_gt"], attrs["boxes_source"] or "none",
    )
    return IngestedScene(arrays, attrs, [str(scene_dir), str(geometry)])
