"""Triangle meshes of simple solids with roughly uniform vertex spacing.

Every solid is meshed as a set of rectangular grids (parametric patches) whose shared edges are
sampled at exactly the same coordinates, so welding identical positions makes each solid one
closed, consistently oriented surface (outward normals by the right-hand rule).
"""

from __future__ import annotations

import numpy as np


def _steps(length: float, spacing: float) -> int:
    """Number of grid intervals so that no interval is longer than ``spacing``."""
    return max(1, int(np.ceil(length / spacing - 1e-9)))


def grid_faces(n_u: int, n_v: int, offset: int = 0) -> np.ndarray:
    """Triangles of an (n_u+1) x (n_v+1) vertex grid stored row-major (u slow, v fast).

    Orientation: the normal is d/du x d/dv of the grid's parametrisation.
    """
    u, v = np.meshgrid(np.arange(n_u), np.arange(n_v), indexing="ij")
    a = (u * (n_v + 1) + v).ravel() + offset  # corner (u, v)
    b = a + (n_v + 1)  # (u+1, v)
    c = b + 1  # (u+1, v+1)
    d = a + 1  # (u, v+1)
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)


def weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge bit-identical vertices and drop the triangles that collapse to a line or point."""
    # Adding 0.0 turns -0.0 into 0.0, which would otherwise compare unequal bytewise.
    unique, inverse = np.unique(vertices + 0.0, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return unique, faces[keep]


def _patch(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of one grid patch given its (n_u+1, n_v+1, 3) sample points."""
    n_u, n_v = points.shape[0] - 1, points.shape[1] - 1
    return points.reshape(-1, 3), grid_faces(n_u, n_v)


def _join(patches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces, offset = [], [], 0
    for patch_vertices, patch_faces in patches:
        vertices.append(patch_vertices)
        faces.append(patch_faces + offset)
        offset += len(patch_vertices)
    return np.concatenate(vertices), np.concatenate(faces)


def box_surface(box_min, box_max, spacing: float, skip: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Closed surface of an axis-aligned box, outward normals, welded along its edges.

    ``skip`` names faces to leave out ("-x", "+x", "-y", "+y", "-z", "+z"), e.g. the hidden
    underside of a floor slab.
    """
    lo = np.asarray(box_min, np.float64)
    hi = np.asarray(box_max, np.float64)
    # One sample array per axis, shared by every face: this is what makes welding exact.
    axes = [np.linspace(lo[k], hi[k], _steps(hi[k] - lo[k], spacing) + 1) for k in range(3)]
    patches = []
    for k in range(3):
        i, j = (k + 1) % 3, (k + 2) % 3  # (i, j, k) is a cyclic permutation, so e_i x e_j = e_k
        for side, value in (("-", lo[k]), ("+", hi[k])):
            if f"{side}{'xyz'[k]}" in skip:
                continue
            first, second = (axes[i], axes[j]) if side == "+" else (axes[j], axes[i])
            a, b = np.meshgrid(first, second, indexing="ij")
            points = np.empty(a.shape + (3,))
            points[..., k] = value
            points[..., i if side == "+" else j] = a
            points[..., j if side == "+" else i] = b
            patches.append(_patch(points))
    return weld(*_join(patches))


def plane_surface(origin, u_axis, v_axis, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """A single rectangle origin + s*u_axis + t*v_axis (s, t in [0, 1]); normal u_axis x v_axis."""
    origin, u_axis, v_axis = (np.asarray(x, np.float64) for x in (origin, u_axis, v_axis))
    s = np.linspace(0.0, 1.0, _steps(np.linalg.norm(u_axis), spacing) + 1)
    t = np.linspace(0.0, 1.0, _steps(np.linalg.norm(v_axis), spacing) + 1)
    points = origin + s[:, None, None] * u_axis + t[None, :, None] * v_axis
    return _patch(points)


def cylinder_surface(center_xy, radius: float, z_min: float, z_max: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed vertical cylinder (side and both caps), outward normals, welded."""
    n_around = max(8, _steps(2 * np.pi * radius, spacing))
    theta = np.linspace(0.0, 2 * np.pi, n_around + 1)
    theta[-1] = 0.0  # the seam must reuse exactly the first angle's coordinates
    cos, sin = np.cos(theta), np.sin(theta)
    cx, cy = float(center_xy[0]), float(center_xy[1])
    zs = np.linspace(z_min, z_max, _steps(z_max - z_min, spacing) + 1)
    rings = np.linspace(0.0, radius, _steps(radius, spacing) + 1)

    def ring_points(r, z):
        return np.stack([cx + r * cos, cy + r * sin, np.full_like(cos, z)], axis=-1)

    # Side: u = angle, v = height -> d/du x d/dv = tangent x z, the outward radial direction.
    side = np.stack([ring_points(radius, z) for z in zs], axis=1)
    # Top cap: u = radius, v = angle -> radial x tangent = +z. Bottom: u = angle, v = radius -> -z.
    top = np.stack([ring_points(r, z_max) for r in rings])
    bottom = np.stack([ring_points(r, z_min) for r in rings], axis=1)
    return weld(*_join([_patch(side), _patch(top), _patch(bottom)]))
