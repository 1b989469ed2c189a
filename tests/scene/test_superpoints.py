"""Felzenszwalb superpoints: hand-built meshes and graphs, ScanNet parity, summary, CLI, bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipeline.scene import superpoints as sp
from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.cli import main as cli_main
from pipeline.commands.superpoints import read_segs_json, run_superpoints
from pipeline.errors import InputError
from pipeline.scene.geometry import mesh_vertex_normals, point_cloud_normals
from pipeline.io.ply import read_ply, write_ply


def grid_patch(origin, u, v, n, offset=0):
    """n x n vertex grid origin + i*u/(n-1) + j*v/(n-1); faces wound so their normal is u x v."""
    origin, u, v = (np.asarray(x, np.float64) for x in (origin, u, v))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    vertices = origin + (i.reshape(-1, 1) * u + j.reshape(-1, 1) * v) / (n - 1)
    faces = []
    for a in range(n - 1):
        for b in range(n - 1):
            p00, p10, p11, p01 = a * n + b, (a + 1) * n + b, (a + 1) * n + b + 1, a * n + b + 1
            faces += [(p00, p10, p11), (p00, p11, p01)]
    return vertices.astype(np.float32), np.asarray(faces, np.int64) + offset


def weld(vertices, faces):
    """Merge coincident vertices (the shared crease of two patches)."""
    _, first, inverse = np.unique(np.round(vertices, 6), axis=0, return_index=True, return_inverse=True)
    return vertices[first], inverse.reshape(-1)[faces]


def crease_mesh(n=11):
    """A floor (normal +z) and a wall (normal +x) sharing the edge x = 0, z = 0: a concave 90° fold."""
    floor_v, floor_f = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], n)
    wall_v, wall_f = grid_patch([0, 0, 0], [0, 1, 0], [0, 0, 1], n, offset=len(floor_v))
    return weld(np.vstack([floor_v, wall_v]), np.vstack([floor_f, wall_f]))


# --------------------------------------------------------------------------------------------
# Hand-built cases


def test_flat_plane_is_one_segment():
    vertices, faces = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 12)
    segments = sp.segment_mesh(vertices, faces)
    assert len(np.unique(segments)) == 1


def test_sharp_crease_splits_into_two_segments():
    vertices, faces = crease_mesh()
    segments = sp.segment_mesh(vertices, faces)
    assert len(np.unique(segments)) == 2
    on_floor = (vertices[:, 2] == 0) & (vertices[:, 0] > 0)
    on_wall = (vertices[:, 0] == 0) & (vertices[:, 2] > 0)
    assert len(np.unique(segments[on_floor])) == 1
    assert len(np.unique(segments[on_wall])) == 1
    assert segments[on_floor][0] != segments[on_wall][0]


def test_segment_ids_are_member_vertex_indices():
    vertices, faces = crease_mesh()
    segments = sp.segment_mesh(vertices, faces)
    # ScanNet numbering: each id is the index of a vertex of that very segment.
    assert np.array_equal(segments[segments], segments)


def test_normals_are_running_mean_of_unit_face_normals():
    vertices, faces = crease_mesh(n=3)
    normals = sp.segmentator_vertex_normals(vertices, faces)
    corner = np.flatnonzero(np.all(vertices == [0, 0.5, 0], axis=1))[0]  # on the crease
    incident = np.flatnonzero(np.any(faces == corner, axis=1))
    face_normal = np.cross(vertices[faces[incident, 1]] - vertices[faces[incident, 0]],
                           vertices[faces[incident, 2]] - vertices[faces[incident, 0]])
    face_normal /= np.linalg.norm(face_normal, axis=1, keepdims=True)
    np.testing.assert_allclose(normals[corner], face_normal.mean(axis=0), atol=1e-6)  # not renormalised


def test_convex_fold_weight_is_squared():
    points = np.array([[0, 0, 0], [1, 0, 0]], np.float32)
    tilt = np.array([0.6, 0, 0.8], np.float32)
    up = np.array([0, 0, 1], np.float32)
    # b's normal leans away from a: convex -> (1 - 0.8)^2; leaning toward a: concave -> 1 - 0.8.
    convex = sp.edge_weights(points, np.stack([up, tilt]), np.array([[0, 1]]))
    concave = sp.edge_weights(points, np.stack([up, tilt * [-1, 1, 1]]), np.array([[0, 1]]))
    np.testing.assert_allclose(convex, [0.04], atol=1e-6)
    np.testing.assert_allclose(concave, [0.2], atol=1e-6)


def test_felzenszwalb_threshold_grows_with_merges():
    # Chain 0-1-2: after joining {0,1} at w=0.004 the threshold is 0.004 + 0.01/2 = 0.009.
    edges = np.array([[0, 1], [1, 2]])
    joined = sp.felzenszwalb_segments(3, edges, np.array([0.004, 0.0085], np.float32), 0.01, 1)
    split = sp.felzenszwalb_segments(3, edges, np.array([0.004, 0.0095], np.float32), 0.01, 1)
    assert len(np.unique(joined)) == 1
    assert len(np.unique(split)) == 2


def test_small_segments_merge_along_remaining_edges():
    # Two triples joined by one heavy edge: FH keeps them apart; the size pass may join them.
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    weights = np.array([0, 0, 0.9, 0, 0], np.float32)
    assert len(np.unique(sp.felzenszwalb_segments(6, edges, weights, 0.01, 3))) == 2
    assert len(np.unique(sp.felzenszwalb_segments(6, edges, weights, 0.01, 4))) == 1
    # A vertex with no edge stays alone whatever the minimum size.
    alone = sp.felzenszwalb_segments(7, edges, weights, 0.01, 100)
    assert len(np.unique(alone)) == 2 and alone[6] == 6


def test_sort_like_cpp_sorts_and_permutes():
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 7, 5000).astype(np.float32) / 7  # many ties
    order = sp.sort_like_cpp(weights)
    assert np.array_equal(np.sort(order), np.arange(len(weights)))
    assert np.all(np.diff(weights[order]) >= 0)
    distinct = rng.permutation(3000).astype(np.float32)
    assert np.array_equal(sp.sort_like_cpp(distinct), np.argsort(distinct))


def test_heap_sort_fallback_sorts_with_ties():
    from pipeline.scene._superpoints_numba import _heap_sort

    rng = np.random.default_rng(1)
    keys = rng.integers(0, 5, 999).astype(np.float32)
    items = np.arange(999, dtype=np.int32)
    expected = np.sort(keys)
    _heap_sort(keys, items, 0, len(keys))
    assert np.array_equal(keys, expected)
    lib = c_kernels()
    c_keys, c_items = rng.integers(0, 5, 999).astype(np.float32), np.arange(999, dtype=np.int32)
    numba_keys, numba_items = c_keys.copy(), c_items.copy()
    lib.heap_sort_range(c_keys.ctypes.data, c_items.ctypes.data, 0, len(c_keys))
    _heap_sort(numba_keys, numba_items, 0, len(numba_keys))
    assert np.array_equal(c_keys, np.sort(numba_keys)) and np.array_equal(c_items, numba_items)  # same tie order


# --------------------------------------------------------------------------------------------
# The C kernels (segmentator.c) and their numba fallback agree bit for bit


def c_kernels():
    from pipeline.scene._ckernels import library

    lib = library()
    if lib is None:
        pytest.skip("C superpoint kernels unavailable (no C compiler, or SCAN_PSEUDOLABELS_KERNELS=numba): numba runs")
    return lib


@pytest.fixture(params=["c", "numba"])
def kernels(request, monkeypatch):
    """Run a test with the C kernels, then again with the numba fallback."""
    if request.param == "c":
        c_kernels()
    else:
        monkeypatch.setattr(sp, "library", lambda: None)
    return request.param


def _random_mesh(seed, n_vertices=400, n_faces=900):
    rng = np.random.default_rng(seed)
    vertices = rng.normal(size=(n_vertices, 3)).astype(np.float32)
    vertices[:20] = vertices[20:40]  # duplicate points: zero-length edges
    faces = rng.integers(0, n_vertices, (n_faces, 3))
    faces[:10, 2] = faces[:10, 1]  # degenerate (zero-area) faces
    return vertices, faces


def test_c_and_numba_kernels_are_identical():
    c_kernels()
    import pipeline.scene._superpoints_numba as nb

    for seed in range(3):
        vertices, faces = _random_mesh(seed)
        normals = sp.segmentator_vertex_normals(vertices, faces)
        assert np.array_equal(normals, nb._running_mean_face_normals(vertices, faces.astype(np.int64)))
        edges = sp.mesh_edges(faces)
        weights = sp.edge_weights(vertices, normals, edges)
        np.testing.assert_array_equal(weights, nb._normal_change_weights(vertices, normals, edges))  # NaN == NaN here
        ties = np.round(weights * 4) / 4  # many equal keys: the tie order is what differs between sorts
        for keys in (weights, ties.astype(np.float32), np.zeros(50, np.float32), np.arange(3, dtype=np.float32)):
            order = sp.sort_like_cpp(keys)
            reference = np.arange(len(keys), dtype=np.int32)
            nb._introsort(keys.copy(), reference)
            assert np.array_equal(order, reference)
        for k, min_verts in ((0.01, 20), (0.5, 3), (5.0, 1)):
            order = sp.sort_like_cpp(weights)
            ours = sp.felzenszwalb_segments(len(vertices), edges, weights, k, min_verts, order=order)
            theirs = nb._felzenszwalb(len(vertices), edges, weights, order, np.float32(k), min_verts)
            assert np.array_equal(ours, theirs)


def test_kernels_reject_out_of_range_indices():
    vertices, faces = _random_mesh(0)
    with pytest.raises(ValueError, match="face vertex index"):
        sp.segmentator_vertex_normals(vertices, np.vstack([faces, [[0, 1, len(vertices)]]]))
    with pytest.raises(ValueError, match="edge vertex index"):
        sp.edge_weights(vertices, vertices, np.array([[0, -1]]))
    with pytest.raises(ValueError, match="order index"):
        sp.felzenszwalb_segments(3, np.array([[0, 1]]), np.zeros(1, np.float32), order=np.array([1]))


def test_superpoints_command_starts_without_numba_or_other_stages(tmp_path):
    """`python -m pipeline superpoints` imports what it needs only: no numba (C kernels), no torch,
    no tracking package, no scipy.optimize; and it still writes the same segments."""
    c_kernels()
    vertices, faces = crease_mesh()
    ply = tmp_path / "crease.ply"
    write_ply(ply, vertices, None, faces)
    code = ("import sys; from pipeline.cli import main; main(sys.argv[1:]); "
            "print(sorted(m for m in ('numba', 'torch', 'pipeline.tracking', 'scipy.optimize', 'open3d') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, "superpoints", str(ply), "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert np.array_equal(read_segs_json(tmp_path / "x.json"), sp.segment_mesh(vertices, faces))


_CPP_SORT = r"""
#include <algorithm>
#include <cstdio>
#include <vector>
struct Item { float w; int index; };
bool operator<(const Item& a, const Item& b) { return a.w < b.w; }
int main() {
  int n; if (std::scanf("%d", &n) != 1) return 1;
  std::vector<Item> items(n);
  for (int i = 0; i < n; i++) { std::scanf("%f", &items[i].w); items[i].index = i; }
  std::sort(items.begin(), items.end());
  for (int i = 0; i < n; i++) std::printf("%d\n", items[i].index);
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to compare with the real std::sort")
def test_sort_like_cpp_matches_libstdcxx_tie_order(tmp_path):
    source = tmp_path / "sort.cpp"
    source.write_text(_CPP_SORT)
    subprocess.run(["g++", "-O2", "-o", str(tmp_path / "sort"), str(source)], check=True)
    rng = np.random.default_rng(2)
    for weights in (rng.integers(0, 9, 20000) / 8, np.r_[np.zeros(3000), rng.random(1000)], rng.random(17)):
        weights = weights.astype(np.float32)
        text = f"{len(weights)}\n" + "\n".join(f"{w:.9g}" for w in weights)
        run = subprocess.run([str(tmp_path / "sort")], input=text, capture_output=True, text=True, check=True)
        assert np.array_equal(sp.sort_like_cpp(weights), np.array(run.stdout.split(), np.int64))


# --------------------------------------------------------------------------------------------
# Parity with ScanNet's Segmentator on a real mesh


@pytest.fixture(scope="module")
def redkitchen(redkitchen_dir):
    mesh = read_ply(redkitchen_dir / "redkitchen_vh_clean_2.ply")
    reference = read_segs_json(redkitchen_dir / "redkitchen_vh_clean_2.0.010000.segs.json")
    return mesh, reference


def test_redkitchen_matches_segmentator(redkitchen):
    from sklearn.metrics import adjusted_rand_score

    mesh, reference = redkitchen
    segments = sp.segment_mesh(mesh.vertices, mesh.faces, k_thresh=0.01, seg_min_verts=20)
    n_ours, n_reference = len(np.unique(segments)), len(np.unique(reference))
    assert n_reference == 957
    assert abs(n_ours - n_reference) <= 0.01 * n_reference
    assert adjusted_rand_score(reference, segments) >= 0.99


def test_redkitchen_segment_ids_identical_to_segmentator(redkitchen, kernels):
    # Same float32 arithmetic, same std::sort tie order, same union-find: the very same ids
    # (with the C kernels and with the numba fallback).
    mesh, reference = redkitchen
    assert np.array_equal(sp.segment_mesh(mesh.vertices, mesh.faces), reference)


# --------------------------------------------------------------------------------------------
# Point-cloud mode


def test_knn_edges_are_unique_and_ordered():
    points = np.random.default_rng(3).random((200, 3))
    edges = sp.knn_edges(points, 6)
    assert np.all(edges[:, 0] < edges[:, 1])
    assert len(np.unique(edges, axis=0)) == len(edges)
    degree = np.bincount(edges.ravel(), minlength=200)
    assert degree.min() >= 6  # every point keeps its own k neighbours


def test_point_cloud_crease_gives_two_segments():
    vertices, _ = crease_mesh(n=21)
    segments, edges = sp.segment_point_cloud(vertices, knn=8)
    on_floor = (vertices[:, 2] == 0) & (vertices[:, 0] > 0.1)
    on_wall = (vertices[:, 0] == 0) & (vertices[:, 2] > 0.1)
    assert len(np.unique(segments[on_floor])) == 1 and len(np.unique(segments[on_wall])) == 1
    assert segments[on_floor][0] != segments[on_wall][0]
    assert len(np.unique(segments)) <= 3


def test_point_cloud_colour_term_separates_a_flat_two_colour_plane():
    vertices, _ = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 20)
    colors = np.where(vertices[:, :1] < 0.5, [[200, 30, 30]], [[30, 30, 200]]).astype(np.uint8)
    plain, _ = sp.segment_point_cloud(vertices, knn=8, colors=colors)
    coloured, _ = sp.segment_point_cloud(vertices, knn=8, colors=colors, color_weight=0.1)
    assert len(np.unique(plain)) == 1
    assert len(np.unique(coloured)) == 2


