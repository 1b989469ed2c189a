"""Weight-free colour features: Lab conversion, local statistics, kernel embedding, grid mapping."""

import numpy as np
import pytest
import torch

from pipeline.features.color import ColorFeatures, local_statistics, rgb_to_lab, working_size


def test_lab_of_reference_colours():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    lab = rgb_to_lab(rgb).numpy()
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.05)
    assert lab[1] == pytest.approx([0.0, 0.0, 0.0], abs=0.05)
    assert lab[2] == pytest.approx([53.24, 80.09, 67.20], abs=0.1)  # sRGB red (D65)


def test_local_statistics_of_a_step_edge():
    lab = torch.zeros(1, 3, 5, 6)
    lab[..., 3:] = 10.0
    mean, std = local_statistics(lab, 1)
    assert mean[0, 0, 2, 0] == pytest.approx(0.0) and std[0, 0, 2, 0] == pytest.approx(0.0)
    assert mean[0, 0, 2, 2] == pytest.approx(10.0 / 3)  # window covers columns 1..3
    assert std[0, 0, 2, 2] == pytest.approx(np.sqrt(200 / 9))


def test_similar_colours_are_more_similar_than_different_ones():
    image = np.zeros((1, 40, 60, 3), np.uint8)
    image[:, :, :20] = (200, 40, 40)  # red
    image[:, :, 20:40] = (205, 45, 38)  # almost the same red
    image[:, :, 40:] = (40, 60, 200)  # blue
    batch = ColorFeatures({"short_side": 40, "window_radius": 2, "n_features": 256})(image)
    f = torch.nn.functional.normalize(batch.features[0], dim=0)
    red, red2, blue = f[:, 20, 5], f[:, 20, 30], f[:, 20, 55]
    assert float(red @ red2) > 0.9
    assert float(red @ blue) < 0.3


def test_features_are_deterministic_and_grid_matches_the_image():
    image = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
    backend = ColorFeatures({"short_side": 24})
    a, b = backend(image), backend(image)
    assert torch.equal(a.features, b.features)
    assert a.features.shape == (2, backend.feature_dim, 24, 32)
    assert working_size((64, 48), 24) == (32, 24)
    # Colour pixels 0 and 1 form working pixel 0, whose centre is colour coordinate u = 0.5.
    assert 0.5 * a.scale[0] + a.offset[0] == pytest.approx(0.0)
    assert 0.5 * a.scale[1] + a.offset[1] == pytest.approx(0.0)
