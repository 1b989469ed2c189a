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
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

DEFAULT_K_THRESH = 0.01
DEFAULT_SEG_MIN_VERTS = 20
DEFAULT_KNN = 10

_INSERTION_THRESHOLD = 16  # libstdc++'s _S_threshold: ranges this small are left to insertion sort


# --------------------------------------------------------------------------------------------
# Vertex normals (sequential float32 running mean, so the rounding matches the C++)
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _running_mean_face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n_vertices = vertices.shape[0]
    normals = np.zeros((n_vertices, 3), np.float32)
    counts = np.zeros(n_vertices, np.int64)
    one = np.float32(1.0)
    face_normal = np.empty(3, np.float32)
    for f in range(faces.shape[0]):
        i1, i2, i3 = faces[f, 0], faces[f, 1], faces[f, 2]
        ux = vertices[i2, 0] - vertices[i1, 0]
        uy = vertices[i2, 1] - vertices[i1, 1]
        uz = vertices[i2, 2] - vertices[i1, 2]
        vx = vertices[i3, 0] - vertices[i1, 0]
        vy = vertices[i3, 1] - vertices[i1, 1]
        vz = vertices[i3, 2] - vertices[i1, 2]
        cx = uy * vz - uz * vy
        cy = uz * vx - ux * vz
        cz = ux * vy - uy * vx
        length = np.float32(np.sqrt(cx * cx + cy * cy + cz * cz))
        if not (length > 0) or not np.isfinite(length):
            continue  # zero-area face: no normal to contribute
        face_normal[0] = cx / length
        face_normal[1] = cy / length
        face_normal[2] = cz / length
        for corner in range(3):
            i = faces[f, corner]
            t = one / (np.float32(counts[i]) + one)
            s = one - t
            for axis in range(3):
                normals[i, axis] = t * face_normal[axis] + s * normals[i, axis]
            counts[i] += 1
    return normals


def segmentator_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) float32: the running mean of the unit normals of each vertex's faces (not unit length)."""
    return _running_mean_face_normals(
        np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.int64)
    )


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


@numba.njit(cache=True, error_model="numpy")  # x / 0 gives inf/NaN as in C++, not an exception
def _normal_change_weights(points, normals, edges):
    weights = np.empty(edges.shape[0], np.float32)
    one = np.float32(1.0)
    for e in range(edges.shape[0]):
        a, b = edges[e, 0], edges[e, 1]
        dx = points[b, 0] - points[a, 0]
        dy = points[b, 1] - points[a, 1]
        dz = points[b, 2] - points[a, 2]
        length = np.float32(np.sqrt(dx * dx + dy * dy + dz * dz))
        dx, dy, dz = dx / length, dy / length, dz / length  # NaN for a zero-length edge
        # Sums left to right, as in the C++: float32 addition is not associative.
        cos_normals = normals[a, 0] * normals[b, 0] + normals[a, 1] * normals[b, 1] + normals[a, 2] * normals[b, 2]
        facing = normals[b, 0] * dx + normals[b, 1] * dy + normals[b, 2] * dz
        w = one - cos_normals
        if facing > 0:  # False for NaN: a zero-length edge counts as not convex
            w = w * w
        weights[e] = w
    return weights


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
    weights = _normal_change_weights(
        np.ascontiguousarray(points, np.float32), np.ascontiguousarray(normals, np.float32), edges
    )
    if colors is not None and color_weight > 0:
        c = np.asarray(colors, np.float32)
        color_distance = np.linalg.norm(c[edges[:, 0]] - c[edges[:, 1]], axis=1) / np.float32(255.0 * np.sqrt(3.0))
        weights = weights + np.float32(color_weight) * color_distance.astype(np.float32)
    return weights


# --------------------------------------------------------------------------------------------
# Sorting exactly like libstdc++'s std::sort (introsort: median-of-3 quicksort, heapsort when
# too deep, final insertion sort), so equal weights end up in the same order as in the C++.
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _swap(keys, items, i, j):
    keys[i], keys[j] = keys[j], keys[i]
    items[i], items[j] = items[j], items[i]


