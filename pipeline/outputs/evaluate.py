"""Evaluation of instance pseudo-labels against ground truth (pure functions, no file I/O).

Class-agnostic instance AP, ScanNet 3D instance benchmark rules
----------------------------------------------------------------
The rules of ScanNet's instance evaluation script (``BenchmarkScripts/3d_evaluation/
evaluate_semantic_instance.py``) with all object classes merged into one class; this is our own
implementation, checked against a direct re-statement of the script's loops in the tests.

Ground truth
    ``gt_instance`` (N,) gives each point an index into ``gt_labels`` (-1 = unlabelled). Which
    instances are objects depends on the class convention ``gt_classes``:

    - ``all_objects``: every instance whose label is not in ``ignore_labels`` (compared
      case-insensitively; default wall, floor, ceiling: structural classes are not objects).
    - ``scannet18``: the benchmark's rule: only instances whose NYU40 id (``gt_nyu40``) is one of
      the 18 classes of ``pipeline.io.nyu40.SCANNET18_IDS``; unknown classes (-1) are not objects
      either. ``ignore_labels`` still applies on top.
    - ``auto``: ``scannet18`` when the GT carries NYU40 ids (``gt_nyu40`` given and not all -1),
      else ``all_objects``.

    Instances that are not objects are not instances: their points are *void*, like unlabelled
    points. An object instance with fewer than ``min_region_size`` points (default 100,
    the benchmark's value) is *too small*: it can be neither matched nor missed. The others are the
    *evaluated* GT instances (``n_gt``).

Predictions
    Each prediction is a set of points with a confidence score. As in the benchmark, predictions with
    fewer than ``min_pred_size`` points (default: ``min_region_size``) are dropped before matching;
    empty masks are always dropped. The others are counted in ``n_pred``.

Overlap
    IoU = |P & G| / |P | G| in points. A prediction *matches* a GT at threshold t only if IoU > t,
    strictly (as in the benchmark): IoU exactly 0.6 passes 0.5 and 0.55 but not 0.6.

Matching at threshold t
    Predictions are visited in decreasing score (ties in input order). A prediction that matches an
    evaluated GT not yet taken is a true positive and takes it (the one of highest IoU if several).
    A prediction all of whose matching GT are taken is a false positive (a duplicate). A prediction
    that matches no evaluated GT is a false positive only if the fraction of its points that are
    void or in too-small GT is <= t; otherwise it is ignored (neither TP nor FP). Evaluated GT left
    untaken are false negatives. For t >= 0.5 a prediction can match at most one GT (two disjoint
    GT cannot both have IoU > 0.5 with it) and this is exactly the benchmark's matching: each GT
    keeps the highest-scored matching prediction, the lower-scored ones become FP. Below 0.5 (AP25)
    the script walks GT in file order and predictions in file order; we keep the score order, which
    differs only when one prediction overlaps several GT with IoU > t.

Precision, recall, AP
    At each distinct score s, over the predictions scored >= s: precision = TP / (TP + FP) and
    recall = TP / n_gt. AP is the area under these points taken in increasing recall, starting from
    an artificial point (recall 0, precision 1), by the trapezoidal rule: this is what the script's
    convolution of the recall with [-0.5, 0, 0.5] followed by a dot product with the precision
    computes, without any monotone envelope (``integration="trapezoid"``, default).
    ``integration="monotone"`` gives the VOC/COCO-style alternative instead: each precision replaced
    by the highest precision at any higher recall, area of the recall steps under it. Its numbers
    are not comparable with published ScanNet numbers.

Summaries
    ``ap`` is the mean AP over ``iou_thresholds``; the default is the benchmark's
    ``arange(0.5, 0.95, 0.05)``, which stops at 0.90 (9 thresholds; the published "AP 0.5:0.95" uses
    these). ``IOU_THRESHOLDS_TO_095`` adds 0.95 (10 thresholds, COCO style). ``ap50`` and ``ap25``
    are the AP at 0.5 and 0.25.

Edge cases
    No evaluated GT instance: every AP is NaN (undefined, as in the benchmark). GT but no prediction,
    or only ignored predictions: AP 0.

Overlap-region assignment accuracy (box supervision)
----------------------------------------------------
Points inside two or more boxes are the ambiguous ones a box-supervised method must assign.
``gt_box_per_point`` turns GT instances into the box each point belongs to (``NO_BOX`` when its
instance has no box, e.g. a wall point: the right answer there is background, -1;
``UNLABELLED_POINT`` when the point has no GT, so it cannot be judged). ``overlap_assignment_accuracy``
reports, over judged overlap points, the point accuracy and the mean over GT boxes (that own overlap
points) of each box's accuracy on its own overlap points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np

from pipeline.scene.geometry import points_in_boxes
from pipeline.io.nyu40 import SCANNET18_IDS

DEFAULT_IGNORE_LABELS: tuple[str, ...] = ("wall", "floor", "ceiling")
MIN_REGION_SIZE = 100  # points; the ScanNet benchmark's minimum GT (and prediction) size
# The benchmark's np.arange(0.5, 0.95, 0.05): 0.50 ... 0.90 (the end 0.95 is excluded).
SCANNET_IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
IOU_THRESHOLDS_TO_095: tuple[float, ...] = SCANNET_IOU_THRESHOLDS + (0.95,)

Integration = Literal["trapezoid", "monotone"]
GtClasses = Literal["auto", "scannet18", "all_objects"]
GT_CLASSES: tuple[str, ...] = ("auto", "scannet18", "all_objects")

# Outcomes of one prediction at one threshold.
TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1

# Per-point GT box codes besides box indices.
NO_BOX = -1  # the point's GT instance has no box: the right prediction is background (-1)
UNLABELLED_POINT = -2  # no GT instance: the point is not judged


# ----------------------------------------------------------------------------------------------
# Prediction sets in sparse form: one (prediction, point) entry per membership.


def masks_from_labels(point_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (K, N) of the non-negative ids in a per-point id array, and those ids (K,)."""
    point_ids = np.asarray(point_ids)
    ids = np.unique(point_ids[point_ids >= 0])
    return point_ids[None, :] == ids[:, None], ids


