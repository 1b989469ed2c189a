"""Room structure (floor, walls, ceiling) among superpoints, and superpoint boxes, from geometry alone.

A scan sees a room from the inside, so its floor, walls and ceiling are *bounding planes*: beyond
the plane of a floor patch (below it), of a wall patch (behind it) or of a ceiling patch (above it)
the scan has (almost) no points. An object's face is not: the plane of a table top has the walls
above it and the floor below, the plane of a cabinet's side cuts through the room, and a free-
standing partition has points on both sides. So a superpoint is *structure* when it is planar
(RMS distance of its points to their best-fit plane at most ``max_residual``) and at most
``max_beyond`` of the scan's points lie more than ``margin`` beyond that plane on one side. The
test holds for any orientation (sloped ceilings too) and needs no floor height or up axis.

What it cannot tell apart: things flush with a bounding plane (a window, a door in its frame, a
curtain or picture hanging against the wall, a rug) count as structure; a wall that does not bound
the scan (between two scanned rooms, the inner corner of an L-shaped room) does not.

NCut masks structure superpoints out of the graph before its first cut (``ncut.structure``).
"""

from __future__ import annotations

import numpy as np
from pipeline.params import STRUCTURE

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(STRUCTURE)  # features_3d.structure


def superpoint_planes(points: np.ndarray, labels: np.ndarray, n_superpoints: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares plane of each superpoint: (S, 3) centroid, (S, 3) unit normal, (S,) RMS residual.

    The normal is the eigenvector of the smallest eigenvalue of the points' covariance; the RMS
    residual is the square root of that eigenvalue. Empty superpoints get a zero normal.
    """
    points = np.asarray(points, np.float64)
    labels = np.asarray(labels, np.int64)
    count = np.bincount(labels, minlength=n_superpoints).astype(np.float64)
    safe = np.maximum(count, 1.0)
    sums = [np.bincount(labels, weights=points[:, k], minlength=n_superpoints) for k in range(3)]
    centroid = np.stack(sums, 1) / safe[:, None]
    local = points - centroid[labels]
    covariance = np.empty((n_superpoints, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            covariance[:, a, b] = covariance[:, b, a] = np.bincount(labels, weights=local[:, a] * local[:, b],
                                                                    minlength=n_superpoints) / safe
    values, vectors = np.linalg.eigh(covariance)
    normal = vectors[:, :, 0]
    normal[count == 0] = 0.0
    return centroid, normal, np.sqrt(np.maximum(values[:, 0], 0.0))


def beyond_fraction(points: np.ndarray, centroid: np.ndarray, normal: np.ndarray, margin: float,
                    block: int = 64) -> np.ndarray:
    """(S,) fraction of ``points`` more than ``margin`` beyond each plane, on its emptier side."""
    points = np.asarray(points, np.float64)
    out = np.ones(len(centroid))
    if len(points) == 0:
        return out
    for start in range(0, len(centroid), block):
        rows = slice(start, start + block)
        # signed distance of every point to each plane: p . n - c . n
        distance = points @ normal[rows].T - np.einsum("sk,sk->s", centroid[rows], normal[rows])[None, :]
        above = (distance > margin).mean(axis=0)
        below = (distance < -margin).mean(axis=0)
        out[rows] = np.minimum(above, below)
    return out


def sample_stride(n: int, limit: int) -> np.ndarray:
    """Indices of every k-th of n items, k chosen so at most ``limit`` remain (deterministic)."""
    step = max(1, -(-n // max(1, limit)))
    return np.arange(0, n, step)


def structure_superpoints(points: np.ndarray, labels: np.ndarray, n_superpoints: int, params: dict | None = None) -> np.ndarray:
    """(S,) bool: planar superpoints whose plane bounds the scan (see the module docstring)."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    if not p["enabled"] or n_superpoints == 0:
        return np.zeros(n_superpoints, bool)
    centroid, normal, residual = superpoint_planes(points, labels, n_superpoints)
    planar = (residual <= float(p["max_residual"])) & (np.linalg.norm(normal, axis=1) > 0)
    sample = np.asarray(points, np.float64)[sample_stride(len(points), int(p["sample_points"]))]
    beyond = np.ones(n_superpoints)
    beyond[planar] = beyond_fraction(sample, centroid[planar], normal[planar], float(p["margin"]))
    return planar & (beyond <= float(p["max_beyond"]))


def horizontal_frame(up_axis) -> np.ndarray:
    """(3, 3) rows h1, h2, up: an orthonormal frame whose third axis is ``up_axis``.

    For up = z it is the identity, so boxes in this frame are the usual axis-aligned ones.
    """
    up = np.asarray(up_axis, np.float64)
    up = up / np.linalg.norm(up)
    helper = np.eye(3)[int(np.argmin(np.abs(up)))] if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    h1 = helper - (helper @ up) * up
    h1 /= np.linalg.norm(h1)
    return np.stack([h1, np.cross(up, h1), up])


def superpoint_boxes(points: np.ndarray, labels: np.ndarray, n_superpoints: int,
                     up_axis=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """(S, 3) min and max corner of each superpoint in the frame (h1, h2, up) (NaN when empty)."""
    coordinates = np.asarray(points, np.float64) @ horizontal_frame(up_axis).T
    labels = np.asarray(labels, np.int64)
    low = np.full((n_superpoints, 3), np.inf)
    high = np.full((n_superpoints, 3), -np.inf)
    for k in range(3):
        np.minimum.at(low[:, k], labels, coordinates[:, k])
        np.maximum.at(high[:, k], labels, coordinates[:, k])
    empty = ~np.isfinite(low[:, 0])
    low[empty] = high[empty] = np.nan
    return low.astype(np.float32), high.astype(np.float32)