# --------------------------------------------------------------------------------------------
# Summary


def test_summary_is_consistent():
    vertices, faces = crease_mesh()
    segments = sp.segment_mesh(vertices, faces)
    edges = sp.mesh_edges(faces)
    normals = sp.segmentator_vertex_normals(vertices, faces)
    summary = sp.superpoint_summary(vertices, normals, segments, edges)
    assert summary.point_superpoint.dtype == np.int32
    assert set(np.unique(summary.point_superpoint)) == {0, 1}
    assert summary.size.sum() == len(vertices)
    assert summary.adjacency.tolist() == [[0, 1]]
    for s in range(2):
        members = summary.point_superpoint == s
        np.testing.assert_allclose(summary.centroid[s], vertices[members].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(summary.normal, axis=1), 1, atol=1e-6)
    floor = summary.point_superpoint[np.flatnonzero(vertices[:, 0] > 0.5)[0]]
    assert summary.normal[floor][2] > 0.9  # the floor's mean normal points up


def test_summary_properties_on_random_graph():
    rng = np.random.default_rng(4)
    points = rng.random((500, 3))
    segments, edges = sp.segment_point_cloud(points, knn=6, seg_min_verts=5)
    summary = sp.superpoint_summary(points, np.tile([0, 0, 1.0], (500, 1)), segments, edges)
    n = len(summary.size)
    assert summary.size.sum() == 500 and summary.size.min() >= 1
    assert np.array_equal(np.bincount(summary.point_superpoint, minlength=n), summary.size)
    adjacency = summary.adjacency
    assert np.all(adjacency[:, 0] < adjacency[:, 1]) and len(np.unique(adjacency, axis=0)) == len(adjacency)
    crossing = summary.point_superpoint[edges[:, 0]] != summary.point_superpoint[edges[:, 1]]
    pairs = np.sort(summary.point_superpoint[edges[crossing]], axis=1)
    assert {tuple(p) for p in pairs.tolist()} == {tuple(p) for p in adjacency.tolist()}


