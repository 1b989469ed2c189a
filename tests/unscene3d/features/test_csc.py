"""CSC backend: a tiny Res16UNet (spconv) saved, loaded strictly and run on a small scene."""

import numpy as np
import pytest
import torch

from pipeline.errors import InputError
from pipeline.unscene3d.features.csc import (
    Res16UNet,
    Res16UNetArch,
    csc_point_features,
    load_csc_checkpoint,
    save_csc_checkpoint,
    voxelize,
)


def small_scene(seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1.0, (3000, 3))
    colors = rng.integers(0, 255, (3000, 3))
    return points, colors


@pytest.fixture
def tiny_net(tmp_path):
    torch.manual_seed(0)
    arch = Res16UNetArch.small()
    model = Res16UNet(arch)
    # Non-trivial batch-norm statistics so that loading them matters.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = save_csc_checkpoint(tmp_path / "csc_tiny.pth", model.eval(), arch)
    return path, model, arch


def test_checkpoint_round_trip_gives_identical_features(tiny_net):
    path, model, arch = tiny_net
    loaded, loaded_arch = load_csc_checkpoint(path)
    assert loaded_arch == arch
    points, colors = small_scene()
    expected = csc_point_features(model, points, colors)
    got = csc_point_features(loaded, points, colors)
    assert got.shape == (len(points), arch.out_channels)
    assert np.allclose(got, expected, atol=1e-6)
    assert np.abs(got).max() > 0


def test_features_are_reproducible_with_several_torch_threads(tiny_net):
    # spconv's CPU strided convolution gives wrong sums with several threads; the backend must not.
    _, model, _ = tiny_net
    points, colors = small_scene(1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [csc_point_features(model, points, colors) for _ in range(4)]
        assert torch.get_num_threads() == 2  # the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(runs[0], run) for run in runs[1:])


def test_points_in_one_voxel_share_a_feature_and_coarse_levels_work(tiny_net):
    _, model, arch = tiny_net
    points, colors = small_scene()
    _, point_voxel = voxelize(points, arch.voxel_size)
    for level in (1, 4):
        features = csc_point_features(model, points, colors, feature_level=level)
        first = np.unique(point_voxel, return_index=True)[1]
        assert np.allclose(features, features[first][point_voxel])
    coarse = csc_point_features(model, points, colors, feature_level=16)
    assert coarse.shape == (len(points), arch.planes[3])


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="CSC checkpoint file is missing"):
        load_csc_checkpoint(tmp_path / "absent.pth")


def test_state_dict_of_another_architecture_is_rejected_with_keys(tmp_path, tiny_net):
    _, model, arch = tiny_net
    other = Res16UNetArch(**{**arch.__dict__, "layers": [2, 1, 1, 1, 1, 1, 1, 1]})  # one more block in stage 1
    path = tmp_path / "mismatch.pth"
    torch.save({"format": "res16unet-spconv", "version": 1, "arch": other.__dict__, "state_dict": model.state_dict()}, path)
    with pytest.raises(InputError, match=r"missing keys \d+ \[encoder\.0\.1\.conv1\.weight"):
        load_csc_checkpoint(path)


def test_foreign_files_and_unknown_architecture_keys_are_rejected(tmp_path, tiny_net):
    _, model, arch = tiny_net
    plain = tmp_path / "plain.pth"
    torch.save(model.state_dict(), plain)  # a bare state dict: the architecture is unknown
    with pytest.raises(InputError, match="not a 'res16unet-spconv' checkpoint"):
        load_csc_checkpoint(plain)
    odd = tmp_path / "odd.pth"
    torch.save({"format": "res16unet-spconv", "version": 1, "arch": {**arch.__dict__, "depth": 34},
                "state_dict": model.state_dict()}, odd)
    with pytest.raises(InputError, match=r"unknown architecture key\(s\) \['depth'\]"):
        load_csc_checkpoint(odd)


def test_full_res16unet34c_has_the_published_size():
    with torch.device("meta"):
        model = Res16UNet(Res16UNetArch())
    n_parameters = sum(p.numel() for p in model.parameters())
    assert 37e6 < n_parameters < 39e6  # Res16UNet34C: about 38M parameters
