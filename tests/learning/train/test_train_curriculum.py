"""The granularity-consistent curriculum: stages and their options, one view's crop with
overlapping raw masks, stage 3 on predictions alone, and combinations that are errors."""

import math

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.learning.train.config import CURRICULUM, DEMO_FULL_SCENE, LESS, resolve
from pipeline.learning.train.data import ViewMasks, scene_from_arrays, view_crop
from pipeline.learning.train.loop import Trainer
from pipeline.learning.train.selftrain import label_fractions

from learning.train.helpers import TINY_MODEL, gt_superpoint_masks, room_scene

TINY = {"model": TINY_MODEL, "log_every": 0, "checkpoint_every": 0}


def test_view_crop_by_hand_with_overlapping_masks():
    # superpoints: {0, 1} {2, 3} {4} {5}; view 0: mask 5 = points 0-2, mask 9 = points 2-3 (point 2
    # in both), point 4 seen in no mask; view 1: mask 7 = point 5.
    scene = scene_from_arrays("s", np.zeros((6, 3)), np.zeros((6, 3)), np.zeros((6, 3)), np.array([0, 0, 1, 1, 2, 3]))
    views = ViewMasks(point=np.array([0, 1, 2, 2, 3, 4, 5]), view=np.array([0, 0, 0, 0, 0, 0, 1]),
                      instance=np.array([5, 5, 5, 9, 9, -1, 7]))
    sub, targets = view_crop(scene, views, 0)
    assert sub.n_points == 5 and sub.sp_size.tolist() == [2, 2, 1]  # point 4 is in the crop, once
    np.testing.assert_allclose(targets, [[1, 0.5, 0], [0, 1, 0]])
    sub, targets = view_crop(scene, views, 1)
    assert sub.n_points == 1 and targets.tolist() == [[1.0]]
    assert views.view_ids().tolist() == [0, 1]


def test_view_crop_of_disjoint_masks_equals_label_fractions():
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    seen = np.flatnonzero(gt_box >= 0)[::2]
    views = ViewMasks(seen, np.zeros(len(seen), np.int64), gt_box[seen])
    sub, targets = view_crop(scene, views, 0)
    labels = np.unique(gt_box[seen], return_inverse=True)[1].reshape(-1)
    np.testing.assert_array_equal(targets, label_fractions(labels, sub.point_superpoint, sub.sp_size))


def test_presets_follow_the_curriculum_and_its_options_change_the_targets():
    for preset, full_scene in (("demo", DEMO_FULL_SCENE), ("paper", CURRICULUM["full_scene"])):
        targets = [p.targets for p in resolve({"preset": preset}).phases]
        assert targets[0] == tuple(CURRICULUM["single_view"]) and targets[1] == tuple(CURRICULUM["multi_view"])
        assert all(t == tuple(full_scene) for t in targets[2:])
    assert CURRICULUM == {"single_view": ["raw_views"], "multi_view": ["ncut", "lifted"], "full_scene": ["predicted"]}
    # the demo preset keeps M^0 in stage 3 (UnScene3D's mask addition); a user's curriculum still wins
    assert DEMO_FULL_SCENE == ["ncut", "lifted", "predicted"]
    mine = resolve({"preset": "demo", "unsupervised": {"curriculum": {"full_scene": ["predicted"]}}}).phases
    assert mine[-1].targets == ("predicted",) and mine[-1].loss == LESS
    options = {"single_view": ["lifted_views"], "multi_view": ["lifted", "ncut"], "full_scene": ["lifted", "ncut", "predicted"]}
    phases = resolve({"preset": "paper", "unsupervised": {"curriculum": options}}).phases
    assert [p.targets for p in phases] == [("lifted_views",), ("lifted", "ncut")] + [("lifted", "ncut", "predicted")] * 3
    assert [p.epochs for p in phases] == [64, 256, 64, 64, 64]  # the preset's lengths stay
    # a phase may still list its own targets instead of a stage
    own = resolve({"unsupervised": {"phases": [{"targets": ["ncut"], "iterations": 3}]}}).phases
    assert [(p.targets, p.iterations) for p in own] == [(("ncut",), 3)]


