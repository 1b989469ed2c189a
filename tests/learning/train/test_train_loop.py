"""The training loop: learning-rate schedule, exact resume, overfitting one scene, the
unsupervised phases, and bad input (no boxes, no pseudo-masks)."""

import math

import numpy as np
import pytest
import torch

from pipeline.commands.train import resume_path, run_train, scene_inputs_from_dir
from pipeline.errors import InputError
from pipeline.learning.train.beep3d import initial_query_coords, teacher_pseudo_masks
from pipeline.learning.train.config import resolve
from pipeline.learning.train.data import identity_augmentation
from pipeline.learning.train.loop import Trainer, load_checkpoint_file, one_cycle_lr
from pipeline.learning.train.losses import mask_iou
from pipeline.learning.train.matching import match

from learning.train.helpers import TINY_MODEL, gt_superpoint_masks, room_scene, write_room_artifacts

TINY = {"model": TINY_MODEL, "log_every": 0, "checkpoint_every": 0}


def test_one_cycle_lr_by_hand():
    # 10 steps, 20 % warm-up: starts at max/25, peaks at step 2, ends near max/(25 * 1e4).
    assert one_cycle_lr(0, 10, 1.0, 0.2) == pytest.approx(1 / 25)
    assert one_cycle_lr(1, 10, 1.0, 0.2) == pytest.approx(1 / 25 + (1 - 1 / 25) / 2)
    assert one_cycle_lr(2, 10, 1.0, 0.2) == pytest.approx(1.0)
    assert one_cycle_lr(6, 10, 1.0, 0.2) == pytest.approx(4e-6 + (1 - 4e-6) / 2)
    assert one_cycle_lr(10, 10, 1.0, 0.2) == pytest.approx(1 / 250000)


def _params_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_takes_the_same_next_step():
    scene, vocab, _ = room_scene(0, "tiny")
    config = resolve({**TINY, "iterations": 3})
    straight = Trainer([scene], config, "box", vocab)
    straight.run()
    first = Trainer([scene], config, "box", vocab)
    first.run(stop_after=2)
    state = first.state_dict()
    resumed = Trainer([scene], config, "box", vocab)
    resumed.load_state_dict(state)
    assert resumed.step == 2 and not resumed.complete
    resumed.run()
    assert resumed.complete and resumed.step == 3
    assert _params_equal(straight.student, resumed.student)
    assert _params_equal(straight.teacher, resumed.teacher)
    assert not _params_equal(first.student, resumed.student)  # the third step did change something


def test_run_train_resumes_from_its_checkpoint_file(tmp_path):
    folder = write_room_artifacts(tmp_path / "room0")
    inputs = [scene_inputs_from_dir(folder)]
    params = {**TINY, "iterations": 3}
    out = tmp_path / "model.pt"
    assert run_train(inputs, out, params, stop_after=2) is None and resume_path(out).is_file() and not out.exists()
    assert run_train(inputs, out, params) == out and not resume_path(out).exists()
    reference = tmp_path / "reference.pt"
    run_train(inputs, reference, params)
    a, b = load_checkpoint_file(out), load_checkpoint_file(reference)
    assert a["complete"] and a["step"] == 3 and a["mode"] == "box"
    assert all(torch.equal(a["student"][k], b["student"][k]) for k in a["student"])
    # A checkpoint of another run (other parameters) is not resumed.
    run_train(inputs, tmp_path / "other.pt", params, stop_after=1)
    changed = run_train(inputs, tmp_path / "other.pt", {**params, "seed": 5})
    assert load_checkpoint_file(changed)["step"] == 3


@pytest.mark.slow  # 80 demo-preset training steps (about 15 s on 2 cores): `make test-all` runs it
def test_student_overfits_one_scene():
    """Demo preset, one synthetic scene, no augmentation: the student's masks match the
    teacher's pseudo-masks with IoU > 0.9 for every box."""
    scene, vocab, _ = room_scene(0, "tiny")
    no_augment = {"rotate": False, "flip": False, "scale": [1, 1], "color_jitter": 0}
    config = resolve({"preset": "demo", "iterations": 80, "optimizer": {"lr": 5e-3}, "augment": no_augment,
                      "log_every": 0})
    trainer = Trainer([scene], config, "box", vocab)
    trainer.run()
    tensors = trainer._tensors(scene, identity_augmentation(scene.points.mean(0)))
    with torch.no_grad():
        teacher = teacher_pseudo_masks(trainer.teacher, tensors, scene.boxes, torch.from_numpy(scene.box_fractions),
                                       scene.boxes.centre, config.box)
        out = trainer.student(tensors, initial_query_coords(tensors, trainer.model_config.n_queries))
    targets = teacher.targets[teacher.targets.sum(1) > 0]
    m = match(out.last.mask_logits, out.last.class_logits, targets, torch.zeros(len(targets), dtype=torch.long))
    iou = mask_iou(out.last.mask_logits[m.query] > 0, targets[m.target] > 0.5, tensors.sp_size).diagonal()
    assert len(iou) == scene.boxes.n_boxes and iou.min() > 0.9, iou


