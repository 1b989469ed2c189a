"""Readers for one scene in the ScanNet export layout (file I/O lives here, not in algorithms).

    <scene>/color/<i>.jpg  depth/<i>.png  pose/<i>.txt  intrinsic/intrinsic_{color,depth}.txt
    <scene>/<scene>_vh_clean_2.ply   (optional mesh)   <scene>/points.ply (point cloud instead)
    <scene>/<scene>_vh_clean_2.0.010000.segs.json + <scene>.aggregation.json  (optional GT)
    <scene>/boxes.json  (optional boxes)

Every error names the file and what is wrong with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.errors import InputError

FRAME_FOLDERS = {"color": ".jpg", "depth": ".png", "pose": ".txt"}
DEPTH_INVALID = (0, 65535)  # ScanNet and 7-Scenes both mark missing depth with these


def frame_path(scene_dir: str | os.PathLike, kind: str, frame_id: int) -> Path:
    return Path(scene_dir) / kind / f"{frame_id}{FRAME_FOLDERS[kind]}"


def _ids_in(folder: Path, suffix: str) -> set[int]:
    ids = set()
    for entry in folder.iterdir():
        if entry.suffix.lower() == suffix and entry.stem.isdigit():
            ids.add(int(entry.stem))
    return ids


def _describe_difference(a: set[int], b: set[int]) -> str:
    only = sorted(a - b)
    shown = ", ".join(map(str, only[:5])) + (" ..." if len(only) > 5 else "")
    return f"{len(only)} frame id(s) [{shown}]"


def list_frame_ids(scene_dir: str | os.PathLike) -> np.ndarray:
    """Sorted frame ids present in color/, depth/ and pose/; an error if the three disagree.

    Returns an empty array when the scene has none of the three folders (a point-cloud scene).
    """
    scene_dir = Path(scene_dir)
    present = {kind: (scene_dir / kind).is_dir() for kind in FRAME_FOLDERS}
    if not any(present.values()):
        return np.zeros(0, np.int64)
    missing = [kind for kind, ok in present.items() if not ok]
    if missing:
        raise InputError(scene_dir / missing[0], f"frame folder is missing (scene has {[k for k in present if present[k]]})")
    ids = {kind: _ids_in(scene_dir / kind, suffix) for kind, suffix in FRAME_FOLDERS.items()}
    reference = ids["color"]
    for kind in ("depth", "pose"):
        if ids[kind] != reference:
            if reference - ids[kind]:
                problem = f"lacks {_describe_difference(reference, ids[kind])} that color/ has"
            else:
                problem = f"has {_describe_difference(ids[kind], reference)} that color/ lacks"
            raise InputError(scene_dir / kind, f"frame ids differ from color/: {problem}")
    return np.asarray(sorted(reference), np.int64)


def read_matrix4(path: str | os.PathLike) -> np.ndarray:
    """A 4x4 matrix from a whitespace-separated text file; 'inf'/'-inf'/'nan' entries are kept."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file is missing")
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as exc:
        raise InputError(path, f"is not a matrix of numbers ({exc})") from None
    if values.size != 16:
        raise InputError(path, f"expected 16 numbers (a 4x4 matrix), found {values.size}")
    return values.reshape(4, 4)


def read_pose(scene_dir: str | os.PathLike, frame_id: int) -> np.ndarray:
    return read_matrix4(frame_path(scene_dir, "pose", frame_id))


def pose_is_valid(pose: np.ndarray) -> bool:
    """ScanNet marks failed tracking with -inf poses; also reject a singular rotation block."""
    return bool(np.all(np.isfinite(pose)) and abs(np.linalg.det(pose[:3, :3])) > 1e-6)


def read_intrinsic(scene_dir: str | os.PathLike, kind: str) -> np.ndarray:
    """intrinsic/intrinsic_<kind>.txt as a 4x4 matrix (kind: color or depth)."""
    path = Path(scene_dir) / "intrinsic" / f"intrinsic_{kind}.txt"
    if not path.is_file():
        raise InputError(path, f"{kind} intrinsics are missing (needed to project frames)")
    matrix = read_matrix4(path)
    if not (np.all(np.isfinite(matrix)) and matrix[0, 0] > 0 and matrix[1, 1] > 0):
        raise InputError(path, "intrinsic matrix needs finite values and positive focal lengths fx, fy")
    return matrix


