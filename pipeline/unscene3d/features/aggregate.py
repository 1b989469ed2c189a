"""Point features -> superpoint features: weighted mean, then L2 normalisation.

For 2D features the weight of a point is its visibility count (the number of frames whose
features its mean was built from), so a superpoint's feature is the mean over every (frame,
point) observation; superpoints never seen get a zero feature and zero weight, which NCut reads
as "no 2D evidence". For 3D features every point weighs 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse


def superpoint_features(point_features: np.ndarray, point_superpoint: np.ndarray, n_superpoints: int,
                        weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((S, C) unit-length weighted means (zero rows where the weight is 0), (S,) total weights)."""
    point_features = np.asarray(point_features, np.float32)
    labels = np.asarray(point_superpoint, np.int64)
    if labels.shape != (len(point_features),):
        raise ValueError(f"{len(labels)} superpoint labels for {len(point_features)} points")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_superpoints):
        raise ValueError(f"superpoint ids must lie in [0, {n_superpoints}); found {labels.min()}..{labels.max()}")
    w = np.ones(len(labels), np.float64) if weights is None else np.asarray(weights, np.float64)
    pooling = sparse.csr_matrix((w, (labels, np.arange(len(labels)))), shape=(n_superpoints, len(labels)))
    total = np.asarray(pooling.sum(axis=1)).ravel()
    summed = np.asarray(pooling @ point_features.astype(np.float64))
    mean = np.divide(summed, total[:, None], out=np.zeros_like(summed), where=total[:, None] > 0)
    return l2_normalize(mean).astype(np.float32), total.astype(np.float32)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > eps)
