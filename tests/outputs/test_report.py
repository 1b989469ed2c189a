import numpy as np

from pipeline.outputs.report import pick_view_frames
from pipeline.outputs.views import render_points, top_down_camera


def test_pick_view_frames_spreads_over_valid_frames():
    valid = np.array([False, True, True, False, True, True, True])
    assert pick_view_frames(valid, 3).tolist() == [1, 4, 6]
    assert pick_view_frames(np.zeros(4, bool), 3).size == 0


def test_top_down_view_frames_the_scene_and_keeps_north_up():
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(0, 4, (4000, 2)), rng.uniform(0, 0.1, 4000)]
    colors = np.where(points[:, 1:2] > 3.5, [255, 0, 0], [0, 0, 255]).astype(np.uint8)  # a red strip at large y
    pose, intrinsic = top_down_camera(points, (200, 200))
    image = render_points(points, colors, pose, intrinsic, (200, 200))
    drawn = np.any(image != 255, axis=2)
    rows, cols = np.nonzero(drawn)
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < 199 and cols.max() < 199  # fully framed
    assert drawn.mean() > 0.5  # fills most of the picture
    red = np.all(image == [255, 0, 0], axis=2)
    blue = np.all(image == [0, 0, 255], axis=2)
    assert np.nonzero(red)[0].mean() < np.nonzero(blue)[0].mean() - 50  # +y (north) at the top, x to the right
