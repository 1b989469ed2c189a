"""Weight-free colour features: Lab conversion, local statistics, kernel embedding, grid mapping."""

import numpy as np
import pytest
import torch

from pipeline.unscene3d.features.color import (
    ColorFeatures,
    local_statistics,
    neighbour_statistics,
    point_color_features,
    rgb_to_lab,
    working_size,
)


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


def test_neighbour_statistics_by_hand():
    values = np.array([[0.0], [2.0], [4.0]])
    mean, std = neighbour_statistics(values, np.array([[0, 1], [1, 2], [2, 2]]))
    assert mean.ravel().tolist() == [1.0, 3.0, 4.0]
    assert std.ravel().tolist() == [1.0, 1.0, 0.0]


def test_point_colour_features_match_the_image_descriptor_and_separate_colours():
    # Three patches 1 m apart: red, almost the same red, blue.
    points = np.concatenate([np.random.default_rng(0).random((50, 3)) * 0.2 + [k, 0, 0] for k in range(3)])
    colors = np.repeat(np.array([(200, 40, 40), (205, 45, 38), (40, 60, 200)], np.uint8), 50, axis=0)
    params = {"n_features": 256, "point_neighbours": 8}
    f = point_color_features(points, colors, params)
    assert f.shape == (150, 256)
    unit = f / np.linalg.norm(f, axis=1, keepdims=True)
    assert unit[0] @ unit[60] > 0.9 and unit[0] @ unit[120] < 0.3
    # A uniform patch has zero local spread, so a point's feature is the image path's for one pixel
    # of that colour in a uniform window.
    image = np.tile(np.array([200, 40, 40], np.uint8), (1, 8, 8, 1))
    pixel = ColorFeatures({"n_features": 256, "short_side": 8, "window_radius": 1})(image).features[0, :, 4, 4]
    assert f[0] == pytest.approx(pixel.numpy(), abs=1e-3)  # float32 rounding of the image path's variance
    assert np.array_equal(point_color_features(points, colors, params), f)  # deterministic
