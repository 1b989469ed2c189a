"""Room structure among superpoints: planes, the beyond-fraction test, boxes in a horizontal frame."""

import numpy as np
import pytest

from pipeline.unscene3d.features.structure import (
    beyond_fraction,
    horizontal_frame,
    sample_stride,
    structure_superpoints,
    superpoint_boxes,
    superpoint_planes,
)


def grid(u, v, origin, du, dv, step=0.1):
    """Points on the rectangle origin + s du + t dv, s in [0, u], t in [0, v]."""
    s, t = np.meshgrid(np.arange(0, u + 1e-9, step), np.arange(0, v + 1e-9, step))
    return np.asarray(origin) + s.ravel()[:, None] * np.asarray(du) + t.ravel()[:, None] * np.asarray(dv)


def box_room():
    """Floor 4 x 3 m, four 2.5 m walls, a table top at 0.7 m with a leg, a 0.4 m crate on the floor.

    Superpoints: 0 floor, 1-4 walls, 5 table top, 6 table leg, 7 crate top, 8 crate side.
    """
    x, y, z = np.eye(3)
    parts = [
        grid(4, 3, [0, 0, 0], x, y),
        grid(4, 2.5, [0, 0, 0], x, z), grid(4, 2.5, [0, 3, 0], x, z),
        grid(3, 2.5, [0, 0, 0], y, z), grid(3, 2.5, [4, 0, 0], y, z),
        grid(1.2, 0.8, [1, 1, 0.7], x, y),
        grid(0.1, 0.7, [1.1, 1.1, 0], x, z),
        grid(0.4, 0.4, [3, 0.5, 0.4], x, y),
        grid(0.4, 0.4, [3, 0.5, 0], x, z),
    ]
    labels = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    return np.concatenate(parts), labels


def test_planes_of_hand_made_superpoints():
    flat = np.array([[0, 0, 2.01], [1, 0, 1.99], [0, 1, 1.99], [1, 1, 2.01]])
    line = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]])
    centroid, normal, residual = superpoint_planes(np.concatenate([flat, line]), np.array([0, 0, 0, 0, 2, 2, 2]), 3)
    assert centroid[0] == pytest.approx([0.5, 0.5, 2.0])
    assert abs(normal[0] @ [0, 0, 1]) == pytest.approx(1.0, abs=1e-6)
    assert residual[0] == pytest.approx(0.01, abs=1e-9)  # every point 1 cm off the plane z = 2
    assert residual[2] == pytest.approx(0.0, abs=1e-9) and abs(normal[2][0]) < 1e-6  # a line: normal across it
    assert np.all(normal[1] == 0)  # superpoint 1 is empty


def test_beyond_fraction_counts_the_emptier_side_past_the_margin():
    points = np.array([[0, 0, -1.0], [0, 0, 0.0], [0, 0, 1.0], [0, 0, 2.0], [5, 5, 0.55]])
    planes = np.array([[0, 0, 0.5], [0, 0, -1.0]])
    normals = np.array([[0, 0, 1.0], [0, 0, -1.0]])  # the sign of the normal does not matter
    # z = 0.5: 2 points above, 2 below (0.55 is inside the margin) -> 2/5; z = -1: nothing below -> 0.
    assert beyond_fraction(points, planes, normals, margin=0.1).tolist() == pytest.approx([0.4, 0.0])


def test_floor_and_walls_are_structure_but_not_table_or_crate():
    points, labels = box_room()
    structure = structure_superpoints(points, labels, 9)
    assert structure.tolist() == [True] * 5 + [False] * 4
    # A ceiling-less room: with a large enough tolerance the table top would pass too.
    assert structure_superpoints(points, labels, 9, {"max_beyond": 0.6})[5]
    assert not structure_superpoints(points, labels, 9, {"enabled": False}).any()


def test_curved_superpoints_are_not_structure():
    points, labels = box_room()
    bumpy = labels == 0
    points = points.copy()
    points[bumpy, 2] += 0.2 * np.sin(points[bumpy, 0] * 3)  # 14 cm RMS: no plane
    # A margin wider than the bumps keeps the beyond-test passing: only the planarity gate rejects it.
    assert not structure_superpoints(points, labels, 9, {"margin": 0.3})[0]
    assert structure_superpoints(points, labels, 9, {"margin": 0.3, "max_residual": 0.2})[0]


def test_sample_stride_keeps_at_most_the_limit():
    assert sample_stride(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_stride(3, 10).tolist() == [0, 1, 2]


def test_horizontal_frame_is_identity_for_z_up_and_orthonormal_otherwise():
    assert horizontal_frame([0, 0, 2]) == pytest.approx(np.eye(3))
    frame = horizontal_frame([0, -1, 0])
    assert frame @ frame.T == pytest.approx(np.eye(3), abs=1e-12)
    assert frame[2] == pytest.approx([0, -1, 0])


def test_superpoint_boxes_in_the_horizontal_frame():
    points = np.array([[0, 0, 0], [1, 2, 3], [5, 5, 5.0]])
    low, high = superpoint_boxes(points, np.array([0, 0, 2]), 3)
    assert low[0].tolist() == [0, 0, 0] and high[0].tolist() == [1, 2, 3]
    assert np.isnan(low[1]).all() and high[2].tolist() == [5, 5, 5]
    # y up: the third coordinate is the height (y), the first two span the floor.
    low, high = superpoint_boxes(points, np.array([0, 0, 2]), 3, up_axis=[0, 1, 0])
    assert high[0][2] == pytest.approx(2.0) and low[0][2] == pytest.approx(0.0)
