"""`python -m pipeline box_partition scene.h5 --out boxes.h5`"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.learning.box_background import SurfaceBackgroundSettings, surface_background
from pipeline.learning.boxes import (BACKGROUND, check_boxes, partition_points, smallest_box_assignment,
                                     summarise_boxes)
from pipeline.cli import add_command, params_from_args
from pipeline.errors import InputError
from pipeline.params import BoxPartitionParams
from pipeline.scene.geometry import point_cloud_normals

log = logging.getLogger(__name__)


def background_settings(params: BoxPartitionParams) -> SurfaceBackgroundSettings:
    return SurfaceBackgroundSettings(shell=params.background_shell, tolerance=params.background_tolerance,
                                     min_support=params.background_min_support, link=params.background_link,
                                     max_share=params.background_max_share)


def box_partition_arrays(vertices: np.ndarray, box_min, box_max, labels, instance,
                         params: BoxPartitionParams, normals: np.ndarray | None = None) -> tuple[dict, dict]:
    """The arrays and attributes of boxes.h5 for one scene (``normals`` only for surface_background)."""
    partition = partition_points(vertices, box_min, box_max, params.chunk)
    summary = summarise_boxes(partition, box_min, box_max, float(params.containment_tolerance))
    background = np.zeros(len(vertices), bool)
    if params.surface_background == "planes" and len(box_min):
        if normals is None or not np.any(normals):
            normals = point_cloud_normals(vertices)
        background = surface_background(vertices, normals, box_min, box_max, partition.point_box != BACKGROUND,
                                        background_settings(params))
    arrays = {
        "surface_background": background,
        "point_box": partition.point_box,
        "n_containing": partition.n_containing,
        "ambiguous": {"point": partition.ambiguous_point, "box": partition.ambiguous_box},
        "smallest_box": smallest_box_assignment(partition, summary.volume.astype(np.float64)),
        "box": {
            "min": np.asarray(box_min, np.float32),
            "max": np.asarray(box_max, np.float32),
            "label": np.asarray(labels, dtype=str),
            "instance": np.asarray(instance, np.int32),
            "centre": summary.centre,
            "volume": summary.volume,
            "n_points": summary.n_points,
            "n_labelled": summary.n_labelled,
            "contained_in": summary.contained_in,
        },
    }
    attrs = {
        "n_boxes": int(len(box_min)),
        "n_labelled": int(partition.labelled.sum()),
        "n_ambiguous": int(partition.ambiguous.sum()),
        "n_background": int(partition.background.sum()),
        "n_surface_background": int(background.sum()),
        "n_nested": int((summary.contained_in >= 0).sum()),
        "n_empty_boxes": int((summary.n_points == 0).sum()),
    }
    return arrays, attrs


def run_box_partition(scene_path, out_path, params: BoxPartitionParams | dict | None = None) -> Path:
    params = BoxPartitionParams.from_dict(params)
    scene = read_artifact(scene_path, "scene", required=["vertices"])
    if "boxes/min" not in scene:
        raise InputError(
            scene_path,
            "has no boxes (the scene folder has no boxes.json, and ingest.boxes_from_ground_truth is off); box "
            "supervision needs boxes: add boxes.json, ask for oracle boxes, or set train.mode to 'unsupervised'",
        )
    box_min, box_max = check_boxes(scene["boxes/min"], scene["boxes/max"], scene_path)
    labels = scene.get("boxes/label", np.full(len(box_min), "object"))
    instance = scene.get("boxes/instance", np.full(len(box_min), -1, np.int32))
    if len(box_min) == 0:
        log.warning("%s: the scene has zero boxes; every point is background and box training will skip it", scene_path)
    arrays, attrs = box_partition_arrays(scene["vertices"], box_min, box_max, labels, instance, params,
                                         scene.get("normals"))
    nested = np.flatnonzero(arrays["box"]["contained_in"] >= 0)
    for inner in nested:
        log.warning(
            "box %d (%s) lies inside box %d (%s): all its points are ambiguous (BEEP3D's known failure case); "
            "if the teacher leaves it less than train.box.rescue_min_fraction of its points, it takes back its "
            "smallest-box points",
            inner, labels[inner], arrays["box"]["contained_in"][inner], labels[arrays["box"]["contained_in"][inner]],
        )
    empty = np.flatnonzero(arrays["box"]["n_points"] == 0)
    if len(empty):
        log.warning("%s: boxes %s contain no point", scene_path, empty[:20].tolist())
    log.info(
        "%s: %d boxes, %d labelled points (one box), %d ambiguous (several), %d background, %d nested boxes, "
        "%d points inside boxes on surfaces that continue outside them",
        scene_path, attrs["n_boxes"], attrs["n_labelled"], attrs["n_ambiguous"], attrs["n_background"], attrs["n_nested"],
        attrs["n_surface_background"],
    )
    attrs["scene_name"] = scene.attrs.get("scene_name", "")
    attrs["boxes_source"] = scene.attrs.get("boxes_source", "")  # "ground_truth (oracle)" marks oracle boxes
    return write_artifact(out_path, "boxes", arrays, params=params.to_dict(), inputs=[scene_path], attrs=attrs)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "box_partition", lambda args: run_box_partition(args.scene, args.out, params_from_args(args)),
        help="split the points of scene.h5 by the boxes that contain them (boxes.h5)",
        description="For every point, the boxes that contain it: points in exactly one box are labelled "
        "(P^l), points in two or more are ambiguous (P^u), points in none are background.",
        params=BoxPartitionParams,
        flags={"containment_tolerance": "metres a box may stick out of another and still count as inside it "
                                        "(reporting only)",
               "surface_background": "planes: mark points inside a box that lie on a plane continuing outside "
                                     "every box (wall, floor, jamb) as background; none: keep them"},
    )
    parser.add_argument("scene", help="scene.h5 (from ingest) with boxes/min, boxes/max")
    parser.add_argument("--out", required=True, help="output boxes.h5")
