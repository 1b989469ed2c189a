"""Superpoints: Felzenszwalb–Huttenlocher over-segmentation of a mesh or a point cloud.

Mesh mode reproduces ScanNet's ``Segmentator`` (used by ScanNet, UnScene3D, Mask3D, SPFormer)
operation for operation, so its segments match ScanNet's ``*.segs.json`` files:

1. Vertex normals: every face's unit normal ``normalise((p2-p1) x (p3-p1))`` is folded into its
   three corners as a running mean in face order (``n <- n + (f - n) / count`` written as a lerp),
   in float32 and *not* renormalised afterwards.
2. Edges: three directed edges per face, ``(v1,v2), (v1,v3), (v3,v2)``; an edge shared by two faces
   appears twice (possibly in both directions). Nothing is deduplicated.
3. Weight of edge a->b: ``1 - n_a.n_b``, squared when ``n_b . (p_b - p_a) > 0`` (a convex fold, whose
   normal change matters less). Directed, so the two copies of a shared edge can differ.
4. Edges sorted by weight with C++ ``std::sort`` (libstdc++ introsort, not stable). Ties are common
   (flat regions give weight exactly 0) and their order changes the result, so ``sort_like_cpp``
   replays the same introsort on the same float32 keys.
5. Felzenszwalb–Huttenlocher merge: union-find (union by rank), a component's threshold is
   ``w + k / size`` after each merge (float32); then one pass over the sorted edges joins any two
   components when either has fewer than ``seg_min_verts`` vertices.
6. Segment id of a vertex = the union-find root vertex index (ScanNet's numbering).

Deliberate differences (documented, none triggers on a clean mesh such as ScanNet's):
- A zero-area face has no normal; the Segmentator divides by zero and the NaN spreads to every
  edge of its corners (those then only merge in the small-segment pass). Here such faces add
  nothing to the normals but keep their edges, so their corners get the normal of their other faces.
- Vertices in no face keep no edge and stay singleton segments, as in the Segmentator.

Point-cloud mode uses the same weight and merge on a symmetric k-nearest-neighbour graph with PCA
normals (see ``segment_point_cloud``).

The four loops (normals, weights, sort, merge) run as C (``segmentator.c``, compiled on first use
by ``pipeline.scene._ckernels``) or, where no C compiler is found, as the identical numba kernels of
``pipeline.scene._superpoints_numba``. The C path keeps numba out of the process: start-up is most of a
``python -m pipeline superpoints`` run, and numba's alone costs about 0.6 s of CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.scene._ckernels import library

DEFAULT_K_THRESH = 0.01
DEFAULT_SEG_MIN_VERTS = 20
DEFAULT_KNN = 10


# --------------------------------------------------------------------------------------------
# Vertex normals (sequential float32 running mean, so the rounding matches the C++)
# --------------------------------------------------------------------------------------------


def _check_indices(name: str, indices: np.ndarray, n: int) -> None:
    """The kernels do not bounds-check: out-of-range indices would read or write outside the arrays."""
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"{name} index outside 0..{n - 1}")


def _pointer(array: np.ndarray) -> int:
    return array.ctypes.data


def segmentator_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) float32: the running mean of the unit normals of each vertex's faces (not unit length)."""
    vertices = np.ascontiguousarray(vertices, np.float32).reshape(-1, 3)
    faces = np.ascontiguousarray(faces, np.int64).reshape(-1, 3)
    _check_indices("face vertex", faces, len(vertices))
    lib = library()
    if lib is None:
        from pipeline.scene._superpoints_numba import _running_mean_face_normals

        return _running_mean_face_normals(vertices, faces)
    normals = np.zeros((len(vertices), 3), np.float32)
    lib.running_mean_face_normals(_pointer(vertices), len(vertices), _pointer(faces), len(faces), _pointer(normals))
    return normals


# --------------------------------------------------------------------------------------------
# Graph: edges and weights
# --------------------------------------------------------------------------------------------


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """(3F, 2) int32 directed edges, per face (v1,v2), (v1,v3), (v3,v2); shared edges repeat."""
    return np.ascontiguousarray(np.asarray(faces, np.int32)[:, [0, 1, 0, 2, 2, 1]].reshape(-1, 2))


