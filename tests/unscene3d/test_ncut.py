"""Masked iterative Normalized Cut: affinity, solvers, one cut, the iteration, the stage."""

import numpy as np
import pytest
import scipy.sparse as sparse

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.commands.ncut import run_ncut
from pipeline.errors import InputError
from pipeline.io.ply import write_ply
from pipeline.unscene3d.ncut import (
    Modality,
    affinity_rows,
    binarised_affinity,
    boundary_contrast,
    cosine_range,
    extent_background,
    foreground,
    masked_ncut,
    merge_masks,
    ncut_score,
    pair_affinity,
    pair_ncut,
    point_instances,
    second_eigenvector_dense,
    second_eigenvector_lanczos,
    seed_component,
    spans_scene,
    split_masks,
    split_recursively,
)


def chain(n):
    return np.array([(i, i + 1) for i in range(n - 1)])


def planted_blocks(sizes, bridges=2, seed=0, density=0.9):
    """0/1 affinity: dense blocks, plus a few weak links between consecutive blocks."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    dense = (labels[:, None] == labels[None, :]) & (rng.random((n, n)) < density)
    starts = np.cumsum([0] + list(sizes))
    for b in range(len(sizes) - 1):
        for _ in range(bridges):
            i = rng.integers(starts[b], starts[b + 1])
            j = rng.integers(starts[b + 1], starts[b + 2])
            dense[i, j] = True
    dense = dense | dense.T
    np.fill_diagonal(dense, True)
    return sparse.csr_matrix(dense.astype(np.float32)), labels


@pytest.mark.parametrize("solver", ["dense", "lanczos"])
def test_planted_blocks_are_recovered(solver):
    # Complete blocks: the first cut separates them, the rest is one region.
    above, labels = planted_blocks([120, 80], density=1.0)
    result = masked_ncut(above, chain(len(labels)), {"solver": solver, "dense_below": 0})
    found = {frozenset(np.flatnonzero(mask)) for mask in result.masks}
    blocks = {frozenset(np.flatnonzero(labels == k)) for k in range(2)}
    assert found == blocks
    assert result.stop_reason == "no_superpoints_left"


@pytest.mark.parametrize("solver", ["dense", "lanczos"])
def test_first_cut_of_noisy_blocks_is_the_smaller_block(solver):
    # 90% dense blocks: the first mask is exactly the smaller block (the side holding the largest
    # |v|) and its cut is clean; what follows splits the noisy remainder (UnScene3D has no test
    # for "nothing left worth cutting"), and those masks score lower.
    above, labels = planted_blocks([120, 80])
    result = masked_ncut(above, chain(len(labels)), {"solver": solver, "dense_below": 0})
    assert np.array_equal(result.masks[0], labels == 1)
    assert result.scores[0] > 0.95
    assert result.scores[1:].max() < result.scores[0]


@pytest.mark.parametrize("matrix_free_above", [0, 500])
def test_lanczos_solver_matches_dense_reference(matrix_free_above):
    above, _ = planted_blocks([60, 50, 40], bridges=20, seed=1)
    dense = second_eigenvector_dense(above, 1e-5)
    fast = second_eigenvector_lanczos(above, 1e-5, tol=1e-10, matrix_free_above=matrix_free_above)
    cosine = abs(dense @ fast) / np.linalg.norm(dense) / np.linalg.norm(fast)
    assert cosine == pytest.approx(1.0, abs=1e-6)


def test_generalised_eigenvector_solves_the_pencil():
    above, _ = planted_blocks([30, 20], bridges=5)
    weights = np.where(above.toarray() > 0, 1.0, 1e-5)
    degree = np.diag(weights.sum(1))
    v = second_eigenvector_lanczos(above, 1e-5, tol=1e-12)
    lam = v @ (degree - weights) @ v / (v @ degree @ v)
    assert (degree - weights) @ v == pytest.approx(lam * degree @ v, abs=1e-8)
    assert abs(v @ degree @ np.ones(len(v))) < 1e-8  # D-orthogonal to the trivial solution


def test_foreground_follows_largest_magnitude_and_inverts_when_too_large():
    fg, seed = foreground(np.array([-0.1, -0.1, -0.1, 0.9, 0.2]), invert_fraction=0.8)
    assert fg.tolist() == [False, False, False, True, True] and seed == 3
    fg, seed = foreground(-np.array([-0.1, -0.1, -0.1, 0.9, 0.2]), invert_fraction=0.8)  # sign is arbitrary
    assert fg.tolist() == [False, False, False, True, True] and seed == 3
    # Foreground (above the mean) covers 4 of 5: inverted, the seed is the most extreme other node.
    fg, seed = foreground(np.array([1.0, 1.0, 1.0, 1.1, -3.9]), invert_fraction=0.7)
    assert fg.tolist() == [False, False, False, False, True] and seed == 4


def test_seed_component_keeps_only_the_connected_part_holding_the_seed():
    fg = np.array([True, True, False, True, True, True])
    adjacency = sparse.csr_matrix(np.array([
        [0, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0],
        [0, 0, 1, 0, 1, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0]]))
    assert seed_component(fg, 4, adjacency).tolist() == [False, False, False, True, True, False]
    assert seed_component(fg, 0, adjacency).tolist() == [True, True, False, False, False, False]


def test_identical_features_in_separate_places_become_separate_masks():
    # Two objects with the same features, not adjacent, on a background of other features.
    rng = np.random.default_rng(0)
    obj, bg = rng.normal(size=8), rng.normal(size=8)
    features = np.array([obj] * 10 + [bg] * 40 + [obj] * 10) + rng.normal(scale=0.05, size=(60, 8))
    above = binarised_affinity([Modality("3d", features, 1.0)], 0.55)
    result = masked_ncut(above, chain(60), {"min_segments": 2})
    masks = [set(np.flatnonzero(m)) for m in result.masks]
    assert set(range(10)) in masks and set(range(50, 60)) in masks


def test_min_segments_rejects_small_masks_and_they_are_masked_out():
    above, labels = planted_blocks([60, 3])
    result = masked_ncut(above, chain(63), {"min_segments": 4, "solver": "dense"})
    assert all(mask.sum() >= 4 for mask in result.masks)
    assert result.n_rejected >= 1
    assert result.masks.sum(0).max() <= 1  # disjoint


def test_eps_masking_keeps_masked_superpoints_in_the_graph_but_never_segments_them_again():
    above, labels = planted_blocks([50, 30, 20], bridges=1, density=1.0)
    structure = np.zeros(100, bool)
    structure[:50] = True  # the largest block is "room structure", masked before the first cut
    result = masked_ncut(above, chain(100), {"masking": "eps", "solver": "dense"}, premasked=structure)
    assert all(step["overlap"] == 0 for step in result.iterations)
    assert result.masks.sum(0).max() <= 1 and not result.masks[:, structure].any()
    found = {frozenset(np.flatnonzero(mask)) for mask in result.masks}
    assert frozenset(range(50, 80)) in found and frozenset(range(80, 100)) in found


@pytest.mark.parametrize("masking", ["remove", "eps"])
def test_premasked_superpoints_never_join_a_mask(masking):
    above, labels = planted_blocks([40, 30, 20])
    premasked = labels == 1
    result = masked_ncut(above, chain(90), {"masking": masking, "solver": "dense"}, premasked=premasked)
    assert len(result.masks) and not result.masks[:, premasked].any()
    unmasked = masked_ncut(above, chain(90), {"masking": masking, "solver": "dense"})
    assert unmasked.masks[:, premasked].any()  # without premasking that block is cut like any other


def test_spans_scene_needs_both_horizontal_axes():
    box_min = np.array([[0, 0, 0], [9, 0, 0], [0, 4, 0], [4, 4, 5]], float)
    box_max = box_min + [1, 1, 1]
    is_background = extent_background(box_min, box_max, 0.8)  # the scene spans 0..10 x 0..5 x 0..6
    assert is_background(np.array([0, 1, 2]))  # 10 x 5: the whole room
    assert not is_background(np.array([0, 1]))  # 10 x 1: a wall-long strip, not the room
    assert not is_background(np.array([3]))
    assert spans_scene(np.array([0, 1, 2]), box_min, box_max, np.zeros(3), np.array([10, 5, 6.0]), 0.8)
    assert not spans_scene(np.array([0, 1, 2]), box_min, box_max, np.zeros(3), np.array([13, 5, 6.0]), 0.8)


def test_a_candidate_rejected_as_background_is_masked_out_but_not_a_mask():
    above, labels = planted_blocks([120, 80], density=1.0)
    background = lambda candidate: len(candidate) == 80  # noqa: E731  (the first cut's smaller block)
    result = masked_ncut(above, chain(200), {"solver": "dense"}, is_background=background)
    assert [step["background"] for step in result.iterations][:1] == [True]
    assert {frozenset(np.flatnonzero(m)) for m in result.masks} == {frozenset(range(120))}


def test_pair_affinity_matches_the_affinity_rows():
    rng = np.random.default_rng(0)
    mods = [Modality("2d", rng.normal(size=(12, 5)), 0.3, valid=np.arange(12) % 4 > 0),
            Modality("3d", rng.normal(size=(12, 7)), 0.7)]
    ranges = [cosine_range(m) for m in mods]
    full = affinity_rows(mods, slice(0, 12), ranges)
    pairs = np.array([[0, 1], [3, 4], [5, 11], [8, 8]])
    assert pair_affinity(mods, pairs, ranges) == pytest.approx(full[pairs[:, 0], pairs[:, 1]], abs=1e-6)


def test_boundary_contrast_by_hand():
    pairs = np.array([[0, 1], [1, 2], [2, 3], [4, 5]])
    affinity = np.array([0.9, 0.2, 0.6, 0.5])
    masks = np.array([[True, True, False, False, False, False],  # crosses edge 1-2 only
                      [False, False, True, False, False, False],  # crosses 1-2 and 2-3
                      [False, False, False, False, True, True]])  # no edge leaves it
    assert boundary_contrast(masks, pairs, affinity) == pytest.approx([0.8, 1 - 0.4, 1.0])


def test_max_instances_stops_the_iteration():
    above, _ = planted_blocks([30, 30, 30, 30], bridges=1)
    result = masked_ncut(above, chain(120), {"max_instances": 2})
    assert len(result.masks) == 2 and result.stop_reason == "max_instances"


def test_a_mask_holding_two_weakly_linked_blocks_is_split_in_two():
    # One mask over two complete blocks joined by one edge (eps 0): NCut = 1 / (25*25 + 1) + 1 / (15*15 + 1)
    # = 0.006 (self loops count in assoc), far below 0.25.
    above, labels = planted_blocks([25, 15], bridges=1, density=1.0)
    parts = split_recursively(above, np.arange(40), 0.25, 2, 0.0)
    assert sorted(map(len, parts)) == [15, 25]
    assert {frozenset(p) for p in parts} == {frozenset(np.flatnonzero(labels == k)) for k in range(2)}


def test_a_single_block_and_a_too_small_side_are_not_split():
    above, _ = planted_blocks([30], density=1.0)
    assert [len(p) for p in split_recursively(above, np.arange(30), 0.25, 2, 1e-5)] == [30]
    # Two blocks, but one side would hold fewer than min_segments superpoints.
    above, _ = planted_blocks([25, 3], bridges=1, density=1.0)
    assert [len(p) for p in split_recursively(above, np.arange(28), 0.25, 4, 0.0)] == [28]
    assert [len(p) for p in split_recursively(above, np.arange(28), 0.25, 3, 0.0)] in ([25, 3], [3, 25])


def test_the_split_threshold_decides_and_zero_turns_it_off():
    # Blocks linked by 35 distinct edges: NCut = 35 / 435 + 35 / 435 = 0.161 (each block's assoc: 400 + 35).
    above, labels = planted_blocks([20, 20], bridges=40, density=1.0, seed=1)
    value = 2 * (1 - ncut_score(above, labels == 0, 0.0))
    assert value == pytest.approx(70 / 435)
    assert len(split_recursively(above, np.arange(40), value + 0.01, 2, 0.0)) == 2
    assert len(split_recursively(above, np.arange(40), value - 0.01, 2, 0.0)) == 1
    assert len(split_recursively(above, np.arange(40), 0.0, 2, 0.0)) == 1


def test_split_masks_recurses_and_keeps_the_parent_of_every_part():
    # Mask 0 holds three weakly linked blocks (split twice), mask 1 is one block (kept).
    above, labels = planted_blocks([12, 10, 8, 9], bridges=1, density=1.0)
    masks = np.stack([labels <= 2, labels == 3])
    parts, parent = split_masks(above, masks, 0.25, 2, 0.0)
    assert parent.tolist() == [0, 0, 0, 1]
    assert {frozenset(np.flatnonzero(p)) for p in parts} == {frozenset(np.flatnonzero(labels == k)) for k in range(4)}
    assert not (parts.sum(0) > 1).any()  # still disjoint


def chain_pairs(n):
    return np.stack([np.arange(n - 1), np.arange(1, n)], 1)


def test_pair_ncut_by_hand():
    # One complete block of 6 (self loops included, eps 0) halved: assoc(A) = 3 * 6 = 18, inside 9,
    # cut 9 -> NCut = 9/18 + 9/18 = 1. Two triangles joined by one edge: 1/10 + 1/10 = 0.2.
    clique = sparse.csr_matrix(np.ones((6, 6), np.float32))
    halves = np.arange(6) < 3
    assert pair_ncut(clique, halves, ~halves, 0.0) == pytest.approx(1.0)
    triangles = np.kron(np.eye(2), np.ones((3, 3))).astype(np.float32)
    triangles[2, 3] = triangles[3, 2] = 1
    assert pair_ncut(sparse.csr_matrix(triangles), halves, ~halves, 0.0) == pytest.approx(0.2)


def test_touching_halves_of_one_block_are_merged_and_separate_objects_are_not():
    clique = sparse.csr_matrix(np.ones((6, 6), np.float32))
    halves = np.stack([np.arange(6) < 3, np.arange(6) >= 3])
    merged, first = merge_masks(clique, chain_pairs(6), halves, 0.5, 0.0)
    assert merged.tolist() == [[True] * 6] and first.tolist() == [0]
    # The same halves that do not touch (no adjacency across them) stay apart, as does a 0 threshold.
    apart = np.array([[0, 1], [1, 2], [3, 4], [4, 5]])
    assert len(merge_masks(clique, apart, halves, 0.5, 0.0)[0]) == 2
    assert len(merge_masks(clique, chain_pairs(6), halves, 0.0, 0.0)[0]) == 2
    # Two triangles joined by one edge (NCut 0.2) are two objects.
    triangles = np.kron(np.eye(2), np.ones((3, 3))).astype(np.float32)
    triangles[2, 3] = triangles[3, 2] = 1
    assert len(merge_masks(sparse.csr_matrix(triangles), chain_pairs(6), halves, 0.5, 0.0)[0]) == 2


def test_merging_joins_the_most_linked_pair_first_and_keeps_going():
    # Three thirds of one block in a chain, plus a separate block: the thirds end as one mask that
    # keeps the index of its first part; the separate block (adjacent, but with no affinity edge) is untouched.
    above = np.zeros((9, 9), np.float32)
    above[:6, :6] = 1
    above[6:, 6:] = 1
    masks = np.stack([np.isin(np.arange(9), ids) for ids in ([0, 1], [2, 3], [4, 5], [6, 7, 8])])
    merged, first = merge_masks(sparse.csr_matrix(above), chain_pairs(9), masks, 0.5, 0.0)
    assert merged.astype(int).tolist() == [[1] * 6 + [0] * 3, [0] * 6 + [1] * 3]
    assert first.tolist() == [0, 3]


def test_ncut_score_of_hand_computed_graph():
    # Two nodes joined, one isolated node; eps = 0.
    above = sparse.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], np.float32))
    assert ncut_score(above, np.array([False, False, True]), 0.0) == pytest.approx(1.0)
    # Cutting node 0 from 1 and 2: cut = 1, assoc(A) = 2, assoc(B) = 3 -> NCut = 1/2 + 1/3.
    assert ncut_score(above, np.array([True, False, False]), 0.0) == pytest.approx(1 - (0.5 + 1 / 3) / 2)


def test_affinity_minmax_normalisation_and_unseen_fallback():
    f3d = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    f2d = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # superpoint 2 never seen in 2D
    m2 = Modality("2d", f2d, 0.5, valid=np.array([True, True, False]))
    m3 = Modality("3d", f3d, 0.5)
    above = binarised_affinity([m2, m3], 0.65).toarray()
    # 0-1: 2D cosine 0, 3D cosine 1 -> 0.5 (below); 0-2 and 1-2: 3D only, cosine 0.
    assert above.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    # 3D alone: minmax maps cosines [0, 1] to [0, 1]; 0-1 are identical.
    assert binarised_affinity([Modality("3d", f3d, 1.0)], 0.55).toarray()[0, 1] == 1


def test_point_instances_from_superpoint_masks():
    masks = np.array([[True, False, False], [False, False, True]])
    assert point_instances(masks, np.array([2, 0, 1, 2])).tolist() == [1, 0, -1, 1]


# ---------------------------------------------------------------------------------------------
# The stage on hand-made artifacts


def write_inputs(tmp_path, empty_2d=False):
    rng = np.random.default_rng(0)
    n_superpoints, per = 40, 5
    labels = np.repeat(np.arange(n_superpoints), per).astype(np.int32)
    group = (np.arange(n_superpoints) >= 25).astype(int)  # two objects: 25 and 15 superpoints
    centres = rng.normal(size=(2, 16))
    f3d = centres[group] + rng.normal(scale=0.1, size=(n_superpoints, 16))
    write_artifact(tmp_path / "superpoints.h5", "superpoints", {"point_superpoint": labels,
                   "adjacency": chain(n_superpoints).astype(np.int32)})
    write_artifact(tmp_path / "features_3d.h5", "features_3d", {"superpoint_features": f3d.astype(np.float32),
                   "superpoint_weight": np.full(n_superpoints, per, np.float32)})
    if empty_2d:
        arrays = {"superpoint_features": np.zeros((n_superpoints, 0), np.float32), "superpoint_weight": np.zeros(n_superpoints, np.float32)}
        attrs = {"empty": True}
    else:
        f2d = centres[group][:, :8] + rng.normal(scale=0.1, size=(n_superpoints, 8))
        arrays = {"superpoint_features": f2d.astype(np.float32), "superpoint_weight": np.ones(n_superpoints, np.float32)}
        attrs = {"empty": False}
    write_artifact(tmp_path / "features_2d.h5", "features_2d", arrays, attrs=attrs)
    return labels, group


@pytest.mark.parametrize("empty_2d", [False, True])
def test_ncut_stage_writes_masks_and_falls_back_to_3d(tmp_path, empty_2d):
    labels, group = write_inputs(tmp_path, empty_2d)
    out = run_ncut(tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", tmp_path / "features_3d.h5", tmp_path / "ncut.h5")
    art = read_artifact(out, "ncut", required=["masks", "point_instance", "instance_score"])
    assert art.attrs["modality"] == ("3d" if empty_2d else "both")
    assert art.attrs["tau_cut"] == (0.55 if empty_2d else 0.65)
    masks = art["masks"]
    assert {frozenset(np.flatnonzero(m)) for m in masks} == {frozenset(np.flatnonzero(group == g)) for g in (0, 1)}
    assert art["point_instance"].shape == labels.shape
    assert np.array_equal(art["point_instance"], art["superpoint_instance"][labels])
    assert art["instance_score"].shape == (len(masks),)
    assert art.params["max_instances"] == 20


def test_ncut_stage_scores_by_the_chosen_rule(tmp_path):
    write_inputs(tmp_path)
    paths = (tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", tmp_path / "features_3d.h5")
    arts = {rule: read_artifact(run_ncut(*paths, tmp_path / f"{rule}.h5", {"score": rule}), "ncut")
            for rule in ("contrast", "ncut", "uniform")}
    assert arts["uniform"]["instance_score"].tolist() == [1.0] * len(arts["uniform"]["masks"])
    assert np.array_equal(arts["ncut"]["instance_score"], arts["ncut"]["ncut_score"])
    contrast = arts["contrast"]
    assert contrast.attrs["score"] == "contrast" and contrast.attrs["n_structure_masked"] == -1  # no structure data
    assert (contrast["instance_score"] > 0.5).all()  # two well separated objects on a chain
    assert not np.array_equal(contrast["instance_score"], contrast["ncut_score"])


@pytest.mark.parametrize("key", ["structure", "background", "score"])
def test_ncut_stage_refuses_unknown_choices(tmp_path, key):
    write_inputs(tmp_path)
    with pytest.raises(InputError, match=f"ncut.{key} must be one of"):
        run_ncut(tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", tmp_path / "features_3d.h5",
                 tmp_path / "ncut.h5", {key: "typo"})


@pytest.mark.parametrize("key", ["split_max_ncut", "merge_min_ncut"])
def test_ncut_stage_refuses_a_negative_split_or_merge_threshold(tmp_path, key):
    write_inputs(tmp_path)
    with pytest.raises(InputError, match=f"{key} must be >= 0"):
        run_ncut(tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", tmp_path / "features_3d.h5",
                 tmp_path / "ncut.h5", {key: -0.1})
    assert not (tmp_path / "ncut.h5").exists()


def test_ncut_stage_refuses_2d_modality_without_2d_features(tmp_path):
    write_inputs(tmp_path, empty_2d=True)
    with pytest.raises(InputError, match="needs 2D features"):
        run_ncut(tmp_path / "superpoints.h5", tmp_path / "features_2d.h5", tmp_path / "features_3d.h5",
                 tmp_path / "ncut.h5", {"modality": "both"})


# ---------------------------------------------------------------------------------------------
# The real stages on a hand-built coloured room


def rectangle(origin, du, dv, step=0.05):
    """Points on origin + s du + t dv for s, t in [0, 1], about ``step`` apart."""
    du, dv = np.asarray(du, float), np.asarray(dv, float)
    s, t = np.meshgrid(np.linspace(0, 1, max(2, round(np.linalg.norm(du) / step) + 1)),
                       np.linspace(0, 1, max(2, round(np.linalg.norm(dv) / step) + 1)))
    return np.asarray(origin, float) + s.ravel()[:, None] * du + t.ravel()[:, None] * dv


def cuboid(corner, size):
    """The top and the four sides of an axis-aligned box standing on the floor."""
    (x, y, z), (a, b, c) = corner, size
    return np.concatenate([
        rectangle([x, y, z + c], [a, 0, 0], [0, b, 0]),
        rectangle([x, y, z], [a, 0, 0], [0, 0, c]), rectangle([x, y + b, z], [a, 0, 0], [0, 0, c]),
        rectangle([x, y, z], [0, b, 0], [0, 0, c]), rectangle([x + a, y, z], [0, b, 0], [0, 0, c]),
    ])


def coloured_room(path):
    """A 4 x 3 m room (brown floor, white walls 2.4 m) with three objects: a red cube and a blue crate
    on the floor, and a green cabinet against the back wall. Returns (point label, names); label 0
    is the floor, 1 the walls, 2.. the objects."""
    parts = [
        ("floor", rectangle([0, 0, 0], [4, 0, 0], [0, 3, 0]), (150, 110, 70)),
        ("walls", np.concatenate([rectangle([0, 0, 0], [4, 0, 0], [0, 0, 2.4]), rectangle([0, 3, 0], [4, 0, 0], [0, 0, 2.4]),
                                  rectangle([0, 0, 0], [0, 3, 0], [0, 0, 2.4]), rectangle([4, 0, 0], [0, 3, 0], [0, 0, 2.4])]),
         (225, 222, 212)),
        ("cube", cuboid([0.8, 0.8, 0], [0.5, 0.5, 0.5]), (180, 40, 40)),
        ("crate", cuboid([2.6, 1.0, 0], [0.8, 0.4, 0.6]), (40, 60, 190)),
        ("cabinet", cuboid([1.6, 2.6, 0], [0.7, 0.4, 1.2]), (50, 150, 60)),
    ]
    rng = np.random.default_rng(0)
    points = np.concatenate([p for _, p, _ in parts]).astype(np.float32)
    colors = np.concatenate([np.tile(c, (len(p), 1)) for _, p, c in parts]) + rng.integers(-8, 9, (len(points), 3))
    labels = np.concatenate([np.full(len(p), i) for i, (_, p, _) in enumerate(parts)])
    path.mkdir()
    write_ply(path / "points.ply", points, colors=np.clip(colors, 0, 255).astype(np.uint8))
    return labels, [name for name, _, _ in parts]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """The coloured room through ingest, superpoints and both feature stages (once per module)."""
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.superpoints import run_superpoints

    root = tmp_path_factory.mktemp("room")
    labels, names = coloured_room(root / "room")
    run_ingest(root / "room", root / "scene.h5")
    run_superpoints(root / "scene.h5", root / "superpoints.h5")
    run_features_2d(root / "scene.h5", root / "superpoints.h5", root / "features_2d.h5")
    run_features_3d(root / "scene.h5", root / "superpoints.h5", root / "features_3d.h5")
    return root, labels, names


def room_masks(room, params):
    root, labels, _ = room
    out = run_ncut(root / "superpoints.h5", root / "features_2d.h5", root / "features_3d.h5", root / "ncut.h5", params)
    art = read_artifact(out, "ncut")
    point_instance = art["point_instance"]
    return [point_instance == k for k in range(len(art["masks"]))], art


def test_ncut_on_a_room_with_a_dominant_floor_and_walls_returns_the_objects_not_the_floor(room):
    _, labels, names = room
    masks, art = room_masks(room, {})
    assert art.attrs["modality"] == "both" and art.attrs["color_source"] == "point_colors"
    assert art.attrs["n_structure_masked"] > 0
    for k in range(2, len(names)):  # every object is found
        best = max((m & (labels == k)).sum() / (m | (labels == k)).sum() for m in masks)
        assert best >= 0.5, names[k]
    for m in masks:  # and no mask is floor or wall
        assert (labels[m] <= 1).mean() < 0.2
    # The best-scored mask is an object.
    assert (labels[masks[int(np.argmax(art["instance_score"]))]] >= 2).mean() > 0.8


def test_the_split_leaves_the_objects_of_the_room_whole(room):
    # Every object of the coloured room is one mask, and no cut inside a mask is cheap enough: the
    # split changes none of the room's masks.
    _, labels, names = room
    arts = {}
    for name, params in (("split", {}), ("whole", {"split_max_ncut": 0})):
        masks, arts[name] = room_masks(room, params)
        for k in range(2, len(names)):
            assert max((m & (labels == k)).sum() / (m | (labels == k)).sum() for m in masks) >= 0.5, (name, names[k])
    assert np.array_equal(arts["split"]["masks"], arts["whole"]["masks"])
    assert arts["split"].attrs["n_split"] == 0
    assert arts["split"]["mask_parent"].tolist() == list(range(len(arts["split"]["masks"])))


@pytest.fixture(scope="module")
def real_scan(scene0000_dir, tmp_path_factory):
    """scene0000_00 ingested, with superpoints and the default features; a scorer (ground truth
    scores only)."""
    from pipeline.commands.evaluate import Predictions, score_predictions
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.superpoints import run_superpoints

    root = tmp_path_factory.mktemp("scene0000_00")
    run_ingest(scene0000_dir, root / "scene.h5")
    run_superpoints(root / "scene.h5", root / "superpoints.h5")
    run_features_2d(root / "scene.h5", root / "superpoints.h5", root / "features_2d.h5")
    run_features_3d(root / "scene.h5", root / "superpoints.h5", root / "features_3d.h5")

    def score(stage, point_instance, instance_score=None):
        predictions = Predictions(stage, np.asarray(point_instance, np.int64),
                                  None if instance_score is None else np.asarray(instance_score, np.float64), None)
        return score_predictions(root / "scene.h5", predictions)

    return root, score


def test_on_the_real_scan_the_split_separates_merged_objects(real_scan):
    """scene0000_00: NCut's masks without the split merge neighbouring objects (a mask over
    shelves, a table and cabinets); cut again they score higher at IoU 0.5 and 0.25, and above the
    superpoints taken as instances at 0.25."""
    root, score = real_scan
    metrics = {}
    for name, params in (("split", {}), ("whole", {"split_max_ncut": 0})):
        art = read_artifact(run_ncut(root / "superpoints.h5", root / "features_2d.h5", root / "features_3d.h5",
                                     root / f"{name}.h5", params), "ncut")
        metrics[name] = score("ncut", art["point_instance"], art["instance_score"])
    superpoints = score("superpoints", read_artifact(root / "superpoints.h5", "superpoints")["point_superpoint"])
    assert art.attrs["n_split"] == 0
    assert metrics["split"]["ap50"] > metrics["whole"]["ap50"] + 0.02
    assert metrics["split"]["ap25"] > max(metrics["whole"]["ap25"], superpoints["ap25"])


def test_on_the_real_scan_the_masks_do_not_depend_on_the_feature_projection(real_scan):
    """The weight-free features are random Fourier embeddings; with 64 of them scene0000_00's NCut
    AP50 was 20.8, 15.0 and 6.9 for projection seeds 0, 1, 2 (below the superpoints' 9.8). With the
    default width every seed's masks beat the superpoints taken as instances by a wide margin."""
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d

    root, score = real_scan
    superpoints = score("superpoints", read_artifact(root / "superpoints.h5", "superpoints")["point_superpoint"])
    ap50 = []
    for seed in (1, 2):
        f2d = run_features_2d(root / "scene.h5", root / "superpoints.h5", root / f"f2_{seed}.h5",
                              {"handcrafted": {"seed": seed}})
        f3d = run_features_3d(root / "scene.h5", root / "superpoints.h5", root / f"f3_{seed}.h5",
                              {"handcrafted": {"seed": seed}})
        art = read_artifact(run_ncut(root / "superpoints.h5", f2d, f3d, root / f"ncut_{seed}.h5"), "ncut")
        ap50.append(score("ncut", art["point_instance"], art["instance_score"])["ap50"])
    assert min(ap50) > 2 * superpoints["ap50"]


def test_without_structure_masking_the_floor_and_walls_become_masks(room):
    # The unmasked form of the same cut (the code before room structure was handled): a wall or
    # the floor comes back as a mask, which is what the test above guards against.
    _, labels, _ = room
    masks, _ = room_masks(room, {"structure": "keep", "background": "none", "score": "ncut"})
    assert any((labels[m] <= 1).mean() >= 0.2 for m in masks)
