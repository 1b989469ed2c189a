/* The superpoint kernels of pipeline/scene/superpoints.py in C: vertex normals, edge weights, the
 * libstdc++ std::sort replay and the Felzenszwalb-Huttenlocher merge, operation for operation as
 * the numba versions there (which stay as the fallback where no C compiler is found).
 *
 * Compiled on first use by pipeline/scene/_ckernels.py (cc -O2 -shared -fPIC -ffp-contract=off) and
 * loaded with ctypes, so `python -m pipeline superpoints` does not start numba (about 0.6 s of CPU
 * time: its import and type-context set-up). All arithmetic is float32 in the same order as the
 * numba code; floating-point contraction (FMA) is off, so results are bit-identical.
 * Arrays are C-contiguous; the caller checks dtypes and shapes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define INSERTION_THRESHOLD 16 /* libstdc++'s _S_threshold */

/* ---- vertex normals: running mean of unit face normals, zero-area faces skipped ---- */
void running_mean_face_normals(const float *vertices, int64_t n_vertices, const int64_t *faces, int64_t n_faces,
                               float *normals /* (n_vertices, 3), zeroed by the caller */) {
    int64_t *counts = calloc((size_t)(n_vertices > 0 ? n_vertices : 1), sizeof(int64_t));
    const float one = 1.0f;
    for (int64_t f = 0; f < n_faces; f++) {
        const int64_t i1 = faces[3 * f], i2 = faces[3 * f + 1], i3 = faces[3 * f + 2];
        const float ux = vertices[3 * i2] - vertices[3 * i1];
        const float uy = vertices[3 * i2 + 1] - vertices[3 * i1 + 1];
        const float uz = vertices[3 * i2 + 2] - vertices[3 * i1 + 2];
        const float vx = vertices[3 * i3] - vertices[3 * i1];
        const float vy = vertices[3 * i3 + 1] - vertices[3 * i1 + 1];
        const float vz = vertices[3 * i3 + 2] - vertices[3 * i1 + 2];
        const float cx = uy * vz - uz * vy;
        const float cy = uz * vx - ux * vz;
        const float cz = ux * vy - uy * vx;
        const float length = sqrtf(cx * cx + cy * cy + cz * cz);
        if (!(length > 0) || !isfinite(length)) continue; /* zero-area face: no normal */
        const float face_normal[3] = {cx / length, cy / length, cz / length};
        for (int corner = 0; corner < 3; corner++) {
            const int64_t i = faces[3 * f + corner];
            const float t = one / ((float)counts[i] + one);
            const float s = one - t;
            for (int axis = 0; axis < 3; axis++) normals[3 * i + axis] = t * face_normal[axis] + s * normals[3 * i + axis];
            counts[i] += 1;
        }
    }
    free(counts);
}

/* ---- edge weights: 1 - n_a.n_b, squared when convex (n_b.(p_b - p_a) > 0) ---- */
void normal_change_weights(const float *points, const float *normals, const int32_t *edges, int64_t n_edges,
                           float *weights) {
    const float one = 1.0f;
    for (int64_t e = 0; e < n_edges; e++) {
        const int64_t a = edges[2 * e], b = edges[2 * e + 1];
        float dx = points[3 * b] - points[3 * a];
        float dy = points[3 * b + 1] - points[3 * a + 1];
        float dz = points[3 * b + 2] - points[3 * a + 2];
        const float length = sqrtf(dx * dx + dy * dy + dz * dz);
        dx = dx / length; /* NaN for a zero-length edge */
        dy = dy / length;
        dz = dz / length;
        const float cos_normals = normals[3 * a] * normals[3 * b] + normals[3 * a + 1] * normals[3 * b + 1]
                                  + normals[3 * a + 2] * normals[3 * b + 2];
        const float facing = normals[3 * b] * dx + normals[3 * b + 1] * dy + normals[3 * b + 2] * dz;
        float w = one - cos_normals;
        if (facing > 0) w = w * w; /* false for NaN: a zero-length edge is not convex */
        weights[e] = w;
    }
}

