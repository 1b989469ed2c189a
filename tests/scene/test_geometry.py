import numpy as np
import pytest

from pipeline.scene.geometry import instance_boxes, mesh_vertex_normals, points_in_boxes, scale_intrinsics


def test_points_in_boxes_is_inclusive():
    points = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0.5, 0.5, 0.5]])
    inside = points_in_boxes(points, np.array([[0, 0, 0], [0.4, 0.4, 0.4]]), np.array([[1, 1, 1], [3, 3, 3]]))
    assert inside.tolist() == [[True, False], [True, True], [False, True], [True, True]]


def test_instance_boxes():
    points = np.array([[0, 0, 0], [2, 1, 0], [5, 5, 5], [9, 9, 9]], float)
    box_min, box_max = instance_boxes(points, np.array([0, 0, 2, -1]), 3)
    assert box_min[0].tolist() == [0, 0, 0] and box_max[0].tolist() == [2, 1, 0]
    assert np.isnan(box_min[1]).all()  # instance 1 has no points
    assert box_max[2].tolist() == [5, 5, 5]


def test_mesh_normals_are_unit_and_area_weighted():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    # a big triangle in z=0 and a tiny one in x=0 share vertex 0
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    normals = mesh_vertex_normals(vertices * [10, 10, 0.1], faces)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
    assert normals[0, 2] > 0.99  # dominated by the large face
    assert mesh_vertex_normals(vertices, np.array([[0, 0, 1]])).tolist()[0] == [0, 0, 0]  # degenerate


def test_scale_intrinsics_maps_pixel_centres():
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    half = scale_intrinsics(K, (640, 480), (320, 240))
    assert half[0, 0] == pytest.approx(250) and half[0, 2] == pytest.approx(159.5)
    np.testing.assert_allclose(scale_intrinsics(half, (320, 240), (640, 480)), K)
