"""The keyframe_masks -> track -> lift stages on generated scenes (weight-free backends)."""

import logging

import numpy as np
import pytest

from pipeline.io.artifacts import read_artifact
from pipeline.commands.ingest import run_ingest
from pipeline.commands.keyframe_masks import read_masks2d, run_keyframe_masks
from pipeline.commands.lift import run_lift
from pipeline.commands.superpoints import run_superpoints
from pipeline.commands.track import run_track
from pipeline.errors import InputError
from pipeline.io.ply import write_ply
from pipeline.synth import write_synthetic_scene
from pipeline.tracking import driver as driver_module
from pipeline.tracking.driver import UNKNOWN_LABEL
from pipeline.tracking.frames import SceneFrames

ORACLE = {"generator": "oracle", "keyframes": {"stride": 5}, "min_mask_area": 20, "oracle": {"min_area": 20}}


def build_scene(root, name="room", **spec):
    """A generated scene plus its scene.h5 and superpoints.h5; returns the folder of the .h5 files."""
    scene_dir = write_synthetic_scene(root / name, **spec)
    run_ingest(scene_dir, root / "scene.h5", {"verify_images": "first"})
    run_superpoints(root / "scene.h5", root / "superpoints.h5")
    return root


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    # Colour at twice the depth resolution exercises the resampling into the depth camera.
    root = build_scene(tmp_path_factory.mktemp("tracked"), seed=3, preset="tiny", n_frames=30,
                       image_size=(96, 72), color_size=(192, 144))
    run_keyframe_masks(root / "scene.h5", root / "masks2d.h5", ORACLE)
    run_track(root / "scene.h5", root / "masks2d.h5", root / "tracks.h5", {"checkpoint_every": 0})
    return root


def test_masks2d_layout(scene):
    masks = read_masks2d(scene / "masks2d.h5")
    assert (masks.width, masks.height) == (96, 72)
    assert masks.keyframe_index.tolist() == list(range(0, 30, 5))
    assert len(masks.scores) == masks.attrs["n_masks"] > 0
    first = masks.masks_of(0)
    assert first.masks.shape[1:] == (72, 96) and np.all(first.areas >= 20)


def test_tracked_objects_are_pure_and_keep_their_ids(scene):
    tracks = read_artifact(scene / "tracks.h5", "tracks")
    frames = SceneFrames.from_scene(read_artifact(scene / "scene.h5", "scene"))
    labels = tracks["labels"]
    assert labels.shape == (30, 72, 96) and labels.dtype == np.uint16
    pixels: dict[int, dict[int, int]] = {}
    for step, index in enumerate(tracks["frames/index"]):
        truth = frames.instance(int(index))
        for obj in np.unique(labels[step]):
            if obj in (0, UNKNOWN_LABEL):
                continue
            gt, counts = np.unique(truth[labels[step] == obj], return_counts=True)
            for g, c in zip(gt, counts):
                pixels.setdefault(int(obj), {}).setdefault(int(g), 0)
                pixels[int(obj)][int(g)] += int(c)
    assert pixels, "nothing was tracked"
    total = sum(sum(v.values()) for v in pixels.values())
    majority = sum(max(v.values()) for v in pixels.values())
    assert majority / total > 0.95  # an id stays on one real object across all frames
    objects_per_gt = {}
    for obj, gts in pixels.items():
        objects_per_gt.setdefault(max(gts, key=gts.get), []).append(obj)
    assert np.mean([len(v) for v in objects_per_gt.values()]) < 1.5  # few duplicate identities


def test_state_history_is_logged(scene):
    tracks = read_artifact(scene / "tracks.h5", "tracks")
    history_objects = tracks["history/object"]
    for obj in tracks["objects/id"]:
        rows = np.flatnonzero(history_objects == obj)
        assert tracks["history/from_state"][rows[0]] == -1  # every object's first entry creates it
        assert np.all(np.diff(tracks["history/step"][rows]) >= 0)
    assert set(tracks["history/reason"]) >= {"new mask", "vanished"}
    assert tracks["history/frame_id"].shape == tracks["history/step"].shape
    assert tracks.attrs["resumed_from_step"] == -1 and tracks.attrs["empty_reason"] == ""


