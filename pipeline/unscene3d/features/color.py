"""Weight-free 2D baseline features: Lab colour and local colour statistics.

This is a *baseline*, not a substitute for DINO: it knows colour and local texture contrast and
nothing about objects. Each pixel of the (downscaled) colour image is described by

    [Lab colour, mean Lab in a (2r+1)^2 window, standard deviation of Lab in that window]

(each group scaled by its weight), then embedded with random Fourier features so that the cosine
similarity of averaged features approximates a Gaussian-kernel similarity of colour distributions
(see ``pipeline.unscene3d.features.fourier``). Deterministic: the projection is fixed by ``seed``.

A scene without frames (a coloured point cloud) gets the same descriptor from its points' own
colours (``point_color_superpoint_features``): the window becomes the ``point_neighbours`` nearest
points; weights and bandwidth are the image path's, so both describe colour alike, but the embedding
is ``point_n_features`` wide (2048) and summed into superpoint means a chunk of points at a time.
A superpoint's feature is a Monte-Carlo estimate of its kernel mean, and the error of the cosine
between two of them falls as one over the square root of the width: with the image path's 64 it
was large enough to move pairs across NCut's binarisation threshold (see ``fourier``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.unscene3d.backproject import FeatureBatch
from pipeline.unscene3d.features.fourier import fourier_embedding, random_fourier_features
from pipeline.params import HANDCRAFTED_2D

# The defaults are defined once, in pipeline/params.py.
DEFAULT_PARAMS = dict(HANDCRAFTED_2D)  # features_2d.handcrafted

# sRGB (D65) -> XYZ
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) sRGB in [0, 1] -> (..., 3) CIE Lab (L in [0, 100])."""
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.to(rgb).T / _WHITE_D65.to(rgb)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta**3, xyz.clamp_min(1e-12) ** (1.0 / 3.0), xyz / (3 * delta**2) + 4.0 / 29.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return torch.stack((lightness, a, b), dim=-1)


def working_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """(w, h) scaled so min(w, h) == short_side (never enlarged)."""
    width, height = size
    factor = min(1.0, short_side / min(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def local_statistics(lab: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, h, w) -> mean and standard deviation over a (2r+1)^2 window (image border excluded)."""
    if radius <= 0:
        return lab, torch.zeros_like(lab)
    kernel = 2 * radius + 1
    mean = F.avg_pool2d(lab, kernel, stride=1, padding=radius, count_include_pad=False)
    square = F.avg_pool2d(lab * lab, kernel, stride=1, padding=radius, count_include_pad=False)
    return mean, (square - mean * mean).clamp_min(0).sqrt()


@dataclass
class ColorFeatures:
    """Callable 2D backend: (B, H, W, 3) uint8 images -> FeatureBatch of (B, n_features, h, w)."""

    params: dict
    device: torch.device = torch.device("cpu")

    def __post_init__(self):
        self.params = {**DEFAULT_PARAMS, **self.params}

    @property
    def feature_dim(self) -> int:
        return int(self.params["n_features"])

    def __call__(self, images: np.ndarray) -> FeatureBatch:
        p = self.params
        batch = torch.as_tensor(np.asarray(images), device=self.device).permute(0, 3, 1, 2).float() / 255.0
        height, width = batch.shape[2:]
        in_w, in_h = working_size((width, height), int(p["short_side"]))
        if (in_w, in_h) != (width, height):
            batch = F.interpolate(batch, size=(in_h, in_w), mode="area")
        lab = rgb_to_lab(batch.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        mean, std = local_statistics(lab, int(p["window_radius"]))
        descriptor = torch.cat(
            (lab * p["color_weight"], mean * p["local_mean_weight"], std * p["local_std_weight"]), dim=1
        )
        embedded = random_fourier_features(descriptor.permute(0, 2, 3, 1), self.feature_dim, float(p["bandwidth"]), int(p["seed"]))
        return FeatureBatch.for_resized_image(embedded.permute(0, 3, 1, 2).contiguous(), (width, height), input_size=(in_w, in_h))


def neighbour_statistics(values: np.ndarray, neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) mean and standard deviation of ``values`` over each row of (N, k) neighbour indices."""
    gathered = np.asarray(values, np.float64)[neighbours]
    return gathered.mean(axis=1), gathered.std(axis=1)


def point_color_descriptors(points: np.ndarray, colors: np.ndarray, params: dict | None = None) -> np.ndarray:
    """(N, 9) the image descriptor of a point cloud, weighted: Lab colour, mean and standard
    deviation of Lab over the ``point_neighbours`` nearest points."""
    from scipy.spatial import cKDTree

    p = {**DEFAULT_PARAMS, **(params or {})}
    rgb = torch.as_tensor(np.asarray(colors, np.float32) / 255.0)
    lab = rgb_to_lab(rgb).numpy().astype(np.float64)
    k = min(int(p["point_neighbours"]), len(lab))
    if k > 1:
        _, neighbours = cKDTree(np.asarray(points, np.float64)).query(points, k=k)
        mean, std = neighbour_statistics(lab, neighbours)
    else:
        mean, std = lab, np.zeros_like(lab)
    return np.concatenate((lab * p["color_weight"], mean * p["local_mean_weight"], std * p["local_std_weight"]),
                          axis=1).astype(np.float32)


def point_color_features(points: np.ndarray, colors: np.ndarray, params: dict | None = None) -> np.ndarray:
    """(N, n_features) colour features of a point cloud: the image descriptor on k-nearest points,
    embedded with the image path's projection (``n_features`` wide)."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    embed = fourier_embedding(int(p["n_features"]), float(p["bandwidth"]), int(p["seed"]))
    return embed(point_color_descriptors(points, colors, p))


def point_color_superpoint_features(points: np.ndarray, colors: np.ndarray, point_superpoint: np.ndarray,
                                    n_superpoints: int, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((S, point_n_features) unit-length superpoint means of the points' colour embedding, (S,)
    points per superpoint), embedded a chunk of points at a time. ``point_n_features`` is wider than
    the per-pixel ``n_features``: with few random features the cosine of two superpoints' means
    is a noisy estimate of their kernel similarity, and NCut's binarised graph follows the noise."""
    from pipeline.unscene3d.features.aggregate import embedded_superpoint_features

    p = {**DEFAULT_PARAMS, **(params or {})}
    return embedded_superpoint_features(point_color_descriptors(points, colors, p), point_superpoint, n_superpoints,
                                        fourier_embedding(int(p["point_n_features"]), float(p["bandwidth"]),
                                                          int(p["seed"])))
