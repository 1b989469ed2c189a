"""Rendering: hand-computed depth, and agreement of depth / instance maps with the mesh geometry."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from pipeline.synth import Room, camera_trajectory, default_intrinsic, generate_room, look_at, project, render_frames
from pipeline.synth.room import RoomParams


def _quad_room(corners, color=(255, 0, 0)) -> Room:
    """A room made of one rectangle (instance 0) given its four corners in order."""
    vertices = np.asarray(corners, np.float32)
    return Room(vertices=vertices, faces=np.array([[0, 1, 2], [0, 2, 3]], np.int32),
                colors=np.tile(np.asarray(color, np.uint8), (4, 1)), instance=np.zeros(4, np.int32),
                segment=np.zeros(4, np.int64), labels=["floor"], parts=[], size=(10.0, 10.0, 3.0), seed=0,
                params=RoomParams())


def test_look_at_follows_the_opencv_convention():
    pose = look_at((0, 0, 1.5), (2, 0, 1.5))  # looking along +x with z up
    assert np.allclose(pose[:3, 2], [1, 0, 0])  # camera z: forward
    assert np.allclose(pose[:3, 0], [0, -1, 0])  # camera x: to the right (= -y when facing +x)
    assert np.allclose(pose[:3, 1], [0, 0, -1])  # camera y: down
    intrinsic = default_intrinsic(161, 121)
    uv, z = project(np.array([[2.0, 0, 1.5], [2.0, -0.5, 1.5], [2.0, 0, 1.0]]), pose, intrinsic)
    assert np.allclose(uv[0], [80, 60]) and z[0] == pytest.approx(2.0)
    assert uv[1, 0] > 80 and uv[2, 1] > 60  # a point to the right is right, a point below is below


def test_depth_of_a_wall_facing_the_camera_is_its_distance():
    wall = _quad_room([(2, -5, -5), (2, 5, -5), (2, 5, 5), (2, -5, 5)])
    pose = look_at((0, 0, 0), (1, 0, 0))
    (color, depth, instance), = render_frames(wall, [pose], default_intrinsic(64, 48), (64, 48))
    assert np.all(depth == 2000)  # z-depth, not the ray length, so the whole image reads 2 m
    assert np.all(instance == 0)
    assert np.all(color[..., 0] > 150) and np.all(color[..., 1:] == 0)  # red, only shaded


def test_depth_of_a_floor_seen_at_45_degrees_matches_trigonometry():
    floor = _quad_room([(-20, -20, 0), (20, -20, 0), (20, 20, 0), (-20, 20, 0)])
    height, size = 1.5, (161, 121)
    # A wide view (fy = 40 px, about 113 degrees vertically) so the horizon, 45 degrees above the
    # optical axis, lies inside the image.
    intrinsic = default_intrinsic(*size, focal_ratio=0.25)
    pose = look_at((0, 0, height), (height, 0, 0))  # pitched down by 45 degrees
    (_, depth, instance), = render_frames(floor, [pose], intrinsic, size, max_depth=30.0)
    for row in (60, 90, 120, 40, 30):
        below_axis = np.arctan((row - intrinsic[1, 2]) / intrinsic[1, 1])
        expected = height / np.sin(np.pi / 4 + below_axis) * np.cos(below_axis)  # z-depth on the axis
        assert depth[row, 80] == pytest.approx(expected * 1000, abs=1.0)
        assert instance[row, 80] == 0
    # Rays at or above the horizon never reach the floor: no reading, no instance.
    horizon_row = int(np.floor(intrinsic[1, 2] - intrinsic[1, 1]))
    assert 10 <= horizon_row < 30  # the horizon is in view (row 19), with rows above it
    assert np.all(depth[: horizon_row + 1] == 0) and np.all(instance[: horizon_row + 1] == -1)
    assert np.all(depth[30:] > 0) and np.all(instance[30:] == 0)  # and the floor fills every row below


def test_max_depth_cuts_far_surfaces():
    wall = _quad_room([(5, -5, -5), (5, 5, -5), (5, 5, 5), (5, -5, 5)])
    (_, depth, instance), = render_frames(wall, [look_at((0, 0, 0), (1, 0, 0))], default_intrinsic(32, 24), (32, 24),
                                          max_depth=4.0)
    assert np.all(depth == 0) and np.all(instance == -1)


def _on_another_instance(room) -> np.ndarray:
    """Vertices lying on a part of another instance (a leg's foot on the floor, a wall's edge at the
    floor, a book's edge on its shelf board): there two surfaces meet and either id is correct."""
    touching = np.zeros(len(room.vertices), bool)
    for part in room.parts:
        gap = np.maximum(np.maximum(np.array(part.box_min) - room.vertices, room.vertices - np.array(part.box_max)), 0)
        touching |= (np.linalg.norm(gap, axis=1) < 1e-3) & (room.instance != part.instance)
    return touching


@pytest.fixture(scope="module")
def rendered():
    room = generate_room(1, "tiny")
    size = (320, 240)
    intrinsic = default_intrinsic(*size)
    poses = camera_trajectory(room, 6)
    frames = list(render_frames(room, poses, intrinsic, size))
    return room, poses, intrinsic, size, frames


def test_rendering_is_deterministic(rendered):
    room, poses, intrinsic, size, frames = rendered
    again = list(render_frames(room, poses[:2], intrinsic, size))
    for first, second in zip(frames[:2], again):
        for a, b in zip(first, second):
            assert np.array_equal(a, b)


def test_projected_vertices_land_on_their_instance_at_their_depth(rendered):
    """Forward check: project every vertex with pose and intrinsics; where the rendered depth agrees
    with the vertex's own z-depth (the vertex is visible) the instance map must show its objectId,
    and nothing may be rendered behind a vertex in view. Wrong pose or intrinsic conventions make
    the depths disagree almost everywhere."""
    room, poses, intrinsic, size, frames = rendered
    unambiguous = ~_on_another_instance(room)
    assert unambiguous.mean() > 0.8
    for pose, frame in zip(poses, frames):
        uv, z = project(room.vertices, pose, intrinsic)
        pixel = np.rint(uv).astype(int)
        in_view = (z > 0.1) & np.all(pixel >= 0, axis=1) & (pixel[:, 0] < size[0]) & (pixel[:, 1] < size[1])
        cols, rows = pixel[in_view, 0], pixel[in_view, 1]
        rendered_z = frame.depth_mm[rows, cols] / 1000.0
        vertex_z = z[in_view]
        visible = np.abs(rendered_z - vertex_z) < 0.02
        assert visible.mean() > 0.25  # a large share of what projects into the image is seen
        check = visible & unambiguous[in_view]
        hit_instance = frame.instance[rows[check], cols[check]]
        assert np.mean(hit_instance == room.instance[in_view][check]) > 0.99  # rest: silhouettes within 2 cm of a surface behind
        # Occlusion only ever brings surfaces closer. At silhouettes the nearest pixel centre may miss
        # the vertex's surface, so use the nearest reading in the 3x3 neighbourhood.
        padded = np.pad(np.where(frame.depth_mm > 0, frame.depth_mm / 1000.0, np.inf), 1, constant_values=np.inf)
        nearest_z = np.min([padded[rows + 1 + dr, cols + 1 + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=0)
        assert np.mean(nearest_z <= vertex_z + 0.02) > 0.995


def test_back_projected_pixels_lie_on_their_instance(rendered):
    """Backward check: lift every depth pixel to 3D with the intrinsics and pose; the point must lie on
    the mesh (near a vertex), inside the bounds of the instance the instance map names, and the
    nearest vertex should belong to that instance."""
    room, poses, intrinsic, size, frames = rendered
    tree = cKDTree(room.vertices)
    box_min, box_max = room.instance_bounds()
    max_gap = max(room.params.spacing, room.params.structure_spacing) / np.sqrt(2) + 0.003
    for pose, frame in zip(poses, frames):
        rows, cols = np.nonzero(frame.depth_mm)
        z = frame.depth_mm[rows, cols] / 1000.0
        camera = np.stack([(cols - intrinsic[0, 2]) / intrinsic[0, 0] * z, (rows - intrinsic[1, 2]) / intrinsic[1, 1] * z, z], 1)
        world = camera @ pose[:3, :3].T + pose[:3, 3]
        distance, nearest = tree.query(world)
        assert distance.max() < max_gap
        ids = frame.instance[rows, cols]
        assert np.all(ids >= 0)
        tolerance = 0.002  # depth is rounded to whole millimetres
        assert np.all((world >= box_min[ids] - tolerance) & (world <= box_max[ids] + tolerance))
        assert np.mean(room.instance[nearest] == ids) > 0.95


def test_colour_can_use_its_own_camera(rendered):
    room, poses, intrinsic, size, _ = rendered
    color_size = (640, 480)
    (color, depth, instance), = render_frames(room, poses[:1], intrinsic, size,
                                              color_intrinsic=default_intrinsic(*color_size), color_size=color_size)
    assert color.shape == (480, 640, 3) and depth.shape == (240, 320) and instance.shape == (240, 320)
    assert color.mean() > 30  # a lit room, not a black image
