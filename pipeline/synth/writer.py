"""Write a synthetic room as a ScanNet-layout scene directory with exact ground truth.

Layout (scene = the output directory's name):
  color/<i>.jpg, depth/<i>.png (uint16 mm), instance/<i>.png (uint16 objectId + 1, 0 = nothing),
  pose/<i>.txt (4x4 camera-to-world; all -inf for frames marked invalid, as ScanNet does),
  intrinsic/intrinsic_color.txt, intrinsic/intrinsic_depth.txt,
  <scene>_vh_clean_2.ply, <scene>_vh_clean_2.0.010000.segs.json, <scene>.aggregation.json,
  boxes.json (every instance except floor and walls), synth_meta.json (seed and parameters).
Everything is written into a hidden sibling directory that is renamed into place at the end, so
an interrupted run never leaves a complete-looking scene.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.errors import InputError
from pipeline.io.ply import write_ply
from pipeline.synth.camera import camera_trajectory, default_intrinsic
from pipeline.synth.render import RoomRenderer
from pipeline.synth.room import Room, generate_room

DEFAULT_FRAMES = {"default": 60, "tiny": 12}


def segs_json(room: Room, scene: str) -> dict:
    """ScanNet's over-segmentation file: one segment id per mesh vertex."""
    return {"params": {"generator": "pipeline.synth", "segment_size": room.params.segment_size},
            "sceneId": f"{scene}_vh_clean_2", "segIndices": room.segment.tolist()}


def aggregation_json(room: Room, scene: str) -> dict:
    """ScanNet's instance annotation: each object (objectId = id) is a group of segments."""
    groups = []
    for object_id, label in enumerate(room.labels):
        segments = np.unique(room.segment[room.instance == object_id])
        groups.append({"id": object_id, "objectId": object_id, "segments": segments.tolist(), "label": label})
    return {"sceneId": f"scannet.{scene}", "appId": "pipeline.synth.v1", "segGroups": groups,
            "segmentsFile": f"scannet.{scene}_vh_clean_2.0.010000.segs.json"}


def boxes_json(room: Room) -> dict:
    """Axis-aligned bounds of every instance except floor and walls, in objectId order."""
    box_min, box_max = room.instance_bounds()
    boxes = []
    for object_id in room.object_ids():
        lo, hi = box_min[object_id], box_max[object_id]
        boxes.append({"center": ((lo + hi) / 2).tolist(), "size": (hi - lo).tolist(),
                      "label": room.labels[object_id], "instance_id": int(object_id)})
    return {"boxes": boxes}


def invalid_frame_indices(n_frames: int, n_invalid: int, seed: int) -> np.ndarray:
    """Which frames get an invalid (-inf) pose, drawn from the seed; sorted."""
    if not 0 <= n_invalid <= n_frames:
        raise ValueError(f"invalid_poses must be within 0..{n_frames} (got {n_invalid})")
    rng = np.random.default_rng([seed, 3])
    return np.sort(rng.choice(n_frames, size=n_invalid, replace=False)).astype(np.int64)


def _write_matrix(path: Path, matrix: np.ndarray) -> None:
    # np.savetxt writes non-finite values as 'inf' / '-inf', which is how ScanNet marks lost tracking.
    np.savetxt(path, matrix, fmt="%.8f")


def _write_json(path: Path, payload: dict) -> None:
    with open(path, "w") as handle:
        json.dump(payload, handle)


def _replace_directory(tmp: Path, out: Path) -> None:
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, trash)
        os.rename(tmp, out)
        shutil.rmtree(trash)
    else:
        os.rename(tmp, out)


