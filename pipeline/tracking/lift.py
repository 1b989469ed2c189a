"""Lifting 2D object-id maps to 3D: per-point votes, one label per superpoint, per-view masks.

For each used frame, the scene's points are projected into the frame; a point is *observed* if it
falls inside the image and passes the occlusion test (its depth agrees with the measured depth).
Each observation votes for the object id at its pixel (0 = no object there). Votes are summed per
superpoint; a superpoint takes the object with most votes among ids > 0 and its confidence is
that object's share of all the superpoint's observations (unlabelled ones included). A superpoint
below ``min_confidence``, or with fewer than ``min_observations`` observations, stays unlabelled.
Objects become 3D instances (``point_instance`` 0..K-1, -1 = none) with ``instance_score`` = the
mean confidence of their points; instances smaller than ``min_instance_points`` are dropped.

Per-view masks keep what a single frame says: for each view and each object it shows, the points
observed with that id in that view. Raw per-view masks (:func:`lift_raw_views`) do the same for each
keyframe's own 2D masks before tracking (the curriculum's single-view stage): the points a view
observes whose pixel lies in the mask; masks may overlap, as automatic 2D masks do.

:func:`lift_independent` is the baseline without tracking: each keyframe's masks are lifted on
their own and merged across views greedily by superpoint overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from pipeline.params import LiftParams
from pipeline.tracking.frames import Camera, as_columns, visible_points

@dataclass
class View:
    """One frame's object-id map with what is needed to project into it."""

    labels: np.ndarray  # (H, W) int, 0 = none; negative = unknown (no observation)
    depth: np.ndarray  # (H, W) metres
    pose: np.ndarray  # (4, 4) camera-to-world
    frame_index: int = -1
    keep_masks: bool = False  # store this view's per-view masks


def observe(xyz: np.ndarray, view: View, camera: Camera, params: LiftParams) -> tuple[np.ndarray, np.ndarray]:
    """Observed indices of points (3, N) and the object id each one sees (0 = none); unknown pixels
    are skipped."""
    index, pixel = visible_points(xyz, view.depth, camera, view.pose, params.depth_tolerance,
                                  params.relative_tolerance)
    label = view.labels.reshape(-1)[pixel].astype(np.int64)
    known = label >= 0
    return index[known], label[known]