@pytest.mark.parametrize("unsupervised, message", [
    ({"curriculum": {"single_view": ["lifted"]}}, "single_view must be one of"),
    ({"curriculum": {"single_view": ["raw_views", "lifted_views"]}}, "cannot share a phase"),
    ({"curriculum": {"multi_view": ["predicted"]}}, "multi_view must name file sources"),
    ({"curriculum": {"multi_view": ["raw_views"]}}, "multi_view must name file sources"),
    ({"curriculum": {"multi_view": "lifted"}}, "must be a list"),
    ({"curriculum": {"full_scene": ["lifted|ncut"]}}, "must hold 'predicted'"),
    ({"curriculum": {"full_scene": ["raw_views", "predicted"]}}, "cannot share a phase"),
    ({"curriculum": {"full_scene": ["predicted", "predicted"]}}, "twice"),
    ({"curriculum": {"stage_4": ["ncut"]}}, "unknown key"),
    ({"curriculum": {"multi_view": ["lifted|raw_views"]}}, "alternatives of file sources"),
    ({"phases": [{"targets": ["predicted"], "iterations": 1}]}, "no phase trains the model before it"),
    ({"phases": [{"targets": ["raw_views", "ncut"], "iterations": 1}]}, "cannot share a phase"),
    ({"phases": [{"stage": "multi_view", "targets": ["ncut"]}]}, "not both"),
    ({"phases": [{"iterations": 1}]}, "not neither"),
    ({"phases": [{"stage": "tracked", "iterations": 1}]}, "stage must be one of"),
])
def test_bad_curriculum_combinations_are_clear_errors(unsupervised, message):
    with pytest.raises(ValueError, match=message):
        resolve({"unsupervised": unsupervised})


def test_single_view_stage_trains_on_raw_view_crops_and_is_skipped_without_them(caplog):
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box)
    scene.sources["ncut"] = masks
    left = np.flatnonzero((scene.points[:, 0] < np.median(scene.points[:, 0])) & (gt_box >= 0))
    right = np.flatnonzero((scene.points[:, 0] >= np.median(scene.points[:, 0])) & (gt_box >= 0))
    # two views; in view 1 a mask over the whole right half overlaps the objects' own masks
    point = np.concatenate([left, right, right])
    view = np.r_[np.zeros(len(left)), np.ones(2 * len(right))].astype(np.int64)
    instance = np.concatenate([gt_box[left], gt_box[right], np.full(len(right), 100)])
    scene.raw_views = ViewMasks(point, view, instance)
    phases = [{"stage": "single_view", "iterations": 2}, {"stage": "multi_view", "iterations": 1}]
    trainer = Trainer([scene], resolve({**TINY, "unsupervised": {"phases": phases}}), "unsupervised", ["object"])
    assert trainer.phases[0].targets == ("raw_views",)
    record = trainer.train_step()
    assert record["phase"] == "phase0" and math.isfinite(record["loss"])
    assert sorted(s.view for s in trainer.samples) == [0, 1]
    # tracked per-view masks as the option: this scene has none, so the stage is skipped
    options = {"curriculum": {"single_view": ["lifted_views"]}, "phases": phases}
    trainer = Trainer([scene], resolve({**TINY, "unsupervised": options}), "unsupervised", ["object"])
    assert [p.targets for p in trainer.phases] == [("ncut", "lifted")]
    assert "no lifted.h5 has lifted_views masks" in caplog.text
    with pytest.raises(InputError, match="no pseudo-masks"):  # nothing else to learn from
        Trainer([scene], resolve({**TINY, "unsupervised": {**options, "phases": phases[:1]}}), "unsupervised", ["object"])


