"""Random Fourier features: the cosine of averaged embeddings estimates a kernel-mean similarity."""

import numpy as np
import pytest
import torch

from pipeline.unscene3d.features.fourier import fourier_embedding, random_fourier_features


def kernel_mean(x, y, bandwidth):
    return np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / (2 * bandwidth**2)).mean()


def superpoint_similarity_errors(n_features, bandwidth=0.6, seeds=range(5)):
    """|cosine of two point sets' mean embeddings - their exact normalised kernel-mean similarity|,
    one per projection seed (two 200-point blobs 0.5 apart, 0.2 wide)."""
    rng = np.random.default_rng(0)
    a = rng.normal([0, 0, 0], 0.2, (200, 3))
    b = rng.normal([0.5, 0, 0], 0.2, (200, 3))
    exact = kernel_mean(a, b, bandwidth) / np.sqrt(kernel_mean(a, a, bandwidth) * kernel_mean(b, b, bandwidth))
    errors = []
    for seed in seeds:
        embed = fourier_embedding(n_features, bandwidth, seed)
        mean_a, mean_b = embed(a).mean(0), embed(b).mean(0)
        cosine = mean_a @ mean_b / (np.linalg.norm(mean_a) * np.linalg.norm(mean_b))
        errors.append(abs(cosine - exact))
    return np.array(errors)


def test_point_embeddings_approximate_the_gaussian_kernel():
    x = np.array([[0.0, 0.0], [0.3, 0.0], [1.0, 1.0]], np.float32)
    z = random_fourier_features(torch.as_tensor(x), 4096, bandwidth=0.5, seed=1).numpy()
    exact = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * 0.5**2))
    assert z @ z.T == pytest.approx(exact, abs=0.05)


def test_wide_embeddings_give_superpoint_similarities_that_do_not_depend_on_the_seed():
    # The default width (2048) estimates the similarity NCut binarises to within 0.015 for every
    # projection; 64 features (the former default) erred by up to 0.05, enough to flip pairs near
    # tau_cut: scene0000_00's NCut AP50 ranged over 6.9-20.8 with the seed.
    wide = superpoint_similarity_errors(2048)
    narrow = superpoint_similarity_errors(64)
    assert wide.max() < 0.015
    assert narrow.max() > 3 * wide.max()


def test_the_embedding_function_is_fixed_by_its_seed():
    x = np.random.default_rng(2).normal(size=(5, 3))
    assert fourier_embedding(32, 1.0, 3)(x) == pytest.approx(fourier_embedding(32, 1.0, 3)(x))
    assert not np.allclose(fourier_embedding(32, 1.0, 3)(x), fourier_embedding(32, 1.0, 4)(x))
    assert fourier_embedding(32, 1.0, 3)(x[:0]).shape == (0, 32)
    # the same projection as the torch function, drawn once and reused for every chunk
    embed = fourier_embedding(32, 1.0, 3)
    expected = random_fourier_features(torch.as_tensor(x, dtype=torch.float32), 32, 1.0, 3).numpy()
    assert embed(x[:2]) == pytest.approx(expected[:2], abs=1e-6) and embed(x[2:]) == pytest.approx(expected[2:], abs=1e-6)
