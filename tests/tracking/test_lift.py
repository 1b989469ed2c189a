"""Lifting 2D object ids to 3D: hand-computed votes, ground-truth views, and the paper's claim."""

import numpy as np
import pytest

from pipeline.io.artifacts import read_artifact
from pipeline.commands.ingest import run_ingest
from pipeline.commands.keyframe_masks import read_masks2d, run_keyframe_masks
from pipeline.commands.lift import run_lift
from pipeline.commands.superpoints import run_superpoints
from pipeline.commands.track import run_track
from pipeline.outputs.evaluate import instance_ap_from_labels
from pipeline.tracking.lift import (MaskView, Votes, View, count_pairs, instances_from_superpoints, lift_independent,
                           lift_raw_views, lift_views, superpoint_labels)
from pipeline.synth import write_synthetic_scene
from pipeline.tracking.frames import Camera, SceneFrames


def build_scene(root, **spec):
    scene_dir = write_synthetic_scene(root / "room", **spec)
    run_ingest(scene_dir, root / "scene.h5", {"verify_images": "first"})
    run_superpoints(root / "scene.h5", root / "superpoints.h5")
    return root


def test_count_pairs_sums_weights_per_pair():
    a, b, n = count_pairs(np.array([3, 1, 3, 1, 3]), np.array([0, 2, 0, 5, 7]), np.array([1.0, 2, 3, 4, 5]))
    assert list(zip(a.tolist(), b.tolist(), n.tolist())) == [(1, 2, 2), (1, 5, 4), (3, 0, 4), (3, 7, 5)]


def test_superpoint_takes_the_most_voted_object_with_its_share_as_confidence():
    # superpoint 0 = points 0, 1; superpoint 1 = point 2; superpoint 2 = point 3 (never observed)
    point_superpoint = np.array([0, 0, 1, 2])
    votes = Votes(point=np.array([0, 0, 1, 1, 2, 2]), label=np.array([4, 0, 4, 9, 9, 0]),
                  count=np.array([3, 1, 2, 2, 1, 3]))
    sp_label, sp_conf = superpoint_labels(votes, point_superpoint, 3, min_confidence=0.3, min_observations=1)
    # sp 0: object 4 has 5 of 8 observations, object 9 has 2; sp 1: object 9 has 1 of 4 (< 0.3)
    assert sp_label.tolist() == [4, 0, 0] and sp_conf[0] == pytest.approx(5 / 8) and sp_conf[1] == 0
    sp_label, _ = superpoint_labels(votes, point_superpoint, 3, min_confidence=0.25, min_observations=1)
    assert sp_label.tolist() == [4, 9, 0]
    sp_label, _ = superpoint_labels(votes, point_superpoint, 3, min_confidence=0.1, min_observations=5)
    assert sp_label.tolist() == [4, 0, 0]  # sp 1 has only 4 observations


def test_instances_are_consecutive_and_scored_by_mean_confidence():
    sp_label = np.array([7, 7, 3, 0, 5])
    sp_conf = np.array([0.5, 1.0, 0.8, 0.0, 0.9], np.float32)
    point_superpoint = np.array([0, 1, 1, 2, 3, 4])
    point_instance, scores, objects = instances_from_superpoints(sp_label, sp_conf, point_superpoint, min_points=2)
    # object 7 holds points 0-2 (superpoints 0 and 1); objects 3 and 5 hold one point each (< 2)
    assert objects.tolist() == [7] and point_instance.tolist() == [0, 0, 0, -1, -1, -1]
    assert scores.tolist() == pytest.approx([(0.5 + 1.0 + 1.0) / 3])


def wall_view(labels, distance=2.0, keep=False):
    h, w = labels.shape
    return View(labels, np.full((h, w), distance, np.float32), np.eye(4), 0, keep)


