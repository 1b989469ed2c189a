"""The SAM 2 tracker with tiny random-weight models, through the real stage code end to end:
SAM automatic masks on keyframes -> SAM 2 video propagation in windows -> lifting."""

import numpy as np
import pytest

from tracking.masks2d.test_sam import TINY as TINY_SAM
from tracking.masks2d.test_sam2_amg import TINY_CONFIG, TINY_SAM2_OVERRIDES, save_tiny_sam2
from pipeline.io.artifacts import read_artifact
from pipeline.commands.ingest import run_ingest
from pipeline.commands.keyframe_masks import read_masks2d, run_keyframe_masks
from pipeline.commands.lift import run_lift
from pipeline.commands.superpoints import run_superpoints
from pipeline.commands.track import run_track
from pipeline.tracking.masks2d.sam import architecture_of, build_sam
from pipeline.synth import write_synthetic_scene
from pipeline.tracking import driver as driver_module
from pipeline.tracking.sam2_tracker import labels_from_logits


def test_labels_take_the_highest_positive_logit():
    logits = np.array([[[1.0, -2.0, 0.5]], [[2.0, -1.0, -3.0]]])[:, None]  # (2 objects, 1, 1, 3)
    assert labels_from_logits([7, 9], logits).tolist() == [[9, 0, 7]]
    assert labels_from_logits([], np.zeros((0, 1, 2, 2))).shape == (2, 2)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("sam2track")
    scene_dir = write_synthetic_scene(root / "room", seed=5, preset="tiny", n_frames=10, image_size=(64, 48))
    run_ingest(scene_dir, root / "scene.h5", {"verify_images": "first"})
    run_superpoints(root / "scene.h5", root / "superpoints.h5")
    torch.manual_seed(0)
    torch.save(build_sam(architecture_of("vit_b", TINY_SAM)).state_dict(), root / "sam.pth")
    save_tiny_sam2(root / "sam2.pt", video=True)
    sam = {"model_type": "vit_b", "architecture": TINY_SAM, "checkpoint": str(root / "sam.pth"),
           "points_per_side": 3, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    run_keyframe_masks(root / "scene.h5", root / "masks2d.h5",
                       {"generator": "sam", "device": "cpu", "sam": sam, "keyframes": {"stride": 3},
                        "min_mask_area": 10, "tau_contain": 0.95, "max_masks_per_frame": 3})
    track = {"tracker": "sam2", "device": "cpu", "checkpoint_every": 1, "min_new_pixels": 10,
             "sam2": {"model_config": TINY_CONFIG, "hydra_overrides": TINY_SAM2_OVERRIDES,
                      "checkpoint": str(root / "sam2.pt"), "window": 4, "max_anchor_frames": 2}}
    run_track(root / "scene.h5", root / "masks2d.h5", root / "tracks.h5", track)
    return root, track


def test_sam_masks_on_keyframes(learned):
    root, _ = learned
    masks = read_masks2d(root / "masks2d.h5")
    assert masks.attrs["generator"] == "sam" and masks.keyframe_index.tolist() == [0, 3, 6, 9]
    assert len(masks.scores) > 0


def test_sam2_propagates_objects_through_all_frames(learned):
    root, _ = learned
    tracks = read_artifact(root / "tracks.h5", "tracks")
    assert tracks.attrs["tracker"] == "sam2" and tracks["labels"].shape == (10, 48, 64)
    assert tracks.attrs["n_objects"] > 0
    # objects appear on frames that are not keyframes: propagation, not just keyframe painting
    non_key = tracks["labels"][~tracks["frames/is_keyframe"]]
    assert np.any((non_key > 0) & (non_key < 65535))
    assert not (root / "tracks.h5.resume").exists()


def test_sam2_track_resumes_at_a_window_start(learned, tmp_path, monkeypatch):
    root, track = learned
    real_step = driver_module.TrackingDriver.step

    def dying_step(self, step):
        if step == 6:
            raise KeyboardInterrupt("killed")
        return real_step(self, step)

    monkeypatch.setattr(driver_module.TrackingDriver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_track(root / "scene.h5", root / "masks2d.h5", tmp_path / "tracks.h5", track)
    monkeypatch.setattr(driver_module.TrackingDriver, "step", real_step)
    run_track(root / "scene.h5", root / "masks2d.h5", tmp_path / "tracks.h5", track)
    resumed = read_artifact(tmp_path / "tracks.h5", "tracks")
    assert resumed.attrs["resumed_from_step"] == 4  # windows start at 0, 4, 8: the only resumable steps
    assert np.array_equal(resumed["labels"], read_artifact(root / "tracks.h5", "tracks")["labels"])


def test_lifting_sam2_tracks(learned):
    root, _ = learned
    run_lift(root / "scene.h5", root / "superpoints.h5", root / "tracks.h5", root / "lifted.h5")
    lifted = read_artifact(root / "lifted.h5", "lifted")
    assert lifted["point_instance"].shape == read_artifact(root / "scene.h5", "scene")["vertices"][:, 0].shape
    assert len(lifted["instance_score"]) == lifted["point_instance"].max() + 1