def count_pairs(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (a, b) pairs (sorted by a, then b) with their summed weights (default: counts)."""
    if len(a) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    span = int(b.max()) + 1  # ids are >= 0; one int64 key per pair sorts like (a, b)
    keys = a * span + b
    order = np.argsort(keys, kind="stable")  # sorting beats np.unique on wide int64 keys
    sorted_keys = keys[order]
    new_group = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group = np.cumsum(new_group) - 1
    totals = np.bincount(group, weights=None if weights is None else np.asarray(weights)[order])
    unique = sorted_keys[new_group]
    return unique // span, unique % span, np.rint(totals).astype(np.int64)


@dataclass
class Votes:
    """Sparse votes: (point, object id, count), ids include 0 (observed, no object)."""

    point: np.ndarray
    label: np.ndarray
    count: np.ndarray
    n_views: int = 0


class VoteAccumulator:
    """Collects observations frame by frame and reduces them every few frames to bound memory."""

    def __init__(self, reduce_every: int = 16):
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.reduce_every = reduce_every
        self.n_views = 0

    def add(self, point: np.ndarray, label: np.ndarray) -> None:
        self.parts.append((point, label, np.ones(len(point), np.int64)))
        self.n_views += 1
        if len(self.parts) >= self.reduce_every:
            self.parts = [self._reduced()]

    def _reduced(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        point = np.concatenate([p[0] for p in self.parts])
        label = np.concatenate([p[1] for p in self.parts])
        count = np.concatenate([p[2] for p in self.parts])
        return count_pairs(point, label, count.astype(np.float64))

    def votes(self) -> Votes:
        point, label, count = self._reduced()
        return Votes(point, label, count, self.n_views)


def superpoint_labels(votes: Votes, point_superpoint: np.ndarray, n_superpoints: int, min_confidence: float,
                      min_observations: int) -> tuple[np.ndarray, np.ndarray]:
    """Object id (0 = none) and confidence of every superpoint."""
    sp, label, count = count_pairs(point_superpoint[votes.point], votes.label, votes.count.astype(np.float64))
    observed = np.bincount(sp, weights=count, minlength=n_superpoints)
    sp_label = np.zeros(n_superpoints, np.int64)
    sp_conf = np.zeros(n_superpoints, np.float32)
    objects = label > 0
    sp, label, count = sp[objects], label[objects], count[objects]
    if len(sp):
        order = np.lexsort((label, -count, sp))  # per superpoint: most votes first, ties -> smaller id
        first = order[np.r_[True, sp[order][1:] != sp[order][:-1]]]
        best_sp, best_label, best_count = sp[first], label[first], count[first]
        confidence = best_count / np.maximum(observed[best_sp], 1)
        ok = (confidence >= min_confidence) & (observed[best_sp] >= max(min_observations, 1))
        sp_label[best_sp[ok]] = best_label[ok]
        sp_conf[best_sp[ok]] = confidence[ok]
    return sp_label, sp_conf


def instances_from_superpoints(sp_label: np.ndarray, sp_conf: np.ndarray, point_superpoint: np.ndarray,
                               min_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """point_instance (N,) i32 (-1 = none), instance_score (K,) f32, instance_object (K,) object id."""
    point_label = sp_label[point_superpoint]
    point_conf = sp_conf[point_superpoint]
    objects, inverse, sizes = np.unique(point_label, return_inverse=True, return_counts=True)
    keep = (objects > 0) & (sizes >= max(min_points, 1))
    new_index = np.full(len(objects), -1, np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    point_instance = new_index[inverse.reshape(-1)].astype(np.int32)
    labelled = point_instance >= 0
    sums = np.bincount(point_instance[labelled], weights=point_conf[labelled], minlength=int(keep.sum()))
    scores = (sums / np.maximum(sizes[keep], 1)).astype(np.float32)
    return point_instance, scores, objects[keep].astype(np.int64)


@dataclass
class LiftResult:
    point_instance: np.ndarray  # (N,) i32
    instance_score: np.ndarray  # (K,) f32
    instance_object: np.ndarray  # (K,) tracked object id of each instance
    superpoint_object: np.ndarray  # (S,) object id, 0 = none
    superpoint_confidence: np.ndarray  # (S,) f32
    point_observations: np.ndarray  # (N,) how often each point was observed
    views: dict  # per-view masks (CSR), see views_arrays

    @classmethod
    def empty(cls, n_points: int, n_superpoints: int) -> "LiftResult":
        """No instance at all (nothing was tracked)."""
        return cls(np.full(n_points, -1, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   np.zeros(n_superpoints, np.int64), np.zeros(n_superpoints, np.float32), np.zeros(n_points, np.int32),
                   views_arrays(_no_views(), np.zeros(0, np.int64)))


def _no_views() -> dict:
    return {"view": [], "object": [], "length": [], "points": [], "frame_index": []}


def _keep_points(store: dict, members: np.ndarray, points_sink: Callable[[np.ndarray], None] | None) -> None:
    """One mask's points: handed to ``points_sink`` (e.g. appended to the artifact on disk, so memory
    does not grow with the number of views) or kept in ``store``; its length is kept either way."""
    members = members.astype(np.int32)
    store["length"].append(len(members))
    if points_sink is None:
        store["points"].append(members)
    else:
        points_sink(members)


def _per_view_masks(view_number: int, index: np.ndarray, label: np.ndarray, store: dict,
                    points_sink: Callable[[np.ndarray], None] | None = None) -> None:
    keep = label > 0
    index, label = index[keep], label[keep]
    order = np.lexsort((index, label))
    index, label = index[order], label[order]
    starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]]) if len(label) else np.zeros(0, np.int64)
    for start, end in zip(starts, np.r_[starts[1:], len(label)]):
        store["view"].append(view_number)
        store["object"].append(int(label[start]))
        _keep_points(store, index[start:end], points_sink)


def lift_views(points: np.ndarray, point_superpoint: np.ndarray | None, views: Iterable[View], camera: Camera,
               params: LiftParams | dict | None = None, points_sink: Callable[[np.ndarray], None] | None = None) -> LiftResult:
    """Lift a sequence of object-id maps (ids consistent across views) onto points and superpoints.

    With ``points_sink``, the points of each per-view mask go to it in order (views/mask_points)
    instead of into the result, whose ``views`` then has no ``mask_points``."""
    params = LiftParams.from_dict(params)
    points = np.asarray(points, np.float32)
    xyz = as_columns(points)
    if point_superpoint is None:
        point_superpoint = np.arange(len(points), dtype=np.int64)  # each point its own superpoint
    point_superpoint = np.asarray(point_superpoint, np.int64)
    n_superpoints = int(point_superpoint.max()) + 1 if len(point_superpoint) else 0
    accumulator = VoteAccumulator()
    store = _no_views()
    n_views = 0
    for view in views:
        index, label = observe(xyz, view, camera, params)
        accumulator.add(index, label)
        if view.keep_masks:
            _per_view_masks(len(store["frame_index"]), index, label, store, points_sink)
            store["frame_index"].append(view.frame_index)
        n_views += 1
    votes = accumulator.votes()
    sp_label, sp_conf = superpoint_labels(votes, point_superpoint, n_superpoints, params.min_confidence,
                                          params.min_observations)
    point_instance, scores, objects = instances_from_superpoints(sp_label, sp_conf, point_superpoint,
                                                                 params.min_instance_points)
    observations = np.bincount(votes.point, weights=votes.count, minlength=len(points)).astype(np.int32)
    return LiftResult(point_instance, scores, objects, sp_label, sp_conf, observations,
                      views_arrays(store, objects, streamed=points_sink is not None))


def _offsets_and_points(store: dict, streamed: bool) -> dict:
    arrays = {"mask_offsets": np.r_[0, np.cumsum(np.asarray(store["length"], np.int64))].astype(np.int64)}
    if not streamed:
        arrays["mask_points"] = (np.concatenate(store["points"]).astype(np.int32) if store["points"]
                                 else np.zeros(0, np.int32))
    return arrays


def views_arrays(store: dict, instance_object: np.ndarray, streamed: bool = False) -> dict:
    """The per-view masks as CSR arrays; ``streamed``: their points went to a sink (no mask_points)."""
    object_ids = np.asarray(store["object"], np.int64)
    lookup = {int(o): i for i, o in enumerate(instance_object)}
    return {
        "frame_index": np.asarray(store["frame_index"], np.int64),
        "mask_view": np.asarray(store["view"], np.int32),
        "mask_object": object_ids.astype(np.int32),
        "mask_instance": np.asarray([lookup.get(int(o), -1) for o in object_ids], np.int32),
        **_offsets_and_points(store, streamed),
    }


# ----------------------------------------------------------------------------------------------
# Raw single-view masks: each keyframe's own 2D masks (before tracking) on the points it observes.


@dataclass
class MaskView:
    """One keyframe's own 2D masks with what is needed to project into it."""

    masks: np.ndarray  # (K, H, W) bool, may overlap
    scores: np.ndarray  # (K,)
    rows: np.ndarray  # (K,) each mask's row in masks2d.h5 (masks/*), kept for tracing back
    depth: np.ndarray  # (H, W) metres
    pose: np.ndarray  # (4, 4) camera-to-world
    frame_index: int = -1


