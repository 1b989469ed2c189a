"""The numba superpoint kernels: the fallback of the C kernels (``segmentator.c``) where no C
compiler is found. The algorithm and every rounding step are described in ``pipeline.scene.superpoints``;
``segmentator.c`` repeats these functions operation for operation (tests check both agree).

Imported only when needed: importing numba and loading its cache costs about 0.6 s of CPU time.
"""

from __future__ import annotations

import numba
import numpy as np

_INSERTION_THRESHOLD = 16  # libstdc++'s _S_threshold: ranges this small are left to insertion sort


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