def test_killed_track_job_resumes_where_it_stopped(scene, tmp_path, monkeypatch):
    out = tmp_path / "tracks.h5"
    params = {"checkpoint_every": 4}
    real_step = driver_module.TrackingDriver.step

    def dying_step(self, step):
        if step == 14:
            raise KeyboardInterrupt("killed")
        return real_step(self, step)

    monkeypatch.setattr(driver_module.TrackingDriver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_track(scene / "scene.h5", scene / "masks2d.h5", out, params)
    assert not out.exists()
    resume_dir = tmp_path / "tracks.h5.resume"
    assert sorted(p.name for p in resume_dir.iterdir()) == ["chunk_00000000_00000004.npz", "chunk_00000004_00000008.npz",
                                                             "chunk_00000008_00000012.npz", "state.npz"]
    monkeypatch.setattr(driver_module.TrackingDriver, "step", real_step)
    run_track(scene / "scene.h5", scene / "masks2d.h5", out, params)
    resumed = read_artifact(out, "tracks")
    reference = read_artifact(scene / "tracks.h5", "tracks")
    assert resumed.attrs["resumed_from_step"] == 12
    assert np.array_equal(resumed["labels"], reference["labels"])
    assert np.array_equal(resumed["history/object"], reference["history/object"])
    assert not resume_dir.exists()


def test_killed_keyframe_masks_job_resumes_after_its_last_saved_keyframe(scene, tmp_path, monkeypatch):
    from pipeline.commands import keyframe_masks as stage

    out = tmp_path / "masks2d.h5"
    params = {**ORACLE, "checkpoint_every": 2}
    real_clean = stage.clean_masks
    calls = []

    def dying_clean(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # the 6th keyframe: keyframes 0-3 were saved, 4 is lost
            raise KeyboardInterrupt("killed")
        return real_clean(*args, **kwargs)

    monkeypatch.setattr(stage, "clean_masks", dying_clean)
    with pytest.raises(KeyboardInterrupt):
        run_keyframe_masks(scene / "scene.h5", out, params)
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "masks2d.h5.resume").iterdir()) == [
        "chunk_00000000_00000002.npz", "chunk_00000002_00000004.npz", "state.npz"]
    calls.clear()
    monkeypatch.setattr(stage, "clean_masks", real_clean)
    run_keyframe_masks(scene / "scene.h5", out, params)
    resumed, reference = read_artifact(out, "masks2d"), read_artifact(scene / "masks2d.h5", "masks2d")
    assert resumed.attrs["resumed_from_keyframe"] == 4
    for name in ("masks/bits", "masks/keyframe", "masks/score", "masks/area", "keyframes/n_masks", "keyframes/n_raw"):
        assert np.array_equal(resumed[name], reference[name]), name
    assert not (tmp_path / "masks2d.h5.resume").exists()


