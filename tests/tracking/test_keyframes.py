"""Keyframe selection by stride and by camera motion."""

import numpy as np
import pytest

from pipeline.tracking.keyframes import rotation_angle_deg, select_keyframes


def poses_along_x(steps):
    poses = np.tile(np.eye(4), (len(steps), 1, 1))
    poses[:, 0, 3] = steps
    return poses


def yaw(degrees):
    a = np.radians(degrees)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    return pose


def test_stride_counts_valid_frames_only():
    valid = np.array([True, False, True, True, False, True, True, True])
    # valid positions: 0 2 3 5 6 7 -> every 2nd: 0 3 6
    assert select_keyframes(np.tile(np.eye(4), (8, 1, 1)), valid, {"mode": "stride", "stride": 2}).tolist() == [0, 3, 6]


def test_motion_mode_waits_for_enough_translation():
    poses = poses_along_x(np.arange(10) * 0.11)  # 11 cm per frame
    chosen = select_keyframes(poses, np.ones(10, bool), {"mode": "motion", "min_translation": 0.3, "min_rotation_deg": 90})
    assert chosen.tolist() == [0, 3, 6, 9]


def test_motion_mode_reacts_to_rotation_and_max_gap():
    poses = np.stack([yaw(10 * i) for i in range(7)])
    chosen = select_keyframes(poses, np.ones(7, bool), {"mode": "motion", "min_translation": 1.0, "min_rotation_deg": 25})
    assert chosen.tolist() == [0, 3, 6]
    still = np.tile(np.eye(4), (7, 1, 1))
    assert select_keyframes(still, np.ones(7, bool), {"mode": "motion", "max_gap": 3}).tolist() == [0, 3, 6]
    assert select_keyframes(still, np.ones(7, bool), {"mode": "motion"}).tolist() == [0]


def test_motion_skips_invalid_frames():
    poses = poses_along_x(np.arange(6) * 0.2)
    valid = np.array([False, True, True, False, True, True])
    chosen = select_keyframes(poses, valid, {"mode": "motion", "min_translation": 0.3})
    assert chosen.tolist() == [1, 4]  # 2 is only 0.2 m from 1; 4 is 0.6 m away


def test_no_valid_frame_gives_no_keyframe():
    assert select_keyframes(np.tile(np.eye(4), (3, 1, 1)), np.zeros(3, bool)).size == 0


def test_rotation_angle_and_bad_parameters():
    assert rotation_angle_deg(yaw(0), yaw(37)) == pytest.approx(37)
    with pytest.raises(ValueError):
        select_keyframes(np.tile(np.eye(4), (2, 1, 1)), np.ones(2, bool), {"stride": 0})
    with pytest.raises(ValueError, match="mode"):
        select_keyframes(np.tile(np.eye(4), (2, 1, 1)), np.ones(2, bool), {"mode": "random"})
