import numpy as np
import torch

from pipeline.evaluate import instance_ap, instance_ap_from_labels
from pipeline.export import (
    label_colors,
    mask3d_array,
    read_scannet_benchmark,
    spformer_sample,
    write_colored_ply,
    write_mask3d,
    write_scannet_benchmark,
    write_spformer,
)
from pipeline.ply import read_ply


def _scene(rng, n=3000, k=6):
    gt = rng.integers(-1, k, n)
    pred = gt.copy()
    flip = rng.random(n) < 0.2
    pred[flip] = rng.integers(-1, k + 2, flip.sum())
    scores = rng.random(k + 2)
    return gt, pred, scores


def test_scannet_benchmark_round_trip_scores_the_same(tmp_path):
    rng = np.random.default_rng(0)
    gt, pred, scores = _scene(rng)
    labels = np.array(["chair"] * 6)
    summary = write_scannet_benchmark(tmp_path, "scene0000_00", pred, scores)
    masks, label_ids, read_scores = read_scannet_benchmark(summary)
    ids = np.unique(pred[pred >= 0])
    assert masks.shape == (len(ids), len(pred))
    for mask, k in zip(masks, ids):
        np.testing.assert_array_equal(mask, pred == k)
    np.testing.assert_allclose(read_scores, scores[ids], atol=1e-6)
    assert set(label_ids) == {1}
    direct = instance_ap_from_labels(gt, labels, pred, scores, min_region_size=10)
    exported = instance_ap(gt, labels, masks, read_scores, min_region_size=10)
    assert 0 < direct.ap < 1
    assert exported.ap == direct.ap and exported.ap50 == direct.ap50 and exported.ap25 == direct.ap25


def test_trainer_files_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    n = 500
    vertices = rng.normal(size=(n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    normals = rng.normal(size=(n, 3)).astype(np.float32)
    superpoint = rng.integers(0, 40, n)
    instance = rng.integers(-1, 5, n)
    sample = spformer_sample(vertices, colors, superpoint, instance)
    loaded = torch.load(write_spformer(tmp_path / "s.pth", sample))
    xyz, rgb, sp, sem, inst = (t.numpy() for t in loaded)
    np.testing.assert_array_equal(xyz, vertices)
    np.testing.assert_allclose((rgb + 1) * 127.5, colors, atol=1e-4)
    np.testing.assert_array_equal(sp, superpoint)
    assert (inst[instance < 0] == -100).all() and (inst[instance >= 0] == instance[instance >= 0]).all()
    assert (sem[instance < 0] == -100).all() and (sem[instance >= 0] == 0).all()
    array = np.load(write_mask3d(tmp_path / "s.npy", mask3d_array(vertices, colors, normals, superpoint, instance)))
    assert array.shape == (n, 12)
    np.testing.assert_array_equal(array[:, 11], instance)
    np.testing.assert_array_equal(array[:, 9], superpoint)


def test_colored_ply_gives_one_colour_per_instance(tmp_path):
    instance = np.array([0, 0, 1, 2, -1, 2])
    ply = read_ply(write_colored_ply(tmp_path / "c.ply", np.zeros((6, 3)), instance))
    colors = [tuple(c) for c in ply.colors]
    assert colors[0] == colors[1] and colors[3] == colors[5]
    assert len({colors[0], colors[2], colors[3], colors[4]}) == 4
    assert colors[4] == (160, 160, 160)
    assert len({tuple(c) for c in label_colors(np.arange(50))}) == 50  # distinct for many instances