def knn_edges(points: np.ndarray, k: int = DEFAULT_KNN) -> np.ndarray:
    """(E, 2) int32 undirected k-nearest-neighbour edges, symmetric and unique, each as i < j.

    Edge i-j exists when j is among i's k nearest neighbours or i among j's; sorted by (i, j).
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    n = len(points)
    if n < 2 or k < 1:
        return np.zeros((0, 2), np.int32)
    k = min(k, n - 1)
    _, neighbours = cKDTree(points).query(points, k=k + 1)
    source = np.repeat(np.arange(n, dtype=np.int64), k + 1)
    target = neighbours.reshape(-1).astype(np.int64)
    keep = source != target  # drops the self match (duplicate points may displace it; fine)
    low = np.minimum(source[keep], target[keep])
    high = np.maximum(source[keep], target[keep])
    keys = np.unique(low * n + high)
    return np.stack([keys // n, keys % n], axis=1).astype(np.int32)


def edge_weights(
    points: np.ndarray,
    normals: np.ndarray,
    edges: np.ndarray,
    colors: np.ndarray | None = None,
    color_weight: float = 0.0,
) -> np.ndarray:
    """(E,) float32 dissimilarity of each directed edge a->b, in the Segmentator's float32 arithmetic.

    ``1 - n_a.n_b``, squared when ``n_b`` points away from a (``n_b.(p_b - p_a) > 0``: convex).
    A zero-length edge has no direction and is treated as not convex.
    With ``color_weight > 0`` (point clouds; off by default) the weight gains
    ``color_weight * |c_a - c_b| / (255 * sqrt(3))``, the RGB distance scaled to [0, 1].
    """
    edges = np.ascontiguousarray(edges, np.int32).reshape(-1, 2)
    points = np.ascontiguousarray(points, np.float32).reshape(-1, 3)
    normals = np.ascontiguousarray(normals, np.float32).reshape(-1, 3)
    if len(normals) != len(points):
        raise ValueError(f"{len(normals)} normals for {len(points)} points")
    _check_indices("edge vertex", edges, len(points))
    lib = library()
    if lib is None:
        from pipeline.scene._superpoints_numba import _normal_change_weights

        weights = _normal_change_weights(points, normals, edges)
    else:
        weights = np.empty(len(edges), np.float32)
        lib.normal_change_weights(_pointer(points), _pointer(normals), _pointer(edges), len(edges), _pointer(weights))
    if colors is not None and color_weight > 0:
        c = np.asarray(colors, np.float32)
        color_distance = np.linalg.norm(c[edges[:, 0]] - c[edges[:, 1]], axis=1) / np.float32(255.0 * np.sqrt(3.0))
        weights = weights + np.float32(color_weight) * color_distance.astype(np.float32)
    return weights


# --------------------------------------------------------------------------------------------
# Sorting exactly like libstdc++'s std::sort (introsort: median-of-3 quicksort, heapsort when
# too deep, final insertion sort), so equal weights end up in the same order as in the C++.
# --------------------------------------------------------------------------------------------


def sort_like_cpp(weights: np.ndarray) -> np.ndarray:
    """Permutation that sorts ``weights`` exactly as libstdc++'s ``std::sort`` would arrange them.

    ``std::sort`` is not stable; ScanNet's Segmentator relies on whatever order it leaves ties in,
    and both merge passes depend on that order.
    """
    keys = np.array(weights, dtype=np.float32, copy=True).reshape(-1)
    order = np.arange(len(keys), dtype=np.int32 if len(keys) < 2**31 else np.int64)
    lib = library()
    if lib is None or order.dtype != np.int32:
        from pipeline.scene._superpoints_numba import _introsort

        _introsort(keys, order)
    elif lib.introsort(_pointer(keys), _pointer(order), len(keys)) != 0:
        raise MemoryError("sort_like_cpp: out of memory")
    return order


# --------------------------------------------------------------------------------------------
# Felzenszwalb–Huttenlocher merge on sorted edges
# --------------------------------------------------------------------------------------------


def felzenszwalb_segments(
    n_vertices: int,
    edges: np.ndarray,
    weights: np.ndarray,
    k_thresh: float = DEFAULT_K_THRESH,
    seg_min_verts: int = DEFAULT_SEG_MIN_VERTS,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) int32 segment id per vertex (the index of its segment's representative vertex).

    ``order`` sorts the edges by weight (default: ``sort_like_cpp(weights)``).
    """
    if order is None:
        order = sort_like_cpp(weights)
    n_vertices = int(n_vertices)
    if n_vertices >= 2**31:
        raise ValueError(f"{n_vertices} vertices: at most 2**31 - 1 are supported")
    edges = np.ascontiguousarray(edges, np.int32).reshape(-1, 2)
    weights = np.ascontiguousarray(weights, np.float32).reshape(-1)
    order = np.ascontiguousarray(order)
    if len(weights) != len(edges):
        raise ValueError(f"{len(weights)} weights for {len(edges)} edges")
    _check_indices("edge vertex", edges, n_vertices)
    _check_indices("order", order, len(edges))
    lib = library()
    if lib is None:
        from pipeline.scene._superpoints_numba import _felzenszwalb

        return _felzenszwalb(n_vertices, edges, weights, order, np.float32(k_thresh), int(seg_min_verts))
    order = np.ascontiguousarray(order, np.int32)
    roots = np.empty(n_vertices, np.int32)
    status = lib.felzenszwalb(n_vertices, _pointer(edges), _pointer(weights), _pointer(order), len(order),
                              float(np.float32(k_thresh)), int(seg_min_verts), _pointer(roots))
    if status != 0:
        raise MemoryError("felzenszwalb_segments: out of memory")
    return roots