def image_size(path: str | os.PathLike, verify: bool = True) -> tuple[int, int]:
    """(width, height) of an image; with ``verify`` the file's integrity is checked too."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            size = image.size
            if verify:
                image.verify()
        if verify and path.suffix.lower() == ".png":
            # verify() checks chunk checksums but not that the image data is complete.
            with Image.open(path) as image:
                image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable image ({exc})") from None
    return size


def read_color(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable colour image ({exc})") from None


def read_integer_image(path: str | os.PathLike, what: str) -> np.ndarray:
    """A single-channel integer image (depth, instance map) as stored; errors name the file."""
    try:
        with Image.open(path) as image:
            raw = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable {what} image ({exc})") from None
    if raw.ndim != 2 or raw.dtype.kind not in "ui":
        raise InputError(path, f"{what} must be a single-channel integer PNG, got {raw.dtype} with shape {raw.shape}")
    return raw


def read_depth(path: str | os.PathLike, depth_scale: float = 1000.0) -> np.ndarray:
    """(H, W) float32 metres; missing readings (0 or 65535) become 0."""
    raw = read_integer_image(path, "depth")
    depth = raw.astype(np.float32) / depth_scale
    depth[np.isin(raw, DEPTH_INVALID)] = 0.0
    return depth


@dataclass
class GroundTruth:
    instance: np.ndarray  # (N,) int32 per vertex, -1 = unlabelled
    labels: list[str]  # label of each instance id


def read_scannet_ground_truth(scene_dir: str | os.PathLike, n_vertices: int) -> GroundTruth | None:
    """Per-vertex instance ids from ScanNet's segs.json + aggregation.json, or None if absent.

    Instance ids are positions in aggregation.json's segGroups (sorted by objectId), so they are
    consecutive from 0 even where ScanNet's objectIds have gaps.
    """
    scene_dir = Path(scene_dir)
    name = scene_dir.name
    segs_path = scene_dir / f"{name}_vh_clean_2.0.010000.segs.json"
    agg_path = scene_dir / f"{name}.aggregation.json"
    if not agg_path.is_file():
        return None  # a segs.json alone is an over-segmentation, not ground truth
    if not segs_path.is_file():
        raise InputError(segs_path, f"missing: {agg_path.name} refers to segments defined in this file")
    segs = _read_json(segs_path)
    agg = _read_json(agg_path)
    if "segIndices" not in segs:
        raise InputError(segs_path, "has no 'segIndices' list")
    seg_indices = np.asarray(segs["segIndices"], np.int64)
    if seg_indices.shape != (n_vertices,):
        raise InputError(segs_path, f"segIndices has {seg_indices.size} entries but the mesh has {n_vertices} vertices")
    groups = agg.get("segGroups")
    if not isinstance(groups, list):
        raise InputError(agg_path, "has no 'segGroups' list")
    groups = sorted(groups, key=lambda g: g.get("objectId", g.get("id", 0)))
    segment_to_instance: dict[int, int] = {}
    labels = []
    for instance_id, group in enumerate(groups):
        if "segments" not in group or "label" not in group:
            raise InputError(agg_path, f"segGroup {instance_id} lacks 'segments' or 'label'")
        labels.append(str(group["label"]))
        for segment in group["segments"]:
            # ScanNet's own files very rarely list a segment twice; the first group wins.
            segment_to_instance.setdefault(int(segment), instance_id)
    unique_segments, inverse = np.unique(seg_indices, return_inverse=True)
    lookup = np.array([segment_to_instance.get(int(s), -1) for s in unique_segments], np.int32)
    return GroundTruth(lookup[inverse].astype(np.int32), labels)


@dataclass
class Boxes:
    box_min: np.ndarray  # (B, 3)
    box_max: np.ndarray  # (B, 3)
    labels: list[str]
    instance: np.ndarray  # (B,) GT instance id of each box, -1 if unknown


def read_boxes_json(path: str | os.PathLike) -> Boxes:
    """boxes.json: {"boxes": [{"center": [x,y,z], "size": [dx,dy,dz], "label": str, "instance_id": int?}]}.

    Axis-aligned, metres, scene frame; order is significant (outputs refer to boxes by index).
    """
    path = Path(path)
    data = _read_json(path)
    entries = data.get("boxes") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(path, "must be an object with a 'boxes' list")
    centers, sizes, labels, instances = [], [], [], []
    for index, entry in enumerate(entries):
        try:
            center = np.asarray(entry["center"], np.float64)
            size = np.asarray(entry["size"], np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(path, f"box {index} needs numeric 'center' and 'size' lists") from None
        if center.shape != (3,) or size.shape != (3,) or not np.all(np.isfinite(np.r_[center, size])):
            raise InputError(path, f"box {index}: 'center' and 'size' must be 3 finite numbers each")
        if np.any(size < 0):
            raise InputError(path, f"box {index} has a negative size {size.tolist()}")
        centers.append(center)
        sizes.append(size)
        labels.append(str(entry.get("label", "object")))
        instances.append(int(entry.get("instance_id", -1)))
    centers = np.asarray(centers, np.float64).reshape(-1, 3)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 3)
    return Boxes(centers - sizes / 2, centers + sizes / 2, labels, np.asarray(instances, np.int32))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(path, f"unreadable ({exc})") from None
