"""Streaming training data: the bounded scene cache and its loader, the per-step point budget, and
that neither changes what training computes (cache size, resume)."""

import threading

import numpy as np
import pytest
import torch

from pipeline.commands.train import build_trainer, resume_path, run_train, scene_inputs_from_dir
from pipeline.learning.train.config import resolve
from pipeline.learning.train.data import SceneStore, box_anchor, budget_crop, load_scene, summarize, without_points
from pipeline.learning.train.loop import Trainer, load_checkpoint_file

from learning.train.helpers import TINY_MODEL, gt_superpoint_masks, room_scene, write_room_artifacts

TINY = {"model": TINY_MODEL, "log_every": 0, "checkpoint_every": 0}


class CountingLoader:
    """Loads copies of the tiny rooms by index and records which it loaded, in order."""

    def __init__(self, n: int):
        self.n = n
        self.order: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, index: int):
        scene, _, _ = room_scene(index % 3, "tiny")
        with self.lock:
            self.order.append(index)
        return scene


def test_cache_never_holds_more_than_its_bound_and_loads_only_what_is_missing():
    loader = CountingLoader(5)
    store = SceneStore([f"s{i}" for i in range(5)], loader, cache_size=2, ahead=0)
    for index in [0, 1, 0, 2, 1, 3, 3, 4, 0]:
        store[index]
        assert len(store.cached) <= 2
    # 0, 1 loaded; 0 hit; 2 evicts 1; 1 reloaded (evicts 0); 3; 3 hit; 4; 0 reloaded
    assert loader.order == [0, 1, 2, 1, 3, 4, 0] and store.loads == 7
    assert store.cached == [4, 0]
    with pytest.raises(IndexError):
        store[5]
    with pytest.raises(ValueError, match="scene_cache"):
        SceneStore(["a"], loader, cache_size=0)


def test_prefetched_scenes_wait_beside_the_cache_and_are_not_loaded_twice():
    loader = CountingLoader(6)
    store = SceneStore([f"s{i}" for i in range(6)], loader, cache_size=1, ahead=2)
    store[0]
    store.prefetch([0, 1, 2, 3])  # 0 is cached; 1 and 2 start (at most 2 ahead); 3 waits its turn
    assert len(store.cached) == 1
    assert store[1] is not None and store[2] is not None
    assert sorted(loader.order) == [0, 1, 2] and store.loads == 3 and store.cached == [2]
    summaries = store.summaries()  # planning: every scene once, bounded memory
    assert [s.name for s in summaries] == [f"room{i % 3}" for i in range(6)] and len(store.cached) == 1
    assert sorted(loader.order) == [0, 1, 2, 3, 4, 5]
    store.close()


def test_prefetch_order_equals_the_step_order():
    """The loader reads scenes in exactly the order the steps use them, with one scene cached."""
    loader = CountingLoader(4)
    store = SceneStore([f"s{i}" for i in range(4)], loader, cache_size=1, ahead=1)
    trainer = Trainer(store, resolve({**TINY, "iterations": 7}), "box", sorted(set(room_scene(0)[1])))
    planned = len(loader.order)
    assert planned == 4  # the summaries: each scene once
    cached_after_planning = store.cached  # (planning loads ahead on a thread: its load order varies)
    used = []
    while not trainer.complete:
        ahead = trainer.upcoming_scenes()
        record = trainer.train_step()
        used.append(int(record["scene"][1:]))
        assert ahead[0] == used[-1]
        assert len(store.cached) <= 1
    after = loader.order[planned:]
    # every change of scene is one load, in step order (a scene used twice in a row is not reloaded)
    changes = [s for i, s in enumerate(used) if i == 0 or s != used[i - 1]]
    expected = changes[1:] if changes[0] in cached_after_planning else changes
    assert after == expected


def test_budget_crop_respects_the_budget_keeps_whole_superpoints_and_is_deterministic():
    scene, _, _ = room_scene(0, "tiny")
    budget = scene.n_points // 3
    anchor = box_anchor(scene)
    a, _ = budget_crop(scene, budget, np.random.default_rng(7), anchor=anchor)
    b, _ = budget_crop(scene, budget, np.random.default_rng(7), anchor=anchor)
    c, _ = budget_crop(scene, budget, np.random.default_rng(8), anchor=anchor)
    assert 0 < a.n_points <= budget and a.name == scene.name
    np.testing.assert_array_equal(a.points, b.points)
    assert a.n_points != c.n_points or not np.array_equal(a.points, c.points)
    # whole superpoints: every kept superpoint keeps all its points (normals carry the point index)
    scene.normals = scene.normals.copy()
    scene.normals[:, 0] = np.arange(scene.n_points)
    tagged, _ = budget_crop(scene, budget, np.random.default_rng(7), anchor=anchor)
    kept = tagged.normals[:, 0].astype(np.int64)
    np.testing.assert_array_equal(tagged.points, a.points)
    for sp in np.unique(scene.point_superpoint[kept]):
        assert np.isin(np.flatnonzero(scene.point_superpoint == sp), kept).all()
    # boxes: only those with points in the crop, renumbered; the partition is the crop's
    assert 0 < a.boxes.n_boxes <= scene.boxes.n_boxes
    assert set(np.unique(a.boxes.point_box[a.boxes.point_box >= 0])) <= set(range(a.boxes.n_boxes))
    assert a.box_fractions.shape == (a.boxes.n_boxes, a.n_superpoints)
    assert a.box_fractions.max() <= 1 + 1e-6 and (a.box_fractions.sum(1) > 0).all()
    # within the budget: unchanged, nothing drawn
    rng = np.random.default_rng(3)
    same, _ = budget_crop(scene, scene.n_points, rng)
    assert same is scene and rng.random() == np.random.default_rng(3).random()


