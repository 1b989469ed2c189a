"""The weight-free generators: oracle (ground truth with granularity noise) and Felzenszwalb."""

import numpy as np
import pytest

from pipeline.tracking.masks2d.base import FrameInput, MaskSet, build_generator
from pipeline.tracking.masks2d.oracle import noisy_object_masks, split_by_sectors, touching_pairs


def object_map():
    """Four objects: 0 and 1 touch, 2 touches 1, 3 stands alone; -1 is empty space."""
    objects = np.full((20, 30), -1, np.int32)
    objects[0:10, 0:10] = 0
    objects[0:10, 10:20] = 1
    objects[10:20, 10:20] = 2
    objects[15:20, 25:30] = 3
    return objects


def oracle_frame(objects, frame_id=7):
    return FrameInput(np.zeros((*objects.shape, 3), np.uint8), frame_id=frame_id, ground_truth=lambda: objects)


def test_touching_pairs_are_four_neighbours():
    assert touching_pairs(object_map()) == {(0, 1), (1, 2)}


def test_oracle_without_noise_returns_exactly_the_objects():
    objects = object_map()
    result = build_generator("oracle", {"min_area": 1}).generate(oracle_frame(objects))
    assert len(result) == 4
    expected = sorted(tuple(np.flatnonzero(objects.ravel() == k)) for k in range(4))
    assert sorted(tuple(np.flatnonzero(m.ravel())) for m in result.masks) == expected


def test_split_parts_partition_the_object():
    mask = np.zeros((20, 20), bool)
    mask[2:18, 4:16] = True
    for n_parts in (2, 3, 4):
        parts = split_by_sectors(mask, n_parts, start_angle=0.3)
        assert len(parts) == n_parts
        assert np.array_equal(np.sum(parts, axis=0), mask.astype(int))  # disjoint and complete


def test_always_splitting_cuts_every_object():
    objects = object_map()
    masks = noisy_object_masks(objects, np.random.default_rng(0), p_split=1.0, p_merge=0.0, max_parts=2)
    assert len(masks) == 8
    for mask in masks:
        assert len(np.unique(objects[mask])) == 1  # a part never straddles two objects


def test_always_merging_joins_touching_objects_only():
    objects = object_map()
    masks = noisy_object_masks(objects, np.random.default_rng(1), p_split=0.0, p_merge=1.0)
    groups = sorted(tuple(sorted(np.unique(objects[m]).tolist())) for m in masks)
    # 3 touches nothing; of the chain 0-1-2 exactly one touching pair is merged, the third stays alone
    assert (3,) in groups and len(groups) == 3
    merged = [g for g in groups if len(g) == 2]
    assert len(merged) == 1 and merged[0] in [(0, 1), (1, 2)]


def test_oracle_noise_is_seeded_per_frame():
    objects = object_map()
    gen = build_generator("oracle", {"p_split": 0.5, "p_merge": 0.5, "seed": 3, "min_area": 1})
    a, b = gen.generate(oracle_frame(objects, 7)), gen.generate(oracle_frame(objects, 7))
    assert np.array_equal(a.masks, b.masks)
    outcomes = {tuple(sorted(m.sum() for m in gen.generate(oracle_frame(objects, f)).masks)) for f in range(12)}
    assert len(outcomes) > 1  # frames get different noise


def test_oracle_rejects_bad_probabilities_and_missing_ground_truth():
    with pytest.raises(ValueError, match="probability"):
        build_generator("oracle", {"p_split": 1.5})
    with pytest.raises(ValueError, match="ground-truth"):
        build_generator("oracle").generate(FrameInput(np.zeros((4, 4, 3), np.uint8)))


def test_felzenszwalb_finds_colour_regions_and_skips_pixels_without_depth():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = (200, 30, 30)
    depth = np.ones((40, 60), np.float32)
    depth[:10, :] = 0
    gen = build_generator("felzenszwalb", {"scale": 100, "sigma": 0.0, "min_size": 20, "min_area": 50})
    result = gen.generate(FrameInput(image, depth))
    assert len(result) == 2
    areas = sorted(result.areas.tolist())
    assert areas == [30 * 30, 30 * 30]  # each half minus the 10 rows without depth
    assert not np.any(result.masks[:, :10])
    without_depth_rule = build_generator("felzenszwalb", {"scale": 100, "sigma": 0.0, "min_size": 20, "require_depth": False})
    assert sorted(without_depth_rule.generate(FrameInput(image, depth)).areas.tolist()) == [1200, 1200]


def test_unknown_generator_is_named():
    with pytest.raises(ValueError, match="felzenszwalb"):
        build_generator("magic")


def test_maskset_checks_its_shapes():
    with pytest.raises(ValueError):
        MaskSet(np.zeros((2, 4, 4), bool), np.ones(3))
    assert len(MaskSet.empty(3, 5)) == 0 and MaskSet.empty(3, 5).masks.shape == (0, 3, 5)
