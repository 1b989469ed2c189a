"""Keyframe matching and the tracking loop, with a scripted (perfect) propagation backend."""

import numpy as np

from pipeline.tracking.masks2d.base import MaskSet
from pipeline.tracking.base import Tracker
from pipeline.tracking.driver import (DEFAULT_PARAMS, UNKNOWN_LABEL, TrackingDriver, apply_keyframe,
                                      drop_small_objects, overlap_table)
from pipeline.tracking.states import ObjectStateMachine, State

H, W = 20, 40


def box(r0, r1, c0, c1):
    mask = np.zeros((H, W), bool)
    mask[r0:r1, c0:c1] = True
    return mask


def maskset(*masks):
    return MaskSet(np.stack(masks) if masks else np.zeros((0, H, W), bool), np.ones(len(masks)))


class ScriptedWorld(Tracker):
    """Objects are rectangles whose true position at every step is known; propagation is exact.

    It learns which tracked id is which true object(s) (those mostly inside the mask) from the
    keyframe masks it is prompted with, and from then on draws them wherever they truly are.
    """

    name = "scripted"

    def __init__(self, positions):
        self.positions = positions  # step -> {true object: mask}
        self.identity: dict[int, list] = {}  # tracked id -> true objects

    def predict(self, step):
        labels = np.zeros((H, W), np.int32)
        for tracked, parts in self.identity.items():
            for true in parts:
                mask = self.positions[step].get(true)
                if mask is not None:
                    labels[mask] = tracked
        return labels

    def observe(self, step, labels, prompted):
        for tracked in prompted:
            region = labels == tracked
            self.identity[tracked] = [t for t, m in self.positions[step].items() if (m & region).sum() * 2 > m.sum()]

    def drop(self, ids):
        for i in ids:
            self.identity.pop(i, None)


def run_world(positions, keyframes, tau_dorm, n_steps, shuffle=False):
    """Track a scripted world; keyframe masks are the true rectangles (optionally shuffled)."""
    rng = np.random.default_rng(0)

    def masks_at(step):
        masks = list(positions[step].values())
        if shuffle:
            masks = [masks[i] for i in rng.permutation(len(masks))]
        return lambda: maskset(*masks)

    machine = ObjectStateMachine(tau_iou=0.5, tau_dorm=tau_dorm)
    world = ScriptedWorld(positions)
    driver = TrackingDriver(None, {k: masks_at(k) for k in keyframes}, world, machine,
                            {"min_visible_pixels": 1, "min_new_pixels": 1})
    return [driver.step(s).labels for s in range(n_steps)], machine


def id_at(labels, mask):
    values, counts = np.unique(labels[mask], return_counts=True)
    return int(values[np.argmax(counts)])


def leaving_world(n_steps, away):
    """Object 'a' stays; object 'b' leaves the view during the steps in ``away``."""
    a, b = box(2, 8, 2, 8), box(10, 18, 20, 30)
    return {s: ({"a": a} if s in away else {"a": a, "b": b}) for s in range(n_steps)}


def test_object_that_leaves_and_returns_within_tau_dorm_keeps_its_id():
    positions = leaving_world(20, away=range(5, 11))  # 6 unseen steps
    labels, machine = run_world(positions, keyframes=[0, 4, 8, 12, 16], tau_dorm=8, n_steps=20)
    b_before, b_after = id_at(labels[4], box(10, 18, 20, 30)), id_at(labels[12], box(10, 18, 20, 30))
    assert b_before == b_after != 0
    reasons = [c.reason for c in machine.history if c.object_id == b_before]
    assert reasons == ["new mask", "vanished", "reappeared"]
    assert machine.next_id == 3  # only a and b were ever created


def test_object_that_stays_away_longer_than_tau_dorm_comes_back_with_a_new_id():
    positions = leaving_world(20, away=range(5, 11))
    labels, machine = run_world(positions, keyframes=[0, 4, 8, 12, 16], tau_dorm=3, n_steps=20)
    b_before, b_after = id_at(labels[4], box(10, 18, 20, 30)), id_at(labels[12], box(10, 18, 20, 30))
    assert b_before != 0 and b_after != 0 and b_after != b_before
    assert machine.state(b_before) == State.TERMINATED
    assert np.all(labels[11] != b_before) and not any(np.any(x == b_before) for x in labels[9:])


def test_two_objects_swapping_places_do_not_swap_ids():
    """a moves right and b moves left until they have exchanged places; keyframe masks come shuffled."""
    n = 9
    positions = {}
    for s in range(n):
        shift = round(24 * s / (n - 1))
        positions[s] = {"a": box(2, 8, 2 + shift, 10 + shift), "b": box(12, 18, 26 - shift, 34 - shift)}
    labels, machine = run_world(positions, keyframes=[0, 4, 8], tau_dorm=5, n_steps=n, shuffle=True)
    a_id = id_at(labels[0], positions[0]["a"])
    b_id = id_at(labels[0], positions[0]["b"])
    assert a_id != b_id
    for s in range(n):
        assert id_at(labels[s], positions[s]["a"]) == a_id
        assert id_at(labels[s], positions[s]["b"]) == b_id
    assert machine.next_id == 3