def test_lift_views_on_a_wall_with_unknown_pixels_and_per_view_masks():
    camera = Camera(np.array([[10.0, 0, 1.5], [0, 10.0, 1.5], [0, 0, 1]]), 4, 4)
    # four wall points straight in front of pixel columns 0..3 of row 1, and one behind the wall
    xs = (np.arange(4) - 1.5) / 10.0 * 2.0
    points = np.array([[x, (1 - 1.5) / 10 * 2, 2.0] for x in xs] + [[0.0, 0.0, 3.0]], np.float32)
    labels = np.zeros((4, 4), np.int64)
    labels[1] = [5, 5, 6, -1]
    result = lift_views(points, None, [wall_view(labels, keep=True), wall_view(labels)], camera,
                        {"min_instance_points": 1, "min_confidence": 0.5})
    assert result.point_instance.tolist() == [0, 0, 1, -1, -1]
    assert result.instance_object.tolist() == [5, 6]
    assert result.point_observations.tolist() == [2, 2, 2, 0, 0]  # unknown pixel and hidden point: none
    views = result.views
    assert views["mask_object"].tolist() == [5, 6] and views["mask_view"].tolist() == [0, 0]
    assert views["mask_points"][views["mask_offsets"][0]:views["mask_offsets"][1]].tolist() == [0, 1]
    assert views["mask_instance"].tolist() == [0, 1]


def test_raw_view_masks_by_hand_overlap_occlusion_and_minimum():
    """Each 2D mask keeps the observed points at its pixels: masks may overlap (a point in two
    masks is in both), a point behind the wall is in none, masks on too few points are dropped."""
    camera = Camera(np.array([[10.0, 0, 1.5], [0, 10.0, 1.5], [0, 0, 1]]), 4, 4)
    xs = (np.arange(4) - 1.5) / 10.0 * 2.0
    points = np.array([[x, (1 - 1.5) / 10 * 2, 2.0] for x in xs] + [[0.0, 0.0, 3.0]], np.float32)
    masks = np.zeros((4, 4, 4), bool)
    masks[0, 1, :2] = True  # pixels of points 0, 1
    masks[1, 1, 1:] = True  # points 1, 2, 3: overlaps mask 0 at point 1
    masks[2, 0] = True  # a row without points
    masks[3] = True  # the whole image: every wall point, not the hidden one
    view = MaskView(masks, np.array([0.9, 0.8, 0.7, 0.6]), np.array([10, 11, 12, 13]), np.full((4, 4), 2.0, np.float32),
                    np.eye(4), frame_index=7)
    raw = lift_raw_views(points, [view], camera, {"raw_min_points": 1})
    members = [raw["mask_points"][a:b].tolist() for a, b in zip(raw["mask_offsets"][:-1], raw["mask_offsets"][1:])]
    assert members == [[0, 1], [1, 2, 3], [0, 1, 2, 3]]
    assert raw["mask_row"].tolist() == [10, 11, 13] and raw["mask_score"].tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert raw["frame_index"].tolist() == [7] and raw["mask_view"].tolist() == [0, 0, 0]
    raw = lift_raw_views(points, [view], camera, {"raw_min_points": 3})
    assert raw["mask_row"].tolist() == [11, 13]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("lift"), seed=2, preset="tiny", n_frames=24, image_size=(96, 72))


def test_lifting_ground_truth_maps_recovers_the_instances(room):
    """Views labelled with the rendered objectIds (perfectly consistent ids) must lift to AP50 = 1 on
    the points the views observe (synthetic furniture has faces no camera sees: backs against walls)."""
    scene = read_artifact(room / "scene.h5", "scene")
    frames = SceneFrames.from_scene(scene)
    sp = read_artifact(room / "superpoints.h5", "superpoints")["point_superpoint"]
    views = (View(frames.instance(i) + 1, frames.depth(i), frames.pose(i), i) for i in range(len(frames)))
    result = lift_views(scene["vertices"], sp, views, frames.camera)
    gt = np.where(result.point_observations > 0, scene["gt/instance"], -1)
    ap = instance_ap_from_labels(gt, scene["gt/instance_label"], result.point_instance, result.instance_score,
                                 min_region_size=50)
    assert ap.n_gt >= 4 and ap.ap50 == 1.0
    assert result.instance_object.tolist() == sorted(result.instance_object.tolist())
    # each lifted instance carries the objectId (+1) its views gave it
    for instance, object_id in enumerate(result.instance_object):
        members = scene["gt/instance"][result.point_instance == instance]
        assert np.bincount(members[members >= 0]).argmax() == object_id - 1