def test_relabel_is_deterministic_and_order_preserving():
    assert sp.relabel_consecutive(np.array([40, 7, 40, 12])).tolist() == [2, 0, 2, 1]


# --------------------------------------------------------------------------------------------
# Files and command line


def test_json_round_trip(tmp_path):
    vertices, faces = crease_mesh()
    ply = tmp_path / "scene0007_00_vh_clean_2.ply"
    write_ply(ply, vertices, faces=faces)
    out = tmp_path / "out.segs.json"
    assert cli_main(["superpoints", str(ply), "--k-thresh", "0.01", "--seg-min-verts", "20", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"params", "sceneId", "segIndices"}
    assert set(data["params"]) == {"kThresh", "segMinVerts", "minPoints", "maxPoints", "thinThresh", "flatThresh",
                                   "minLength", "maxLength"}
    assert data["params"]["kThresh"] == "0.01" and data["params"]["segMinVerts"] == "20"
    assert data["sceneId"] == "scene0007_00"
    assert np.array_equal(read_segs_json(out), sp.segment_mesh(vertices, faces))


def _scene_h5(path, vertices, faces=None):
    """A scene.h5 as ingest writes it: area-weighted normals for a mesh, PCA normals for a cloud."""
    normals = mesh_vertex_normals(vertices, faces) if faces is not None else point_cloud_normals(vertices)
    arrays = {"vertices": vertices.astype(np.float32), "colors": np.full((len(vertices), 3), 128, np.uint8),
              "normals": normals}
    if faces is not None:
        arrays["faces"] = faces.astype(np.int32)
    kind = "mesh" if faces is not None else "points"
    write_artifact(path, "scene", arrays, attrs={"scene_name": "demo", "kind": kind})
    return path


@pytest.mark.parametrize("with_faces", [True, False])
def test_run_superpoints_writes_artifact(tmp_path, with_faces):
    vertices, faces = crease_mesh(n=15)
    scene = _scene_h5(tmp_path / "scene.h5", vertices, faces if with_faces else None)
    out = run_superpoints(scene, tmp_path / "superpoints.h5", {"k_thresh": 0.01, "seg_min_verts": 20})
    art = read_artifact(out, "superpoints", required=["point_superpoint", "adjacency", "size", "centroid", "normal"])
    assert art.attrs["mode"] == ("mesh" if with_faces else "points")
    assert art["point_superpoint"].dtype == np.int32 and art["point_superpoint"].shape == (len(vertices),)
    assert art["adjacency"].dtype == np.int32 and art["size"].dtype == np.int32
    assert art["centroid"].dtype == np.float32 and art["normal"].dtype == np.float32
    assert art["size"].sum() == len(vertices)
    assert art.params["k_thresh"] == 0.01 and art.params["seg_min_verts"] == 20
    assert len(art["size"]) in (2, 3)  # floor, wall (and perhaps the crease line in a cloud)
    assert set(art["adjacency"].ravel()) == set(range(len(art["size"])))  # all touch a neighbour


# --------------------------------------------------------------------------------------------
# Bad input


def test_mesh_mode_without_faces_suggests_point_cloud_mode(tmp_path):
    vertices, _ = crease_mesh()
    with pytest.raises(InputError, match="point-cloud mode"):
        sp.segment_mesh(vertices, None)
    ply = tmp_path / "cloud.ply"
    write_ply(ply, vertices)
    with pytest.raises(InputError, match="cloud.ply.*point-cloud mode"):
        run_superpoints(ply, tmp_path / "x.json", {"mode": "mesh"})


def test_nan_coordinates_are_reported_with_file_and_count(tmp_path):
    vertices, faces = crease_mesh()
    vertices[[3, 8]] = np.nan
    ply = tmp_path / "broken_vh_clean_2.ply"
    write_ply(ply, vertices, faces=faces)
    with pytest.raises(InputError, match=r"broken_vh_clean_2.ply: 2 of \d+ vertices have non-finite"):
        run_superpoints(ply, tmp_path / "x.json")
    with pytest.raises(InputError, match="2 of"):
        run_superpoints(ply, tmp_path / "x.json", {"mode": "points"})


def test_degenerate_faces_add_no_normal():
    vertices, faces = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 8)
    # A zero-area sliver (repeated corner) and a collinear triangle: their corners keep the
    # normal of their real faces instead of NaN.
    degenerate = np.array([[0, 0, 1], [0, 1, 2]])
    normals = sp.segmentator_vertex_normals(vertices, np.vstack([faces, degenerate]))
    assert np.all(np.isfinite(normals))
    np.testing.assert_allclose(normals, sp.segmentator_vertex_normals(vertices, faces))
    segments = sp.segment_mesh(vertices, np.vstack([faces, degenerate]))
    assert len(np.unique(segments)) == 1


