"""Voxelisation and the sparse UNet (spconv) on CPU, including the backward pass."""

import numpy as np
import torch

from pipeline.learning.model.backbone import SparseUNet, voxel_mean, voxelize


def test_voxelize_hand_made():
    points = np.array([[0.01, 0.01, 0.01], [0.03, 0.01, 0.01], [0.11, 0.0, 0.0], [0.19, 0.05, 0.0]])
    grid = voxelize(points, 0.1)
    # Cells (0,0,0), (0,0,0), (1,0,0), (1,0,0): two voxels, both at y = z = 0.
    assert grid.coords.tolist() == [[0, 0, 0], [1, 0, 0]]
    assert grid.point_voxel.tolist() == [0, 0, 1, 1]
    assert grid.spatial_shape == [3, 2, 2]  # one spare cell per axis for the strided levels


def test_voxelize_shifts_negative_coordinates():
    grid = voxelize(np.array([[-1.0, -2.0, 0.0], [1.0, 2.0, 0.0]]), 1.0)
    assert grid.coords.min() == 0 and grid.coords.tolist() == [[0, 0, 0], [2, 4, 0]]


def test_voxel_mean():
    values = torch.tensor([[1.0], [3.0], [10.0]])
    mean = voxel_mean(values, torch.tensor([0, 0, 1]), 2)
    assert mean[:, 0].tolist() == [2.0, 10.0]


def test_sparse_unet_forward_and_backward_on_cpu():
    rng = np.random.default_rng(0)
    coords = np.unique(rng.integers(0, 12, (300, 3)), axis=0).astype(np.int32)
    net = SparseUNet(in_channels=6, channels=[8, 12, 16], blocks=1)
    features = torch.randn(len(coords), 6, requires_grad=True)
    out = net(features, torch.from_numpy(coords), [13, 13, 13])
    assert out.shape == (len(coords), 8)
    out.pow(2).mean().backward()  # spconv's CPU backward needs the stream workaround
    assert features.grad is not None and torch.isfinite(features.grad).all()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_sparse_unet_keeps_voxel_order_and_is_deterministic():
    coords = np.array([[0, 0, 0], [0, 0, 1], [5, 5, 5], [5, 6, 5]], np.int32)
    torch.manual_seed(0)
    net = SparseUNet(6, [4, 8], blocks=1)
    features = torch.randn(4, 6)
    a = net(features, torch.from_numpy(coords), [8, 8, 8])
    b = net(features[[2, 3, 0, 1]], torch.from_numpy(coords[[2, 3, 0, 1]]), [8, 8, 8])
    torch.testing.assert_close(a[[2, 3, 0, 1]], b, rtol=1e-5, atol=1e-5)
