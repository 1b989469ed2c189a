"""Back-projection: projection, depth-tested visibility, sampling and streaming means."""

import numpy as np
import pytest
import torch

from pipeline.unscene3d.backproject import (
    Cameras,
    FeatureBatch,
    FrameBatch,
    RunningMean,
    backproject_features,
    bilinear_sample,
    depth_visibility,
    project,
    select_frames,
    to_camera,
)

K = np.array([[100.0, 0, 50.0, 0], [0, 100.0, 40.0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def pose_at(position, rotation=np.eye(3)):
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = position
    return pose


def test_projection_of_hand_computed_points():
    points = torch.tensor([[0.1, -0.2, 2.0], [0.0, 0.0, 1.0]])
    uv = project(points, torch.tensor(K[:3, :3], dtype=torch.float32))
    assert uv.numpy() == pytest.approx(np.array([[55.0, 30.0], [50.0, 40.0]]))


def test_pose_is_camera_to_world():
    # Camera at x = 1 turned to look along world -x (its z axis); OpenCV: y down.
    look_minus_x = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float).T  # columns: camera x, y, z in world
    pose = torch.tensor(pose_at([1.0, 0.0, 0.0], look_minus_x)[None])
    cam = to_camera(torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.5, 0.0]], dtype=torch.float64), pose)[0]
    assert cam[0].numpy() == pytest.approx([0.0, 0.0, 2.0])  # 2 m straight ahead
    assert cam[1].numpy() == pytest.approx([0.0, 0.5, 0.0])  # world y is camera y


def test_point_behind_a_surface_is_not_visible():
    # Two points on the optical axis; the depth image measured the near one.
    points_cam = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.03]]])
    depth = torch.ones((1, 80, 100))
    visible = depth_visibility(points_cam, depth, torch.tensor(K[:3, :3], dtype=torch.float32), tolerance=0.05)
    assert visible[0].tolist() == [True, False, True]


