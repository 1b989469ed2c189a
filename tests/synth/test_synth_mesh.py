"""Meshing of solids: closed, welded, outward oriented, spacing respected."""

import numpy as np
import pytest

from pipeline.synth.mesh import box_surface, cylinder_surface, grid_faces, plane_surface, weld


def _edges(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0, return_counts=True)


def _signed_volume(vertices, faces):
    v = vertices[faces]
    return np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0


def test_grid_faces_of_one_cell_are_two_triangles_with_normal_u_cross_v():
    faces = grid_faces(1, 1)
    assert faces.shape == (2, 3)
    points = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]], float)  # (u, v) row-major, u along x
    normals = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    assert np.all(normals[:, 2] > 0)  # x cross y = +z


@pytest.mark.parametrize("lo,hi,spacing", [((0, 0, 0), (1, 1, 1), 0.25), ((0.1, -0.2, 0.3), (0.14, 0.6, 0.33), 0.03)])
def test_box_surface_is_closed_welded_and_outward(lo, hi, spacing):
    vertices, faces = box_surface(lo, hi, spacing)
    _, counts = _edges(faces)
    assert np.all(counts == 2)  # watertight: every edge shared by exactly two triangles
    n_edges = len(counts)
    assert len(vertices) - n_edges + len(faces) == 2  # Euler characteristic of a sphere
    volume = np.prod(np.subtract(hi, lo))
    assert _signed_volume(vertices, faces) == pytest.approx(volume, rel=1e-9)  # positive: outward normals
    assert np.allclose(vertices.min(0), lo) and np.allclose(vertices.max(0), hi)
    lengths = np.linalg.norm(vertices[faces] - vertices[np.roll(faces, 1, axis=1)], axis=2)
    assert lengths.max() <= spacing * np.sqrt(2) + 1e-9


def test_box_surface_without_bottom_drops_only_the_bottom():
    vertices, faces = box_surface((0, 0, 0), (1, 1, 1), 0.5, skip=("-z",))
    centroids = vertices[faces].mean(axis=1)
    assert not np.any(np.isclose(centroids[:, 2], 0.0))
    assert len(faces) == 5 * 8


def test_cylinder_is_closed_with_the_right_volume():
    vertices, faces = cylinder_surface((1.0, 2.0), 0.05, 0.7, 0.8, 0.01)
    _, counts = _edges(faces)
    assert np.all(counts == 2)
    # Inscribed polygon: volume slightly below the true cylinder, but positive (outward normals).
    assert _signed_volume(vertices, faces) == pytest.approx(np.pi * 0.05**2 * 0.1, rel=0.01)
    assert np.allclose(np.hypot(vertices[:, 0] - 1.0, vertices[:, 1] - 2.0).max(), 0.05)


def test_plane_normal_is_u_cross_v_and_weld_merges_duplicates():
    vertices, faces = plane_surface((0, 0, 0), (0, 0, 2), (3, 0, 0), 0.5)  # z x x = +y
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    assert np.all(normals[:, 1] > 0)
    doubled = np.concatenate([vertices, vertices])
    merged, merged_faces = weld(doubled, np.concatenate([faces, faces + len(vertices)]))
    assert len(merged) == len(vertices) and len(merged_faces) == 2 * len(faces)