def test_keyframe_part_of_a_tracked_object_is_redundant_and_does_not_split_it():
    machine = ObjectStateMachine()
    chair = machine.create(0)
    predicted = np.where(box(0, 10, 0, 10), chair, 0)
    seat, back = box(0, 4, 0, 10), box(4, 10, 0, 10)  # the keyframe sees the chair as two parts
    final, outcome = apply_keyframe(1, predicted, maskset(back, seat), machine, DEFAULT_PARAMS)
    assert outcome.matched == [chair] and outcome.created == [] and outcome.n_redundant == 1
    assert np.array_equal(final, predicted)


def test_coarser_keyframe_mask_does_not_swallow_a_tracked_object():
    machine = ObjectStateMachine()
    table, cup = machine.create(0), machine.create(0)
    predicted = np.where(box(0, 10, 0, 30), table, 0)
    predicted[box(2, 5, 2, 5)] = cup
    merged = box(0, 10, 0, 30)  # table and cup as one mask: IoU with the table is high
    final, outcome = apply_keyframe(1, predicted, maskset(merged), machine, DEFAULT_PARAMS)
    assert outcome.matched == [table]
    assert np.array_equal(final, predicted)  # the cup keeps every pixel


def test_matched_mask_corrects_boundary_drift_and_claims_new_pixels():
    machine = ObjectStateMachine()
    left, right = machine.create(0), machine.create(0)
    predicted = np.zeros((H, W), np.int64)
    predicted[:, :22] = left  # left has drifted two columns into right's true extent
    predicted[:, 22:36] = right
    new_right = box(0, H, 20, 40)  # the keyframe's mask of right, now also covering columns 36-39
    final, outcome = apply_keyframe(1, predicted, maskset(new_right), machine, DEFAULT_PARAMS)
    assert outcome.matched == [right]
    assert np.all(final[:, 20:] == right) and np.all(final[:, :20] == left)


def test_uncovered_rest_of_a_mask_becomes_a_new_object():
    machine = ObjectStateMachine()
    tracked = machine.create(0)
    predicted = np.where(box(0, 10, 0, 10), tracked, 0)
    straddling = box(0, 10, 5, 25)  # a quarter over the tracked object, the rest free
    final, outcome = apply_keyframe(1, predicted, maskset(straddling), machine, DEFAULT_PARAMS)
    assert outcome.created == [2] and outcome.matched == []
    assert np.all(final[box(0, 10, 10, 25)] == 2) and np.all(final[box(0, 10, 0, 10)] == tracked)


def test_iou_ignores_pixels_the_tracker_never_observed():
    machine = ObjectStateMachine(tau_iou=0.5)
    floor = machine.create(0)
    predicted = np.full((H, W), -1, np.int64)  # unknown everywhere ...
    predicted[box(15, 20, 0, 10)] = floor  # ... except the part of the floor seen before
    new_floor = box(10, 20, 0, 40)  # the whole floor now in view: IoU 0.125 over all its pixels
    ids, inter, obj_area, known_area = overlap_table(predicted, maskset(new_floor).masks)
    assert known_area.tolist() == [50] and inter.tolist() == [[50]]
    final, outcome = apply_keyframe(1, predicted, maskset(new_floor), machine, DEFAULT_PARAMS)
    assert outcome.matched == [floor] and np.all(final[new_floor] == floor)
    assert np.all(final[~new_floor] == 0)


def test_cap_on_live_objects_refuses_new_masks_and_says_so(caplog):
    machine = ObjectStateMachine(max_objects=2)
    masks = maskset(box(0, 5, 0, 5), box(0, 5, 10, 15), box(0, 5, 20, 25))
    final, outcome = apply_keyframe(0, np.zeros((H, W), np.int64), masks, machine, DEFAULT_PARAMS)
    assert len(outcome.created) == 2 and outcome.n_refused == 1 and machine.n_refused == 1
    assert "max_objects=2" in caplog.text
    assert set(np.unique(final)) == {0, 1, 2}


def test_keyframe_without_masks_changes_nothing():
    machine = ObjectStateMachine()
    predicted = np.zeros((H, W), np.int64)
    final, outcome = apply_keyframe(0, predicted, maskset(), machine, DEFAULT_PARAMS)
    assert outcome.n_masks == 0 and np.array_equal(final, predicted) and machine.next_id == 1


def test_slivers_are_not_visible_and_become_unknown():
    labels = np.zeros((H, W), np.int64)
    labels[box(0, 10, 0, 10)] = 1
    labels[0, 30] = 2
    cleaned, visible = drop_small_objects(labels, 5)
    assert visible == [1] and cleaned[0, 30] == -1
    assert UNKNOWN_LABEL == 65535


def test_confirmation_undoes_a_first_sighting_that_cut_the_object_in_two():
    """First keyframe: the chair as two halves; later keyframes: the whole chair."""
    chair = box(4, 16, 10, 30)
    halves = [box(4, 16, 10, 20), box(4, 16, 20, 30)]
    positions = {s: {"left": halves[0], "right": halves[1]} for s in range(9)}
    keyframes = {0: lambda: maskset(*halves), 4: lambda: maskset(chair), 8: lambda: maskset(chair)}
    for confirm_hits, expected_ids in ((1, 2), (2, 1)):
        machine = ObjectStateMachine(tau_iou=0.6, confirm_hits=confirm_hits)
        driver = TrackingDriver(None, keyframes, ScriptedWorld(positions), machine,
                                {"min_visible_pixels": 1, "min_new_pixels": 1})
        labels = [driver.step(s).labels for s in range(9)]
        final_ids = set(np.unique(labels[8][chair]).tolist())
        assert len(final_ids) == expected_ids  # committed halves stay two objects; tentative ones are replaced