@numba.njit(cache=True)
def _sift_down_then_up(keys, items, first, hole, length, key, item):
    # Move the hole down to a leaf along the larger children, then bubble (key, item) up from it.
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if keys[first + child] < keys[first + child - 1]:
            child -= 1
        keys[first + hole] = keys[first + child]
        items[first + hole] = items[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        keys[first + hole] = keys[first + child - 1]
        items[first + hole] = items[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and keys[first + parent] < key:
        keys[first + hole] = keys[first + parent]
        items[first + hole] = items[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    keys[first + hole] = key
    items[first + hole] = item


@numba.njit(cache=True)
def _heap_sort(keys, items, first, last):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _sift_down_then_up(keys, items, first, parent, length, keys[first + parent], items[first + parent])
        if parent == 0:
            break
        parent -= 1
    end = last
    while end - first > 1:
        end -= 1
        key, item = keys[end], items[end]
        keys[end], items[end] = keys[first], items[first]
        _sift_down_then_up(keys, items, first, 0, end - first, key, item)


@numba.njit(cache=True)
def _median_of_three_to_front(keys, items, front, a, b, c):
    if keys[a] < keys[b]:
        if keys[b] < keys[c]:
            _swap(keys, items, front, b)
        elif keys[a] < keys[c]:
            _swap(keys, items, front, c)
        else:
            _swap(keys, items, front, a)
    elif keys[a] < keys[c]:
        _swap(keys, items, front, a)
    elif keys[b] < keys[c]:
        _swap(keys, items, front, c)
    else:
        _swap(keys, items, front, b)


@numba.njit(cache=True)
def _partition_around_front(keys, items, first, last):
    # Hoare partition of [first+1, last) around the pivot at keys[first]. The median-of-3 makes
    # both scans stop inside the range; the index guards only matter for NaN keys.
    pivot = keys[first]
    lo = first + 1
    hi = last
    while True:
        while lo < last - 1 and keys[lo] < pivot:
            lo += 1
        hi -= 1
        while hi > first and pivot < keys[hi]:
            hi -= 1
        if not lo < hi:
            return lo
        _swap(keys, items, lo, hi)
        lo += 1


@numba.njit(cache=True)
def _insert_backwards(keys, items, position, lower_bound):
    # Shift larger elements right and drop this one after the last element not greater than it
    # (strict comparison: equal keys keep their order).
    key, item = keys[position], items[position]
    j = position
    while j > lower_bound and key < keys[j - 1]:
        keys[j] = keys[j - 1]
        items[j] = items[j - 1]
        j -= 1
    keys[j] = key
    items[j] = item


@numba.njit(cache=True)
def _introsort(keys, items):
    n = keys.shape[0]
    if n < 2:
        return
    bits = 0  # floor(log2(n)), as libstdc++'s __lg
    m = n
    while m > 1:
        m >>= 1
        bits += 1
    depth_limit = 2 * bits
    # Explicit stack of (first, last, depth) ranges instead of recursion; ranges are disjoint and
    # each is sorted on its own, so the processing order does not change the final arrangement.
    # A range of depth d pushes at most d ranges of smaller depth: d(d+1)/2 bounds the stack.
    stack = np.empty(((depth_limit + 1) * (depth_limit + 2) // 2 + 1, 3), np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2] = 0, n, depth_limit
    top = 1
    while top > 0:
        top -= 1
        first, last, depth = stack[top, 0], stack[top, 1], stack[top, 2]
        while last - first > _INSERTION_THRESHOLD:
            if depth == 0:
                _heap_sort(keys, items, first, last)
                break
            depth -= 1
            mid = first + (last - first) // 2
            _median_of_three_to_front(keys, items, first, first + 1, mid, last - 1)
            cut = _partition_around_front(keys, items, first, last)
            stack[top, 0], stack[top, 1], stack[top, 2] = cut, last, depth
            top += 1
            last = cut
    # Final insertion sort over everything. libstdc++ splits it into a guarded head of 16 and an
    # unguarded rest (the minimum is already in front); both place each element identically.
    for i in range(1, n):
        _insert_backwards(keys, items, i, 0)


def sort_like_cpp(weights: np.ndarray) -> np.ndarray:
    """Permutation that sorts ``weights`` exactly as libstdc++'s ``std::sort`` would arrange them.

    ``std::sort`` is not stable; ScanNet's Segmentator relies on whatever order it leaves ties in,
    and both merge passes depend on that order.
    """
    keys = np.array(weights, dtype=np.float32, copy=True)
    order = np.arange(len(keys), dtype=np.int32 if len(keys) < 2**31 else np.int64)
    _introsort(keys, order)
    return order


# --------------------------------------------------------------------------------------------
# Felzenszwalb–Huttenlocher merge on sorted edges
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _find(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression (changes no root, only shortcuts)
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True, inline="always")
def _join(parent, rank, size, a, b):
    # Union by rank; on equal rank the second root wins, as in the reference union-find.
    if rank[a] > rank[b]:
        parent[b] = a
        size[a] += size[b]
        return a
    parent[a] = b
    size[b] += size[a]
    if rank[a] == rank[b]:
        rank[b] += 1
    return b


@numba.njit(cache=True)
def _felzenszwalb(n_vertices, edges, weights, order, k_thresh, seg_min_verts):
    n_edges = order.shape[0]
    # Gather the edges into sorted order once; both passes then read them sequentially.
    source = np.empty(n_edges, np.int32)
    target = np.empty(n_edges, np.int32)
    weight = np.empty(n_edges, np.float32)
    for i in range(n_edges):
        e = order[i]
        source[i], target[i], weight[i] = edges[e, 0], edges[e, 1], weights[e]
    parent = np.arange(n_vertices, dtype=np.int32)
    rank = np.zeros(n_vertices, np.int32)
    size = np.ones(n_vertices, np.int32)
    threshold = np.full(n_vertices, k_thresh, np.float32)
    for i in range(n_edges):
        a = _find(parent, source[i])
        b = _find(parent, target[i])
        if a != b:
            w = weight[i]
            if w <= threshold[a] and w <= threshold[b]:
                root = _join(parent, rank, size, a, b)
                threshold[root] = w + k_thresh / np.float32(size[root])
    for i in range(n_edges):
        a = _find(parent, source[i])
        b = _find(parent, target[i])
        if a != b and (size[a] < seg_min_verts or size[b] < seg_min_verts):
            _join(parent, rank, size, a, b)
    roots = np.empty(n_vertices, np.int32)
    for v in range(n_vertices):
        roots[v] = _find(parent, v)
    return roots


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
    return _felzenszwalb(
        int(n_vertices),
        np.ascontiguousarray(edges, np.int32).reshape(-1, 2),
        np.ascontiguousarray(weights, np.float32),
        np.ascontiguousarray(order),
        np.float32(k_thresh),
        int(seg_min_verts),
    )


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
    neighbours, oriented toward the bounding-box centre (``pipeline.geometry.point_cloud_normals``).
    The weight and both merge passes are the mesh mode's; ``color_weight`` adds an RGB term.
    """
    from pipeline.geometry import point_cloud_normals

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
