"""The object state machine on scripted sequences (no masks, no tracker)."""

import numpy as np
import pytest

from pipeline.tracking.states import CREATED, MAX_OBJECT_ID, ObjectStateMachine, State


def run_visibility(machine, first_step, visible_per_step):
    """Feed one visibility set per step; return all state changes."""
    changes = []
    for offset, visible in enumerate(visible_per_step):
        changes += machine.update(first_step + offset, visible)
    return changes


def test_object_leaving_and_returning_within_tau_dorm_keeps_its_id():
    machine = ObjectStateMachine(tau_dorm=5)
    obj = machine.create(0)
    machine.update(0, [obj])
    run_visibility(machine, 1, [[obj]] * 3 + [[]] * 5)  # steps 4..8 unseen: 5 steps = tau_dorm
    assert machine.state(obj) == State.DORMANT
    changes = machine.update(9, [obj])
    assert machine.state(obj) == State.ACTIVE
    assert [(c.object_id, c.old, c.new, c.reason) for c in changes] == [(obj, State.DORMANT, State.ACTIVE, "reappeared")]
    assert machine.live_ids == [obj] and machine.next_id == 2


def test_object_unseen_longer_than_tau_dorm_is_terminated_and_a_returning_one_gets_a_new_id():
    machine = ObjectStateMachine(tau_dorm=5)
    obj = machine.create(0)
    machine.update(0, [obj])
    changes = run_visibility(machine, 1, [[]] * 6)  # unseen at steps 1..6: the 6th unseen step ends it
    assert machine.state(obj) == State.TERMINATED
    assert [c.new for c in changes] == [State.DORMANT, State.TERMINATED]
    assert changes[-1].step == 6
    with pytest.raises(ValueError, match="terminated"):
        machine.update(7, [obj])
    with pytest.raises(ValueError, match="terminated"):
        machine.match([obj], np.ones((1, 1)))
    returning = machine.create(7)
    assert returning == 2 and returning != obj


def test_two_objects_swapping_places_keep_their_ids():
    """At a keyframe the new masks are matched to *propagated* masks, so positions may swap freely."""
    machine = ObjectStateMachine(tau_iou=0.5)
    a, b = machine.create(0), machine.create(0)
    # Propagation moved a to the right and b to the left. Columns: propagated [a, b]; rows: new
    # masks, listed left-to-right (the order the generator happens to return them).
    left_mask_vs = [0.05, 0.90]  # the new mask on the left overlaps b's propagated mask
    right_mask_vs = [0.85, 0.10]
    assignment = machine.match([a, b], np.array([left_mask_vs, right_mask_vs]))
    assert assignment.tolist() == [b, a]


def test_matching_maximises_total_iou_and_respects_tau_iou():
    machine = ObjectStateMachine(tau_iou=0.5)
    x, y = machine.create(0), machine.create(0)
    # Greedy on the best single pair (0.9: mask 0 -> x) would leave mask 1 with y at 0.1; the
    # optimal assignment pairs mask 0 with y (0.8) and mask 1 with x (0.85).
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert machine.match([x, y], iou).tolist() == [y, x]
    assert machine.match([x, y], np.array([[0.49, 0.2], [0.3, 0.1]])).tolist() == [0, 0]
    assert machine.match([], np.zeros((3, 0))).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="candidates"):
        machine.match([x], np.zeros((2, 2)))


def test_dormant_object_rematched_by_a_keyframe_mask_is_active_again():
    machine = ObjectStateMachine(tau_dorm=10)
    obj = machine.create(0)
    machine.update(1, [])
    changes = machine.update(2, [], matched_ids=[obj])
    assert machine.state(obj) == State.ACTIVE and changes[0].reason == "rematched"


def test_cap_refuses_new_objects_but_counts_them():
    machine = ObjectStateMachine(max_objects=2, tau_dorm=0)
    first, second = machine.create(0), machine.create(0)
    assert machine.create(0) is None and machine.n_refused == 1
    machine.update(1, [first])  # second vanishes and, with tau_dorm 0, is terminated at once
    assert machine.state(second) == State.TERMINATED
    assert machine.create(1) == 3  # a slot is free again; ids are never reused


def test_history_records_every_transition_in_order():
    machine = ObjectStateMachine(tau_dorm=1)
    obj = machine.create(0)
    machine.update(0, [obj])
    machine.update(1, [])
    machine.update(2, [obj])
    machine.update(3, [])
    machine.update(4, [])
    h = machine.history_arrays()
    assert h["step"].tolist() == [0, 1, 2, 3, 4]
    assert h["from_state"].tolist() == [CREATED, State.ACTIVE, State.DORMANT, State.ACTIVE, State.DORMANT]
    assert h["to_state"].tolist() == [State.ACTIVE, State.DORMANT, State.ACTIVE, State.DORMANT, State.TERMINATED]
    objects = machine.object_arrays()
    assert objects["n_seen"].tolist() == [2] and objects["last_seen_step"].tolist() == [2]


def test_round_trip_through_a_dict_preserves_everything():
    machine = ObjectStateMachine(tau_iou=0.6, tau_dorm=3, max_objects=7)
    a = machine.create(0)
    machine.create(0)
    machine.update(1, [a])
    copy = ObjectStateMachine.from_dict(machine.to_dict())
    assert copy.to_dict() == machine.to_dict()
    assert copy.create(2) == machine.create(2)


def test_parameters_are_validated():
    with pytest.raises(ValueError):
        ObjectStateMachine(tau_iou=0)
    with pytest.raises(ValueError):
        ObjectStateMachine(tau_dorm=-1)
    with pytest.raises(ValueError):
        ObjectStateMachine(max_objects=MAX_OBJECT_ID + 1)
    machine = ObjectStateMachine()
    with pytest.raises(ValueError, match="unknown"):
        machine.update(0, [42])


def test_tentative_object_is_confirmed_by_a_second_keyframe_match_or_rejected():
    machine = ObjectStateMachine(confirm_hits=2)
    kept, dropped, unseen = machine.create(0), machine.create(0), machine.create(0)
    machine.update(0, [kept, dropped, unseen])
    assert machine.unconfirmed_ids == [kept, dropped, unseen]
    # next keyframe: a mask matches `kept`; `dropped` is in view but unmatched; `unseen` is out of view
    rejected = machine.reject_unconfirmed(5, [kept, dropped], matched_ids=[kept])
    assert [(c.object_id, c.new) for c in rejected] == [(dropped, State.TERMINATED)]
    machine.update(5, [kept], matched_ids=[kept])
    assert machine.unconfirmed_ids == [dropped, unseen]
    assert machine.objects[kept].hits == 2 and machine.state(unseen) == State.DORMANT
    # a confirmed object is never rejected
    assert machine.reject_unconfirmed(6, [kept], matched_ids=[]) == []
