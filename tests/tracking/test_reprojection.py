"""The depth-reprojection tracker on analytic scenes (planes and a box seen by a pinhole camera)."""

import numpy as np

from pipeline.tracking.frames import Camera, as_columns, backproject, project, visible_points
from pipeline.tracking.reprojection import ReprojectionTracker, VoxelLabelMemory, majority_per_key, voxel_keys

W, H, F = 40, 30, 20.0
CAMERA = Camera(np.array([[F, 0, (W - 1) / 2], [0, F, (H - 1) / 2], [0, 0, 1]]), W, H)


def pose_at(x=0.0, y=0.0):
    pose = np.eye(4)
    pose[:3, 3] = [x, y, 0.0]
    return pose


def wall_depth(distance=2.0):
    return np.full((H, W), distance, np.float32)


class FakeSteps:
    """StepFrames stand-in: depth maps and poses given directly."""

    def __init__(self, depths, poses):
        self.depths, self.poses, self.camera = depths, poses, CAMERA

    def __len__(self):
        return len(self.depths)

    def depth(self, step):
        return self.depths[step]

    def pose(self, step):
        return self.poses[step]


def test_projection_inverts_backprojection():
    pose = pose_at(0.3, -0.1)
    pose[:3, :3] = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # a quarter turn about the optical axis
    points, valid = backproject(wall_depth(), CAMERA, pose)
    u, v, z = project(points, CAMERA, pose)
    grid_v, grid_u = np.mgrid[0:H, 0:W]
    assert valid.all() and np.allclose(z, 2.0, atol=1e-5)
    assert np.array_equal(u, grid_u.ravel()) and np.array_equal(v, grid_v.ravel())


def test_sideways_move_shifts_labels_by_the_parallax():
    # Moving the camera 0.5 m right in front of a wall 2 m away shifts the image f * 0.5 / 2 = 5 px left.
    steps = FakeSteps([wall_depth(), wall_depth()], [pose_at(0.0), pose_at(0.5)])
    tracker = ReprojectionTracker(steps, {"memory": False})
    first = np.zeros((H, W), np.int32)
    first[:, 20:30] = 7
    tracker.predict(0)
    tracker.observe(0, first, [7])
    second = tracker.predict(1)
    assert np.all(second[:, 15:25] == 7)
    assert np.all(second[:, :15] == 0)
    assert np.all(second[:, 35:] == -1)  # the 5 columns the first frame never saw are unknown
    assert np.all(second[:, 25:35] == 0)


def test_a_surface_hidden_in_the_previous_frame_does_not_inherit_the_occluder_label():
    # Frame 0: a box at 1 m covers the middle columns; frame 1: the box is gone (depth 2 m wall).
    near = wall_depth()
    near[:, 15:25] = 1.0
    steps = FakeSteps([near, wall_depth()], [pose_at(), pose_at()])
    tracker = ReprojectionTracker(steps, {"memory": False})
    labels = np.where(near < 1.5, 3, 5).astype(np.int32)  # 3 = box, 5 = wall
    tracker.predict(0)
    tracker.observe(0, labels, [3, 5])
    second = tracker.predict(1)
    assert np.all(second[:, 15:25] == -1)  # the wall behind the box: unseen before, not "box"
    assert np.all(second[:, :15] == 5) and np.all(second[:, 25:] == 5)


def test_object_out_of_view_is_found_again_through_the_voxel_memory():
    # Look at a wall, turn away to another wall 3 m on the other side, come back.
    away = pose_at()
    away[:3, :3] = np.diag([-1.0, 1.0, -1.0])  # facing backwards
    steps = FakeSteps([wall_depth(), wall_depth(3.0), wall_depth(), wall_depth()], [pose_at(), away, pose_at(), pose_at()])
    tracker = ReprojectionTracker(steps, {"voxel_size": 0.05})
    labels = np.zeros((H, W), np.int32)
    labels[5:15, 5:15] = 9
    tracker.predict(0)
    tracker.observe(0, labels, [9])
    turned = tracker.predict(1)
    assert np.all(turned == -1)
    tracker.observe(1, turned, [])
    back = tracker.predict(2)
    assert np.array_equal(back, labels)
    tracker.observe(2, back, [])
    tracker.drop([9])  # terminated: erased from the previous frame and from the memory
    assert not np.any(tracker.predict(3) == 9)


