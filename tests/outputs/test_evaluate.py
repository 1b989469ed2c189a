"""Tests for pipeline.outputs.evaluate (instance AP, overlap accuracy) and the evaluate command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.cli import main
from pipeline.commands.evaluate import run_evaluate
from pipeline.commands.ingest import run_ingest
from pipeline.outputs.evaluate import (
    FALSE_POSITIVE,
    IOU_THRESHOLDS_TO_095,
    NO_BOX,
    SCANNET_IOU_THRESHOLDS,
    TRUE_POSITIVE,
    UNLABELLED_POINT,
    average_precision,
    classify_ground_truth,
    contingency_table,
    gt_box_per_point,
    instance_ap,
    instance_ap_from_labels,
    masks_from_labels,
    match_predictions,
    object_instances,
    overlap_assignment_accuracy,
    overlap_candidates,
    overlap_region_mask,
    precision_recall,
    resolve_gt_classes,
)
from pipeline.outputs.summary import conventions_by_scene, write_summary


def _mask(n: int, *ranges: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(n, bool)
    for start, stop in ranges:
        mask[start:stop] = True
    return mask


# ---------------------------------------------------------------------------------------------
# Instance AP: hand-computed cases


def test_perfect_prediction_scores_one():
    gt = np.repeat([0, 1, 2, 3, -1], 120)  # instance 3 is a wall, the last 120 points unlabelled
    labels = ["chair", "table", "lamp", "wall"]
    masks, ids = masks_from_labels(np.where(np.isin(gt, [0, 1, 2]), gt, -1))
    result = instance_ap(gt, labels, masks, [0.3, 0.9, 0.5])
    assert list(ids) == [0, 1, 2]
    assert (result.ap, result.ap50, result.ap25) == (1.0, 1.0, 1.0)
    assert (result.n_gt, result.n_pred) == (3, 3)


@pytest.mark.parametrize(
    ("n_inside", "thresholds", "expected_ap"),
    [
        (120, SCANNET_IOU_THRESHOLDS, 2 / 9),  # IoU exactly 0.6: '> 0.6' fails, so 0.5 and 0.55 pass
        (122, SCANNET_IOU_THRESHOLDS, 3 / 9),  # IoU 0.61: 0.5, 0.55, 0.6 pass out of 9 thresholds
        (122, IOU_THRESHOLDS_TO_095, 3 / 10),  # same, with 0.95 included
    ],
)
def test_single_gt_partial_prediction(n_inside, thresholds, expected_ap):
    gt = np.r_[np.zeros(200, int), -np.ones(100, int)]
    pred = _mask(300, (0, n_inside))  # inside the GT: IoU = n_inside / 200
    result = instance_ap(gt, ["chair"], [pred], [0.7], iou_thresholds=thresholds)
    assert result.ap == pytest.approx(expected_ap)
    assert result.ap50 == 1.0 and result.ap25 == 1.0


def test_false_positive_ranked_before_true_positive():
    # GT A = points 0-99, B = 100-199. P1 (0.9) straddles both (IoU 1/3 with each), P2 (0.8) = A.
    gt = np.repeat([0, 1], 100)
    p1 = _mask(200, (50, 150))
    p2 = _mask(200, (0, 100))
    result = instance_ap(gt, ["chair", "chair"], [p1, p2], [0.9, 0.8], min_region_size=10)
    # t >= 0.5: P1 is a FP at (recall 0, precision 0), then P2 gives (0.5, 0.5).
    # Trapezoids from (0, 1): 0 width, then 0.5 * (0 + 0.5) / 2 = 0.125.
    assert result.ap50 == pytest.approx(0.125)
    assert result.ap == pytest.approx(0.125)
    # t = 0.25: P1 takes A (TP, recall 0.5, precision 1), P2 is A's duplicate -> 0.5.
    assert result.ap25 == pytest.approx(0.5)
    # The VOC-style envelope would instead lift the precision at recall 0.5 to 0.5: area 0.25.
    monotone = instance_ap(gt, ["chair", "chair"], [p1, p2], [0.9, 0.8], min_region_size=10, integration="monotone")
    assert monotone.ap50 == pytest.approx(0.25)


def test_duplicate_prediction_is_false_positive_below_its_original():
    gt = np.repeat([0, 1], 100)
    a = _mask(200, (0, 100))
    b = _mask(200, (100, 200))
    masks, scores = [a, a, b], [0.9, 0.8, 0.7]
    result = instance_ap(gt, ["box", "box"], masks, scores)
    # PR points: (0.5, 1), (0.5, 0.5) for the duplicate, (1, 2/3). Trapezoids: 0.5 + 0.5*(0.5+2/3)/2.
    assert result.ap50 == pytest.approx(0.5 + 7 / 24)
    monotone = instance_ap(gt, ["box", "box"], masks, scores, integration="monotone")
    assert monotone.ap50 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)

    gt_info = classify_ground_truth(gt, ["box", "box"])
    pred, point = np.nonzero(np.asarray(masks))
    table = contingency_table(pred, point, 3, gt_info.point_column, gt_info.n_gt + 1)
    outcome = match_predictions(overlap_candidates(table, gt_info.gt_size), np.array(scores), 2, 0.5)
    assert list(outcome) == [TRUE_POSITIVE, FALSE_POSITIVE, TRUE_POSITIVE]
    # Whichever copy scores higher is the true positive.
    outcome = match_predictions(overlap_candidates(table, gt_info.gt_size), np.array([0.1, 0.8, 0.7]), 2, 0.5)
    assert list(outcome) == [FALSE_POSITIVE, TRUE_POSITIVE, TRUE_POSITIVE]


def test_predictions_on_void_ignored_class_and_tiny_gt_are_not_false_positives():
    # chair 0-99, wall 100-199, unlabelled 200-299, cup (tiny) 300-319
    gt = np.r_[np.zeros(100), np.ones(100), -np.ones(100), np.full(20, 2)].astype(int)
    labels = ["chair", "Wall", "cup"]
    n = len(gt)
    masks = [
        _mask(n, (0, 100)),  # the chair
        _mask(n, (100, 200)),  # the wall
        _mask(n, (200, 300)),  # unlabelled points
        _mask(n, (300, 320), (250, 290)),  # the cup and some unlabelled points
    ]
    result = instance_ap(gt, labels, masks, [0.5, 0.9, 0.95, 0.99], min_region_size=50)
    assert (result.ap, result.ap50, result.ap25) == (1.0, 1.0, 1.0)
    assert (result.n_gt, result.n_gt_too_small, result.n_pred) == (1, 1, 4)

    # Without ignored labels the wall is an instance: its mask becomes a TP, the others stay ignored.
    with_wall = instance_ap(gt, labels, masks, [0.5, 0.9, 0.95, 0.99], min_region_size=50, ignore_labels=())
    assert with_wall.n_gt == 2 and with_wall.ap50 == 1.0


def test_partly_void_prediction_is_false_positive_only_when_void_share_is_at_most_threshold():
    # chair 0-99, sofa 100-299, wall 300-399. The top-scored prediction has 40 wall + 60 sofa points:
    # IoU with the sofa 60/240 = 0.25 (matches nothing even at 0.25), void share 0.4.
    gt = np.r_[np.zeros(100), np.ones(200), np.full(100, 2)].astype(int)
    n = len(gt)
    half = _mask(n, (300, 340), (100, 160))
    chair = _mask(n, (0, 100))
    result = instance_ap(gt, ["chair", "sofa", "wall"], [half, chair], [0.9, 0.5])
    assert result.ap50 == pytest.approx(0.125)  # 0.4 <= 0.5: FP first, then the chair at recall 0.5
    assert result.ap25 == pytest.approx(0.5)  # 0.4 > 0.25: ignored; the chair alone gives recall 0.5


def test_tiny_gt_is_ignored_unless_min_region_size_allows_it():
    gt = np.r_[np.zeros(100), np.ones(30)].astype(int)
    chair = _mask(130, (0, 100))
    result = instance_ap(gt, ["chair", "mug"], [chair], [1.0], min_region_size=50)
    assert (result.ap, result.n_gt, result.n_gt_too_small) == (1.0, 1, 1)
    smaller = instance_ap(gt, ["chair", "mug"], [chair], [1.0], min_region_size=20)
    assert smaller.n_gt == 2 and smaller.ap == pytest.approx(0.5)  # the mug is now a miss


def test_no_predictions_and_no_ground_truth_and_empty_masks():
    gt = np.repeat([0, -1], 150)
    none = instance_ap(gt, ["chair"], np.zeros((0, 300), bool))
    assert (none.ap, none.ap50, none.ap25, none.n_pred) == (0.0, 0.0, 0.0, 0)
    none_from_labels = instance_ap_from_labels(gt, ["chair"], np.full(300, -1))
    assert none_from_labels.ap == 0.0

    no_gt = instance_ap(np.full(300, -1), [], [_mask(300, (0, 150))], [1.0])
    assert np.isnan(no_gt.ap) and np.isnan(no_gt.ap50) and no_gt.n_gt == 0
    assert no_gt.to_dict()["ap"] is None
    json.dumps(no_gt.to_dict(), allow_nan=False)  # JSON-ready

    with_empty = instance_ap(gt, ["chair"], [np.zeros(300, bool), _mask(300, (0, 150))], [0.99, 0.5], min_region_size=0)
    assert with_empty.ap == 1.0 and with_empty.n_pred == 1 and with_empty.n_pred_dropped == 1

    small_pred = instance_ap(gt, ["chair"], [_mask(300, (0, 99))], [1.0])  # below the 100-point minimum
    assert small_pred.ap == 0.0 and small_pred.n_pred_dropped == 1


def test_precision_recall_groups_equal_scores():
    precision, recall = precision_recall(np.array([0.9, 0.5, 0.5, 0.1]), np.array([True, False, True, False]), 4)
    np.testing.assert_allclose(precision, [1.0, 2 / 3, 2 / 4])
    np.testing.assert_allclose(recall, [0.25, 0.5, 0.5])
    assert average_precision(np.array([]), np.array([])) == 0.0


def test_labels_and_masks_give_the_same_result():
    rng = np.random.default_rng(3)
    gt = rng.integers(-1, 6, 2000)
    pred_ids = np.where(rng.random(2000) < 0.8, gt, rng.integers(-1, 9, 2000))
    score = rng.random(9)
    masks, ids = masks_from_labels(pred_ids)
    labels = ["chair", "wall", "table", "desk", "floor", "bed"]
    a = instance_ap(gt, labels, masks, score[ids])
    b = instance_ap_from_labels(gt, labels, pred_ids, score)
    assert a.to_dict() == b.to_dict()


def test_bad_inputs_raise():
    gt = np.zeros(10, int)
    with pytest.raises(ValueError, match="shape"):
        instance_ap(gt, ["a"], np.zeros((2, 9), bool))
    with pytest.raises(ValueError, match="one score per prediction"):
        instance_ap(gt, ["a"], np.ones((2, 10), bool), [1.0])
    with pytest.raises(ValueError, match="gt_instance values"):
        instance_ap(np.full(10, 3), ["a"], np.ones((1, 10), bool))
    with pytest.raises(ValueError, match="has no score"):
        instance_ap_from_labels(gt, ["a"], np.full(10, 4), [1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# Instance AP: properties and agreement with the benchmark script's own formulation


def _random_scene(rng, n_points=800, n_gt=8, n_pred=14):
    """Segments of a line as GT (instance 0 a wall, some unlabelled gaps); predictions are GT
    segments with shifted ends (so IoU spreads over all thresholds, duplicates included) or
    random spans, all with a little noise."""
    gt = np.full(n_points, -1)
    cuts = np.sort(rng.choice(np.arange(1, n_points), 2 * n_gt, replace=False)).reshape(n_gt, 2)
    cuts[:, 1] = np.maximum(cuts[:, 1], cuts[:, 0] + 1)
    for g, (start, stop) in enumerate(cuts):
        gt[start:stop] = g
    labels = ["wall" if g == 0 else "object" for g in range(n_gt)]
    masks = np.zeros((n_pred, n_points), bool)
    for p in range(n_pred):
        if rng.random() < 0.7:
            start, stop = cuts[rng.integers(n_gt)] + rng.integers(-25, 26, 2)
        else:
            start = rng.integers(0, n_points - 10)
            stop = start + rng.integers(5, 200)
        masks[p, max(start, 0) : max(stop, 0)] = True
        masks[p] ^= rng.random(n_points) < 0.01
    scores = rng.permutation(n_pred) / n_pred + 0.01  # distinct
    return gt, labels, masks, scores


def _benchmark_ap_by_gt_loop(gt, labels, masks, scores, threshold, min_region_size):
    """The script's loops re-stated: GT-major greedy matching, then unmatched predictions, then the
    recall convolution. Only valid for thresholds >= 0.5, where the two matchings coincide."""
    is_object = np.array([label not in ("wall", "floor", "ceiling") for label in labels])
    void = (gt < 0) | ~is_object[np.maximum(gt, 0)]
    kept = [p for p in range(len(masks)) if masks[p].sum() >= min_region_size]
    gts = [g for g in range(len(labels)) if is_object[g] and (gt == g).sum() >= min_region_size]
    small = [g for g in range(len(labels)) if is_object[g] and 0 < (gt == g).sum() < min_region_size]

    def iou(p, g):
        inter = np.sum(masks[p] & (gt == g))
        return inter / (masks[p].sum() + (gt == g).sum() - inter)

    true, score, misses = [], [], 0
    for g in gts:
        hits = [scores[p] for p in kept if iou(p, g) > threshold]
        if not hits:
            misses += 1
            continue
        hits.sort(reverse=True)
        true += [1] + [0] * (len(hits) - 1)
        score += hits
    for p in kept:
        if any(iou(p, g) > threshold for g in gts):
            continue
        ignored = np.sum(masks[p] & void) + sum(np.sum(masks[p] & (gt == g)) for g in small)
        if ignored / masks[p].sum() <= threshold:
            true.append(0)
            score.append(scores[p])
    if not gts:
        return float("nan")
    if not true:
        return 0.0
    order = np.argsort(score)
    true, score = np.array(true)[order], np.array(score)[order]
    precision, recall = [], []
    for s in np.unique(score):
        above = score >= s
        tp = true[above].sum()
        precision.append(tp / above.sum())
        recall.append(tp / (true.sum() + misses))
    precision, recall = np.array(precision + [1.0]), np.array(recall + [0.0])
    widths = np.convolve(np.r_[recall[0], recall, 0.0], [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_benchmark_formulation(seed):
    rng = np.random.default_rng(seed)
    gt, labels, masks, scores = _random_scene(rng)
    result = instance_ap(gt, labels, masks, scores, min_region_size=20)
    for threshold in SCANNET_IOU_THRESHOLDS:
        expected = _benchmark_ap_by_gt_loop(gt, labels, masks, scores, threshold, 20)
        assert result.ap_per_threshold[threshold] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_properties_bounds_and_permutation_invariance(seed):
    rng = np.random.default_rng(100 + seed)
    gt, labels, masks, scores = _random_scene(rng)
    base = instance_ap(gt, labels, masks, scores, min_region_size=20)
    values = list(base.ap_per_threshold.values())
    assert all(0.0 <= v <= 1.0 for v in values)
    assert base.ap == pytest.approx(np.mean([base.ap_per_threshold[t] for t in SCANNET_IOU_THRESHOLDS]))

    point_order = rng.permutation(len(gt))
    shuffled_points = instance_ap(gt[point_order], labels, masks[:, point_order], scores, min_region_size=20)
    assert shuffled_points.to_dict() == base.to_dict()

    pred_order = rng.permutation(len(masks))
    shuffled_preds = instance_ap(gt, labels, masks[pred_order], scores[pred_order], min_region_size=20)
    assert shuffled_preds.ap_per_threshold == pytest.approx(base.ap_per_threshold)


# ---------------------------------------------------------------------------------------------
# Overlap-region accuracy


def test_gt_box_per_point():
    gt_instance = np.array([0, 0, 1, 2, -1])
    box_instance = np.array([2, 0, -1, 0])  # instance 0 has boxes 1 and 3: the lowest index wins
    assert list(gt_box_per_point(gt_instance, box_instance)) == [1, 1, NO_BOX, 0, UNLABELLED_POINT]


def test_overlap_region_mask():
    box_min = np.array([[0.0, 0, 0], [1, 0, 0]])
    box_max = np.array([[2.0, 1, 1], [3, 1, 1]])
    points = np.array([[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [2.0, 1.0, 1.0], [2.5, 0.5, 0.5], [5, 5, 5]])
    assert list(overlap_region_mask(points, box_min, box_max, chunk=2)) == [False, True, True, False, False]


def test_overlap_assignment_accuracy_hand_case():
    # Overlap points: box 0 owns 2 (both right), box 1 owns 6 (3 right), one background point
    # predicted as background (right), one unlabelled point (not judged). Outside the overlap
    # everything is wrong, which must not matter.
    gt_box = np.array([0, 0, 1, 1, 1, 1, 1, 1, NO_BOX, UNLABELLED_POINT, 0, 1])
    pred_box = np.array([0, 0, 1, 1, 1, 0, 2, -1, -1, 1, 1, 0])
    overlap = np.r_[np.ones(10, bool), False, False]
    result = overlap_assignment_accuracy(pred_box, gt_box, overlap)
    assert result.point_accuracy == pytest.approx(6 / 9)
    assert result.mean_instance_accuracy == pytest.approx((1.0 + 0.5) / 2)
    assert (result.n_points, result.n_instances) == (9, 2)

    nothing = overlap_assignment_accuracy(pred_box, gt_box, np.zeros(12, bool))
    assert np.isnan(nothing.point_accuracy) and nothing.to_dict()["mean_instance_accuracy"] is None


# ---------------------------------------------------------------------------------------------
# Command line


def _write_scene(path, with_gt=True, nyu40=None):
    # Three objects of 120 points in a row along x, a wall of 120 points; two boxes overlap
    # on the points of x in [1.0, 1.2].
    x = np.linspace(0, 3.99, 480)
    vertices = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1).astype(np.float32)
    arrays = {"vertices": vertices}
    if with_gt:
        arrays["gt"] = {
            "instance": np.repeat([0, 1, 2, 3], 120).astype(np.int32),
            "instance_label": np.array(["chair", "table", "lamp", "wall"]),
        }
        if nyu40 is not None:
            arrays["gt"]["instance_nyu40"] = np.asarray(nyu40, np.int32)
        arrays["boxes"] = {
            "min": np.array([[0.0, -1, -1], [0.8, -1, -1]]),
            "max": np.array([[1.2, 1, 1], [2.0, 1, 1]]),
            "label": np.array(["chair", "table"]),
            "instance": np.array([0, 1], np.int32),
        }
    write_artifact(path, "scene", arrays, attrs={"scene_name": "tiny", "kind": "points"})
    return vertices


def test_cli_writes_metrics(tmp_path, capsys):
    vertices = _write_scene(tmp_path / "scene.h5")
    point_instance = np.repeat([5, 1, -1, 2], 120).astype(np.int32)  # chair, table right; lamp missed
    instance_score = np.array([0, 0.4, 0.9, 0, 0, 0.8], np.float32)  # id 2 (on the wall) is ignored
    in_first = vertices[:, 0] <= 1.2
    point_box = np.where(in_first, 0, 1).astype(np.int32)  # overlap points all given to box 0
    write_artifact(
        tmp_path / "pred.h5", "pseudo_labels",
        {"point_instance": point_instance, "instance_score": instance_score, "point_box": point_box},
    )
    out = tmp_path / "metrics.json"
    rc = main(["evaluate", str(tmp_path / "scene.h5"), str(tmp_path / "pred.h5"), "--out", str(out)])
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert metrics["pred_stage"] == "pseudo_labels" and metrics["scene"] == "tiny"
    assert (metrics["n_gt"], metrics["n_pred"]) == (3, 3)
    # Two TPs out of 3 GT and no counted FP: PR points (1/3, 1), (2/3, 1) -> AP 2/3 at every threshold.
    assert metrics["ap"] == pytest.approx(2 / 3) and metrics["ap50"] == pytest.approx(2 / 3)
    overlap_points = (vertices[:, 0] >= 0.8) & in_first
    first_box_share = np.sum(overlap_points[:120]) / np.sum(overlap_points)
    assert metrics["overlap"]["point_accuracy"] == pytest.approx(first_box_share)
    assert metrics["overlap"]["mean_instance_accuracy"] == pytest.approx(0.5)  # box 0: all right, box 1: none
    assert "AP 0.667" in capsys.readouterr().out


def test_cli_errors_name_the_file(tmp_path, capsys):
    _write_scene(tmp_path / "scene.h5")
    write_artifact(tmp_path / "bad.h5", "lifted", {"something_else": np.zeros(480, np.int32)})
    assert main(["evaluate", str(tmp_path / "scene.h5"), str(tmp_path / "bad.h5")]) == 2
    err = capsys.readouterr().err
    assert "bad.h5" in err and "point_instance" in err

    write_artifact(tmp_path / "short.h5", "ncut", {"point_instance": np.zeros(10, np.int32)})
    assert main(["evaluate", str(tmp_path / "scene.h5"), str(tmp_path / "short.h5")]) == 2
    assert "short.h5" in capsys.readouterr().err

    _write_scene(tmp_path / "nogt.h5", with_gt=False)
    assert main(["evaluate", str(tmp_path / "nogt.h5"), str(tmp_path / "bad.h5")]) == 2
    err = capsys.readouterr().err
    assert "nogt.h5" in err and "ground truth" in err


# ---------------------------------------------------------------------------------------------
# Ground-truth class convention (gt_classes)


def test_object_instances_under_each_convention():
    labels = ["chair", "lamp", "table", "wall", "mystery"]
    nyu40 = [5, 35, 7, 1, -1]  # lamp is NYU40 but not one of the 18; mystery has no class
    assert object_instances(labels, nyu40, "all_objects").tolist() == [True, True, True, False, True]
    assert object_instances(labels, nyu40, "scannet18").tolist() == [True, False, True, False, False]
    assert object_instances(labels, nyu40, "auto").tolist() == [True, False, True, False, False]
    # ignore_labels still voids on top of the 18 classes
    assert object_instances(labels, nyu40, "scannet18", ignore_labels=["Chair"]).tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="needs the NYU40 id"):
        object_instances(labels, None, "scannet18")
    with pytest.raises(ValueError, match="gt_nyu40 has 2 entries but there are 5 GT labels"):
        object_instances(labels, [5, 7], "scannet18")


def test_auto_resolves_to_scannet18_only_when_the_gt_has_nyu40_ids():
    assert resolve_gt_classes("auto", None) == "all_objects"
    assert resolve_gt_classes("auto", np.array([-1, -1])) == "all_objects"
    assert resolve_gt_classes("auto", np.zeros(0, np.int32)) == "all_objects"
    assert resolve_gt_classes("auto", np.array([-1, 5])) == "scannet18"
    assert resolve_gt_classes("all_objects", np.array([5])) == "all_objects"
    assert resolve_gt_classes("scannet18", None) == "scannet18"
    with pytest.raises(ValueError, match="gt_classes must be one of"):
        resolve_gt_classes("nyu40", None)


def test_scannet18_and_all_objects_differ_on_a_hand_computed_case():
    # chair, lamp (NYU40 35, not one of the 18), table, wall: 120 points each
    gt_instance = np.repeat([0, 1, 2, 3], 120)
    labels, nyu40 = ["chair", "lamp", "table", "wall"], [5, 35, 7, 1]
    pred = np.repeat([0, 1, -1, -1], 120)  # chair (score 0.9) and lamp (0.8) exact, table missed
    scores = [0.9, 0.8]
    everything = instance_ap_from_labels(gt_instance, labels, pred, scores, gt_nyu40=nyu40, gt_classes="all_objects")
    # 3 GT; two TPs: PR points (1, 1/3), (1, 2/3) -> AP 2/3 at every threshold
    assert everything.n_gt == 3 and everything.ap == pytest.approx(2 / 3) and everything.ap25 == pytest.approx(2 / 3)
    benchmark = instance_ap_from_labels(gt_instance, labels, pred, scores, gt_nyu40=nyu40, gt_classes="scannet18")
    # 2 GT (chair, table); the lamp prediction lies on void points only, so it is ignored, not a FP:
    # one PR point (1, 1/2) -> AP 1/2
    assert benchmark.n_gt == 2 and benchmark.ap == pytest.approx(0.5) and benchmark.ap50 == pytest.approx(0.5)
    auto = instance_ap_from_labels(gt_instance, labels, pred, scores, gt_nyu40=nyu40)
    assert auto.ap == benchmark.ap and auto.n_gt == 2
    # without NYU40 ids the default stays today's rule
    assert instance_ap_from_labels(gt_instance, labels, pred, scores).n_gt == 3
    masks = np.stack([pred == 0, pred == 1])
    assert instance_ap(gt_instance, labels, masks, scores, gt_nyu40=nyu40).ap == pytest.approx(0.5)


def test_cli_gt_classes_and_the_metrics_say_which_convention_scored(tmp_path, capsys):
    _write_scene(tmp_path / "scene.h5", nyu40=[5, 7, 35, 1])
    write_artifact(tmp_path / "pred.h5", "pseudo_labels", {
        "point_instance": np.repeat([5, 1, -1, 2], 120).astype(np.int32),  # chair, table right; lamp missed
        "instance_score": np.array([0, 0.4, 0.9, 0, 0, 0.8], np.float32),
    })
    out = tmp_path / "auto.json"
    assert main(["evaluate", str(tmp_path / "scene.h5"), str(tmp_path / "pred.h5"), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert (metrics["gt_classes"], metrics["gt_classes_requested"], metrics["params"]["gt_classes"]) == ("scannet18", "auto", "auto")
    assert metrics["n_gt"] == 2 and metrics["ap"] == pytest.approx(1.0)  # the missed lamp is void
    assert "gt classes scannet18" in capsys.readouterr().out
    everything = tmp_path / "all.json"
    args = ["evaluate", str(tmp_path / "scene.h5"), str(tmp_path / "pred.h5"), "--gt-classes", "all_objects", "--out", str(everything)]
    assert main(args) == 0
    metrics = json.loads(everything.read_text())
    assert metrics["gt_classes"] == "all_objects" and metrics["n_gt"] == 3 and metrics["ap"] == pytest.approx(2 / 3)

    # the summary table shows the convention of every row
    rows, _ = write_summary([out, everything], [], tmp_path / "s.tsv", tmp_path / "s.md")
    assert [row["gt_classes"] for row in rows] == ["all_objects", "scannet18"]  # rows sorted by file
    markdown = (tmp_path / "s.md").read_text()
    assert "| 1.000 | 1.000 | 1.000 | 3 | 2 | - | - | - | scannet18 |" in markdown and "gt_classes: scannet18 =" in markdown
    assert (tmp_path / "s.tsv").read_text().splitlines()[0].endswith("\tgt_classes\tnotes")
    assert conventions_by_scene(rows) == {"tiny": "all_objects/scannet18"}


def test_scene_without_nyu40_ids_scores_all_objects_and_refuses_scannet18(tmp_path, capsys):
    _write_scene(tmp_path / "old.h5")  # ingested before NYU40 ids were stored
    write_artifact(tmp_path / "pred.h5", "ncut", {"point_instance": np.repeat([0, 1, 2, 3], 120).astype(np.int32)})
    metrics = run_evaluate(tmp_path / "old.h5", tmp_path / "pred.h5")
    assert metrics["gt_classes"] == "all_objects" and metrics["n_gt"] == 3
    assert main(["evaluate", str(tmp_path / "old.h5"), str(tmp_path / "pred.h5"), "--gt-classes", "scannet18"]) == 2
    err = capsys.readouterr().err
    assert "old.h5" in err and "gt/instance_nyu40" in err


SCENE0000 = Path(__file__).resolve().parents[3] / "shared" / "data" / "scene0000_00"


def test_scene0000_00_ground_truth_as_prediction_under_both_conventions(tmp_path):
    if not SCENE0000.is_dir():
        pytest.skip(f"real labelled scan not found at {SCENE0000} (only present beside the repo in CI)")
    scene_h5 = run_ingest(SCENE0000, tmp_path / "scene.h5")
    gt_instance = read_artifact(scene_h5, "scene")["gt/instance"]
    write_artifact(tmp_path / "pred.h5", "ncut", {"point_instance": gt_instance.astype(np.int32)})
    benchmark = run_evaluate(scene_h5, tmp_path / "pred.h5")
    # 27 instances of the 18 classes; the other GT-as-prediction masks lie on void points: ignored
    assert benchmark["gt_classes"] == "scannet18" and benchmark["n_gt"] == 27 and benchmark["ap"] == pytest.approx(1.0)
    everything = run_evaluate(scene_h5, tmp_path / "pred.h5", gt_classes="all_objects")
    # 67 instances, 11 of them wall / floor / ceiling, 4 other objects below 100 points
    assert everything["n_gt"] == 52 and everything["n_gt_too_small"] == 4 and everything["ap"] == pytest.approx(1.0)