def test_resume_data_for_other_parameters_is_discarded(scene, tmp_path, monkeypatch):
    out = tmp_path / "tracks.h5"
    real_step = driver_module.TrackingDriver.step

    def dying_step(self, step):
        if step == 9:
            raise KeyboardInterrupt("killed")
        return real_step(self, step)

    monkeypatch.setattr(driver_module.TrackingDriver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_track(scene / "scene.h5", scene / "masks2d.h5", out, {"checkpoint_every": 4})
    monkeypatch.setattr(driver_module.TrackingDriver, "step", real_step)
    run_track(scene / "scene.h5", scene / "masks2d.h5", out, {"checkpoint_every": 4, "tau_iou": 0.6})
    assert read_artifact(out, "tracks").attrs["resumed_from_step"] == -1


def test_object_cap_is_enforced_and_reported(scene, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        run_track(scene / "scene.h5", scene / "masks2d.h5", tmp_path / "capped.h5", {"max_objects": 2})
    tracks = read_artifact(tmp_path / "capped.h5", "tracks")
    assert tracks.attrs["n_refused"] > 0 and "max_objects=2" in caplog.text
    states = tracks["objects/state"]
    assert np.sum(states != 2) <= 2  # never more than two live objects at the end
    for labels in tracks["labels"]:
        present = set(np.unique(labels).tolist()) - {0, UNKNOWN_LABEL}
        assert len(present) <= 2


def test_lift_gives_instances_and_per_view_masks(scene):
    run_lift(scene / "scene.h5", scene / "superpoints.h5", scene / "tracks.h5", scene / "lifted.h5")
    lifted = read_artifact(scene / "lifted.h5", "lifted", required=["point_instance", "instance_score"])
    n_points = len(read_artifact(scene / "scene.h5", "scene")["vertices"])
    point_instance, scores = lifted["point_instance"], lifted["instance_score"]
    assert point_instance.shape == (n_points,) and point_instance.dtype == np.int32
    assert scores.dtype == np.float32 and len(scores) == point_instance.max() + 1
    assert np.all((scores > 0) & (scores <= 1))
    offsets, points = lifted["views/mask_offsets"], lifted["views/mask_points"]
    assert len(lifted["views/frame_index"]) == 6  # one per keyframe
    assert offsets[-1] == len(points) and len(offsets) == len(lifted["views/mask_object"]) + 1
    assert np.all(lifted["views/mask_object"] > 0)


def test_every_mask_filtered_out_gives_valid_empty_results(scene, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        run_keyframe_masks(scene / "scene.h5", tmp_path / "masks2d.h5", {**ORACLE, "min_mask_area": 10**6})
    masks = read_masks2d(tmp_path / "masks2d.h5")
    assert masks.attrs["n_empty_keyframes"] == masks.attrs["n_keyframes"] == 6 and len(masks.scores) == 0
    assert "no mask left" in caplog.text
    run_track(scene / "scene.h5", tmp_path / "masks2d.h5", tmp_path / "tracks.h5")
    tracks = read_artifact(tmp_path / "tracks.h5", "tracks")
    assert tracks.attrs["n_objects"] == 0 and len(tracks["labels"]) == 30
    run_lift(scene / "scene.h5", scene / "superpoints.h5", tmp_path / "tracks.h5", tmp_path / "lifted.h5")
    lifted = read_artifact(tmp_path / "lifted.h5", "lifted")
    assert np.all(lifted["point_instance"] == -1) and len(lifted["instance_score"]) == 0


def test_missing_sam2_checkpoint_fails_cleanly(scene, tmp_path):
    out = tmp_path / "tracks.h5"
    with pytest.raises(InputError, match="missing.pt"):
        run_track(scene / "scene.h5", scene / "masks2d.h5", out,
                  {"tracker": "sam2", "sam2": {"checkpoint": str(tmp_path / "missing.pt")}})
    assert not out.exists() and not (tmp_path / "tracks.h5.resume").exists()


def test_scene_without_valid_poses_has_no_keyframes(tmp_path):
    root = build_scene(tmp_path, seed=1, preset="tiny", n_frames=4, image_size=(32, 24), invalid_poses=4)
    run_keyframe_masks(root / "scene.h5", root / "masks2d.h5", ORACLE)
    assert read_masks2d(root / "masks2d.h5").attrs["empty_reason"].startswith("no keyframe")
    run_track(root / "scene.h5", root / "masks2d.h5", root / "tracks.h5")
    assert read_artifact(root / "tracks.h5", "tracks").attrs["empty_reason"].startswith("no keyframes")
    run_lift(root / "scene.h5", root / "superpoints.h5", root / "tracks.h5", root / "lifted.h5")
    assert np.all(read_artifact(root / "lifted.h5", "lifted")["point_instance"] == -1)


def test_point_cloud_scene_gives_explicitly_empty_artifacts(tmp_path):
    scene_dir = tmp_path / "cloud"
    scene_dir.mkdir()
    rng = np.random.default_rng(0)
    write_ply(scene_dir / "points.ply", rng.random((500, 3)).astype(np.float32),
              (rng.random((500, 3)) * 255).astype(np.uint8))
    run_ingest(scene_dir, tmp_path / "scene.h5")
    run_superpoints(tmp_path / "scene.h5", tmp_path / "superpoints.h5")
    run_keyframe_masks(tmp_path / "scene.h5", tmp_path / "masks2d.h5", {"generator": "sam"})  # no weights needed
    run_track(tmp_path / "scene.h5", tmp_path / "masks2d.h5", tmp_path / "tracks.h5", {"tracker": "sam2"})
    run_lift(tmp_path / "scene.h5", tmp_path / "superpoints.h5", tmp_path / "tracks.h5", tmp_path / "lifted.h5")
    for name, stage in (("masks2d", "masks2d"), ("tracks", "tracks"), ("lifted", "lifted")):
        art = read_artifact(tmp_path / f"{name}.h5", stage)
        assert "point cloud" in art.attrs["empty_reason"]
    lifted = read_artifact(tmp_path / "lifted.h5", "lifted")
    assert lifted["point_instance"].shape == (500,) and np.all(lifted["point_instance"] == -1)
