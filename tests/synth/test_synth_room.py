"""Procedural rooms: determinism, guaranteed box relations, no interpenetration, ground-truth structure."""

import numpy as np
import pytest

from pipeline.scene.geometry import mesh_vertex_normals
from pipeline.synth import camera_trajectory, generate_room
from pipeline.synth.writer import aggregation_json, boxes_json

SEEDS = range(6)


@pytest.fixture(scope="module")
def rooms():
    return {(preset, seed): generate_room(seed, preset) for preset in ("tiny", "default") for seed in SEEDS}


def _box_arrays(room):
    boxes = boxes_json(room)["boxes"]
    center = np.array([b["center"] for b in boxes])
    size = np.array([b["size"] for b in boxes])
    return boxes, center - size / 2, center + size / 2


def test_same_seed_gives_identical_arrays_and_different_seed_differs():
    a, b, c = generate_room(3, "tiny"), generate_room(3, "tiny"), generate_room(4, "tiny")
    for name in ("vertices", "faces", "colors", "instance", "segment"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.labels == b.labels
    assert a.vertices.shape != c.vertices.shape or not np.array_equal(a.vertices, c.vertices)
    assert not np.array_equal(a.colors[:1000], c.colors[:1000])


def test_vertex_counts_match_the_presets(rooms):
    for (preset, seed), room in rooms.items():
        low, high = (8_000, 15_000) if preset == "tiny" else (42_000, 60_000)
        assert low <= len(room.vertices) <= high, (preset, seed, len(room.vertices))


def test_mesh_arrays_are_consistent(rooms):
    for room in rooms.values():
        n = len(room.vertices)
        assert room.vertices.dtype == np.float32 and room.colors.dtype == np.uint8
        assert room.faces.min() >= 0 and room.faces.max() < n
        assert room.instance.shape == (n,) and room.instance.min() == 0 and room.instance.max() == room.n_instances - 1
        # Triangles never join two instances, so every face has one objectId.
        assert np.all(room.instance[room.faces] == room.instance[room.faces[:, :1]])
        assert np.all(np.bincount(room.instance, minlength=room.n_instances) > 0)
        assert room.labels[0] == "floor" and room.labels[1:5] == ["wall"] * 4


def test_segments_never_straddle_instances_and_split_large_instances(rooms):
    room = rooms[("default", 0)]
    segment_ids, first = np.unique(room.segment, return_index=True)
    for seg, start in zip(segment_ids, first):
        assert seg == start  # named after their first vertex, like ScanNet's segmentator
    owner = {}
    for seg, inst in zip(room.segment, room.instance):
        assert owner.setdefault(seg, inst) == inst
    groups = aggregation_json(room, "x")["segGroups"]
    assert all(len(g["segments"]) >= 1 for g in groups)
    assert len(groups[0]["segments"]) > 10  # the floor is split into patches
    assert any(len(g["segments"]) >= 5 for g in groups if g["label"] == "table")  # one or more per part


def test_no_two_instances_interpenetrate(rooms):
    for (preset, seed), room in rooms.items():
        lo = np.array([p.box_min for p in room.parts])
        hi = np.array([p.box_max for p in room.parts])
        owner = np.array([p.instance for p in room.parts])
        overlap = np.all((lo[:, None] < hi[None] - 1e-9) & (lo[None] < hi[:, None] - 1e-9), axis=2)
        different = owner[:, None] != owner[None]
        assert not np.any(overlap & different), (preset, seed)
        assert np.all(lo >= -1e-9) and np.all(hi <= np.array(room.size) + 1e-9)


def test_boxes_contain_their_instance_and_skip_floor_and_walls(rooms):
    for room in rooms.values():
        boxes, box_min, box_max = _box_arrays(room)
        assert {b["label"] for b in boxes}.isdisjoint({"floor", "wall"})
        assert len(boxes) == room.n_instances - 5
        for box, lo, hi in zip(boxes, box_min, box_max):
            points = room.vertices[room.instance == box["instance_id"]]
            assert box["label"] == room.labels[box["instance_id"]]
            assert np.all(points >= lo - 1e-6) and np.all(points <= hi + 1e-6)
            assert np.allclose(points.min(0), lo, atol=1e-6) and np.allclose(points.max(0), hi, atol=1e-6)


def test_every_room_has_nested_overlapping_and_resting_boxes(rooms):
    for (preset, seed), room in rooms.items():
        boxes, lo, hi = _box_arrays(room)
        labels = [b["label"] for b in boxes]
        eps = 1e-6
        inside = np.all((lo[:, None] >= lo[None] - eps) & (hi[:, None] <= hi[None] + eps), axis=2)
        np.fill_diagonal(inside, False)
        assert inside.any(), (preset, seed)  # e.g. a book inside its shelf's box
        overlap = np.all((lo[:, None] < hi[None] - 0.01) & (lo[None] < hi[:, None] - 0.01), axis=2)
        np.fill_diagonal(overlap, False)
        chair_table = [(i, j) for i, j in zip(*np.nonzero(overlap)) if labels[i] == "chair" and labels[j] == "table"]
        assert chair_table, (preset, seed)  # a chair tucked under a table
        resting = [(i, j) for i in range(len(boxes)) for j in range(len(boxes))
                   if labels[i] in ("box", "cup") and labels[j] == "table" and abs(lo[i, 2] - hi[j, 2]) < 1e-5
                   and np.all(lo[i, :2] >= lo[j, :2]) and np.all(hi[i, :2] <= hi[j, :2])]
        assert resting, (preset, seed)  # an object standing on a table top


def test_floor_faces_up_and_walls_face_into_the_room():
    room = generate_room(0, "tiny")
    normals = mesh_vertex_normals(room.vertices, room.faces)
    floor = room.instance == 0
    assert np.all(normals[floor][:, 2] > 0.99)
    centre = np.array(room.size) / 2
    for wall in range(1, 5):
        mask = room.instance == wall
        towards_centre = centre - room.vertices[mask]
        assert np.all(np.einsum("ij,ij->i", normals[mask][:, :2], towards_centre[:, :2]) > 0)


def test_camera_loop_stays_clear_of_furniture_and_inside_the_room(rooms):
    for (preset, seed), room in rooms.items():
        poses = camera_trajectory(room, 40)
        eyes = poses[:, :3, 3]
        assert np.all(eyes > 0) and np.all(eyes < np.array(room.size))
        for part in room.parts:
            if room.labels[part.instance] in ("floor", "wall"):
                continue
            gap = np.maximum(np.maximum(np.array(part.box_min) - eyes, eyes - np.array(part.box_max)), 0)
            assert np.all(np.linalg.norm(gap, axis=1) > 0.3), (preset, seed, room.labels[part.instance])
        rotations = poses[:, :3, :3]
        assert np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-9)
        assert np.allclose(np.linalg.det(rotations), 1.0)
        steps = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
        assert steps.max() < 0.5  # smooth: no jumps between consecutive frames


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="n_shelves"):
        generate_room(0, "tiny", n_shelves=0)
    with pytest.raises(ValueError, match="unknown room parameter"):
        generate_room(0, "tiny", n_sofas=2)
    with pytest.raises(ValueError, match="preset"):
        generate_room(0, "huge")
    room = generate_room(0, "tiny", room_size=(3.2, 2.8, 2.5), n_chairs=3)
    assert room.size == (3.2, 2.8, 2.5) and room.labels.count("chair") == 3
