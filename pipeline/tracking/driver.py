"""One step of granularity-consistent tracking: propagate, match keyframe masks, update states.

At every tracked frame the tracker propagates the live objects (a label map). On a keyframe the
new automatic masks are compared with that map:

* a new mask whose IoU with a propagated object is at least ``tau_iou`` (one-to-one, Hungarian;
  measured on the pixels the tracker knows, see base.py), or else that holds exactly one tracked
  object at least ``tau_contain`` inside it, *matches* that object: the object is seen and
  refreshed from the mask, by the ``refresh`` rule:

  - ``"correct"`` (default): the object keeps its propagated pixels and takes the mask's pixels,
    including those another object holds (boundary drift is corrected), except the pixels of an
    object lying at least ``tau_contain`` inside the mask: a coarser mask (chair and table merged)
    never swallows a tracked object, and a finer one (only the seat) never cuts its object;
  - ``"extend"``: the object only takes the mask's pixels no other object holds;
  - ``"replace"``: the mask becomes the object's whole extent, taking pixels from any object
    (corrects drift fully, but imports every keyframe's granularity);
* an unmatched mask is *redundant* when at least ``tau_contain`` of it is already covered by
  tracked objects (it is a part of something tracked, the granularity conflict the method
  removes), or when its uncovered rest is smaller than ``min_new_pixels``; otherwise its
  uncovered rest becomes a new object (unless the object cap is reached).

With ``confirm_hits`` > 1 a new object is tentative until enough keyframe masks matched it; a
tentative object that a keyframe sees but no mask matches is rejected (see states.py).

A keyframe observes every pixel: what no mask claims there is known to be no object. Between
keyframes, pixels the tracker cannot tell (-1) stay unknown. An object with fewer than
``min_visible_pixels`` pixels counts as not seen and its pixels become unknown. The state machine
then moves objects between Active, Dormant and Terminated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import sparse

from pipeline.tracking.masks2d.base import MaskSet
from pipeline.tracking.base import StepFrames, Tracker
from pipeline.tracking.states import MAX_OBJECT_ID, ObjectStateMachine, State, StateChange
from pipeline.params import TrackParams

UNKNOWN_LABEL = MAX_OBJECT_ID + 1  # in stored (uint16) label maps: the tracker knew nothing there

log = logging.getLogger(__name__)

# The defaults are defined once, in pipeline/params.py (the driver reads the track stage's own).
DEFAULT_PARAMS = TrackParams()


@dataclass
class KeyframeOutcome:
    n_masks: int = 0
    matched: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    rejected: list[StateChange] = field(default_factory=list)  # tentative objects no mask matched
    n_redundant: int = 0
    n_refused: int = 0


def overlap_table(labels: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Object ids in ``labels`` (J,), intersections (K, J), object areas (J,), known mask areas (K,).

    Mask areas count only the pixels whose label is known (>= 0).
    """
    flat = labels.reshape(-1)
    labelled = np.flatnonzero(flat > 0)
    ids, column = np.unique(flat[labelled], return_inverse=True)
    masks_flat = sparse.csr_matrix(masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2]), dtype=np.int32)
    one_hot = sparse.csr_matrix((np.ones(len(labelled), np.int32), (labelled, column)), shape=(flat.size, len(ids)))
    inter = np.asarray((masks_flat @ one_hot).toarray(), np.int64).reshape(len(masks), len(ids))
    object_area = np.bincount(column, minlength=len(ids)).astype(np.int64)
    mask_area = np.asarray(masks_flat @ (flat >= 0).astype(np.int32)).reshape(-1).astype(np.int64)
    return ids.astype(np.int64), inter, object_area, mask_area


def iou_matrix(inter: np.ndarray, mask_area: np.ndarray, object_area: np.ndarray) -> np.ndarray:
    union = mask_area[:, None] + object_area[None, :] - inter
    return np.divide(inter, union, out=np.zeros(inter.shape, np.float64), where=union > 0)


def match_by_containment(matched: np.ndarray, ids: np.ndarray, inter: np.ndarray, object_area: np.ndarray,
                         mask_area: np.ndarray, tau_contain: float) -> None:
    """Also match an unmatched mask to the one tracked object lying ``tau_contain`` inside it.

    The mask then shows more of that object than propagation knew (IoU was low only because the
    object was partly hidden or out of view before). A mask holding two or more tracked objects is
    a coarser granularity and matches none. Larger masks are considered first; ``matched`` is
    updated in place.
    """
    inside = inter >= tau_contain * np.maximum(object_area, 1)[None, :]
    taken = set(matched[matched > 0].tolist())
    unmatched = np.flatnonzero(matched == 0)
    for row in unmatched[np.argsort(-mask_area[unmatched], kind="stable")]:
        holders = np.flatnonzero(inside[row])
        if len(holders) == 1 and int(ids[holders[0]]) not in taken:
            matched[row] = ids[holders[0]]
            taken.add(int(ids[holders[0]]))


