"""Point features -> superpoint features: weighted mean, then L2 normalisation.

For 2D features the weight of a point is its visibility count (the number of frames whose
features its mean was built from), so a superpoint's feature is the mean over every (frame,
point) observation; superpoints never seen get a zero feature and zero weight, which NCut reads
as "no 2D evidence". For 3D features every point weighs 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse


def _checked_labels(point_superpoint: np.ndarray, n_points: int, n_superpoints: int) -> np.ndarray:
    labels = np.asarray(point_superpoint, np.int64)
    if labels.shape != (n_points,):
        raise ValueError(f"{len(labels)} superpoint labels for {n_points} points")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_superpoints):
        raise ValueError(f"superpoint ids must lie in [0, {n_superpoints}); found {labels.min()}..{labels.max()}")
    return labels


def superpoint_features(point_features: np.ndarray, point_superpoint: np.ndarray, n_superpoints: int,
                        weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((S, C) unit-length weighted means (zero rows where the weight is 0), (S,) total weights)."""
    point_features = np.asarray(point_features, np.float32)
    return embedded_superpoint_features(point_features, point_superpoint, n_superpoints, None, weights,
                                        chunk=max(len(point_features), 1))


def embedded_superpoint_features(descriptor: np.ndarray, point_superpoint: np.ndarray, n_superpoints: int,
                                 embed=None, weights: np.ndarray | None = None,
                                 chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``superpoint_features`` of ``embed(descriptor)`` (``embed``: (n, d) array -> (n, C) array;
    None = the descriptor itself), embedded ``chunk`` points at a time: a wide kernel embedding
    (thousands of random Fourier features) costs time per point, never an (N, C) array."""
    descriptor = np.asarray(descriptor, np.float32)
    labels = _checked_labels(point_superpoint, len(descriptor), n_superpoints)
    w = np.ones(len(labels), np.float64) if weights is None else np.asarray(weights, np.float64)
    total = np.bincount(labels, weights=w, minlength=n_superpoints).astype(np.float64)
    summed = None
    for start in range(0, len(labels), chunk):
        rows = slice(start, start + chunk)
        block = descriptor[rows] if embed is None else np.asarray(embed(descriptor[rows]), np.float64)
        pooling = sparse.csr_matrix((w[rows], (labels[rows], np.arange(len(block)))), shape=(n_superpoints, len(block)))
        part = np.asarray(pooling @ np.asarray(block, np.float64))
        summed = part if summed is None else summed + part
    if summed is None:  # no points: the embedding's width is unknown without one
        width = descriptor.shape[1] if embed is None else np.asarray(embed(descriptor[:0])).shape[1]
        summed = np.zeros((n_superpoints, width))
    mean = np.divide(summed, total[:, None], out=np.zeros_like(summed), where=total[:, None] > 0)
    return l2_normalize(mean).astype(np.float32), total.astype(np.float32)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > eps)