def mask_points(xyz: np.ndarray, view: MaskView, camera: Camera, params: LiftParams) -> list[np.ndarray]:
    """Points (3, N) each mask of the view covers: observed (in view, depth test) at a mask pixel."""
    index, pixel = visible_points(xyz, view.depth, camera, view.pose, params.depth_tolerance,
                                  params.relative_tolerance)
    flat = np.asarray(view.masks, bool).reshape(len(view.masks), -1)
    return [index[mask[pixel]] for mask in flat]  # one mask at a time: no (K, N) matrix


def lift_raw_views(points: np.ndarray, views: Iterable[MaskView], camera: Camera, params: LiftParams | dict | None = None,
                   points_sink: Callable[[np.ndarray], None] | None = None) -> dict:
    """Raw per-view masks (CSR, like ``views_arrays``): frame_index (V,); per mask its view, masks2d
    row, score and points. Masks on fewer than ``raw_min_points`` observed points are dropped.
    With ``points_sink`` the points go to it in order, and the result has no ``mask_points``."""
    params = LiftParams.from_dict(params)
    xyz = as_columns(points)
    minimum = max(params.raw_min_points, 1)
    frame_index, view_of, rows, scores = [], [], [], []
    store = _no_views()
    for view in views:
        for k, covered in enumerate(mask_points(xyz, view, camera, params)):
            if len(covered) >= minimum:
                view_of.append(len(frame_index))
                rows.append(int(view.rows[k]))
                scores.append(float(view.scores[k]))
                _keep_points(store, covered, points_sink)
        frame_index.append(view.frame_index)
    return {
        "frame_index": np.asarray(frame_index, np.int64),
        "mask_view": np.asarray(view_of, np.int32),
        "mask_row": np.asarray(rows, np.int32),
        "mask_score": np.asarray(scores, np.float32),
        **_offsets_and_points(store, points_sink is not None),
    }