def test_unsupervised_phases_with_mask_addition(monkeypatch):
    """Mask addition through the trainer's own path: at the start of the self-training phase the
    student predicts (loop: ``predicted_masks`` on its output), predictions under ``tau_conf`` are
    dropped, and of the rest only those no file mask covers (``novel_masks``) join the targets."""
    import pipeline.learning.train.loop as loop

    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(scene, gt_box)
    assert len(masks) >= 6
    scene.sources["ncut"] = masks[::2]  # half of the objects, as an incomplete NCut would give
    scene.sources["lifted"] = masks[1:3]  # overlaps ncut's mask 2 (a duplicate) and adds mask 1
    # A tiny model trained for 2 steps predicts nothing reliable, so its predictions are replaced by
    # known ones after the real prediction ran: object 3 (no file mask covers it) confidently,
    # object 0 (ncut has it) confidently, object 5 (not covered either) below tau_conf.
    planted = (masks[[3, 0, 5]] > 0.5), np.array([0.9, 0.95, 0.3], np.float32)
    calls, real_predicted_masks = [], loop.predicted_masks

    def predicted_masks(output, sp_size, config):
        real_predicted_masks(output, sp_size, config)  # the real call on the student's output still runs
        calls.append(config.tau_conf)
        return planted

    monkeypatch.setattr(loop, "predicted_masks", predicted_masks)
    phases = [{"name": "first", "targets": ["ncut", "lifted"], "iterations": 2},
              {"name": "views", "targets": ["lifted_views"], "iterations": 2},  # no per-view masks: skipped
              {"name": "self", "targets": ["ncut", "lifted", "predicted"], "iterations": 2}]
    config = resolve({**TINY, "unsupervised": {"phases": phases, "tau_conf": 0.5}})
    trainer = Trainer([scene], config, "unsupervised", ["object"])
    assert [p.name for p in trainer.phases] == ["first", "self"]
    merged = trainer.phase_targets(0, trainer.phases[0])
    assert len(merged) == len(masks[::2]) + 1
    trainer.run()
    assert trainer.complete and trainer.step == 4
    assert calls == [0.5]  # predicted once, at the start of the self phase
    # tau_conf dropped object 5's prediction; objects 3 and 0 are the confident ones.
    np.testing.assert_array_equal(trainer.predicted[0], planted[0][:2])
    # Only object 3 is new: the self phase trained on the file masks plus it, not on object 0 again.
    targets = trainer.phase_targets(0, trainer.phases[1])
    assert len(targets) == len(merged) + 1
    np.testing.assert_array_equal(targets[:-1], merged)
    np.testing.assert_array_equal(targets[-1] > 0.5, masks[3] > 0.5)


def test_unsupervised_per_view_phase_trains_on_crops():
    from pipeline.learning.train.data import ViewMasks

    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    seen = np.flatnonzero(scene.points[:, 0] < np.median(scene.points[:, 0]))  # one "view": half the room
    labelled = seen[gt_box[seen] >= 0]
    scene.views = ViewMasks(labelled, np.zeros(len(labelled), np.int64), gt_box[labelled])
    config = resolve({**TINY, "unsupervised": {"phases": [{"targets": ["lifted_views"], "iterations": 2}]}})
    trainer = Trainer([scene], config, "unsupervised", ["object"])
    record = trainer.train_step()
    assert record["phase"] == "phase0" and math.isfinite(record["loss"])


def test_bad_input_is_reported():
    scene, vocab, _ = room_scene(0, "tiny", with_boxes=False)
    with pytest.raises(InputError, match="no scene has any box"):
        Trainer([scene], resolve(TINY), "box", vocab)
    with pytest.raises(InputError, match="no pseudo-masks"):
        Trainer([scene], resolve({**TINY, "unsupervised": {"phases": [{"targets": ["ncut"], "iterations": 1}]}}),
                "unsupervised", ["object"])
    scene.sources["ncut"] = np.zeros((0, scene.n_superpoints), np.float32)  # an empty NCut result
    with pytest.raises(InputError):
        Trainer([scene], resolve({**TINY, "unsupervised": {"phases": [{"targets": ["ncut"], "iterations": 1}]}}),
                "unsupervised", ["object"])
    with pytest.raises(ValueError, match="unknown key"):
        resolve({"iterationz": 3})


def test_target_alternatives_fall_back_per_scene():
    tracked, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    cloud, _, _ = room_scene(0, "tiny", with_boxes=False)
    masks = gt_superpoint_masks(tracked, gt_box)
    tracked.sources = {"lifted": masks[:3], "ncut": masks[3:]}  # a scene with frames: tracked masks win
    cloud.sources = {"ncut": masks[3:5]}  # a point cloud: no tracked masks, NCut stands in
    config = resolve({**TINY, "unsupervised": {"phases": [{"targets": ["lifted|ncut"], "iterations": 1}]}})
    trainer = Trainer([tracked, cloud], config, "unsupervised", ["object"])
    phase = trainer.phases[0]
    np.testing.assert_array_equal(trainer._file_targets(tracked, phase), masks[:3])
    np.testing.assert_array_equal(trainer._file_targets(cloud, phase), masks[3:5])
    with pytest.raises(ValueError, match="alternatives"):
        resolve({"unsupervised": {"phases": [{"targets": ["lifted|predicted"], "iterations": 1}]}})


def test_a_phase_can_override_the_loss_weights():
    """A phase's `loss` overrides train.loss for its steps only (here: LESS's contrastive term in
    the second phase), and is checked like train.loss."""
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    scene.sources["ncut"] = gt_superpoint_masks(scene, gt_box)
    phases = [{"name": "plain", "targets": ["ncut"], "iterations": 1},
              {"name": "less", "targets": ["ncut"], "iterations": 1, "loss": {"contrastive": 0.5, "area": 0.1}}]
    trainer = Trainer([scene], resolve({**TINY, "unsupervised": {"phases": phases}}), "unsupervised", ["object"])
    first, second = trainer.train_step(), trainer.train_step()
    assert first["phase"] == "plain" and "contrastive" not in first and "area" not in first
    assert second["phase"] == "less" and second["contrastive"] > 0 and second["area"] > 0
    with pytest.raises(ValueError, match="contrastiv"):
        resolve({**TINY, "unsupervised": {"phases": [{"targets": ["ncut"], "loss": {"contrastiv": 0.5}}]}})
