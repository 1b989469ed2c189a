"""Final pseudo-labels: overlap resolution of unsupervised masks, box mode and unsupervised mode
end to end on artifacts, a point-cloud-only scene with boxes.json through the CLI, bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.artifacts import read_artifact, write_artifact
from pipeline.learning.boxes import AMBIGUOUS
from pipeline.cli import main as cli_main
from pipeline.commands.predict import run_predict
from pipeline.commands.train import run_train, scene_inputs_from_dir
from pipeline.errors import InputError
from pipeline.io.ply import write_ply
from pipeline.learning.predict import kept_share_scores, masks_to_point_labels, predict_boxes
from pipeline.learning.train.beep3d import SceneBoxes
from pipeline.learning.train.beep3d import Beep3DConfig

from learning.train.helpers import TINY_MODEL, gt_superpoint_masks, room_scene, write_room_artifacts

TRAIN = {"model": TINY_MODEL, "iterations": 2, "log_every": 0, "checkpoint_every": 0}


def test_masks_to_point_labels_by_hand():
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], bool)  # over 4 superpoints
    scores = np.array([0.9, 0.5, 0.7])
    point_superpoint = np.array([0, 1, 1, 2, 3, 3, 3])
    labels, kept = masks_to_point_labels(masks, scores, point_superpoint, min_points=2)
    # Superpoint 1 goes to mask 0 (0.9 > 0.5); mask 1 keeps only superpoint 2 (1 point): dropped.
    # Survivors renumbered by score: mask 0 -> 0, mask 2 -> 1.
    assert labels.tolist() == [0, 0, 0, -1, 1, 1, 1] and kept.tolist() == pytest.approx([0.9, 0.7])
    empty, none = masks_to_point_labels(masks[:0], scores[:0], point_superpoint)
    assert (empty == -1).all() and len(none) == 0


def test_predict_boxes_without_boxes_gives_background():
    scene, _, _ = room_scene(0, "tiny", with_boxes=False)
    labels = predict_boxes(None, scene, Beep3DConfig())
    assert (labels.point_instance == -1).all() and (labels.point_box == -1).all() and len(labels.instance_score) == 0


def test_kept_share_scores_by_hand():
    """Box 0 holds points 0-3 (point 3 shared with box 1), box 1 points 3-5, box 2 nothing.
    Labels: box 0 keeps points 0 and 1 (2 of 4), box 1 keeps 3, 4 and 5 (3 of 3)."""
    boxes = SceneBoxes(point_box=np.array([0, 0, 0, AMBIGUOUS, 1, 1, -1]), ambiguous_point=np.array([3, 3]),
                       ambiguous_box=np.array([0, 1]), centre=np.zeros((3, 3)), volume=np.ones(3),
                       class_index=np.zeros(3, np.int64))
    point_instance = np.array([0, 0, -1, 1, 1, 1, -1])
    assert kept_share_scores(point_instance, boxes).tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_box_mode_end_to_end(tmp_path):
    folder = write_room_artifacts(tmp_path / "room0")
    inputs = scene_inputs_from_dir(folder)
    model = run_train([inputs], tmp_path / "model.pt", TRAIN)
    out = run_predict(model, inputs, tmp_path / "pseudo_labels.h5")
    art = read_artifact(out, "pseudo_labels", required=["point_instance", "instance_score", "instance_class", "point_box"])
    boxes = read_artifact(folder / "boxes.h5", "boxes")
    point_box = boxes["point_box"]
    # instances are the boxes' points less the surface background box_partition marked
    surface = boxes["surface_background"].astype(bool)
    assert np.array_equal(np.where(surface, -1, art["point_box"]), art["point_instance"])
    assert art.attrs["n_surface_background"] == int((surface & (art["point_box"] >= 0)).sum())
    assert np.array_equal(art["point_box"][point_box >= 0], point_box[point_box >= 0])  # P^l keep their box
    assert (art["point_box"][point_box == -1] == -1).all()  # background stays background
    pairs = set(zip(boxes["ambiguous/point"].tolist(), boxes["ambiguous/box"].tolist()))
    ambiguous = np.flatnonzero(point_box == AMBIGUOUS)
    assert all((p, int(art["point_box"][p])) in pairs for p in ambiguous)  # a containing box
    assert len(art["instance_score"]) == len(boxes["box/min"])
    assert (art["instance_score"] == 1).all()
    ranked = read_artifact(run_predict(model, inputs, tmp_path / "ranked.h5", {"box_scores": "kept_share"}),
                           "pseudo_labels")
    inside = np.bincount(point_box[point_box >= 0], minlength=len(boxes["box/min"])) + np.bincount(
        boxes["ambiguous/box"], minlength=len(boxes["box/min"]))
    kept = np.bincount(ranked["point_instance"][ranked["point_instance"] >= 0], minlength=len(boxes["box/min"]))
    assert ranked["instance_score"] == pytest.approx(kept / np.maximum(inside, 1))
    assert art["instance_class"].tolist() == boxes["box/label"].tolist()
    assert art.attrs["mode"] == "box" and art.attrs["network"] == "teacher"
    # The inner boxes (items on the shelf) keep points: rescued if the teacher starved them.
    inner = np.flatnonzero(boxes["box/contained_in"] >= 0)
    assert all((art["point_box"] == b).sum() > 0 for b in inner)


def test_unsupervised_end_to_end_and_box_model_needs_boxes(tmp_path):
    folder = write_room_artifacts(tmp_path / "room0", with_boxes=False)
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box) > 0.5
    write_artifact(folder / "ncut.h5", "ncut", {"masks": masks})
    inputs = scene_inputs_from_dir(folder)
    phases = [{"targets": ["ncut"], "iterations": 2}]
    model = run_train([inputs], tmp_path / "model.pt", {**TRAIN, "unsupervised": {"phases": phases}})
    out = run_predict(model, inputs, tmp_path / "pl.h5", {"score_threshold": 0.0, "min_points": 1})
    art = read_artifact(out, "pseudo_labels", required=["point_instance", "instance_score"])
    assert art.attrs["mode"] == "unsupervised" and "point_box" not in art
    ids = art["point_instance"]
    assert ids.shape == (scene.n_points,) and ids.max() < len(art["instance_score"])
    assert np.all(np.diff(art["instance_score"]) <= 0)  # numbered by decreasing score
    # A box-mode model cannot label a scene without boxes.
    boxed = write_room_artifacts(tmp_path / "room1")
    box_model = run_train([scene_inputs_from_dir(boxed)], tmp_path / "box.pt", TRAIN)
    with pytest.raises(InputError, match="no boxes.h5"):
        run_predict(box_model, inputs, tmp_path / "x.h5")
    with pytest.raises(InputError, match="no teacher"):
        run_predict(model, inputs, tmp_path / "x.h5", {"model": "teacher"})


def test_point_cloud_with_boxes_json_runs_box_mode_through_the_cli(tmp_path):
    scene, _, gt_box = room_scene(0, "tiny")
    keep = np.random.default_rng(0).choice(scene.n_points, 4000, replace=False)
    points, colors, owner = scene.points[keep], scene.colors[keep], gt_box[keep]
    folder = tmp_path / "cloud"
    folder.mkdir()
    write_ply(folder / "points.ply", points, colors)
    entries = []
    for box in np.unique(owner[owner >= 0]):
        lo, hi = points[owner == box].min(0), points[owner == box].max(0)
        entries.append({"center": ((lo + hi) / 2).tolist(), "size": (hi - lo).tolist(), "label": f"object{box % 3}"})
    (folder / "boxes.json").write_text(json.dumps({"boxes": entries}))
    results = tmp_path / "results" / "cloud"
    assert cli_main(["ingest", str(folder), "--out", str(results / "scene.h5")]) == 0
    assert cli_main(["superpoints", str(results / "scene.h5"), "--out", str(results / "superpoints.h5")]) == 0
    assert cli_main(["box_partition", str(results / "scene.h5"), "--out", str(results / "boxes.h5")]) == 0
    model = tmp_path / "model.pt"
    assert cli_main(["train", "--scene-dir", str(results), "--out", str(model), "--params", json.dumps(TRAIN)]) == 0
    assert cli_main(["predict", "--model", str(model), "--scene-dir", str(results), "--out",
                     str(results / "pseudo_labels.h5")]) == 0
    art = read_artifact(results / "pseudo_labels.h5", "pseudo_labels", required=["point_box"])
    assert art["point_box"].shape == (4000,) and art["point_box"].max() == len(entries) - 1


def test_input_mask_scores_by_hand():
    from pipeline.learning.predict import input_mask_scores

    sp_size = np.array([1.0, 1.0, 2.0])
    probs = np.array([[1.0, 1.0, 0.0], [0.0, 0.5, 1.0]])  # two queries over three superpoints
    objectness = np.array([0.8, 0.5])
    inputs = np.array([[1, 1, 0], [0, 0, 1]], np.float32)
    # mask 0: query 0 covers it exactly (soft IoU 1) -> 0.8; query 1: inter 0.5, union 2.5+2-0.5 -> 0.125*0.5
    # mask 1 (2 points): query 0 IoU 0; query 1: inter 2, union 2.5 + 2 - 2 = 2.5 -> 0.8 * 0.5 = 0.4
    assert input_mask_scores(probs, objectness, inputs, sp_size).tolist() == pytest.approx([0.8, 0.4])
    assert len(input_mask_scores(probs, objectness, inputs[:0], sp_size)) == 0


def test_unsupervised_labels_keep_the_input_masks_an_untrained_model_would_lose(tmp_path, caplog):
    folder = write_room_artifacts(tmp_path / "room0", with_boxes=False)
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box) > 0.5
    write_artifact(folder / "ncut.h5", "ncut", {"masks": masks})
    inputs = scene_inputs_from_dir(folder)
    phases = [{"targets": ["ncut"], "iterations": 1}]
    model = run_train([inputs], tmp_path / "model.pt", {**TRAIN, "unsupervised": {"phases": phases}})
    # No predicted mask passes a score threshold above 1: without the inputs the labels are empty, and say so.
    strict = {"score_threshold": 1.01, "min_points": 1}
    out = run_predict(model, inputs, tmp_path / "model_only.h5", {**strict, "keep_inputs": False})
    assert (read_artifact(out, "pseudo_labels")["point_instance"] == -1).all()
    assert "EMPTY pseudo-labels" in caplog.text
    out = run_predict(model, inputs, tmp_path / "kept.h5", strict)
    art = read_artifact(out, "pseudo_labels")
    assert art.attrs["n_input_masks"] == len(masks) and art.attrs["n_novel"] == 0
    # every input mask is an instance with exactly its points (the GT-derived masks do not overlap)
    for mask in masks:
        points = np.flatnonzero(mask[scene.point_superpoint])
        assert len(np.unique(art["point_instance"][points])) == 1 and art["point_instance"][points[0]] >= 0
    assert len(art["instance_score"]) == len(masks)


def test_new_masks_rank_after_the_inputs_so_the_labels_score_at_least_the_inputs():
    from pipeline.outputs.evaluate import instance_ap_from_labels
    from pipeline.learning.predict import with_input_masks

    # 4 superpoints of 100 points each; GT: objects on superpoints 0 and 2, wall on 1.
    point_superpoint = np.repeat(np.arange(4), 100)
    gt = np.repeat([0, 1, 2, -1], 100)
    labels = ["chair", "wall", "table"]
    inputs = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], bool)  # one right, one on the wall
    new = np.array([[0, 0, 1, 0], [0, 1, 1, 1]], bool)  # a new right one, a wrong big one
    masks, scores = with_input_masks(inputs, np.array([0.9, 0.4]), new, np.array([0.95, 0.99]), True)
    assert scores[:2].tolist() == pytest.approx([0.9, 0.4]) and scores[2:].max() < 0.4
    point_instance, kept = masks_to_point_labels(masks, scores, point_superpoint, min_points=1)
    # painted first, the big new mask does not take the wall superpoint from the input mask
    assert point_instance[100] == 1
    alone, alone_scores = masks_to_point_labels(inputs, np.array([0.9, 0.4]), point_superpoint, min_points=1)
    before = instance_ap_from_labels(gt, labels, alone, alone_scores)
    after = instance_ap_from_labels(gt, labels, point_instance, kept)
    assert after.ap50 >= before.ap50 and after.ap25 > before.ap25  # more recall, nothing lost
    # ranked by the model instead, the big wrong mask comes first
    masks, scores = with_input_masks(inputs, np.array([0.9, 0.4]), new, np.array([0.95, 0.99]), False)
    assert scores.argmax() == 3


def test_a_self_training_round_on_a_real_crop_does_not_lower_ap50(scene0000_dir, tmp_path):
    """A corner of the real scan scene0000_00 (ground truth kept for scoring only) through the
    stages the DAG runs before `train` (config.yaml's settings), then an unsupervised run whose last
    phase is a self-training round, then `predict`: its labels must not score below the NCut masks
    the run started from (AP50 against the crop's ground truth)."""
    import yaml

    from pipeline.commands.evaluate import Predictions, score_predictions
    from pipeline.commands.features_2d import run_features_2d
    from pipeline.commands.features_3d import run_features_3d
    from pipeline.commands.ingest import run_ingest
    from pipeline.commands.ncut import run_ncut
    from pipeline.commands.superpoints import run_superpoints
    from pipeline.io.ply import read_ply
    from pipeline.io.resume import without_run_settings
    from pipeline.learning.train.data import SceneInputs

    cloud = read_ply(scene0000_dir / "points.ply")
    values = np.loadtxt(scene0000_dir / "scene0000_00.txt", dtype=np.int64)
    lo, hi = np.array([-3.7, 0.0, -0.1]), np.array([-0.5, 3.4, 2.5])
    keep = np.all((cloud.vertices >= lo) & (cloud.vertices <= hi), axis=1)
    crop = tmp_path / "crop"
    crop.mkdir()
    write_ply(crop / "points.ply", cloud.vertices[keep], cloud.colors[keep])
    np.savetxt(crop / "crop.txt", values[keep], fmt="%d")

    config = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())

    def stage(name):
        return without_run_settings(dict(config.get(name) or {}))

    out = tmp_path / "results"
    out.mkdir()
    run_ingest(crop, out / "scene.h5", stage("ingest"))
    run_superpoints(out / "scene.h5", out / "superpoints.h5", stage("superpoints"))
    run_features_2d(out / "scene.h5", out / "superpoints.h5", out / "features_2d.h5", stage("features_2d"))
    run_features_3d(out / "scene.h5", out / "superpoints.h5", out / "features_3d.h5", stage("features_3d"))
    run_ncut(out / "superpoints.h5", out / "features_2d.h5", out / "features_3d.h5", out / "ncut.h5", stage("ncut"))

    inputs = SceneInputs("crop", out / "scene.h5", out / "superpoints.h5", ncut=out / "ncut.h5")
    params = {"mode": "unsupervised", "model": TINY_MODEL, "log_every": 0, "checkpoint_every": 0, "seed": 0,
              "unsupervised": {"phases": [
                  {"name": "ncut", "stage": "multi_view", "iterations": 30, "lr": 5e-3},
                  {"name": "self_training", "stage": "full_scene", "iterations": 15, "lr": 5e-3}]}}
    run_train([inputs], out / "model.pt", params, resume=False)
    run_predict(out / "model.pt", inputs, out / "pseudo_labels.h5", stage("predict"))

    def ap50(path, stage_name):
        art = read_artifact(path, stage_name)
        predictions = Predictions(stage_name, art["point_instance"].astype(np.int64),
                                  np.asarray(art["instance_score"], np.float64) if "instance_score" in art else None, None)
        return score_predictions(out / "scene.h5", predictions)["ap50"]

    ncut, labels = ap50(out / "ncut.h5", "ncut"), ap50(out / "pseudo_labels.h5", "pseudo_labels")
    assert ncut > 0.05  # the crop's NCut masks find objects: the comparison means something
    assert labels >= ncut