/* ---- libstdc++ std::sort replay (introsort) on (key, item) pairs ---- */
static inline void swap_pair(float *keys, int32_t *items, int64_t i, int64_t j) {
    const float k = keys[i];
    keys[i] = keys[j];
    keys[j] = k;
    const int32_t t = items[i];
    items[i] = items[j];
    items[j] = t;
}

static void sift_down_then_up(float *keys, int32_t *items, int64_t first, int64_t hole, int64_t length, float key,
                              int32_t item) {
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (length - 1) / 2) {
        child = 2 * (child + 1);
        if (keys[first + child] < keys[first + child - 1]) child--;
        keys[first + hole] = keys[first + child];
        items[first + hole] = items[first + child];
        hole = child;
    }
    if ((length & 1) == 0 && child == (length - 2) / 2) {
        child = 2 * (child + 1);
        keys[first + hole] = keys[first + child - 1];
        items[first + hole] = items[first + child - 1];
        hole = child - 1;
    }
    int64_t parent = (hole - 1) / 2; /* only used while hole > top >= 0, so hole >= 1 */
    while (hole > top && keys[first + parent] < key) {
        keys[first + hole] = keys[first + parent];
        items[first + hole] = items[first + parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    keys[first + hole] = key;
    items[first + hole] = item;
}

/* Exported for tests: introsort's fallback only runs on adversarial inputs. */
void heap_sort_range(float *keys, int32_t *items, int64_t first, int64_t last) {
    const int64_t length = last - first;
    if (length < 2) return;
    int64_t parent = (length - 2) / 2;
    for (;;) {
        sift_down_then_up(keys, items, first, parent, length, keys[first + parent], items[first + parent]);
        if (parent == 0) break;
        parent--;
    }
    int64_t end = last;
    while (end - first > 1) {
        end--;
        const float key = keys[end];
        const int32_t item = items[end];
        keys[end] = keys[first];
        items[end] = items[first];
        sift_down_then_up(keys, items, first, 0, end - first, key, item);
    }
}

static void median_of_three_to_front(float *keys, int32_t *items, int64_t front, int64_t a, int64_t b, int64_t c) {
    if (keys[a] < keys[b]) {
        if (keys[b] < keys[c]) swap_pair(keys, items, front, b);
        else if (keys[a] < keys[c]) swap_pair(keys, items, front, c);
        else swap_pair(keys, items, front, a);
    } else if (keys[a] < keys[c]) swap_pair(keys, items, front, a);
    else if (keys[b] < keys[c]) swap_pair(keys, items, front, c);
    else swap_pair(keys, items, front, b);
}

static int64_t partition_around_front(float *keys, int32_t *items, int64_t first, int64_t last) {
    const float pivot = keys[first];
    int64_t lo = first + 1, hi = last;
    for (;;) {
        while (lo < last - 1 && keys[lo] < pivot) lo++;
        hi--;
        while (hi > first && pivot < keys[hi]) hi--;
        if (!(lo < hi)) return lo;
        swap_pair(keys, items, lo, hi);
        lo++;
    }
}

/* Returns 0, or -1 when the range stack cannot be allocated. */
int introsort(float *keys, int32_t *items, int64_t n) {
    if (n < 2) return 0;
    int64_t bits = 0, m = n;
    while (m > 1) {
        m >>= 1;
        bits++;
    }
    const int64_t depth_limit = 2 * bits;
    const int64_t capacity = (depth_limit + 1) * (depth_limit + 2) / 2 + 1;
    int64_t *stack = malloc((size_t)capacity * 3 * sizeof(int64_t));
    if (!stack) return -1;
    stack[0] = 0;
    stack[1] = n;
    stack[2] = depth_limit;
    int64_t top = 1;
    while (top > 0) {
        top--;
        int64_t first = stack[3 * top], last = stack[3 * top + 1], depth = stack[3 * top + 2];
        while (last - first > INSERTION_THRESHOLD) {
            if (depth == 0) {
                heap_sort_range(keys, items, first, last);
                break;
            }
            depth--;
            const int64_t mid = first + (last - first) / 2;
            median_of_three_to_front(keys, items, first, first + 1, mid, last - 1);
            const int64_t cut = partition_around_front(keys, items, first, last);
            stack[3 * top] = cut;
            stack[3 * top + 1] = last;
            stack[3 * top + 2] = depth;
            top++;
            last = cut;
        }
    }
    free(stack);
    for (int64_t i = 1; i < n; i++) { /* final insertion sort; equal keys keep their order */
        const float key = keys[i];
        const int32_t item = items[i];
        int64_t j = i;
        while (j > 0 && key < keys[j - 1]) {
            keys[j] = keys[j - 1];
            items[j] = items[j - 1];
            j--;
        }
        keys[j] = key;
        items[j] = item;
    }
    return 0;
}

/* ---- Felzenszwalb-Huttenlocher merge on the sorted edges ---- */
static inline int32_t find_root(int32_t *parent, int32_t x) {
    int32_t root = x;
    while (parent[root] != root) root = parent[root];
    while (parent[x] != root) { /* path compression */
        const int32_t next = parent[x];
        parent[x] = root;
        x = next;
    }
    return root;
}

static inline int32_t join(int32_t *parent, int32_t *rank, int32_t *size, int32_t a, int32_t b) {
    if (rank[a] > rank[b]) { /* union by rank; on equal rank the second root wins */
        parent[b] = a;
        size[a] += size[b];
        return a;
    }
    parent[a] = b;
    size[b] += size[a];
    if (rank[a] == rank[b]) rank[b] += 1;
    return b;
}

/* Returns 0, or -1 when memory cannot be allocated. */
int felzenszwalb(int64_t n_vertices, const int32_t *edges, const float *weights, const int32_t *order, int64_t n_edges,
                 float k_thresh, int64_t seg_min_verts, int32_t *roots) {
    int32_t *source = malloc((size_t)(n_edges + 1) * sizeof(int32_t));
    int32_t *target = malloc((size_t)(n_edges + 1) * sizeof(int32_t));
    float *weight = malloc((size_t)(n_edges + 1) * sizeof(float));
    int32_t *parent = malloc((size_t)(n_vertices + 1) * sizeof(int32_t));
    int32_t *rank = calloc((size_t)(n_vertices + 1), sizeof(int32_t));
    int32_t *size = malloc((size_t)(n_vertices + 1) * sizeof(int32_t));
    float *threshold = malloc((size_t)(n_vertices + 1) * sizeof(float));
    int status = 0;
    if (!source || !target || !weight || !parent || !rank || !size || !threshold) {
        status = -1;
        goto done;
    }
    for (int64_t i = 0; i < n_edges; i++) {
        const int64_t e = order[i];
        source[i] = edges[2 * e];
        target[i] = edges[2 * e + 1];
        weight[i] = weights[e];
    }
    for (int64_t v = 0; v < n_vertices; v++) {
        parent[v] = (int32_t)v;
        size[v] = 1;
        threshold[v] = k_thresh;
    }
    for (int64_t i = 0; i < n_edges; i++) {
        const int32_t a = find_root(parent, source[i]), b = find_root(parent, target[i]);
        if (a != b) {
            const float w = weight[i];
            if (w <= threshold[a] && w <= threshold[b]) {
                const int32_t root = join(parent, rank, size, a, b);
                threshold[root] = w + k_thresh / (float)size[root];
            }
        }
    }
    for (int64_t i = 0; i < n_edges; i++) {
        const int32_t a = find_root(parent, source[i]), b = find_root(parent, target[i]);
        if (a != b && (size[a] < seg_min_verts || size[b] < seg_min_verts)) join(parent, rank, size, a, b);
    }
    for (int64_t v = 0; v < n_vertices; v++) roots[v] = find_root(parent, (int32_t)v);
done:
    free(source);
    free(target);
    free(weight);
    free(parent);
    free(rank);
    free(size);
    free(threshold);
    return status;
}