def test_lift_command_keeps_per_view_masks_for_every_frame_when_asked(room, tmp_path):
    run_keyframe_masks(room / "scene.h5", tmp_path / "m.h5", {"generator": "felzenszwalb", "keyframes": {"stride": 6}})
    run_track(room / "scene.h5", tmp_path / "m.h5", tmp_path / "t.h5")
    run_lift(room / "scene.h5", room / "superpoints.h5", tmp_path / "t.h5", tmp_path / "l.h5", {"per_view": "all"})
    lifted = read_artifact(tmp_path / "l.h5", "lifted")
    assert len(lifted["views/frame_index"]) == 24
    assert lifted["point_instance"].max() + 1 == len(lifted["instance_score"])


def test_lift_command_stores_raw_single_view_masks_that_match_the_2d_masks(room, tmp_path):
    """Oracle 2D masks (one per object a keyframe shows, no noise) lifted without tracking: each raw
    mask's points are the object its pixels show (ground truth), the rows trace back to masks2d.h5,
    and training reads them as the raw_views source."""
    from pipeline.learning.train.data import SceneInputs, load_scene, view_crop

    params = {"generator": "oracle", "keyframes": {"stride": 6}, "min_mask_area": 20}
    run_keyframe_masks(room / "scene.h5", tmp_path / "m.h5", params)
    run_track(room / "scene.h5", tmp_path / "m.h5", tmp_path / "t.h5")
    run_lift(room / "scene.h5", room / "superpoints.h5", tmp_path / "t.h5", tmp_path / "l.h5", masks2d_h5=tmp_path / "m.h5")
    lifted, masks = read_artifact(tmp_path / "l.h5", "lifted"), read_masks2d(tmp_path / "m.h5")
    scene = read_artifact(room / "scene.h5", "scene")
    frames = SceneFrames.from_scene(scene)
    raw = {k: lifted[f"raw_views/{k}"] for k in ("frame_index", "mask_view", "mask_row", "mask_offsets", "mask_points")}
    assert raw["frame_index"].tolist() == masks.keyframe_index.tolist()
    assert len(raw["mask_row"]) == lifted.attrs["n_raw_masks"] >= 2 * len(masks.keyframe_index)
    shares = []
    for m, row in enumerate(raw["mask_row"]):
        position = int(masks.mask_keyframe[row])
        assert raw["frame_index"][raw["mask_view"][m]] == masks.keyframe_index[position]  # its own keyframe
        pixels = masks.masks_of(position).masks[row - np.flatnonzero(masks.mask_keyframe == position)[0]]
        shown = np.bincount(frames.instance(int(masks.keyframe_index[position]))[pixels]).argmax()
        points = raw["mask_points"][raw["mask_offsets"][m]:raw["mask_offsets"][m + 1]]
        assert len(points) >= 20
        shares.append(np.mean(scene["gt/instance"][points] == shown))
    # At 96x72 pixels a mask's border pixels also see points of what lies next to or behind the
    # object (within the depth tolerance): most masks are pure, none is mostly something else.
    assert np.median(shares) > 0.95 and min(shares) > 0.6, np.round(np.sort(shares), 2)
    # The trainer's raw_views source: one crop per keyframe, one target per mask.
    train_scene = load_scene(SceneInputs("room", room / "scene.h5", room / "superpoints.h5", lifted=tmp_path / "l.h5"))
    assert train_scene.raw_views is not None and train_scene.views is not None
    assert train_scene.raw_views.view_ids().tolist() == sorted(set(raw["mask_view"].tolist()))
    _, targets = view_crop(train_scene, train_scene.raw_views, 0)
    assert len(targets) == int(np.sum(raw["mask_view"] == 0))