def test_only_degenerate_faces_leave_a_zero_normal():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], np.float32)
    normals = sp.segmentator_vertex_normals(vertices, np.array([[0, 1, 2]]))
    assert np.array_equal(normals, np.zeros((3, 3), np.float32))


def test_isolated_vertices_stay_singleton_segments():
    vertices, faces = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 8)
    extra = np.array([[5, 5, 5], [6, 6, 6]], np.float32)
    segments = sp.segment_mesh(np.vstack([vertices, extra]), faces)
    n = len(vertices)
    assert segments[n] == n and segments[n + 1] == n + 1
    assert len(np.unique(segments)) == 3


def test_faces_out_of_range_are_rejected():
    vertices, faces = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 4)
    with pytest.raises(InputError, match="outside"):
        sp.segment_mesh(vertices, np.vstack([faces, [[0, 1, 99]]]))


def test_unknown_input_kind_and_parameters(tmp_path):
    with pytest.raises(InputError, match="must be a .ply"):
        run_superpoints(tmp_path / "scene.obj", tmp_path / "x.json")
    vertices, faces = grid_patch([0, 0, 0], [1, 0, 0], [0, 1, 0], 4)
    write_ply(tmp_path / "m.ply", vertices, faces=faces)
    with pytest.raises(InputError, match="unknown superpoints parameter 'kthresh' \\(did you mean 'k_thresh'\\?\\)"):
        run_superpoints(tmp_path / "m.ply", tmp_path / "x.json", {"kthresh": 0.1})


