"""Small scenes and models for the learning tests (importable as ``train.helpers``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pipeline.scene.geometry import mesh_vertex_normals
from pipeline.scene.superpoints import relabel_consecutive, segment_mesh
from pipeline.learning.train.data import TrainScene, scene_from_arrays

# A model small enough for unit tests (a few hundred ms per step on one core).
TINY_MODEL = {"voxel_size": 0.08, "channels": [8, 16], "blocks": 1, "hidden": 32, "heads": 2, "ffn": 32, "layers": 2,
              "n_queries": 16, "rel_hidden": 8}


@lru_cache(maxsize=4)
def _room_arrays(seed: int, preset: str):
    from pipeline.synth.room import generate_room

    room = generate_room(seed, preset)
    normals = mesh_vertex_normals(room.vertices, room.faces)
    superpoints = relabel_consecutive(segment_mesh(room.vertices, room.faces))
    ids = room.object_ids()
    lo, hi = room.instance_bounds()
    return room, normals, superpoints, ids, lo[ids], hi[ids], [room.labels[i] for i in ids]


def room_scene(seed: int = 0, preset: str = "tiny", with_boxes: bool = True) -> tuple[TrainScene, list[str], np.ndarray]:
    """(scene with boxes from the ground truth, label vocabulary, GT box index per point)."""
    room, normals, superpoints, ids, lo, hi, labels = _room_arrays(seed, preset)
    vocab = sorted(set(labels))
    index = {label: i for i, label in enumerate(vocab)}
    scene = scene_from_arrays(f"room{seed}", room.vertices, room.colors, normals, superpoints,
                              lo if with_boxes else None, hi if with_boxes else None, labels, index)
    scene.gt_instance = room.instance
    gt_box = np.full(len(room.instance), -1, np.int64)
    for box, instance in enumerate(ids):
        gt_box[room.instance == instance] = box
    return scene, vocab, gt_box


def gt_superpoint_masks(scene: TrainScene, gt_box: np.ndarray) -> np.ndarray:
    """(K, S) fraction of each superpoint in each GT object (a stand-in for NCut masks)."""
    from pipeline.learning.train.selftrain import label_fractions

    return label_fractions(gt_box, scene.point_superpoint, scene.sp_size, int(gt_box.max()) + 1)


def write_room_artifacts(folder, seed: int = 0, preset: str = "tiny", with_boxes: bool = True):
    """results/<scene>-style folder with scene.h5, superpoints.h5 (and boxes.h5) of a generated
    room, written directly from the room's arrays (no rendering, so it is fast)."""
    from pathlib import Path

    from pipeline.io.artifacts import write_artifact
    from pipeline.commands.box_partition import run_box_partition

    folder = Path(folder)
    room, normals, superpoints, ids, lo, hi, labels = _room_arrays(seed, preset)
    arrays = {"vertices": room.vertices, "colors": room.colors, "normals": normals, "faces": room.faces,
              "gt": {"instance": room.instance, "instance_label": np.asarray(room.labels)}}
    if with_boxes:
        arrays["boxes"] = {"min": lo, "max": hi, "label": np.asarray(labels), "instance": ids.astype(np.int32)}
    write_artifact(folder / "scene.h5", "scene", arrays, attrs={"scene_name": folder.name, "kind": "mesh"})
    write_artifact(folder / "superpoints.h5", "superpoints", {"point_superpoint": superpoints.astype(np.int32)})
    if with_boxes:
        run_box_partition(folder / "scene.h5", folder / "boxes.h5")
    return folder
