"""Weight-free 3D baseline features: surface normal, FPFH, height above the floor, position.

A *baseline* for the CSC network: it can describe local surface shape (FPFH from open3d, built on
the scene's own normals), orientation (the normal), height above the lowest part of the scene
along ``up_axis`` and position. Each group is scaled by its weight and the concatenation is
embedded with random Fourier features (``pipeline.unscene3d.features.fourier``, 2048 by default,
summed per superpoint a chunk of points at a time), so the cosine similarity of superpoint means
approximates a Gaussian-kernel similarity of their point descriptors.

Default weights come from the synthetic rooms (benchmarks/ncut.py): position and height alone gave
the best NCut masks (AP 0.31 with the superpoints' 3 cm adjacency radius vs 0.21-0.27 with
normal/FPFH terms added), because the faces of one object have different normals and shapes while being close together. So
by default this is a spatial-proximity kernel; the shape terms are there to be weighted in (FPFH is
not computed while its weight is 0). It knows nothing about objects.
"""

from __future__ import annotations

import numpy as np

from pipeline.unscene3d.features.fourier import fourier_embedding
from pipeline.params import HANDCRAFTED_3D

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(HANDCRAFTED_3D)  # features_3d.handcrafted


def fpfh(points: np.ndarray, normals: np.ndarray, radius: float, max_nn: int) -> np.ndarray:
    """(N, 33) Fast Point Feature Histograms, each of the three 11-bin histograms summing to 1."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    cloud.normals = o3d.utility.Vector3dVector(np.asarray(normals, np.float64))
    search = o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=max_nn)
    hist = np.asarray(o3d.pipelines.registration.compute_fpfh_feature(cloud, search).data, np.float32).T
    hist = hist.reshape(-1, 3, 11)
    total = hist.sum(axis=2, keepdims=True)
    return np.divide(hist, total, out=np.zeros_like(hist), where=total > 0).reshape(-1, 33)


def height_above_floor(points: np.ndarray, up_axis, floor_percentile: float) -> np.ndarray:
    up = np.asarray(up_axis, np.float64)
    up = up / np.linalg.norm(up)
    heights = np.asarray(points, np.float64) @ up
    return (heights - np.percentile(heights, floor_percentile)).astype(np.float32)


def geometric_descriptors(points: np.ndarray, normals: np.ndarray, params: dict) -> np.ndarray:
    """(N, 3 + 33 + 1 + 3) weighted raw descriptors before the kernel embedding."""
    p = {**DEFAULT_PARAMS, **params}
    points = np.asarray(points, np.float32)
    normals = np.asarray(normals, np.float32)
    height = height_above_floor(points, p["up_axis"], float(p["floor_percentile"]))
    centred = points - points.mean(axis=0)
    if p["fpfh_weight"]:
        histograms = fpfh(points, normals, float(p["fpfh_radius"]), int(p["fpfh_max_nn"])) * p["fpfh_weight"]
    else:
        histograms = np.zeros((len(points), 33), np.float32)  # weight 0: skip the costly computation
    return np.concatenate(
        [normals * p["normal_weight"], histograms, height[:, None] * p["height_weight"], centred * p["position_weight"]],
        axis=1,
    ).astype(np.float32)


def geometric_point_features(points: np.ndarray, normals: np.ndarray, params: dict | None = None) -> np.ndarray:
    """(N, n_features) kernel-embedded geometric features."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    return fourier_embedding(int(p["n_features"]), float(p["bandwidth"]), int(p["seed"]))(geometric_descriptors(points, normals, p))


def geometric_superpoint_features(points: np.ndarray, normals: np.ndarray, point_superpoint: np.ndarray,
                                  n_superpoints: int, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((S, n_features) unit-length superpoint means of the kernel embedding, (S,) points per
    superpoint), embedded a chunk of points at a time (``aggregate.embedded_superpoint_features``)."""
    from pipeline.unscene3d.features.aggregate import embedded_superpoint_features

    p = {**DEFAULT_PARAMS, **(params or {})}
    return embedded_superpoint_features(geometric_descriptors(points, normals, p), point_superpoint, n_superpoints,
                                        fourier_embedding(int(p["n_features"]), float(p["bandwidth"]), int(p["seed"])))