def test_budget_crop_cuts_targets_by_superpoint_and_cuts_points_when_one_superpoint_is_too_big():
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    targets = gt_superpoint_masks(scene, gt_box)
    budget = scene.n_points // 2
    crop, cut = budget_crop(scene, budget, np.random.default_rng(1), targets)
    assert crop.n_points <= budget and cut.shape[1] == crop.n_superpoints and len(cut) <= len(targets)
    assert (cut > 0.5).any(1).all()  # masks with nothing left in the crop are dropped
    # a budget smaller than the nearest superpoint: points are cut one by one, never over budget
    tiny, _ = budget_crop(scene, 10, np.random.default_rng(1), targets)
    assert tiny.n_points == 10


def test_unsupervised_steps_on_cropped_scenes():
    scene, _, gt_box = room_scene(0, "tiny", with_boxes=False)
    scene.sources["ncut"] = gt_superpoint_masks(scene, gt_box)
    config = resolve({**TINY, "max_points_per_step": 4000,
                      "unsupervised": {"phases": [{"targets": ["ncut"], "iterations": 2}]}})
    trainer = Trainer([scene], config, "unsupervised", ["object"])
    assert summarize(scene).has_file_targets(["ncut"])
    for _ in range(2):
        assert np.isfinite(trainer.train_step()["loss"])


def _rooms(tmp_path, n=3):
    return [scene_inputs_from_dir(write_room_artifacts(tmp_path / f"room{i}", i)) for i in range(n)]


def _weights(path):
    return load_checkpoint_file(path)["student"]


def test_training_is_the_same_with_any_cache_size_and_resumes_exactly(tmp_path):
    inputs = _rooms(tmp_path)
    params = {**TINY, "iterations": 5, "max_points_per_step": 8000}  # every step crops
    one = run_train(inputs, tmp_path / "one.pt", {**params, "scene_cache": 1, "prefetch": 1})
    big = run_train(inputs, tmp_path / "big.pt", {**params, "scene_cache": 16, "prefetch": 0})
    a, b = _weights(one), _weights(big)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # stopped after 2 steps with one scene cached, resumed: the same model as without the stop
    out = tmp_path / "resumed.pt"
    assert run_train(inputs, out, {**params, "scene_cache": 1}, stop_after=2) is None and resume_path(out).is_file()
    assert run_train(inputs, out, {**params, "scene_cache": 3, "prefetch": 2}) == out  # run settings: same run
    c = _weights(out)
    assert all(torch.equal(a[k], c[k]) for k in a)
    # the budget is part of the result: another budget is another model
    other = _weights(run_train(inputs, tmp_path / "other.pt", {**params, "max_points_per_step": 0}))
    assert not all(torch.equal(a[k], other[k]) for k in a)


def test_build_trainer_streams_scenes(tmp_path):
    inputs = _rooms(tmp_path)
    trainer = build_trainer(inputs, {**TINY, "iterations": 1, "scene_cache": 1})
    assert len(trainer.scenes) == 3 and len(trainer.scenes.cached) <= 1 and trainer.scenes.loads == 3
    assert trainer.state_dict()["scenes"] == ["room0", "room1", "room2"] and trainer.scenes.loads == 3


@pytest.mark.parametrize("key, value", [("scene_cache", 0), ("prefetch", -1), ("max_points_per_step", 1.5)])
def test_bad_streaming_settings_are_clear_errors(key, value):
    with pytest.raises(ValueError, match=f"train.{key}"):
        resolve({key: value})


def test_without_points_moves_dropped_points_to_the_background():
    point_box = np.array([0, -2, -2, 1, -1])
    ambiguous_point, ambiguous_box = np.array([1, 1, 2, 2]), np.array([0, 1, 0, 1])
    drop = np.array([True, False, True, False, False])
    kept_box, kept_point, kept_pair_box = without_points(point_box, ambiguous_point, ambiguous_box, drop)
    assert kept_box.tolist() == [-1, -2, -1, 1, -1]
    assert kept_point.tolist() == [1, 1] and kept_pair_box.tolist() == [0, 1]


def test_training_targets_can_leave_out_the_surface_background(tmp_path):
    """box_partition marks surface background; with the train option the loaded boxes (and so the
    targets) no longer hold those points, without it they do."""
    from pipeline.commands.train import scene_inputs_from_dir

    folder = write_room_artifacts(tmp_path / "room0")
    inputs = scene_inputs_from_dir(folder)
    full = load_scene(inputs)
    surface = full.boxes.surface_background
    inside = surface & ((full.boxes.point_box >= 0) | (full.boxes.point_box == -2))
    assert inside.sum() > 0, "the generated room should have wall or floor running into a box"
    cleaned = load_scene(inputs, drop_surface_background=True)
    assert (cleaned.boxes.point_box[surface] == -1).all()
    assert not surface[cleaned.boxes.ambiguous_point].any()
    assert cleaned.box_fractions.sum() < full.box_fractions.sum()