def apply_keyframe(step: int, predicted: np.ndarray, new: MaskSet, machine: ObjectStateMachine,
                   params: TrackParams) -> tuple[np.ndarray, KeyframeOutcome]:
    """The keyframe's final label map (0 = none) and what happened to each new mask.

    ``predicted`` may mark unknown pixels with -1: IoU is then measured on known pixels only.
    """
    outcome = KeyframeOutcome(n_masks=len(new))
    final = np.maximum(predicted, 0)
    if len(new) == 0:
        return final, outcome
    masks, mask_area = new.masks, new.areas
    ids, inter, object_area, known_area = overlap_table(predicted, masks)
    matched = machine.match(ids.tolist(), iou_matrix(inter, known_area, object_area))
    match_by_containment(matched, ids, inter, object_area, mask_area, float(params.tau_contain))
    outcome.rejected = machine.reject_unconfirmed(step, ids.tolist(), matched[matched > 0].tolist())
    if outcome.rejected:
        final[np.isin(final, [c.object_id for c in outcome.rejected])] = 0
    rows = np.flatnonzero(matched)
    by_area = rows[np.argsort(-mask_area[rows], kind="stable")]  # larger first: smaller stay on top
    rule = params.refresh
    if rule == "replace":
        final[np.isin(final, matched[rows])] = 0
        for row in by_area:
            final[masks[row]] = matched[row]
    elif rule == "extend":
        for row in by_area:
            final[masks[row] & (final == 0)] = matched[row]
    elif rule == "correct":
        inside = inter / np.maximum(object_area, 1)[None, :]  # fraction of each object inside each mask
        for row in by_area:
            swallowed = ids[(inside[row] >= float(params.tau_contain)) & (ids != matched[row])]
            final[masks[row] & ~np.isin(final, swallowed)] = matched[row]
    else:
        raise ValueError(f"unknown refresh rule {rule!r} (use 'correct', 'extend' or 'replace')")
    outcome.matched = [int(i) for i in matched[rows]]

    covered = final > 0
    unmatched = np.flatnonzero(matched == 0)
    for row in unmatched[np.argsort(-mask_area[unmatched], kind="stable")]:
        free = masks[row] & ~covered
        n_free = int(free.sum())
        if n_free < params.min_new_pixels or n_free < (1.0 - float(params.tau_contain)) * mask_area[row]:
            outcome.n_redundant += 1
            continue
        object_id = machine.create(step)
        if object_id is None:
            outcome.n_refused += 1
            continue
        final[free] = object_id
        covered |= free
        outcome.created.append(object_id)
    if outcome.n_refused:
        log.warning("step %d: %d new objects refused: max_objects=%d live objects reached", step,
                    outcome.n_refused, machine.max_objects)
    return final, outcome


def drop_small_objects(labels: np.ndarray, min_pixels: int) -> tuple[np.ndarray, list[int]]:
    """Objects with fewer than ``min_pixels`` pixels are not seen: their pixels become unknown (-1).

    Unknown rather than "no object": a sliver of an object is still that object, just too little
    of it to call it visible. Returns the map and the visible ids.
    """
    counts = np.bincount(labels[labels > 0].astype(np.int64))
    ids = np.flatnonzero(counts)
    counts = counts[ids]
    small = ids[counts < max(min_pixels, 1)]
    if len(small):
        labels = labels.copy()
        labels[np.isin(labels, small)] = -1
    return labels, [int(i) for i in ids[counts >= max(min_pixels, 1)]]


@dataclass
class StepResult:
    labels: np.ndarray  # (H, W) uint16 object ids, 0 = none, UNKNOWN_LABEL = unknown
    changes: list[StateChange]
    keyframe: KeyframeOutcome | None


class TrackingDriver:
    """Walks the tracked frames in order with one tracker and one state machine."""

    def __init__(self, frames: StepFrames, keyframe_masks: dict[int, Callable[[], MaskSet]], tracker: Tracker,
                 machine: ObjectStateMachine, params: TrackParams | dict):
        self.frames = frames
        self.keyframe_masks = keyframe_masks
        self.tracker = tracker
        self.machine = machine
        self.params = TrackParams.from_dict(params)  # tests pass a partial dict

    def step(self, step: int) -> StepResult:
        predicted = self.tracker.predict(step).astype(np.int64)
        unknown = predicted < 0
        outcome = None
        if step in self.keyframe_masks:
            final, outcome = apply_keyframe(step, predicted, self.keyframe_masks[step](), self.machine, self.params)
            unknown[:] = False
        else:
            final = np.maximum(predicted, 0)
        labels, visible = drop_small_objects(final, self.params.min_visible_pixels)
        unknown |= labels < 0
        labels = np.maximum(labels, 0)
        matched = outcome.matched if outcome else []
        changes = (outcome.rejected if outcome else []) + self.machine.update(step, visible, matched)
        terminated = [c.object_id for c in changes if c.new == State.TERMINATED]
        prompted = sorted((set(matched) | set(outcome.created)) & set(visible)) if outcome else []
        self.tracker.observe(step, np.where(unknown, -1, labels), prompted)
        if terminated:
            self.tracker.drop(terminated)
        return StepResult(np.where(unknown, UNKNOWN_LABEL, labels).astype(np.uint16), changes, outcome)