# ----------------------------------------------------------------------------------------------
# Baseline: independent per-frame masks, merged across views in 3D (no tracking).


def _view_superpoint_masks(index, label, point_superpoint, n_superpoints) -> list[np.ndarray]:
    """Superpoints each mask of one view holds: where it has most of the view's observed points."""
    sp = point_superpoint[index]
    seen = np.bincount(sp, minlength=n_superpoints)
    sps, labels, counts = count_pairs(sp, label)
    masks = []
    for object_id in np.unique(labels[labels > 0]):
        chosen = (labels == object_id) & (counts * 2 >= seen[sps])
        if np.any(chosen):
            masks.append(sps[chosen])
    return masks


def lift_independent(points: np.ndarray, point_superpoint: np.ndarray | None, views: Iterator[View], camera: Camera,
                     params: LiftParams | dict | None = None, merge_iou: float = 0.5) -> LiftResult:
    """Baseline: every view's masks lifted alone (ids need not agree across views), then merged.

    Each view's mask becomes a set of superpoints; in view order, it joins the 3D instance whose
    superpoint support overlaps it most (IoU in points, at least ``merge_iou``) or starts a new
    one. A superpoint takes the instance whose masks covered it most often; confidence is that count
    over the number of views that observed the superpoint.
    """
    params = LiftParams.from_dict(params)
    points = np.asarray(points, np.float32)
    xyz = as_columns(points)
    if point_superpoint is None:
        point_superpoint = np.arange(len(points), dtype=np.int64)
    point_superpoint = np.asarray(point_superpoint, np.int64)
    n_sp = int(point_superpoint.max()) + 1 if len(point_superpoint) else 0
    sp_size = np.bincount(point_superpoint, minlength=n_sp).astype(np.float64)
    support: list[np.ndarray] = []  # per instance: bool (S,) union of its masks
    votes: list[np.ndarray] = []  # per instance: (S,) number of its masks covering each superpoint
    sp_views = np.zeros(n_sp, np.int64)
    accumulator = VoteAccumulator()
    for view in views:
        index, label = observe(xyz, view, camera, params)
        accumulator.add(index, label)
        sp_views[np.unique(point_superpoint[index])] += 1
        for mask_sp in _view_superpoint_masks(index, label, point_superpoint, n_sp):
            mask = np.zeros(n_sp, bool)
            mask[mask_sp] = True
            best, best_iou = -1, 0.0
            if support:
                stack = np.stack(support)
                inter = (stack & mask) @ sp_size
                union = (stack | mask) @ sp_size
                iou = inter / np.maximum(union, 1e-9)
                best = int(np.argmax(iou))
                best_iou = float(iou[best])
            if best >= 0 and best_iou >= merge_iou:
                support[best] |= mask
                votes[best][mask] += 1
            else:
                support.append(mask)
                votes.append(mask.astype(np.int64))
    sp_label = np.zeros(n_sp, np.int64)
    sp_conf = np.zeros(n_sp, np.float32)
    if votes:
        stack = np.stack(votes)
        winner = np.argmax(stack, axis=0)
        best = stack[winner, np.arange(n_sp)]
        confidence = best / np.maximum(sp_views, 1)
        ok = (best > 0) & (confidence >= params.min_confidence) & (sp_views >= params.min_observations)
        sp_label[ok] = winner[ok] + 1
        sp_conf[ok] = confidence[ok]
    point_instance, scores, objects = instances_from_superpoints(sp_label, sp_conf, point_superpoint,
                                                                 params.min_instance_points)
    result_votes = accumulator.votes()
    observations = np.bincount(result_votes.point, weights=result_votes.count, minlength=len(points)).astype(np.int32)
    return LiftResult(point_instance, scores, objects, sp_label, sp_conf, observations,
                      views_arrays(_no_views(), objects))
