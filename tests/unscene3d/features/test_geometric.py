"""Weight-free geometric features: FPFH, height, kernel embedding."""

import numpy as np
import pytest

from pipeline.unscene3d.features.geometric import fpfh, geometric_point_features, height_above_floor


def box_scene():
    """A floor (z = 0) and a table-top (z = 0.7), both flat grids with upward normals."""
    xs, ys = np.meshgrid(np.linspace(0, 2, 41), np.linspace(0, 2, 41))
    floor = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size)], 1)
    top = floor[(floor[:, 0] < 0.8) & (floor[:, 1] < 0.8)] + [0.6, 0.6, 0.7]
    points = np.concatenate([floor, top])
    normals = np.tile([0.0, 0.0, 1.0], (len(points), 1))
    return points, normals, len(floor)


def test_fpfh_histograms_sum_to_one_per_angle():
    points, normals, _ = box_scene()
    hist = fpfh(points, normals, radius=0.15, max_nn=30)
    assert hist.shape == (len(points), 33)
    assert hist.reshape(-1, 3, 11).sum(axis=2) == pytest.approx(np.ones((len(points), 3)), abs=1e-5)


def test_height_above_floor_uses_the_up_axis():
    points = np.array([[0, 0, 1.0], [0, 0, 2.0], [0, 0, 1.5]])
    assert height_above_floor(points, [0, 0, 1], 0.0).tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert height_above_floor(points[:, [2, 0, 1]], [1, 0, 0], 0.0).tolist() == pytest.approx([0.0, 1.0, 0.5])


def test_points_on_the_same_surface_are_more_similar():
    points, normals, n_floor = box_scene()
    f = geometric_point_features(points, normals, {"n_features": 256, "normal_weight": 1.0, "fpfh_weight": 1.0})
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    floor_a, floor_b, top = 41 * 5 + 30, 41 * 6 + 31, n_floor + 100  # two floor points far from the table
    assert f[floor_a] @ f[floor_b] > f[floor_a] @ f[top] + 0.2


def test_default_features_are_a_spatial_kernel():
    # Defaults weigh position and height only: similarity falls with distance, not with orientation.
    points = np.array([[0.0, 0, 0], [0.1, 0, 0], [2.0, 0, 0], [0.0, 0.1, 0]])
    normals = np.array([[0.0, 0, 1], [0.0, 0, 1], [0.0, 0, 1], [1.0, 0, 0]])
    f = geometric_point_features(points, normals, {"n_features": 2048})
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    assert f[0] @ f[1] > 0.95 and f[0] @ f[3] > 0.95  # 10 cm apart, whatever the normal
    assert f[0] @ f[2] < 0.1  # 2 m apart: exp(-4 / (2 * 0.6^2)) ~ 0.004
