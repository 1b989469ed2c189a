"""Containment filtering: hand-computed cases, the keep rules, order independence."""

import numpy as np
import pytest

from pipeline.tracking.masks2d.base import MaskSet, clean_masks, pack_masks, unpack_masks
from pipeline.tracking.masks2d.containment import containment_filter, pairwise_intersections


def rect(r0, r1, c0, c1, shape=(10, 10)):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


CHAIR = rect(0, 10, 0, 10)  # 100 px
SEAT = rect(0, 4, 0, 10)  # 40 px, entirely inside the chair
SIDE = rect(0, 10, 8, 10)  # 20 px
SHIFTED = rect(0, 10, 2, 10)  # 80 px: 100 % inside the chair, 80 % of the chair inside it


def test_intersections_are_pixel_counts():
    inter = pairwise_intersections(np.stack([CHAIR, SEAT, SIDE]))
    assert inter.tolist() == [[100, 40, 20], [40, 40, 8], [20, 8, 20]]


@pytest.mark.parametrize("keep, survivor", [("larger", 0), ("smaller", 1), ("score", 1)])
def test_keep_rule_decides_which_of_a_redundant_pair_survives(keep, survivor):
    kept = containment_filter(np.stack([CHAIR, SEAT]), np.array([0.5, 0.9]), 0.8, keep)
    assert np.flatnonzero(kept).tolist() == [survivor]


def test_threshold_is_on_the_smaller_mask_and_inclusive():
    # SIDE and SEAT share 8 px: 40 % of SIDE, 20 % of SEAT -> not redundant at 0.8 or 0.4 ... 0.41
    masks = np.stack([SEAT, SIDE])
    assert containment_filter(masks, np.ones(2), 0.8).tolist() == [True, True]
    assert containment_filter(masks, np.ones(2), 0.4).tolist() == [True, False]  # 8 >= 0.4 * 20
    assert containment_filter(masks, np.ones(2), 0.41).tolist() == [True, True]


def test_result_does_not_depend_on_input_order():
    rng = np.random.default_rng(3)
    masks = np.stack([CHAIR, SEAT, SIDE, SHIFTED, rect(5, 10, 0, 3)])
    scores = rng.random(len(masks))
    reference = containment_filter(masks, scores, 0.8, "larger")
    for _ in range(5):
        order = rng.permutation(len(masks))
        kept = containment_filter(masks[order], scores[order], 0.8, "larger")
        assert np.array_equal(kept, reference[order])
    assert reference.tolist() == [True, False, False, False, False]


def test_no_two_survivors_are_redundant():
    rng = np.random.default_rng(0)
    masks = np.zeros((30, 16, 16), bool)
    for m in masks:
        r, c = rng.integers(0, 12, 2)
        h, w = rng.integers(2, 8, 2)
        m[r:r + h, c:c + w] = True
    for keep in ("larger", "smaller", "score"):
        kept = np.flatnonzero(containment_filter(masks, rng.random(30), 0.8, keep))
        inter = pairwise_intersections(masks[kept])
        area = np.diag(inter)
        smaller = np.minimum(area[:, None], area[None, :])
        np.fill_diagonal(inter, 0)
        assert np.all(inter < 0.8 * smaller)


def test_cleanup_drops_small_then_contained_then_over_cap():
    masks = MaskSet(np.stack([CHAIR, SEAT, rect(0, 1, 0, 1), rect(0, 10, 0, 10, (10, 10))]), np.ones(4))
    masks.masks[3] = False
    masks.masks[3, 9, :] = True  # a 10 px strip, 10 % inside the chair: kept by containment
    kept, report = clean_masks(masks, min_area=2, tau_contain=0.8, keep="smaller", max_masks=1)
    assert (report.n_raw, report.n_small, report.n_contained, report.n_over_cap) == (4, 1, 1, 1)
    assert len(kept) == 1 and kept.areas.tolist() == [10]  # "smaller" prefers the strip
    empty, report = clean_masks(MaskSet.empty(4, 4), 1, 0.8, "larger", 5)
    assert len(empty) == 0 and report.n_raw == 0


def test_containment_rejects_bad_arguments():
    with pytest.raises(ValueError):
        containment_filter(np.stack([CHAIR]), np.ones(1), 0.0)
    with pytest.raises(ValueError, match="keep rule"):
        containment_filter(np.stack([CHAIR, SEAT]), np.ones(2), 0.8, "bigger")


def test_packed_masks_round_trip_with_odd_sizes():
    rng = np.random.default_rng(1)
    masks = rng.random((3, 7, 11)) > 0.5
    bits = pack_masks(masks)
    assert bits.shape == (3, 10) and np.array_equal(unpack_masks(bits, 7, 11), masks)
    assert unpack_masks(np.zeros((0, 10), np.uint8), 7, 11).shape == (0, 7, 11)
