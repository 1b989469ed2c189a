"""The object state machine of granularity-consistent tracking, independent of any tracker.

Every tracked object is in one of three states:

* **Active**: seen in the current tracked frame (its propagated mask is visible, or a new keyframe
  mask matched it).
* **Dormant**: not seen now, but kept: it can come back with its id, either because propagation
  finds it again ("reappeared") or a keyframe mask matches it ("rematched").
* **Terminated**: unseen for more than ``tau_dorm`` consecutive tracked frames. Final; its id is
  never given to anything else.

Confirmation (``confirm_hits``, an addition to the paper, as in multi-object trackers' tentative
tracks): a new object is *tentative* until keyframe masks have matched it ``confirm_hits`` times
in all (its creating mask counts as the first). A tentative object that is visible on a keyframe
where no mask matches it is rejected: Terminated with reason "unconfirmed". With the default 1
every object is confirmed at creation, as in the paper; 2 (the track stage's default) stops a
single frame's odd granularity (an object cut in two, or two objects as one) from fixing the
object's granularity for good.

Object ids start at 1 (0 means "no object" in label maps) and only grow. ``max_objects`` caps the
number of live (Active + Dormant) objects: a new object beyond the cap is refused and counted.
Every state change is recorded in ``history`` with the step (tracked-frame index) and a reason.

The machine only sees ids, visibility and IoU matrices, never masks or images, so it can be driven
by scripted sequences in tests and by any propagation backend in the pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

log = logging.getLogger(__name__)

MAX_OBJECT_ID = 65534  # label maps are stored as uint16; 65535 marks unknown pixels
CREATED = -1  # "from" state of the history entry that creates an object


class State(IntEnum):
    ACTIVE = 0
    DORMANT = 1
    TERMINATED = 2


@dataclass(frozen=True)
class StateChange:
    step: int
    object_id: int
    old: int  # a State, or CREATED
    new: int
    reason: str


@dataclass
class TrackedObject:
    object_id: int
    state: int
    created_step: int
    last_seen_step: int
    dormant_since: int = -1  # first unseen step of the current dormant spell (-1: not dormant)
    n_seen: int = 0  # tracked frames in which the object was seen
    hits: int = 1  # keyframe masks that matched it (the creating mask included)
    confirmed: bool = True


class ObjectStateMachine:
    def __init__(self, tau_iou: float = 0.5, tau_dorm: int = 30, max_objects: int = 500, confirm_hits: int = 1):
        if not 0 < tau_iou <= 1:
            raise ValueError(f"tau_iou must be in (0, 1], got {tau_iou}")
        if tau_dorm < 0:
            raise ValueError(f"tau_dorm must be >= 0, got {tau_dorm}")
        if not 1 <= max_objects <= MAX_OBJECT_ID:
            raise ValueError(f"max_objects must be in [1, {MAX_OBJECT_ID}], got {max_objects}")
        if confirm_hits < 1:
            raise ValueError(f"confirm_hits must be >= 1, got {confirm_hits}")
        self.confirm_hits = int(confirm_hits)
        self.tau_iou = float(tau_iou)
        self.tau_dorm = int(tau_dorm)
        self.max_objects = int(max_objects)
        self.objects: dict[int, TrackedObject] = {}
        self.history: list[StateChange] = []
        self.next_id = 1
        self.n_refused = 0  # new objects refused by the cap

    # -- queries -------------------------------------------------------------------------------

    def state(self, object_id: int) -> State:
        return State(self.objects[object_id].state)

    def ids_in(self, *states: State) -> list[int]:
        return [i for i, o in self.objects.items() if o.state in states]

    @property
    def live_ids(self) -> list[int]:
        return self.ids_in(State.ACTIVE, State.DORMANT)

    # -- transitions ---------------------------------------------------------------------------

    def _change(self, step: int, obj: TrackedObject, new: State, reason: str) -> StateChange:
        change = StateChange(step, obj.object_id, obj.state, int(new), reason)
        obj.state = int(new)
        self.history.append(change)
        return change

    def create(self, step: int, reason: str = "new mask") -> int | None:
        """A new Active object's id, or None when the cap (or the id space) is exhausted."""
        if len(self.live_ids) >= self.max_objects or self.next_id > MAX_OBJECT_ID:
            self.n_refused += 1
            return None
        object_id = self.next_id
        self.next_id += 1
        self.objects[object_id] = TrackedObject(object_id, int(State.ACTIVE), step, step, -1, 1, 1,
                                                confirmed=self.confirm_hits <= 1)
        self.history.append(StateChange(step, object_id, CREATED, int(State.ACTIVE), reason))
        return object_id

    def match(self, candidate_ids: Sequence[int], iou: np.ndarray) -> np.ndarray:
        """Match new masks (rows of ``iou``) to live objects (columns) one-to-one.

        Maximises the total IoU (Hungarian); pairs below ``tau_iou`` are not matches. Returns, for
        each new mask, the matched object id or 0.
        """
        iou = np.asarray(iou, np.float64)
        if iou.ndim != 2 or iou.shape[1] != len(candidate_ids):
            raise ValueError(f"iou must be (new masks, {len(candidate_ids)} candidates), got {iou.shape}")
        result = np.zeros(len(iou), np.int64)
        if iou.size == 0:
            return result
        for object_id in candidate_ids:
            if self.objects[object_id].state == State.TERMINATED:
                raise ValueError(f"object {object_id} is terminated and cannot be matched")
        rows, cols = linear_sum_assignment(iou, maximize=True)
        good = iou[rows, cols] >= self.tau_iou
        result[rows[good]] = np.asarray(candidate_ids, np.int64)[cols[good]]
        return result

    def reject_unconfirmed(self, step: int, candidate_ids: Iterable[int], matched_ids: Iterable[int]) -> list[StateChange]:
        """Terminate the tentative objects a keyframe saw (``candidate_ids``) but did not match."""
        matched = {int(i) for i in matched_ids}
        changes = []
        for object_id in candidate_ids:
            obj = self.objects[int(object_id)]
            if not obj.confirmed and obj.state != State.TERMINATED and int(object_id) not in matched:
                changes.append(self._change(step, obj, State.TERMINATED, "unconfirmed: no keyframe mask matched it"))
        return changes

    @property
    def unconfirmed_ids(self) -> list[int]:
        """Objects never confirmed (tentative now, or rejected)."""
        return [i for i, o in self.objects.items() if not o.confirmed]

    def update(self, step: int, visible_ids: Iterable[int], matched_ids: Iterable[int] = ()) -> list[StateChange]:
        """Advance all live objects to ``step`` given which ones are seen now.

        ``visible_ids``: objects whose mask is visible in this frame; ``matched_ids``: objects a new
        keyframe mask matched (also seen).
        """
        matched = {int(i) for i in matched_ids}
        seen = {int(i) for i in visible_ids} | matched
        for object_id in seen:
            obj = self.objects.get(object_id)
            if obj is None or obj.state == State.TERMINATED:
                raise ValueError(f"object {object_id} is {'unknown' if obj is None else 'terminated'} but was seen")
        changes = []
        for object_id in matched:
            obj = self.objects[object_id]
            if obj.created_step != step:  # the creating mask was counted at creation
                obj.hits += 1
            obj.confirmed = obj.confirmed or obj.hits >= self.confirm_hits
        for object_id in self.live_ids:
            obj = self.objects[object_id]
            if object_id in seen:
                if obj.state == State.DORMANT:
                    reason = "rematched" if object_id in matched else "reappeared"
                    changes.append(self._change(step, obj, State.ACTIVE, reason))
                    obj.dormant_since = -1
                if obj.last_seen_step != step:
                    obj.n_seen += 1
                obj.last_seen_step = step
            elif obj.state == State.ACTIVE:
                obj.dormant_since = step
                changes.append(self._change(step, obj, State.DORMANT, "vanished"))
            if obj.state == State.DORMANT and step - obj.dormant_since >= self.tau_dorm:
                changes.append(self._change(step, obj, State.TERMINATED, f"unseen for more than tau_dorm={self.tau_dorm} frames"))
        return changes

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "tau_iou": self.tau_iou, "tau_dorm": self.tau_dorm, "max_objects": self.max_objects,
            "confirm_hits": self.confirm_hits,
            "next_id": self.next_id, "n_refused": self.n_refused,
            "objects": [asdict(o) for o in self.objects.values()],
            "history": [asdict(c) for c in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ObjectStateMachine":
        machine = cls(data["tau_iou"], data["tau_dorm"], data["max_objects"], data.get("confirm_hits", 1))
        machine.next_id = int(data["next_id"])
        machine.n_refused = int(data["n_refused"])
        machine.objects = {int(o["object_id"]): TrackedObject(**o) for o in data["objects"]}
        machine.history = [StateChange(**c) for c in data["history"]]
        return machine

    def history_arrays(self) -> dict[str, np.ndarray]:
        """The state history as columns (for the tracks artifact)."""
        h = self.history
        return {
            "step": np.asarray([c.step for c in h], np.int64),
            "object": np.asarray([c.object_id for c in h], np.int32),
            "from_state": np.asarray([c.old for c in h], np.int8),
            "to_state": np.asarray([c.new for c in h], np.int8),
            "reason": np.asarray([c.reason for c in h], dtype=str),
        }

    def object_arrays(self) -> dict[str, np.ndarray]:
        objs = sorted(self.objects.values(), key=lambda o: o.object_id)
        return {
            "id": np.asarray([o.object_id for o in objs], np.int32),
            "state": np.asarray([o.state for o in objs], np.int8),
            "created_step": np.asarray([o.created_step for o in objs], np.int64),
            "last_seen_step": np.asarray([o.last_seen_step for o in objs], np.int64),
            "n_seen": np.asarray([o.n_seen for o in objs], np.int64),
            "hits": np.asarray([o.hits for o in objs], np.int64),
            "confirmed": np.asarray([o.confirmed for o in objs], bool),
        }