def write_synthetic_scene(out_dir, seed: int = 0, n_frames: int | None = None,
                          image_size: tuple[int, int] = (320, 240), *, preset: str = "default",
                          invalid_poses: int = 0, color_size: tuple[int, int] | None = None,
                          max_depth: float = 10.0, jpeg_quality: int = 92, overwrite: bool = False,
                          **room_params) -> Path:
    """Generate, render and write one synthetic scene; returns the scene directory.

    ``n_frames`` defaults to the preset's (60 default, 12 tiny); ``image_size`` and ``color_size``
    are (width, height) of the depth/instance and colour images (colour defaults to the depth size).
    ``room_params`` override fields of the preset's RoomParams.
    """
    out = Path(out_dir)
    scene = out.name
    if not scene:
        raise InputError(out, "output directory needs a name (it becomes the scene name)")
    if out.exists() and not overwrite:
        raise InputError(out, "output directory already exists (pass overwrite to replace it)")
    n_frames = DEFAULT_FRAMES.get(preset, 60) if n_frames is None else int(n_frames)
    depth_size = (int(image_size[0]), int(image_size[1]))
    color_size = depth_size if color_size is None else (int(color_size[0]), int(color_size[1]))
    if min(depth_size + color_size) < 1:
        raise ValueError(f"image sizes must be positive (got {depth_size} and {color_size})")
    room = generate_room(seed, preset, **room_params)
    poses = camera_trajectory(room, n_frames)
    invalid = invalid_frame_indices(n_frames, invalid_poses, seed)
    depth_intrinsic = default_intrinsic(*depth_size)
    color_intrinsic = default_intrinsic(*color_size)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{scene}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_scene_files(tmp, scene, room, poses, invalid, depth_intrinsic, depth_size, color_intrinsic,
                           color_size, max_depth, jpeg_quality)
        meta = {
            "generator": "pipeline.synth", "version": __version__, "seed": int(seed), "preset": preset,
            "room_params": room.params_dict(), "room_size": list(room.size), "n_frames": n_frames,
            "depth_size": list(depth_size), "color_size": list(color_size), "max_depth": max_depth,
            "invalid_frames": invalid.tolist(), "n_vertices": int(len(room.vertices)),
            "n_faces": int(len(room.faces)), "labels": room.labels,
        }
        _write_json(tmp / "synth_meta.json", meta)
        _replace_directory(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_scene_files(root: Path, scene: str, room: Room, poses: np.ndarray, invalid: np.ndarray,
                       depth_intrinsic, depth_size, color_intrinsic, color_size, max_depth, jpeg_quality) -> None:
    from PIL import Image

    for sub in ("color", "depth", "pose", "instance", "intrinsic"):
        (root / sub).mkdir(parents=True)
    _write_matrix(root / "intrinsic" / "intrinsic_color.txt", color_intrinsic)
    _write_matrix(root / "intrinsic" / "intrinsic_depth.txt", depth_intrinsic)
    write_ply(root / f"{scene}_vh_clean_2.ply", room.vertices, colors=room.colors, faces=room.faces)
    _write_json(root / f"{scene}_vh_clean_2.0.010000.segs.json", segs_json(room, scene))
    _write_json(root / f"{scene}.aggregation.json", aggregation_json(room, scene))
    _write_json(root / "boxes.json", boxes_json(room))

    renderer = RoomRenderer(room)
    invalid_set = set(invalid.tolist())
    for index, pose in enumerate(poses):
        frame = renderer.render(pose, depth_intrinsic, depth_size, color_intrinsic=color_intrinsic,
                                color_size=color_size, max_depth=max_depth)
        Image.fromarray(frame.color).save(root / "color" / f"{index}.jpg", quality=jpeg_quality)
        Image.fromarray(frame.depth_mm).save(root / "depth" / f"{index}.png")
        Image.fromarray((frame.instance + 1).astype(np.uint16)).save(root / "instance" / f"{index}.png")
        # The frame is rendered from its true pose; an invalid one only hides that pose, like ScanNet.
        _write_matrix(root / "pose" / f"{index}.txt", np.full((4, 4), -np.inf) if index in invalid_set else pose)