def _membership_from_masks(
    masks: np.ndarray | Sequence[np.ndarray], n_points: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(prediction of entry, point of entry, number of predictions) from boolean masks."""
    masks = np.asarray(masks)
    if masks.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), int(masks.shape[0]) if masks.ndim == 2 else 0
    if masks.ndim != 2 or masks.shape[1] != n_points:
        raise ValueError(f"predicted masks must have shape (K, {n_points}), got {masks.shape}")
    if masks.dtype != bool:
        raise ValueError(f"predicted masks must be boolean, got dtype {masks.dtype}")
    pred, point = np.nonzero(masks)
    return pred.astype(np.int64), point.astype(np.int64), masks.shape[0]


def _membership_from_labels(point_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction of entry, point of entry, instance id of each prediction) from per-point ids."""
    point_ids = np.asarray(point_ids)
    if point_ids.ndim != 1 or point_ids.dtype.kind not in "iu":
        raise ValueError(
            f"per-point predicted ids must be a 1-D integer array, got {point_ids.dtype} {point_ids.shape}"
        )
    point = np.flatnonzero(point_ids >= 0)
    ids, pred = np.unique(point_ids[point], return_inverse=True)
    return pred.astype(np.int64), point.astype(np.int64), ids


# ----------------------------------------------------------------------------------------------
# Ground truth classification and the prediction x GT contingency table.


@dataclass(frozen=True)
class GroundTruth:
    """Points sorted into evaluated GT instances (columns 0..n_gt-1) and one void column (n_gt)."""

    point_column: np.ndarray  # (N,) int64 in [0, n_gt]; n_gt = void, ignored class or too small
    gt_size: np.ndarray  # (n_gt,) points per evaluated GT instance
    gt_ids: np.ndarray  # (n_gt,) original instance index of each evaluated GT
    n_too_small: int  # object instances below min_region_size (with at least one point)

    @property
    def n_gt(self) -> int:
        return len(self.gt_ids)


def resolve_gt_classes(gt_classes: str, gt_nyu40: np.ndarray | Sequence[int] | None) -> str:
    """The convention ``gt_classes`` stands for: ``auto`` becomes scannet18 when the GT carries NYU40 ids."""
    if gt_classes not in GT_CLASSES:
        raise ValueError(f"gt_classes must be one of {list(GT_CLASSES)}, got {gt_classes!r}")
    if gt_classes != "auto":
        return gt_classes
    has_ids = gt_nyu40 is not None and bool(np.any(np.asarray(gt_nyu40) >= 0))
    return "scannet18" if has_ids else "all_objects"


def object_instances(
    gt_labels: Sequence[str] | np.ndarray,
    gt_nyu40: np.ndarray | Sequence[int] | None = None,
    gt_classes: GtClasses | str = "auto",
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
) -> np.ndarray:
    """(K,) bool: which GT instances are objects under ``gt_classes`` (see the module docstring)."""
    labels = [str(label).strip().lower() for label in np.asarray(gt_labels, dtype=object).ravel()]
    ignored = {label.strip().lower() for label in ignore_labels}
    is_object = np.array([label not in ignored for label in labels], dtype=bool)
    if resolve_gt_classes(gt_classes, gt_nyu40) == "all_objects":
        return is_object
    if gt_nyu40 is None:
        raise ValueError("gt_classes 'scannet18' needs the NYU40 id of every GT instance (gt_nyu40)")
    gt_nyu40 = np.asarray(gt_nyu40).ravel()
    if gt_nyu40.shape != is_object.shape:
        raise ValueError(f"gt_nyu40 has {gt_nyu40.size} entries but there are {is_object.size} GT labels")
    return is_object & np.isin(gt_nyu40, SCANNET18_IDS)


def classify_ground_truth(
    gt_instance: np.ndarray,
    gt_labels: Sequence[str] | np.ndarray,
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
    min_region_size: int = MIN_REGION_SIZE,
    is_object: np.ndarray | None = None,
) -> GroundTruth:
    """Decide which GT instances are evaluated and map every other point to the void column.

    ``is_object`` (K,) bool, from ``object_instances``, replaces the ``ignore_labels`` rule.
    """
    gt_instance = np.asarray(gt_instance)
    if gt_instance.ndim != 1 or gt_instance.dtype.kind not in "iu":
        raise ValueError(f"gt_instance must be a 1-D integer array, got {gt_instance.dtype} {gt_instance.shape}")
    n_instances = len(np.asarray(gt_labels, dtype=object).ravel())
    if gt_instance.size and (gt_instance.min() < -1 or gt_instance.max() >= n_instances):
        raise ValueError(
            f"gt_instance values must lie in [-1, {n_instances}) (one label per instance), "
            f"got range [{gt_instance.min()}, {gt_instance.max()}]"
        )
    if is_object is None:
        is_object = object_instances(gt_labels, gt_classes="all_objects", ignore_labels=ignore_labels)
    is_object = np.asarray(is_object, bool)
    if is_object.shape != (n_instances,):
        raise ValueError(f"is_object must have one entry per GT instance ({n_instances}), got {is_object.shape}")
    size = np.bincount(gt_instance[gt_instance >= 0], minlength=n_instances)
    evaluated = is_object & (size >= max(min_region_size, 1))
    gt_ids = np.flatnonzero(evaluated)
    column_of_instance = np.full(n_instances + 1, len(gt_ids), np.int64)  # last slot: id -1
    column_of_instance[gt_ids] = np.arange(len(gt_ids))
    return GroundTruth(
        point_column=column_of_instance[gt_instance],  # -1 indexes the void slot at the end
        gt_size=size[gt_ids].astype(np.int64),
        gt_ids=gt_ids,
        n_too_small=int(np.count_nonzero(is_object & (size > 0) & ~evaluated)),
    )


def contingency_table(
    pred_of_entry: np.ndarray, point_of_entry: np.ndarray, n_pred: int, point_column: np.ndarray, n_columns: int
) -> np.ndarray:
    """(n_pred, n_columns) counts of each prediction's points in each GT column, in one bincount."""
    flat = pred_of_entry * n_columns + point_column[point_of_entry]
    return np.bincount(flat, minlength=n_pred * n_columns).reshape(n_pred, n_columns)


# ----------------------------------------------------------------------------------------------
# Matching, precision/recall and AP.


@dataclass(frozen=True)
class Candidates:
    """For each prediction, the evaluated GT it overlaps, sorted by decreasing IoU."""

    gt: list[np.ndarray]
    iou: list[np.ndarray]
    ignored_fraction: np.ndarray  # (P,) share of the prediction's points that are void or too-small GT


def overlap_candidates(table: np.ndarray, gt_size: np.ndarray) -> Candidates:
    """IoU of every overlapping (prediction, GT) pair from a contingency table with a void column."""
    intersection = table[:, :-1]
    pred_size = table.sum(axis=1)
    gt_lists, iou_lists = [], []
    for p in range(table.shape[0]):
        gt = np.flatnonzero(intersection[p])
        inter = intersection[p, gt]
        iou = inter / (pred_size[p] + gt_size[gt] - inter)
        order = np.argsort(-iou, kind="stable")
        gt_lists.append(gt[order])
        iou_lists.append(iou[order])
    ignored_fraction = table[:, -1] / np.maximum(pred_size, 1)
    return Candidates(gt_lists, iou_lists, ignored_fraction)


def match_predictions(candidates: Candidates, scores: np.ndarray, n_gt: int, threshold: float) -> np.ndarray:
    """Outcome of each prediction at one IoU threshold (TRUE_POSITIVE, FALSE_POSITIVE or IGNORED)."""
    taken = np.zeros(n_gt, dtype=bool)
    outcome = np.full(len(scores), IGNORED, np.int8)
    for p in np.argsort(-np.asarray(scores), kind="stable"):
        matching = candidates.gt[p][candidates.iou[p] > threshold]
        if matching.size == 0:
            if candidates.ignored_fraction[p] <= threshold:
                outcome[p] = FALSE_POSITIVE
            continue
        free = matching[~taken[matching]]
        if free.size:
            taken[free[0]] = True  # candidates are sorted by IoU: the best free GT
            outcome[p] = TRUE_POSITIVE
        else:
            outcome[p] = FALSE_POSITIVE  # every GT it matches is already taken: a duplicate
    return outcome


def precision_recall(scores: np.ndarray, is_true_positive: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score, from the highest score down."""
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    true_so_far = np.cumsum(np.asarray(is_true_positive, bool)[order])
    # The last entry of each run of equal scores closes that score's operating point.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    return true_so_far[ends] / (ends + 1), true_so_far[ends] / n_gt


def average_precision(precision: np.ndarray, recall: np.ndarray, integration: Integration = "trapezoid") -> float:
    """Area under a PR curve given in increasing recall, from the artificial point (0, 1)."""
    recall = np.r_[0.0, recall]
    precision = np.r_[1.0, precision]
    widths = np.diff(recall)
    if integration == "trapezoid":
        return float(np.sum(widths * 0.5 * (precision[1:] + precision[:-1])))
    if integration == "monotone":
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        return float(np.sum(widths * envelope[1:]))
    raise ValueError(f"integration must be 'trapezoid' or 'monotone', got {integration!r}")


# ----------------------------------------------------------------------------------------------
# Public entry points.


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class InstanceAP:
    """Class-agnostic instance AP of one scene (see the module docstring for the rules)."""

    ap: float  # mean over iou_thresholds
    ap50: float
    ap25: float
    ap_per_threshold: dict[float, float] = field(repr=False)
    n_gt: int  # evaluated GT instances
    n_pred: int  # predictions kept (non-empty, at least min_pred_size points)
    n_gt_too_small: int
    n_pred_dropped: int  # predictions below min_pred_size (empty ones included)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict; NaN (no evaluated GT) becomes None."""
        return {
            "ap": _nan_to_none(self.ap),
            "ap50": _nan_to_none(self.ap50),
            "ap25": _nan_to_none(self.ap25),
            "ap_per_threshold": {f"{t:.2f}": _nan_to_none(v) for t, v in sorted(self.ap_per_threshold.items())},
            "n_gt": self.n_gt,
            "n_pred": self.n_pred,
            "n_gt_too_small": self.n_gt_too_small,
            "n_pred_dropped": self.n_pred_dropped,
        }


def _instance_ap_from_membership(
    gt: GroundTruth,
    pred_of_entry: np.ndarray,
    point_of_entry: np.ndarray,
    n_pred: int,
    scores: np.ndarray,
    min_pred_size: int,
    iou_thresholds: Sequence[float],
    integration: Integration,
) -> InstanceAP:
    scores = np.asarray(scores, np.float64).ravel()
    if scores.shape != (n_pred,):
        raise ValueError(f"need one score per prediction ({n_pred}), got {scores.shape[0]}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("prediction scores must be finite")
    table = contingency_table(pred_of_entry, point_of_entry, n_pred, gt.point_column, gt.n_gt + 1)
    kept = table.sum(axis=1) >= max(min_pred_size, 1)
    table, scores = table[kept], scores[kept]
    candidates = overlap_candidates(table, gt.gt_size)

    thresholds = sorted({round(float(t), 6) for t in (*iou_thresholds, 0.5, 0.25)})
    per_threshold: dict[float, float] = {}
    for threshold in thresholds:
        if gt.n_gt == 0:
            per_threshold[threshold] = float("nan")
            continue
        outcome = match_predictions(candidates, scores, gt.n_gt, threshold)
        counted = outcome != IGNORED
        precision, recall = precision_recall(scores[counted], outcome[counted] == TRUE_POSITIVE, gt.n_gt)
        per_threshold[threshold] = average_precision(precision, recall, integration)
    mean_thresholds = [round(float(t), 6) for t in iou_thresholds]
    return InstanceAP(
        ap=float(np.mean([per_threshold[t] for t in mean_thresholds])),
        ap50=per_threshold[0.5],
        ap25=per_threshold[0.25],
        ap_per_threshold=per_threshold,
        n_gt=gt.n_gt,
        n_pred=int(np.count_nonzero(kept)),
        n_gt_too_small=gt.n_too_small,
        n_pred_dropped=int(n_pred - np.count_nonzero(kept)),
    )


def instance_ap(
    gt_instance: np.ndarray,
    gt_labels: Sequence[str] | np.ndarray,
    pred_masks: np.ndarray | Sequence[np.ndarray],
    pred_scores: np.ndarray | Sequence[float] | None = None,
    *,
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
    min_region_size: int = MIN_REGION_SIZE,
    min_pred_size: int | None = None,
    iou_thresholds: Sequence[float] = SCANNET_IOU_THRESHOLDS,
    integration: Integration = "trapezoid",
    gt_nyu40: np.ndarray | Sequence[int] | None = None,
    gt_classes: GtClasses | str = "auto",
) -> InstanceAP:
    """Class-agnostic AP of boolean masks (K, N) (masks may overlap) with one score each (default 1)."""
    gt_instance = np.asarray(gt_instance)
    is_object = object_instances(gt_labels, gt_nyu40, gt_classes, ignore_labels)
    gt = classify_ground_truth(gt_instance, gt_labels, ignore_labels, min_region_size, is_object)
    pred, point, n_pred = _membership_from_masks(pred_masks, len(gt_instance))
    scores = np.ones(n_pred) if pred_scores is None else pred_scores
    return _instance_ap_from_membership(
        gt, pred, point, n_pred, scores,
        min_region_size if min_pred_size is None else min_pred_size, iou_thresholds, integration,
    )


def instance_ap_from_labels(
    gt_instance: np.ndarray,
    gt_labels: Sequence[str] | np.ndarray,
    pred_point_instance: np.ndarray,
    instance_score: np.ndarray | Sequence[float] | None = None,
    *,
    ignore_labels: Iterable[str] = DEFAULT_IGNORE_LABELS,
    min_region_size: int = MIN_REGION_SIZE,
    min_pred_size: int | None = None,
    iou_thresholds: Sequence[float] = SCANNET_IOU_THRESHOLDS,
    integration: Integration = "trapezoid",
    gt_nyu40: np.ndarray | Sequence[int] | None = None,
    gt_classes: GtClasses | str = "auto",
) -> InstanceAP:
    """Class-agnostic AP of per-point predicted ids (-1 = none); ``instance_score[id]`` (default 1)."""
    gt_instance = np.asarray(gt_instance)
    pred_point_instance = np.asarray(pred_point_instance)
    if pred_point_instance.shape != gt_instance.shape:
        raise ValueError(f"predicted ids cover {pred_point_instance.shape} points, ground truth {gt_instance.shape}")
    is_object = object_instances(gt_labels, gt_nyu40, gt_classes, ignore_labels)
    gt = classify_ground_truth(gt_instance, gt_labels, ignore_labels, min_region_size, is_object)
    pred, point, ids = _membership_from_labels(pred_point_instance)
    if instance_score is None:
        scores = np.ones(len(ids))
    else:
        instance_score = np.asarray(instance_score, np.float64).ravel()
        if ids.size and ids[-1] >= len(instance_score):
            raise ValueError(f"predicted id {ids[-1]} has no score (instance_score has {len(instance_score)} entries)")
        scores = instance_score[ids]
    return _instance_ap_from_membership(
        gt, pred, point, len(ids), scores,
        min_region_size if min_pred_size is None else min_pred_size, iou_thresholds, integration,
    )


# ----------------------------------------------------------------------------------------------
# Overlap-region assignment accuracy (box supervision).


def gt_box_per_point(gt_instance: np.ndarray, box_instance: np.ndarray) -> np.ndarray:
    """(N,) int32: index of the box of each point's GT instance, NO_BOX or UNLABELLED_POINT.

    ``box_instance[b]`` is the GT instance of box b (-1 if unknown). If several boxes name the same
    instance, the lowest box index is taken as the right one.
    """
    gt_instance = np.asarray(gt_instance, np.int64)
    box_instance = np.asarray(box_instance, np.int64)
    n_instances = int(max(gt_instance.max(initial=-1), box_instance.max(initial=-1))) + 1
    box_of_instance = np.full(n_instances, NO_BOX, np.int64)
    for box in range(len(box_instance) - 1, -1, -1):  # backwards, so the lowest index wins
        if box_instance[box] >= 0:
            box_of_instance[box_instance[box]] = box
    result = np.full(len(gt_instance), UNLABELLED_POINT, np.int32)
    labelled = gt_instance >= 0
    result[labelled] = box_of_instance[gt_instance[labelled]]
    return result


def overlap_region_mask(points: np.ndarray, box_min: np.ndarray, box_max: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """(N,) bool: the point lies inside two or more boxes (faces inclusive)."""
    points = np.asarray(points)
    count = np.zeros(len(points), np.int64)
    for start in range(0, len(points), chunk):  # chunks bound the (chunk, B, 3) temporaries
        count[start : start + chunk] = points_in_boxes(points[start : start + chunk], box_min, box_max).sum(axis=1)
    return count >= 2


@dataclass(frozen=True)
class OverlapAccuracy:
    """How well points inside several boxes were assigned (NaN where nothing could be judged)."""

    point_accuracy: float  # judged overlap points given the right box (or background)
    mean_instance_accuracy: float  # mean over GT boxes owning overlap points of their accuracy
    n_points: int  # judged overlap points
    n_instances: int  # GT boxes owning judged overlap points
    # Over overlap points of objects that have a box only: the share given their own box. The
    # number box-supervised papers report (a wall point inside two boxes is not in it).
    object_point_accuracy: float = float("nan")
    n_object_points: int = 0

    def to_dict(self) -> dict:
        return {
            "point_accuracy": _nan_to_none(self.point_accuracy),
            "object_point_accuracy": _nan_to_none(self.object_point_accuracy),
            "n_object_points": self.n_object_points,
            "mean_instance_accuracy": _nan_to_none(self.mean_instance_accuracy),
            "n_points": self.n_points,
            "n_instances": self.n_instances,
        }


def overlap_assignment_accuracy(pred_box: np.ndarray, gt_box: np.ndarray, overlap_mask: np.ndarray) -> OverlapAccuracy:
    """Accuracy of per-point box indices (-1 background) on overlap points with known ground truth.

    ``gt_box`` as from ``gt_box_per_point``: a box index, NO_BOX (right answer: -1) or
    UNLABELLED_POINT (not judged). NO_BOX points count in the point accuracy only.
    """
    pred_box, gt_box, overlap_mask = np.asarray(pred_box), np.asarray(gt_box), np.asarray(overlap_mask, bool)
    if not (pred_box.shape == gt_box.shape == overlap_mask.shape) or pred_box.ndim != 1:
        raise ValueError(
            f"shapes differ: pred_box {pred_box.shape}, gt_box {gt_box.shape}, overlap {overlap_mask.shape}"
        )
    judged = overlap_mask & (gt_box != UNLABELLED_POINT)
    truth = gt_box[judged].astype(np.int64)
    correct = pred_box[judged] == np.where(truth >= 0, truth, -1)
    point_accuracy = float(correct.mean()) if correct.size else float("nan")
    in_box = truth >= 0
    per_box_points = np.bincount(truth[in_box], minlength=0)
    per_box_correct = np.bincount(truth[in_box], weights=correct[in_box], minlength=len(per_box_points))
    owners = per_box_points > 0
    mean_instance = float(np.mean(per_box_correct[owners] / per_box_points[owners])) if owners.any() else float("nan")
    object_accuracy = float(correct[in_box].mean()) if in_box.any() else float("nan")
    return OverlapAccuracy(point_accuracy, mean_instance, int(correct.size), int(np.count_nonzero(owners)),
                           object_accuracy, int(np.count_nonzero(in_box)))