def test_lift_command_streams_the_same_per_view_masks_it_would_hold(room, tmp_path):
    """run_lift appends every mask's points to lifted.h5 as it goes (memory flat in the number of
    keyframes); the arrays are exactly what lift_views / lift_raw_views return in memory."""
    from pipeline.commands.keyframe_masks import open_masks2d
    from pipeline.commands.lift import keyframe_mask_views, tracked_views
    from pipeline.params import LiftParams
    from pipeline.tracking.frames import Camera

    run_keyframe_masks(room / "scene.h5", tmp_path / "m.h5", {"generator": "felzenszwalb", "keyframes": {"stride": 4}})
    run_track(room / "scene.h5", tmp_path / "m.h5", tmp_path / "t.h5")
    run_lift(room / "scene.h5", room / "superpoints.h5", tmp_path / "t.h5", tmp_path / "l.h5", masks2d_h5=tmp_path / "m.h5")
    lifted = read_artifact(tmp_path / "l.h5", "lifted")
    scene = read_artifact(room / "scene.h5", "scene")
    sp = read_artifact(room / "superpoints.h5", "superpoints")["point_superpoint"]
    tracks = read_artifact(tmp_path / "t.h5", "tracks")
    frames = SceneFrames.from_scene(scene)
    camera = Camera(tracks["camera/intrinsic"], int(tracks.attrs["width"]), int(tracks.attrs["height"]))
    in_memory = lift_views(scene["vertices"], sp, tracked_views(frames, tracks, LiftParams()), camera).views
    with open_masks2d(tmp_path / "m.h5") as masks:
        raw = lift_raw_views(scene["vertices"], keyframe_mask_views(frames, masks), camera)
    assert len(in_memory["mask_points"]) > 0 and len(raw["mask_points"]) > 0
    for group, arrays in (("views", in_memory), ("raw_views", raw)):
        for name, array in arrays.items():
            np.testing.assert_array_equal(lifted[f"{group}/{name}"], array, err_msg=f"{group}/{name}")


def test_lift_without_masks2d_has_no_raw_views(room, tmp_path):
    run_keyframe_masks(room / "scene.h5", tmp_path / "m.h5", {"generator": "felzenszwalb", "keyframes": {"stride": 12}})
    run_track(room / "scene.h5", tmp_path / "m.h5", tmp_path / "t.h5")
    run_lift(room / "scene.h5", room / "superpoints.h5", tmp_path / "t.h5", tmp_path / "l.h5")
    assert "raw_views/mask_points" not in read_artifact(tmp_path / "l.h5", "lifted")


def independent_views(masks, frames):
    """Each keyframe's masks with ids of their own (no association across frames)."""
    for position, index in enumerate(masks.keyframe_index):
        mask_set = masks.masks_of(position)
        labels = np.zeros((masks.height, masks.width), np.int64)
        for k in np.argsort(-mask_set.areas):  # larger first, so smaller masks stay on top
            labels[mask_set.masks[k]] = k + 1
        yield View(labels, frames.depth(int(index)), frames.pose(int(index)), int(index))


NOISE = {"p_split": 0.3, "p_merge": 0.1, "seed": 0, "min_area": 20}


def tracked_and_independent_ap50(root, noise):
    params = {"generator": "oracle", "keyframes": {"stride": 5}, "min_mask_area": 20, "oracle": noise}
    run_keyframe_masks(root / "scene.h5", root / "masks2d.h5", params)
    run_track(root / "scene.h5", root / "masks2d.h5", root / "tracks.h5")
    run_lift(root / "scene.h5", root / "superpoints.h5", root / "tracks.h5", root / "lifted.h5")
    scene = read_artifact(root / "scene.h5", "scene")
    gt, labels = scene["gt/instance"], scene["gt/instance_label"]
    lifted = read_artifact(root / "lifted.h5", "lifted")
    tracked = instance_ap_from_labels(gt, labels, lifted["point_instance"], lifted["instance_score"]).ap50
    frames = SceneFrames.from_scene(scene)
    sp = read_artifact(root / "superpoints.h5", "superpoints")["point_superpoint"]
    baseline = lift_independent(scene["vertices"], sp, independent_views(read_masks2d(root / "masks2d.h5"), frames),
                                frames.camera)
    independent = instance_ap_from_labels(gt, labels, baseline.point_instance, baseline.instance_score).ap50
    return tracked, independent


def test_tracking_beats_independent_per_frame_masks_under_granularity_noise(tmp_path):
    """The paper's claim: with masks whose granularity changes from frame to frame (objects cut into
    parts with probability 0.3, merged with a neighbour with probability 0.1), lifting tracked masks
    gives a higher class-agnostic AP50 than lifting each frame's masks on their own and merging them
    in 3D. Two generated rooms (the first two seeds), 60 frames each."""
    results = []
    for seed in (1, 2):
        root = build_scene(tmp_path / f"seed{seed}", seed=seed, n_frames=60, image_size=(160, 120))
        results.append(tracked_and_independent_ap50(root, NOISE))
    tracked, independent = np.mean(results, axis=0)
    print(f"AP50 tracked {tracked:.3f} vs independent {independent:.3f} per scene {results}")
    assert tracked >= independent + 0.1