# --------------------------------------------------------------------------------------------
# Input checks and the two entry points
# --------------------------------------------------------------------------------------------


def check_vertices(vertices: np.ndarray, source: str | None) -> np.ndarray:
    from pipeline.errors import InputError

    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(source, f"vertices must have shape (N, 3), got {vertices.shape}")
    bad = ~np.all(np.isfinite(vertices), axis=1)
    if np.any(bad):
        raise InputError(source, f"{int(bad.sum())} of {len(vertices)} vertices have non-finite (NaN/inf) coordinates")
    return np.ascontiguousarray(vertices, np.float32)


def check_faces(faces: np.ndarray | None, n_vertices: int, source: str | None) -> np.ndarray:
    from pipeline.errors import InputError

    if faces is None or len(faces) == 0:
        raise InputError(
            source,
            "mesh superpoints need faces but there are none; use point-cloud mode "
            "(segment_point_cloud / --mode points) for a cloud without faces",
        )
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(source, f"faces must be triangles with shape (F, 3), got {faces.shape}")
    if faces.min() < 0 or faces.max() >= n_vertices:
        raise InputError(source, f"faces index vertices outside 0..{n_vertices - 1}")
    return np.ascontiguousarray(faces, np.int64)


def segment_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    k_thresh: float = DEFAULT_K_THRESH,
    seg_min_verts: int = DEFAULT_SEG_MIN_VERTS,
    source: str | None = None,
) -> np.ndarray:
    """ScanNet Segmentator superpoints: (N,) int32 representative-vertex id per vertex.

    ``source`` names the input file in error messages.
    """
    vertices = check_vertices(vertices, source)
    faces = check_faces(faces, len(vertices), source)
    normals = segmentator_vertex_normals(vertices, faces)
    edges = mesh_edges(faces)
    weights = edge_weights(vertices, normals, edges)
    return felzenszwalb_segments(len(vertices), edges, weights, k_thresh, seg_min_verts)