@pytest.mark.parametrize("full_scene, n_file_masks, n_added", [(["predicted"], 0, 2), (["ncut", "predicted"], 3, 1)])
def test_full_scene_stage_learns_predictions_alone_or_added_to_the_files(monkeypatch, full_scene, n_file_masks, n_added):
    """Stage 3 as the paper: the model's confident predictions are the only targets (also those an
    NCut mask already covers); the option keeps the NCut masks and adds only new predictions."""
    import pipeline.learning.train.loop as loop

    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box)
    scene.sources["ncut"] = masks[:3]
    planted = masks[[0, 4, 5]] > 0.5, np.array([0.9, 0.8, 0.2], np.float32)  # 0 duplicates NCut's; 5 unsure
    monkeypatch.setattr(loop, "predicted_masks", lambda output, sp_size, config: planted)
    phases = [{"stage": "multi_view", "iterations": 1}, {"stage": "full_scene", "iterations": 1}]
    options = {"curriculum": {"multi_view": ["ncut"], "full_scene": full_scene}, "phases": phases}
    trainer = Trainer([scene], resolve({**TINY, "unsupervised": options}), "unsupervised", ["object"])
    trainer.run()
    targets = trainer.phase_targets(0, trainer.phases[1]) > 0.5
    assert len(targets) == n_file_masks + n_added
    np.testing.assert_array_equal(targets[:n_file_masks], masks[:n_file_masks] > 0.5)
    np.testing.assert_array_equal(targets[n_file_masks:], planted[0][[0, 1]][-n_added:])


def test_merged_sources_rank_in_the_order_the_targets_name_them():
    """NCut and lifted masks together (["ncut", "lifted"]): NCut wins duplicates and every NCut mask
    ranks before every lifted one, whatever their own scores (they are not comparable)."""
    from pipeline.learning.train.selftrain import file_targets, ranked_in_order

    first, second = ranked_in_order([np.array([0.3, 0.5]), np.array([0.9, 0.4])])
    assert first.tolist() == pytest.approx([0.3, 0.5]) and second.tolist() == pytest.approx([0.27, 0.12], abs=1e-5)
    sizes = np.ones(4)
    ncut = np.array([[1, 1, 0, 0], [0, 0, 1, 0]], np.float32)
    lifted = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], np.float32)  # a duplicate of ncut's first, a new one
    sources, scores = {"ncut": ncut, "lifted": lifted}, {"ncut": np.array([0.2, 0.4]), "lifted": np.array([0.9, 0.8])}
    masks, kept = file_targets(sources, ["ncut", "lifted"], sizes, 0.5, scores)
    np.testing.assert_array_equal(masks, [ncut[0], ncut[1], lifted[1]])
    assert kept.tolist() == pytest.approx([0.2, 0.4, 0.8 * 0.2], abs=1e-5)
    masks, kept = file_targets(sources, ["lifted", "ncut"], sizes, 0.5, scores)
    np.testing.assert_array_equal(masks, [lifted[0], lifted[1], ncut[1]])
    assert kept.tolist() == pytest.approx([0.9, 0.8, 0.4 * 0.8], abs=1e-5)


def test_more_pseudo_masks_than_queries_is_logged(caplog):
    """Each target needs a query of its own; the ones beyond the model's queries never teach it."""
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box)
    scene.sources["ncut"] = masks
    phases = [{"stage": "multi_view", "iterations": 1}]
    config = {**TINY, "model": {**TINY_MODEL, "n_queries": len(masks) - 2}, "unsupervised": {"phases": phases}}
    trainer = Trainer([scene], resolve(config), "unsupervised", ["object"])
    assert len(trainer.phase_targets(0, trainer.phases[0])) == len(masks)
    assert f"{len(masks)} pseudo-masks in phase phase0 but the model has {len(masks) - 2} queries; 2 of them" in caplog.text
    caplog.clear()
    enough = {**config, "model": {**TINY_MODEL, "n_queries": len(masks)}}
    other = Trainer([scene], resolve(enough), "unsupervised", ["object"])
    other.phase_targets(0, other.phases[0])
    assert "pseudo-masks in phase" not in caplog.text
