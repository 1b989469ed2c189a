"""Small geometric helpers shared by stages: boxes, normals, camera projection."""

from __future__ import annotations

import numpy as np


def points_in_boxes(points: np.ndarray, box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """(N, B) bool: point n lies inside axis-aligned box b (faces inclusive)."""
    points = np.asarray(points, np.float64)[:, None, :]
    return np.all((points >= np.asarray(box_min)[None]) & (points <= np.asarray(box_max)[None]), axis=2)


def instance_boxes(points: np.ndarray, instance: np.ndarray, n_instances: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (min, max), each (n_instances, 3), of the points of each instance id.

    Instances without points get NaN bounds.
    """
    box_min = np.full((n_instances, 3), np.nan)
    box_max = np.full((n_instances, 3), np.nan)
    labelled = instance >= 0
    if not np.any(labelled):
        return box_min, box_max
    ids = instance[labelled]
    pts = np.asarray(points, np.float64)[labelled]
    order = np.argsort(ids, kind="stable")
    ids, pts = ids[order], pts[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    box_min[ids[starts]] = np.minimum.reduceat(pts, starts, axis=0)
    box_max[ids[starts]] = np.maximum.reduceat(pts, starts, axis=0)
    return box_min, box_max


def mesh_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit length; zero for vertices in no non-degenerate face)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    face_normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, f[:, corner], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0).astype(np.float32)


def point_cloud_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """PCA normals from the k nearest neighbours, oriented toward the cloud's bounding-box centre.

    For an indoor room the centre is inside, so floors point up and walls point into the room.
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(points, np.float64)
    if len(pts) < 3:
        return np.zeros((len(pts), 3), np.float32)
    k = min(k, len(pts))
    _, neighbours = cKDTree(pts).query(pts, k=k)
    local = pts[neighbours] - pts[neighbours].mean(axis=1, keepdims=True)
    covariance = np.einsum("nki,nkj->nij", local, local)
    _, eigenvectors = np.linalg.eigh(covariance)
    normals = eigenvectors[:, :, 0]
    centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
    flip = np.einsum("ni,ni->n", normals, centre - pts) < 0
    normals[flip] *= -1
    return normals.astype(np.float32)


def scale_intrinsics(intrinsic: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Rescale a 4x4 (or 3x3) pinhole intrinsic from image size (w, h) to another (w, h)."""
    scaled = np.array(intrinsic, np.float64, copy=True)
    sx = to_size[0] / from_size[0]
    sy = to_size[1] / from_size[1]
    scaled[0, 0] *= sx
    scaled[0, 2] = (scaled[0, 2] + 0.5) * sx - 0.5
    scaled[1, 1] *= sy
    scaled[1, 2] = (scaled[1, 2] + 0.5) * sy - 0.5
    return scaled
