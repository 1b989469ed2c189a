"""Point features -> superpoint features."""

import numpy as np
import pytest

from pipeline.unscene3d.features.aggregate import embedded_superpoint_features, superpoint_features


def test_visibility_weighted_mean_is_l2_normalised():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [5.0, 5.0]])
    labels = np.array([0, 0, 1, 2])
    weights = np.array([3, 1, 2, 0])
    mean, total = superpoint_features(features, labels, 4, weights)
    expected0 = np.array([0.75, 0.25]) / np.linalg.norm([0.75, 0.25])
    assert mean[0] == pytest.approx(expected0)
    assert mean[1] == pytest.approx([0.6, 0.8])
    assert mean[2].tolist() == [0.0, 0.0]  # never seen
    assert mean[3].tolist() == [0.0, 0.0]  # no points
    assert total.tolist() == [4.0, 2.0, 0.0, 0.0]


def test_unweighted_mean_and_label_checks():
    mean, total = superpoint_features(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([1, 1]), 2)
    assert mean[1] == pytest.approx([np.sqrt(0.5), np.sqrt(0.5)])
    assert total.tolist() == [0.0, 2.0]
    with pytest.raises(ValueError, match="superpoint ids"):
        superpoint_features(np.zeros((2, 2)), np.array([0, 2]), 2)


def test_embedded_means_are_the_same_whatever_the_chunk():
    from pipeline.unscene3d.features.fourier import fourier_embedding

    rng = np.random.default_rng(0)
    descriptor = rng.normal(size=(50, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 50)  # superpoint 4 has no points
    weights = rng.integers(0, 3, 50)
    embed = fourier_embedding(128, 1.0, seed=0)
    whole, whole_total = superpoint_features(embed(descriptor), labels, 5, weights)
    for chunk in (1, 7, 50, 1000):
        mean, total = embedded_superpoint_features(descriptor, labels, 5, embed, weights, chunk=chunk)
        assert mean == pytest.approx(whole, abs=1e-6) and total.tolist() == whole_total.tolist()
    assert mean[4].tolist() == [0.0] * 128
    empty, _ = embedded_superpoint_features(np.zeros((0, 3)), np.zeros(0, np.int64), 2, embed)
    assert empty.shape == (2, 128)
    with pytest.raises(ValueError, match="superpoint ids"):
        embedded_superpoint_features(descriptor, labels + 5, 5, embed)