def test_points_outside_behind_or_without_depth_are_not_visible():
    points_cam = torch.tensor([[[0.0, 0.0, -1.0], [5.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    depth = torch.ones((1, 80, 100))
    depth[0, 40, 50] = 0.0  # no reading where the third point lands
    visible = depth_visibility(points_cam, depth, torch.tensor(K[:3, :3], dtype=torch.float32), tolerance=0.05)
    assert visible[0].tolist() == [False, False, False]


def test_bilinear_sample_of_hand_computed_values():
    features = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])  # (1, 1, 2, 2): value = 10 x + 20 y
    grid = torch.tensor([[0.5, 0.5], [0.25, 1.0], [-3.0, 0.0], [1.0, 1.0]])
    values = bilinear_sample(features, torch.zeros(4, dtype=torch.long), grid)[:, 0]
    assert values.tolist() == pytest.approx([15.0, 22.5, 0.0, 30.0])


def test_vit_grid_places_patch_centres():
    # Input 2x the colour size, patch 8, stride 4: cell i is centred on input pixel edge-coordinate 4 i + 4.
    batch = FeatureBatch.for_resized_image(torch.zeros(1, 1, 1, 1), (100, 50), cell_size=8, cell_stride=4, input_size=(200, 100))
    for cell in (0, 3, 10):
        input_centre = 4 * cell + 4  # edge coordinates in the input
        u = input_centre / 2.0 - 0.5  # colour pixel-centre coordinates
        assert u * batch.scale[0] + batch.offset[0] == pytest.approx(cell)


def test_running_mean_merges_duplicates_exactly():
    rng = np.random.default_rng(0)
    index = torch.tensor([0, 2, 2, 2, 4, 0])
    values = torch.tensor(rng.normal(size=(6, 3)), dtype=torch.float32)
    acc = RunningMean(5, 3, torch.device("cpu"))
    acc.update(index[:4], values[:4])
    acc.update(index[4:], values[4:])
    for point in range(5):
        rows = values[index == point]
        expected = rows.mean(0) if len(rows) else torch.zeros(3)
        assert acc.mean[point].numpy() == pytest.approx(expected.numpy(), abs=1e-6)
        assert acc.count[point] == len(rows)


def test_select_frames_takes_every_kth_valid_frame():
    ids = np.arange(10)
    valid = np.ones(10, bool)
    valid[[1, 2]] = False
    assert select_frames(ids, valid, 3).tolist() == [0, 5, 8]


# ---------------------------------------------------------------------------------------------
# A wall at z = 3 seen by cameras that move sideways; colour at twice the depth resolution.

COLOR_SIZE, DEPTH_SIZE = (64, 48), (32, 24)
K_COLOR = np.array([[60.0, 0, 31.5, 0], [0, 60.0, 23.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
K_DEPTH = np.array([[30.0, 0, 15.5, 0], [0, 30.0, 11.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def wall_scene(n_frames=6, seed=0):
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.linspace(-1.5, 1.5, 25), np.linspace(-1.0, 1.0, 17))
    wall = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 3.0)], 1)
    hidden = wall[:40] + [0.0, 0.0, 0.5]  # behind the wall: never visible
    points = np.concatenate([wall, hidden]).astype(np.float32)
    poses = [pose_at([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), 0.0]) for _ in range(n_frames)]
    depths = [np.full((DEPTH_SIZE[1], DEPTH_SIZE[0]), 3.0, np.float32) for _ in poses]
    # Per-frame feature maps at colour resolution: random, different every frame.
    maps = [torch.tensor(rng.normal(size=(3, COLOR_SIZE[1], COLOR_SIZE[0])), dtype=torch.float32) for _ in poses]
    return points, poses, depths, maps, len(wall)


def batches_of(poses, depths, maps, size):
    for start in range(0, len(poses), size):
        stop = start + size
        yield FrameBatch(
            frame_ids=np.arange(start, min(stop, len(poses))),
            depth=torch.tensor(np.stack(depths[start:stop])),
            pose=torch.tensor(np.stack(poses[start:stop])),
            features=FeatureBatch.for_resized_image(torch.stack(maps[start:stop]), COLOR_SIZE),
        )


CAMERAS = Cameras(K_COLOR, K_DEPTH, COLOR_SIZE, DEPTH_SIZE)


def brute_force_mean(points, poses, depths, maps):
    """Per point and frame, in plain numpy: depth test at the depth pixel, bilinear at the colour pixel."""
    total = np.zeros((len(points), 3))
    count = np.zeros(len(points), int)
    for pose, depth, fmap in zip(poses, depths, maps):
        fmap = fmap.numpy()
        cam = (np.linalg.inv(pose) @ np.c_[points, np.ones(len(points))].T).T[:, :3]
        for n, (x, y, z) in enumerate(cam):
            ud, vd = round(K_DEPTH[0, 0] * x / z + K_DEPTH[0, 2]), round(K_DEPTH[1, 1] * y / z + K_DEPTH[1, 2])
            uc, vc = K_COLOR[0, 0] * x / z + K_COLOR[0, 2], K_COLOR[1, 1] * y / z + K_COLOR[1, 2]
            if not (0 <= ud < DEPTH_SIZE[0] and 0 <= vd < DEPTH_SIZE[1]) or abs(z - depth[vd, ud]) >= 0.05:
                continue
            if not (-0.5 <= uc <= COLOR_SIZE[0] - 0.5 and -0.5 <= vc <= COLOR_SIZE[1] - 0.5):
                continue
            uc, vc = np.clip(uc, 0, COLOR_SIZE[0] - 1), np.clip(vc, 0, COLOR_SIZE[1] - 1)
            u0, v0 = min(int(uc), COLOR_SIZE[0] - 2), min(int(vc), COLOR_SIZE[1] - 2)
            a, b = uc - u0, vc - v0
            value = ((1 - a) * (1 - b) * fmap[:, v0, u0] + a * (1 - b) * fmap[:, v0, u0 + 1]
                     + (1 - a) * b * fmap[:, v0 + 1, u0] + a * b * fmap[:, v0 + 1, u0 + 1])
            total[n] += value
            count[n] += 1
    return np.divide(total, np.maximum(count, 1)[:, None]), count


def test_streaming_equals_all_at_once_and_brute_force():
    points, poses, depths, maps, n_wall = wall_scene()
    one_by_one = backproject_features(points, batches_of(poses, depths, maps, 1), CAMERAS, 3, 0.05, "cpu")
    all_at_once = backproject_features(points, batches_of(poses, depths, maps, len(poses)), CAMERAS, 3, 0.05, "cpu")
    assert np.array_equal(one_by_one.visibility, all_at_once.visibility)
    assert one_by_one.features == pytest.approx(all_at_once.features, abs=1e-5)
    expected, count = brute_force_mean(points, poses, depths, maps)
    assert np.array_equal(one_by_one.visibility, count)
    assert one_by_one.features == pytest.approx(expected, abs=1e-4)
    assert one_by_one.visibility[n_wall:].max() == 0  # points behind the wall
    assert one_by_one.visibility[:n_wall].max() == len(poses)
    assert one_by_one.frames_used.tolist() == list(range(len(poses)))


def test_feature_sampled_with_colour_intrinsics_not_depth():
    # Feature map = colour pixel coordinates; bilinear sampling of a linear map is exact.
    points, poses, depths, _, n_wall = wall_scene(n_frames=1)
    u, v = np.meshgrid(np.arange(COLOR_SIZE[0], dtype=np.float32), np.arange(COLOR_SIZE[1], dtype=np.float32))
    coordinate_map = torch.tensor(np.stack([u, v, np.zeros_like(u)]))
    result = backproject_features(points, batches_of(poses, depths, [coordinate_map], 1), CAMERAS, 3, 0.05, "cpu")
    seen = result.visibility > 0
    cam = (np.linalg.inv(poses[0]) @ np.c_[points, np.ones(len(points))].T).T[:, :3]
    expected_u = K_COLOR[0, 0] * cam[:, 0] / cam[:, 2] + K_COLOR[0, 2]
    expected_v = K_COLOR[1, 1] * cam[:, 1] / cam[:, 2] + K_COLOR[1, 2]
    inner = seen & (expected_u > 0) & (expected_u < COLOR_SIZE[0] - 1) & (expected_v > 0) & (expected_v < COLOR_SIZE[1] - 1)
    assert inner.sum() > 100
    assert result.features[inner, 0] == pytest.approx(expected_u[inner], abs=1e-3)
    assert result.features[inner, 1] == pytest.approx(expected_v[inner], abs=1e-3)


def test_no_frames_gives_zero_visibility():
    points, *_ = wall_scene(n_frames=1)
    result = backproject_features(points, iter(()), CAMERAS, 3, 0.05, "cpu")
    assert result.visibility.sum() == 0 and result.frames_with_visible_points == 0
