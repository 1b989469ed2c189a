"""Scene tensors and the full network (backbone -> superpoint pooling -> decoder)."""

import numpy as np
import pytest
import torch

from pipeline.learning.model.net import MODEL_PRESETS, InstanceNet, ModelConfig, prepare_scene


def _scene():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 2, (400, 3))
    points[:, 2] *= 0.5
    colors = rng.integers(0, 255, (400, 3)).astype(np.uint8)
    normals = np.tile([0.0, 0.0, 1.0], (400, 1))
    superpoint = (points[:, 0] > 1).astype(int) + 2 * (points[:, 1] > 1).astype(int)
    return points, colors, normals, superpoint


def test_prepare_scene():
    points, colors, normals, superpoint = _scene()
    scene = prepare_scene(points, colors, normals, superpoint, voxel_size=0.1)
    assert scene.n_superpoints == 4 and scene.sp_size.sum() == 400
    assert scene.sp_coords.min() >= 0 and scene.sp_coords.max() <= 1
    np.testing.assert_allclose(scene.sp_centroid[0], points[superpoint == 0].mean(0))
    back = scene.denormalise(torch.as_tensor(scene.normalise(points[:5]))).numpy()
    np.testing.assert_allclose(back, points[:5], atol=1e-9)
    assert scene.voxel_features.shape == (len(scene.voxel_coords), 6)


def test_presets_and_overrides():
    assert MODEL_PRESETS["paper"].layers == 6 and MODEL_PRESETS["paper"].heads == 8
    assert MODEL_PRESETS["paper"].hidden == 256 and MODEL_PRESETS["paper"].ffn == 1024
    cfg = ModelConfig().with_overrides({"channels": [4, 8], "layers": 1})
    assert cfg.channels == (4, 8) and cfg.layers == 1
    with pytest.raises(ValueError, match="unknown model option"):
        ModelConfig().with_overrides({"depth": 3})


def test_network_pools_backbone_features_per_superpoint():
    points, colors, normals, superpoint = _scene()
    torch.manual_seed(0)
    net = InstanceNet(ModelConfig(n_classes=3, voxel_size=0.1, channels=(8, 16), blocks=1, hidden=16, heads=2, ffn=16,
                                  layers=2, n_queries=5, rel_hidden=4))
    scene = prepare_scene(points, colors, normals, superpoint, 0.1)
    voxel = net.backbone(scene.voxel_features, scene.voxel_coords, scene.spatial_shape)
    pooled = net.superpoint_features(scene)
    manual = torch.stack([voxel[scene.point_voxel[torch.from_numpy(superpoint == s)]].mean(0) for s in range(4)])
    torch.testing.assert_close(pooled, manual, rtol=1e-5, atol=1e-5)
    out = net(scene, torch.rand(5, 3))
    assert len(out.layers) == 2 and out.last.mask_logits.shape == (5, 4) and out.last.class_logits.shape == (5, 4)