def segment_point_cloud(
    points: np.ndarray,
    k_thresh: float = DEFAULT_K_THRESH,
    seg_min_verts: int = DEFAULT_SEG_MIN_VERTS,
    knn: int = DEFAULT_KNN,
    normals: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    color_weight: float = 0.0,
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Superpoints of a cloud without faces: (segment id per point, the kNN edges used).

    The graph is the symmetric k-nearest-neighbour graph (each pair once, directed low -> high
    index for the convexity test). Normals default to PCA normals over the same ``knn``
    neighbours, oriented toward the bounding-box centre (``pipeline.scene.geometry.point_cloud_normals``).
    The weight and both merge passes are the mesh mode's; ``color_weight`` adds an RGB term.
    """
    from pipeline.scene.geometry import point_cloud_normals

    points = check_vertices(points, source)
    if normals is None:
        normals = point_cloud_normals(points, k=max(knn, 3))
    edges = knn_edges(points, knn)
    weights = edge_weights(points, normals, edges, colors, color_weight)
    return felzenszwalb_segments(len(points), edges, weights, k_thresh, seg_min_verts), edges


# --------------------------------------------------------------------------------------------
# Summary for the artifact
# --------------------------------------------------------------------------------------------


@dataclass
class SuperpointSummary:
    point_superpoint: np.ndarray  # (N,) int32 superpoint 0..S-1 of each point
    adjacency: np.ndarray  # (A, 2) int32 superpoint pairs (i < j) joined by a graph edge or close points
    size: np.ndarray  # (S,) int32 points per superpoint
    centroid: np.ndarray  # (S, 3) float32 mean position
    normal: np.ndarray  # (S, 3) float32 unit mean normal (zero where the normals cancel)


def relabel_consecutive(segment_ids: np.ndarray) -> np.ndarray:
    """(N,) int32 ids 0..S-1, numbered in increasing order of the original ids (deterministic)."""
    _, labels = np.unique(np.asarray(segment_ids), return_inverse=True)
    return labels.reshape(-1).astype(np.int32)


def close_point_pairs(points: np.ndarray, radius: float) -> np.ndarray:
    """(P, 2) int64 index pairs (i < j) of points at most ``radius`` apart (none when radius <= 0)."""
    if radius <= 0 or len(points) < 2:
        return np.zeros((0, 2), np.int64)
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(points, np.float64)).query_pairs(radius, output_type="ndarray").astype(np.int64)


def superpoint_summary(
    vertices: np.ndarray, normals: np.ndarray, seg_ids: np.ndarray, edges: np.ndarray, adjacency_radius: float = 0.0
) -> SuperpointSummary:
    """Relabel segments to 0..S-1 and describe them: adjacency, size, centroid, unit mean normal.

    Two superpoints are adjacent when a graph edge joins them or, with ``adjacency_radius`` > 0,
    when points of both lie within that distance: separate meshes that touch (the parts of a
    CAD or synthetic chair, unlike one welded scan mesh) are then adjacent too.
    """
    labels = relabel_consecutive(seg_ids)
    n_segments = int(labels.max()) + 1 if labels.size else 0
    size = np.bincount(labels, minlength=n_segments).astype(np.int32)
    vertices = np.asarray(vertices, np.float64)
    normals = np.asarray(normals, np.float64)
    centroid = np.zeros((n_segments, 3))
    normal_sum = np.zeros((n_segments, 3))
    for axis in range(3):
        centroid[:, axis] = np.bincount(labels, weights=vertices[:, axis], minlength=n_segments)
        normal_sum[:, axis] = np.bincount(labels, weights=normals[:, axis], minlength=n_segments)
    centroid /= np.maximum(size, 1)[:, None]
    length = np.linalg.norm(normal_sum, axis=1, keepdims=True)
    normal = np.divide(normal_sum, length, out=np.zeros_like(normal_sum), where=length > 1e-12)
    edges = np.concatenate([np.asarray(edges, np.int64).reshape(-1, 2), close_point_pairs(vertices, adjacency_radius)])
    a, b = labels[edges[:, 0]].astype(np.int64), labels[edges[:, 1]].astype(np.int64)
    crossing = a != b
    low, high = np.minimum(a[crossing], b[crossing]), np.maximum(a[crossing], b[crossing])
    keys = np.unique(low * max(n_segments, 1) + high)
    adjacency = np.stack([keys // max(n_segments, 1), keys % max(n_segments, 1)], axis=1).astype(np.int32)
    return SuperpointSummary(labels, adjacency, size, centroid.astype(np.float32), normal.astype(np.float32))
