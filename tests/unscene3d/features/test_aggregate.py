"""Point features -> superpoint features."""

import numpy as np
import pytest

from pipeline.unscene3d.features.aggregate import superpoint_features


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