def test_visible_points_applies_the_occlusion_test():
    depth = wall_depth()
    on_wall = [0.25, 0.15, 2.0]  # lands on u = 19.5 + 20 * 0.25 / 2 = 22, v = 14.5 + 20 * 0.15 / 2 = 16
    points = np.array([on_wall, [0.25, 0.15, 3.0], [0.25, 0.15, 1.9], [5.0, 0.0, 2.0]], np.float32)
    index, pixel = visible_points(as_columns(points), depth, CAMERA, pose_at(), 0.05, 0.0)
    assert index.tolist() == [0]  # behind the wall, in front of it, outside the image: not seen
    assert pixel.tolist() == [16 * W + 22]


def test_voxel_memory_keeps_the_majority_and_latest_label():
    keys, labels = majority_per_key(np.array([5, 5, 5, 2, 2]), np.array([1, 3, 3, 4, 2]))
    assert keys.tolist() == [2, 5] and labels.tolist() == [2, 3]  # tie at key 2 -> smaller label
    memory = VoxelLabelMemory(0.1)
    pts = as_columns([[0.01, 0.0, 0.0], [0.5, 0.5, 0.5]])
    assert memory.lookup(pts).tolist() == [-1, -1]
    memory.write(pts, np.array([4, 6]))
    memory.write(pts[:, :1], np.array([8]))
    assert memory.lookup(pts).tolist() == [8, 6]
    memory.forget([6])
    assert memory.lookup(pts).tolist() == [8, 0]
    assert len(set(voxel_keys(as_columns([[-0.01, 0, 0], [0.01, 0, 0]]), 0.1).tolist())) == 2


def test_snapshot_restores_an_identical_tracker():
    steps = FakeSteps([wall_depth(), wall_depth(), wall_depth()], [pose_at(0.0), pose_at(0.2), pose_at(0.4)])
    first = ReprojectionTracker(steps)
    labels = np.zeros((H, W), np.int32)
    labels[:, 10:20] = 2
    first.predict(0)
    first.observe(0, labels, [2])
    second = ReprojectionTracker(steps)
    second.restore(first.snapshot())
    assert np.array_equal(first.predict(1), second.predict(1))


def test_colour_is_resampled_into_the_depth_camera():
    from pipeline.scene.geometry import scale_intrinsics
    from pipeline.tracking.frames import ColourSampler

    colour_k = scale_intrinsics(np.pad(CAMERA.intrinsic, ((0, 1), (0, 1))), (W, H), (2 * W, 2 * H))
    colour = np.zeros((2 * H, 2 * W, 3), np.uint8)
    colour[..., 0] = np.arange(2 * W)[None, :]  # red = colour column, green = colour row
    colour[..., 1] = np.arange(2 * H)[:, None]
    sampled = ColourSampler(colour_k, (2 * W, 2 * H), CAMERA)(colour)
    # depth pixel u covers colour columns 2u and 2u + 1: its centre is at colour column 2u + 0.5
    expected_u = 2 * np.arange(W) + 0.5
    assert sampled.shape == (H, W, 3)
    assert np.all(np.abs(sampled[..., 0] - expected_u[None, :]) <= 0.5)
    assert np.all(np.abs(sampled[..., 1] - (2 * np.arange(H) + 0.5)[:, None]) <= 0.5)
    same = ColourSampler(np.pad(CAMERA.intrinsic, ((0, 1), (0, 1))), (W, H), CAMERA)
    registered = colour[:H, :W]
    assert same.identity and same(registered) is registered  # same camera: no resampling at all