def test_touching_separate_meshes_become_adjacent_within_the_radius():
    """Two flat strips with no shared edge, 2 cm apart: adjacent at 3 cm, not with edges only."""
    xs = np.linspace(0, 0.2, 11)
    left = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], 1)
    right = left + [0.22, 0, 0]  # first point 2 cm from the last one of the left strip
    vertices = np.concatenate([left, right])
    edges = np.array([[i, i + 1] for i in range(10)] + [[11 + i, 12 + i] for i in range(10)])
    segments = np.repeat([0, 11], 11)
    normals = np.tile([0, 0, 1.0], (22, 1))
    assert sp.superpoint_summary(vertices, normals, segments, edges).adjacency.tolist() == []
    assert sp.superpoint_summary(vertices, normals, segments, edges, adjacency_radius=0.03).adjacency.tolist() == [[0, 1]]
    assert sp.superpoint_summary(vertices, normals, segments, edges, adjacency_radius=0.015).adjacency.tolist() == []


def test_close_point_pairs_match_brute_force():
    points = np.random.default_rng(2).random((200, 3))
    pairs = sp.close_point_pairs(points, 0.1)
    distance = np.linalg.norm(points[:, None] - points[None], axis=2)
    expected = {(i, j) for i, j in zip(*np.nonzero(np.triu(distance <= 0.1, k=1)))}
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert len(sp.close_point_pairs(points, 0.0)) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_adjacency_radius_keeps_each_synthetic_object_connected(seed):
    """Synthetic furniture is built from separate part meshes: with mesh edges alone most objects
    fall apart into unconnected superpoint groups; with the default 3 cm radius every object is one
    connected group (what NCut's component step needs)."""
    from scipy import sparse
    from scipy.sparse import csgraph

    from pipeline.params import SuperpointsParams
    from pipeline.synth.room import generate_room

    room = generate_room(seed, "tiny")
    segments = sp.segment_mesh(room.vertices, room.faces)
    normals = sp.segmentator_vertex_normals(room.vertices, room.faces)

    def share_connected(radius):
        summary = sp.superpoint_summary(room.vertices, normals, segments, sp.mesh_edges(room.faces), radius)
        labels, n = summary.point_superpoint, len(summary.size)
        owner = np.array([np.bincount(room.instance[labels == s]).argmax() for s in range(n)])
        a = summary.adjacency
        graph = sparse.coo_matrix((np.ones(len(a)), (a[:, 0], a[:, 1])), shape=(n, n)).tocsr()
        whole = [csgraph.connected_components(graph[nodes][:, nodes], directed=False)[0] == 1
                 for nodes in (np.flatnonzero(owner == obj) for obj in room.object_ids()) if len(nodes) > 1]
        return np.mean(whole)

    assert share_connected(0.0) < 0.5
    assert share_connected(SuperpointsParams.adjacency_radius) == 1.0
